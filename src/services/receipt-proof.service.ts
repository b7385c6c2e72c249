// Issues and checks the signed payment proof of a paid order (format: src/domain/receipt-proof.ts).
// Tokens are computed on demand: Ed25519 is deterministic, so the receipt mail, the receipt page
// and the webhook all carry the same token for the same key without storing it.
import { type MerchantDoc } from '../db/merchants.repository.ts';
import { type OrderDoc } from '../db/orders.repository.ts';
import { signReceipt, verifyReceiptToken, type ReceiptClaims, type ReceiptVerification } from '../domain/receipt-proof.ts';
import { type ReceiptKeyRing } from './signing-keys.ts';

export const VERIFY_PATH = '/receipts/verify';
export const JWKS_PATH = '/.well-known/paymail-receipt-keys.json';

export interface ReceiptProofs {
  /** The token of a paid order; undefined when the order is not paid or the ring cannot sign. */
  tokenFor(order: OrderDoc, merchant: Pick<MerchantDoc, '_id' | 'name'>): string | undefined;
  /**
   * The verify page for a token. `timeZone` (the merchant's) is a display hint only, outside the
   * signature: the claims are a published format with paidAt in UTC and no zone, so the zone rides
   * in the URL as `tz=` and the page validates it (see src/http/proof/proof.routes.ts).
   */
  verifyUrl(token: string, timeZone?: string): string;
  verify(token: string): ReceiptVerification;
}

export function receiptClaims(order: OrderDoc, merchant: Pick<MerchantDoc, '_id' | 'name'>): ReceiptClaims | undefined {
  const p = order.payment;
  if (!p?.receiptNumber || !p.paidAt) return undefined;
  return {
    v: 1,
    receiptNumber: p.receiptNumber,
    merchant: { id: merchant._id, name: merchant.name },
    reference: order.reference,
    amountMinor: order.amountMinor,
    currency: order.currency,
    card: { brand: p.card?.brand ?? '', last4: p.card?.last4 ?? '0000' },
    authCode: p.authCode ?? '',
    paidAt: new Date(p.paidAt).toISOString(),
    orderPublicId: order.publicId,
  };
}

export function createReceiptProofs(deps: { keys: ReceiptKeyRing; publicUrl: string }): ReceiptProofs {
  const base = deps.publicUrl.replace(/\/+$/, '');
  return {
    tokenFor(order, merchant) {
      const claims = receiptClaims(order, merchant);
      return claims && deps.keys.signing ? signReceipt(claims, deps.keys.signing) : undefined;
    },
    verifyUrl: (token, timeZone) => `${base}${VERIFY_PATH}?token=${encodeURIComponent(token)}${timeZone ? `&tz=${encodeURIComponent(timeZone)}` : ''}`,
    verify: (token) => verifyReceiptToken(token, deps.keys.lookup),
  };
}
