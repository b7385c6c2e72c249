// The link in a receipt that removes a saved card (issue 12 part 3): the customer code and the
// card id, signed with the pay-link keys (HMAC-SHA256 under its own label, with a key id so keys
// can rotate). Checked before any database work, in constant time.
import { createHmac, timingSafeEqual } from 'node:crypto';
import { type LinkKey } from './pay-link.ts';

export const CARD_REMOVAL_PATH = '/cards';

const mac = (secret: string, customerCode: string, cardId: string): Buffer =>
  createHmac('sha256', secret).update(`paymail-card-removal-v1\n${customerCode}\n${cardId}`).digest();

/** The removal page's path and signed query: /cards/<code>/<cardId>/remove?k=…&s=…. */
export function cardRemovalPath(keys: readonly LinkKey[], customerCode: string, cardId: string): string {
  const key = keys[0];
  if (!key) throw new Error('no link signing key');
  const q = new URLSearchParams({ k: key.kid, s: mac(key.secret, customerCode, cardId).toString('base64url') });
  return `${CARD_REMOVAL_PATH}/${encodeURIComponent(customerCode)}/${encodeURIComponent(cardId)}/remove?${q.toString()}`;
}

/** True when `k` and `s` sign this customer's card with one of the keys. */
export function verifyCardRemoval(keys: readonly LinkKey[], customerCode: string, cardId: string, k: unknown, s: unknown): boolean {
  if (typeof k !== 'string' || typeof s !== 'string') return false;
  const key = keys.find((x) => x.kid === k);
  if (!key) return false;
  const given = Buffer.from(s, 'base64url');
  const want = mac(key.secret, customerCode, cardId);
  return given.length === want.length && timingSafeEqual(given, want);
}

/** The absolute removal link of the saved card an order was paid with or saved; undefined when none. */
export function cardRemovalUrl(publicUrl: string, keys: readonly LinkKey[], order: { customerCode?: string | null | undefined; payment?: { savedCardId?: string | null | undefined } | null | undefined }): string | undefined {
  const cardId = order.payment?.savedCardId;
  if (!order.customerCode || !cardId) return undefined;
  return `${publicUrl.replace(/\/$/, '')}${cardRemovalPath(keys, order.customerCode, cardId)}`;
}
