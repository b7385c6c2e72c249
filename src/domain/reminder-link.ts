// The customer's link to stop reminders for one order (issue 13, part 3): HMAC-SHA256 over the
// order's public id with the pay-link keys (key id first, so keys rotate like pay-links'). It does
// not expire: a reminder read late must still be able to stop the next one. A GET of it only shows
// a confirmation page; the POST (the page's button, or a mail client's RFC 8058 one-click POST)
// unsubscribes, so link scanners that open URLs change nothing.
import { createHmac, timingSafeEqual } from 'node:crypto';
import { type LinkKey } from './pay-link.ts';

export const REMINDERS_OFF_PATH = '/reminders/off';

const mac = (secret: string, publicId: string) =>
  createHmac('sha256', secret).update(`paymail-reminders-off-v1\n${publicId}`).digest('base64url');

/** Path and query of the link, relative to PUBLIC_URL. */
export function remindersOffPath(keys: readonly LinkKey[], publicId: string): string {
  const key = keys[0];
  if (!key) throw new Error('no link signing key');
  return `${REMINDERS_OFF_PATH}/${encodeURIComponent(publicId)}?${new URLSearchParams({ k: key.kid, s: mac(key.secret, publicId) }).toString()}`;
}

export const remindersOffUrl = (publicUrl: string, keys: readonly LinkKey[], publicId: string): string =>
  publicUrl.replace(/\/+$/, '') + remindersOffPath(keys, publicId);

const ID_RE = /^[A-Za-z0-9_-]{10,64}$/;

/** True when `s` is the signature of `publicId` under key `k` (constant-time). */
export function verifyRemindersOff(keys: readonly LinkKey[], publicId: string, q: { k?: unknown; s?: unknown }): boolean {
  if (!ID_RE.test(publicId) || typeof q.k !== 'string' || typeof q.s !== 'string' || !/^[A-Za-z0-9_-]{43}$/.test(q.s)) return false;
  const key = keys.find((x) => x.kid === q.k);
  if (!key) return false;
  const expected = Buffer.from(mac(key.secret, publicId));
  const given = Buffer.from(q.s);
  return given.length === expected.length && timingSafeEqual(given, expected);
}
