// Pay-link signing: HMAC-SHA256 over order public id, amount, currency and expiry, with a key id
// so keys can rotate. Everything needed to check a link is in the link itself, so the signature is
// verified before any database work; the comparison is constant-time.
import { createHmac, timingSafeEqual } from 'node:crypto';

export interface LinkKey {
  kid: string;
  secret: string;
}

export interface LinkClaims {
  publicId: string;
  amountMinor: number;
  currency: string;
  /** Unix seconds. */
  expiresAt: number;
}

export interface LinkParams {
  a: string;
  c: string;
  e: string;
  k: string;
  s: string;
}

export const PAY_PATH = '/pay';

function mac(secret: string, c: LinkClaims): Buffer {
  return createHmac('sha256', secret)
    .update(`paymail-link-v1\n${c.publicId}\n${c.amountMinor}\n${c.currency}\n${c.expiresAt}`)
    .digest();
}

export function signLink(keys: readonly LinkKey[], claims: LinkClaims): LinkParams {
  const key = keys[0];
  if (!key) throw new Error('no link signing key');
  return {
    a: String(claims.amountMinor),
    c: claims.currency,
    e: String(claims.expiresAt),
    k: key.kid,
    s: mac(key.secret, claims).toString('base64url'),
  };
}

/** Path and query of a pay-link, relative to PUBLIC_URL. */
export function payLinkPath(keys: readonly LinkKey[], claims: LinkClaims): string {
  const p = signLink(keys, claims);
  const q = new URLSearchParams({ a: p.a, c: p.c, e: p.e, k: p.k, s: p.s });
  return `${PAY_PATH}/${encodeURIComponent(claims.publicId)}?${q.toString()}`;
}

export function payLinkUrl(publicUrl: string, keys: readonly LinkKey[], claims: LinkClaims): string {
  return publicUrl.replace(/\/+$/, '') + payLinkPath(keys, claims);
}

export type LinkCheck = { ok: true; claims: LinkClaims } | { ok: false; reason: 'malformed' | 'unknown-key' | 'bad-signature' };

const ID_RE = /^[A-Za-z0-9_-]{10,64}$/;

/** Verifies a link's parameters; does not look at the clock (expiry is the order's business). */
export function verifyLink(keys: readonly LinkKey[], publicId: string, q: Partial<Record<keyof LinkParams, unknown>>): LinkCheck {
  const { a, c, e, k, s } = q;
  if (
    !ID_RE.test(publicId) ||
    typeof a !== 'string' || !/^[1-9]\d{0,15}$/.test(a) ||
    typeof c !== 'string' || !/^[A-Z]{3}$/.test(c) ||
    typeof e !== 'string' || !/^\d{1,12}$/.test(e) ||
    typeof k !== 'string' ||
    typeof s !== 'string' || !/^[A-Za-z0-9_-]{43}$/.test(s)
  ) {
    return { ok: false, reason: 'malformed' };
  }
  const key = keys.find((x) => x.kid === k);
  if (!key) return { ok: false, reason: 'unknown-key' };
  const claims: LinkClaims = { publicId, amountMinor: Number(a), currency: c, expiresAt: Number(e) };
  // Compare the canonical encodings, not decoded bytes: decoding ignores the unused low bits of
  // the last character, so several spellings would decode to the same MAC and all open the link.
  const expected = Buffer.from(mac(key.secret, claims).toString('base64url'));
  const given = Buffer.from(s);
  if (given.length !== expected.length || !timingSafeEqual(given, expected)) return { ok: false, reason: 'bad-signature' };
  return { ok: true, claims };
}
