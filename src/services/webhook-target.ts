// Where a webhook may go. A merchant's webhook URL is chosen by whoever holds its back-office
// admin log-in, and the webhook log shows what answered, so an unchecked URL would let them probe
// paymail's own network (server-side request forgery). Only public unicast addresses are allowed,
// checked when the URL is saved and again at every delivery: the host is resolved, every address
// it resolves to must be public, and the delivery connects to those checked addresses (no second
// look-up a DNS-rebinding answer could change). WEBHOOK_ALLOW_PRIVATE=true lifts the rule.
import { lookup } from 'node:dns/promises';
import { isIP } from 'node:net';
import ipaddr from 'ipaddr.js';
import { AppError } from '../domain/errors.ts';

export interface ResolvedAddress {
  address: string;
  family: 4 | 6;
}

/** Host name → every address it resolves to (the system resolver unless a test passes its own). */
export type Resolver = (host: string) => Promise<ResolvedAddress[]>;

export interface WebhookTargetPolicy {
  /** WEBHOOK_ALLOW_PRIVATE: development and tests deliver to 127.0.0.1. */
  allowPrivate: boolean;
  resolve?: Resolver | undefined;
}

const systemResolver: Resolver = async (host) => (await lookup(host, { all: true, verbatim: true })) as ResolvedAddress[];

/** ipaddr.js range names, as the merchant reads them. */
const RANGE_TEXT: Record<string, string> = {
  unspecified: 'the unspecified address',
  loopback: 'a loopback address (this machine)',
  private: 'a private network address (RFC 1918)',
  linkLocal: 'a link-local address (where cloud metadata services answer)',
  uniqueLocal: 'a unique-local IPv6 address (a private network)',
  multicast: 'a multicast address',
  broadcast: 'the broadcast address',
  carrierGradeNat: 'a shared carrier-grade NAT address (RFC 6598)',
  deprecatedSiteLocal: 'a site-local IPv6 address (a private network)',
  reserved: 'a reserved or documentation address',
};

// NAT64 (RFC 6052 well-known prefix) carries an IPv4 address in its last 32 bits.
const NAT64 = ipaddr.parseCIDR('64:ff9b::/96');

function embeddedV4(ip: ipaddr.IPv6, hi: number, lo: number): ipaddr.IPv4 {
  const p = ip.parts;
  return new ipaddr.IPv4([p[hi]! >> 8, p[hi]! & 0xff, p[lo]! >> 8, p[lo]! & 0xff]);
}

/**
 * Why an address is not a public unicast address (an ipaddr.js range name), or undefined when
 * it is one. IPv6 forms that embed an IPv4 address (mapped, NAT64, 6to4) are judged by it.
 */
export function nonPublicRange(address: string): string | undefined {
  if (!ipaddr.isValid(address)) return 'invalid';
  const ip = ipaddr.parse(address);
  if (ip.kind() === 'ipv4') {
    const range = (ip as ipaddr.IPv4).range();
    return range === 'unicast' ? undefined : range;
  }
  const v6 = ip as ipaddr.IPv6;
  const range = v6.range();
  if (range === 'ipv4Mapped' || range === 'rfc6145') return nonPublicRange(embeddedV4(v6, 6, 7).toString());
  if (range === 'rfc6052' && v6.match(NAT64)) return nonPublicRange(embeddedV4(v6, 6, 7).toString());
  if (range === '6to4') return nonPublicRange(embeddedV4(v6, 1, 2).toString());
  return range === 'unicast' ? undefined : range;
}

export function describeRange(range: string): string {
  return RANGE_TEXT[range] ?? `a special-purpose address (${range})`;
}

/**
 * Resolves the URL's host and checks every address. Returns the addresses to connect to;
 * throws WEBHOOK_TARGET_REFUSED (a non-public address, named with the reason) or
 * WEBHOOK_HOST_UNRESOLVED.
 */
export async function checkWebhookTarget(url: string, policy: WebhookTargetPolicy): Promise<ResolvedAddress[]> {
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    throw new AppError('WEBHOOK_URL_INVALID', 'expected an http(s) URL', { httpStatus: 422 });
  }
  if (u.protocol !== 'http:' && u.protocol !== 'https:') throw new AppError('WEBHOOK_URL_INVALID', 'expected an http(s) URL', { httpStatus: 422 });
  // The URL parser has already normalised numeric forms (http://2130706433/ → 127.0.0.1).
  const host = u.hostname.replace(/^\[(.*)\]$/, '$1');
  let addresses: ResolvedAddress[];
  const family = isIP(host);
  if (family) addresses = [{ address: host, family: family as 4 | 6 }];
  else {
    try {
      addresses = await (policy.resolve ?? systemResolver)(host);
    } catch (e) {
      const code = (e as { code?: string }).code ?? (e as Error).message;
      throw new AppError('WEBHOOK_HOST_UNRESOLVED', `${host} does not resolve (${code})`, { httpStatus: 422 });
    }
    if (addresses.length === 0) throw new AppError('WEBHOOK_HOST_UNRESOLVED', `${host} does not resolve`, { httpStatus: 422 });
  }
  if (policy.allowPrivate) return addresses;
  for (const a of addresses) {
    const range = nonPublicRange(a.address);
    if (range) {
      const where = a.address === host ? a.address : `${host} resolves to ${a.address}, which`;
      throw new AppError('WEBHOOK_TARGET_REFUSED', `${where} is ${describeRange(range)}; webhooks go only to public Internet addresses`, {
        httpStatus: 422,
        details: { host, address: a.address, range },
      });
    }
  }
  return addresses;
}
