// The seal of merchant-website requests (POST /pay/sealed) and of the buyer's return to the
// merchant: lower-case hex HMAC-SHA256, keyed with the UTF-8 bytes of the merchant's seal key, over
// every field but `seal` as `name=value` lines sorted by name and joined with "\n" (UTF-8). An
// operating contract: merchants compute it without paymail code (README, "Merchant websites").
import { createHmac, timingSafeEqual } from 'node:crypto';

export const SEAL_FIELD = 'seal';

/** The text that is sealed. Names are compared by code unit (they are ASCII). */
export function sealedString(fields: Readonly<Record<string, string>>): string {
  return Object.keys(fields)
    .filter((name) => name !== SEAL_FIELD)
    .sort()
    .map((name) => `${name}=${fields[name]}`)
    .join('\n');
}

export function computeSeal(key: string, fields: Readonly<Record<string, string>>): string {
  return createHmac('sha256', Buffer.from(key, 'utf8')).update(sealedString(fields), 'utf8').digest('hex');
}

/** True when `fields.seal` is the seal of the other fields under one of `keys` (constant time per key). */
export function sealMatches(keys: readonly string[], fields: Readonly<Record<string, string>>): boolean {
  const given = Buffer.from(typeof fields[SEAL_FIELD] === 'string' ? fields[SEAL_FIELD] : '', 'utf8');
  let ok = false;
  // Every key is tried, so the time does not tell which one matched.
  for (const key of keys) {
    const expected = Buffer.from(computeSeal(key, fields), 'utf8');
    if (given.length === expected.length && timingSafeEqual(given, expected)) ok = true;
  }
  return ok;
}
