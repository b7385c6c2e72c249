// Mail authentication for the MX door: mailauth checks SPF, DKIM, DMARC and ARC; the policy here
// decides whether the result vouches for one of the merchant's registered sender domains. The DNS
// resolver is injectable (DNS_SERVERS), so tests serve their own records from 127.0.0.1.
import { Resolver } from 'node:dns/promises';
import { isIP } from 'node:net';
import { authenticate, type AuthenticateResult, type DNSResolver } from 'mailauth';

export type { DNSResolver };

export interface DnsResolverOptions {
  /** host:port list (DNS_SERVERS); unset → the system's servers. */
  servers?: ReadonlyArray<string> | undefined;
  /** Per-query timeout; a silent server becomes a temporary error rather than a stuck session. */
  timeoutMs?: number;
  tries?: number;
}

/** An IP address with an optional port, as node:dns setServers takes it ("1.2.3.4:53", "[::1]:53"). */
function checkServer(entry: string): string {
  const m = /^\[([^\]]+)\](?::\d+)?$/.exec(entry) ?? /^([^:]+)(?::\d+)?$/.exec(entry);
  if (!m || !isIP(m[1]!)) throw new Error(`invalid DNS_SERVERS entry "${entry}": expected an IP address with an optional :port`);
  return entry;
}

/**
 * mailauth's resolver: `(name, rrtype) => records` like dns.promises.resolve, throwing errors whose
 * `code` is a DNS code (ENOTFOUND, ENODATA → "no record"; anything else → temperror).
 */
export function createDnsResolver(opts: DnsResolverOptions = {}): DNSResolver {
  const resolver = new Resolver({ timeout: opts.timeoutMs ?? 3_000, tries: opts.tries ?? 2 });
  if (opts.servers?.length) resolver.setServers(opts.servers.map(checkServer));
  return (name, rrtype) => resolver.resolve(name, rrtype) as Promise<string[][] | string[]>;
}

/** What the stored inbound message keeps of the checks (no dotted keys: FerretDB). */
export interface AuthSummary {
  /** Which rule accepted the message; 'none' when refused. */
  verdict: 'dmarc' | 'dkim' | 'spf' | 'none';
  fromDomain: string | undefined;
  mailFromDomain: string | undefined;
  spf: string;
  dkim: Array<{ domain: string; result: string }>;
  dmarc: string;
  dmarcPolicy?: string;
  arc: string;
}

export type AuthDecision =
  | { accepted: true; summary: AuthSummary; senderDomain: string }
  /** temporary: a DNS failure prevented a verdict; the sender should retry (451), not bounce. */
  | { accepted: false; temporary: boolean; reason: string; summary: AuthSummary };

const domainOf = (address: string | undefined): string | undefined => {
  const at = address?.lastIndexOf('@') ?? -1;
  return at >= 0 ? address!.slice(at + 1).toLowerCase().replace(/\.$/, '') || undefined : undefined;
};

/** The registered sender domain `domain` belongs to (itself or a parent), if any. */
function registeredDomain(domain: string | undefined, senderDomains: readonly string[]): string | undefined {
  if (!domain) return undefined;
  return senderDomains.find((s) => domain === s || domain.endsWith(`.${s}`));
}

const TEMPORARY = new Set(['temperror', 'temperr']);

/**
 * The policy, in order: exactly one From address whose domain is a registered sender domain (or
 * under one); then DMARC pass, or a DKIM pass whose d= sits under the same registered domain as
 * the From domain, or an SPF pass for a MAIL FROM domain under that registered domain.
 */
export function judgeAuthentication(result: AuthenticateResult, senderDomains: readonly string[], mailFrom: string | undefined): AuthDecision {
  const registered = senderDomains.map((d) => d.toLowerCase());
  const from = result.dkim.headerFrom;
  const fromDomain = from.length === 1 ? domainOf(from[0]) : undefined;
  const mailFromDomain = domainOf(mailFrom);
  const dkim = result.dkim.results
    .filter((r) => r.signingDomain)
    .map((r) => ({ domain: r.signingDomain.toLowerCase(), result: r.status.result }));
  const spf = result.spf ? result.spf.status.result : 'none';
  const dmarc = result.dmarc ? result.dmarc.status.result : 'none';
  const summary: AuthSummary = {
    verdict: 'none',
    fromDomain,
    mailFromDomain,
    spf,
    dkim,
    dmarc,
    ...(result.dmarc && result.dmarc.policy ? { dmarcPolicy: result.dmarc.policy } : {}),
    arc: result.arc ? result.arc.status.result : 'none',
  };
  const refuse = (reason: string, temporary = false): AuthDecision => ({ accepted: false, temporary, reason, summary });

  if (from.length !== 1 || !fromDomain) return refuse(`message not authenticated: expected exactly one From address, found ${from.length}`);
  const base = registeredDomain(fromDomain, registered);
  if (!base) return refuse(`message not authenticated for ${fromDomain}: not a registered sender domain of this merchant`);
  const accept = (verdict: AuthSummary['verdict']): AuthDecision => ({ accepted: true, summary: { ...summary, verdict }, senderDomain: base });

  if (dmarc === 'pass') return accept('dmarc');
  if (dkim.some((d) => d.result === 'pass' && registeredDomain(d.domain, [base]))) return accept('dkim');
  if (spf === 'pass' && registeredDomain(mailFromDomain, [base])) return accept('spf');

  const policy = summary.dmarcPolicy ? ` (p=${summary.dmarcPolicy})` : '';
  const dkimText = dkim.length ? dkim.map((d) => `${d.result} d=${d.domain}`).join(', ') : 'none';
  const spfText = mailFromDomain ? `${spf} for ${mailFromDomain}` : spf;
  const reason = `message not authenticated for ${fromDomain}: DMARC ${dmarc}${policy}, DKIM ${dkimText}, SPF ${spfText}`;
  const temporary = TEMPORARY.has(dmarc) || TEMPORARY.has(spf) || dkim.some((d) => TEMPORARY.has(d.result));
  return refuse(reason, temporary);
}

export interface MailAuthenticatorDeps {
  /** Our host name in Authentication-Results (MAIL_DOMAIN). */
  mta: string;
  resolver: DNSResolver;
}

export interface AuthRequest {
  ip: string;
  helo: string | undefined;
  /** MAIL FROM address ('' for the null sender). */
  sender: string | undefined;
}

export function createMailAuthenticator(deps: MailAuthenticatorDeps) {
  return {
    async check(raw: Buffer, req: AuthRequest, senderDomains: readonly string[]): Promise<AuthDecision> {
      const result = await authenticate(raw, {
        // IPv4 clients of a dual-stack socket appear as ::ffff:a.b.c.d; SPF ip4: rules need a.b.c.d.
        ip: req.ip.replace(/^::ffff:(?=\d+\.\d+\.\d+\.\d+$)/i, ''),
        ...(req.helo ? { helo: req.helo } : {}),
        ...(req.sender ? { sender: req.sender } : {}),
        mta: deps.mta,
        resolver: deps.resolver,
        disableBimi: true,
      });
      return judgeAuthentication(result, senderDomains, req.sender);
    },
  };
}
export type MailAuthenticator = ReturnType<typeof createMailAuthenticator>;
