// Opening a pay-link: the signature first, then the order and its (briefly cached) merchant, and the
// state the checkout page shows; the `viewed` mark and the receipt page's payment proof.
import { verifyLink, type LinkParams } from '../../domain/pay-link.ts';
import { type MerchantDoc } from '../../db/merchants.repository.ts';
import { type OrderDoc } from '../../db/orders.repository.ts';
import { openPart } from '../../domain/order-plan.ts';
import { type CheckoutCore } from './core.ts';
import { type CheckoutServiceDeps, type LinkState, type OpenOrder } from './types.ts';

const MERCHANT_CACHE_MS = 5_000;
const MERCHANT_CACHE_MAX = 1_000;

export function createCheckoutOpen(deps: CheckoutServiceDeps, core: CheckoutCore) {
  const { now, transitions } = core;
  const { orders } = deps.repos;

  // Merchants read by the checkout, kept for a few seconds: every page view needs its merchant,
  // and a second database round trip per view halved the checkout's throughput (bench P2). A
  // settings change reaches the checkout pages within MERCHANT_CACHE_MS; the order itself is
  // always read fresh.
  const merchantCache = new Map<string, { until: number; merchant: MerchantDoc | null }>();
  async function merchantOf(id: string): Promise<MerchantDoc | null> {
    const at = Date.now();
    const hit = merchantCache.get(id);
    if (hit && hit.until > at) return hit.merchant;
    const merchant = await deps.repos.merchants.findById(id);
    if (merchantCache.size >= MERCHANT_CACHE_MAX) merchantCache.delete(merchantCache.keys().next().value!);
    merchantCache.set(id, { until: at + MERCHANT_CACHE_MS, merchant });
    return merchant;
  }

  /** Signature first (no database work for a forged link), then the order and its merchant. */
  async function open(publicId: string, query: Partial<Record<keyof LinkParams, unknown>>): Promise<LinkState> {
    const link = verifyLink(deps.linkKeys, publicId, query);
    if (!link.ok) return { kind: 'not-found', reason: link.reason };
    const order = await orders.forCheckout(publicId);
    if (!order) return { kind: 'not-found', reason: 'unknown-order' };
    if (order.amountMinor !== link.claims.amountMinor || order.currency !== link.claims.currency) {
      return { kind: 'not-found', reason: 'claims-mismatch' };
    }
    const merchant = await merchantOf(order.merchantId);
    if (!merchant) return { kind: 'not-found', reason: 'unknown-order' };
    const at = now().getTime();
    // A paid order shows its receipt even after the link's expiry: that is the payment proof.
    if (order.status === 'paid') return { kind: 'paid', order, merchant };
    // Paid in parts, with no part open now: the receipt page of what was paid (the next part's
    // link goes out on its date or when the merchant asks).
    if (order.status === 'partially_paid' && !openPart(order)) return { kind: 'paid', order, merchant };
    if (order.status === 'cancelled') return { kind: 'cancelled', order, merchant };
    if (order.status === 'expired' || order.expiresAt.getTime() <= at || link.claims.expiresAt * 1000 <= at) {
      return { kind: 'expired', order, merchant };
    }
    if (merchant.status === 'suspended') return { kind: 'suspended', order, merchant };
    return { kind: 'payable', order, merchant };
  }

  /**
   * The customer's first interaction with a payable order's checkout (its beacon, or the form
   * submitted): records `viewed` once (src/services/order-transitions.ts). Opening the link never
   * comes here: mail scanners open links. True when this call recorded it.
   */
  async function markViewed(target: OpenOrder): Promise<boolean> {
    if (target.order.viewedAt || target.order.status !== 'pending') return false;
    return Boolean(await transitions.recordViewed(target.order._id, now()));
  }

  /** The signed payment proof of a paid order, for the receipt page. */
  const proofFor = (order: OrderDoc, merchant: MerchantDoc) => {
    const token = deps.proofs?.tokenFor(order, merchant);
    return token ? { token, verifyUrl: deps.proofs!.verifyUrl(token, merchant.timezone) } : undefined;
  };

  return { open, markViewed, proofFor };
}
