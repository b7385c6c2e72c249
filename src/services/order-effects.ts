// The side effects an order transition queues (step 3 in src/services/order-transitions.ts):
// the receipt mails and payment.succeeded of a payment, order.expired and the merchant's mail of
// an expiry. Each under a deterministic dedupe key, so queueing twice is queueing once; a fault
// point after each one, where the crash tests stop a transition.
import { type MerchantDoc } from '../db/merchants.repository.ts';
import { type OrderDoc } from '../db/orders.repository.ts';
import { type Repositories } from '../db/repositories.ts';
import { enqueueMail } from '../mail/outbox.ts';
import { type ReceiptProofs } from './receipt-proof.service.ts';
import { receiptFacts } from './receipt-document.service.ts';
import { withBrand } from './branding.service.ts';
import { hasPlan, openPart, partView, type PartInfo } from '../domain/order-plan.ts';

export type PaidFlow = 'pay' | '3ds';

/** The webhook events the transitions fire (src/services/events.service.ts). */
export interface TransitionEvents {
  orderViewed?(order: OrderDoc, merchant: MerchantDoc): Promise<unknown>;
  paymentSucceeded?(order: OrderDoc, merchant: MerchantDoc, receipt: { proof?: string | undefined; number?: string | undefined; part?: (PartInfo & { amountMinor: number }) | undefined }): Promise<unknown>;
  orderExpired?(order: OrderDoc, merchant: MerchantDoc): Promise<unknown>;
  orderCancelled?(order: OrderDoc, merchant: MerchantDoc): Promise<unknown>;
}

export interface TransitionEffectsDeps {
  /** The storage seam (src/db/repositories.ts): the side effects are queued in its outbox. */
  repos: Pick<Repositories, 'outbox'>;
  /** Webhook events; none when absent (or only those a caller's transitions fire). */
  events?: TransitionEvents | undefined;
  /** Outbound mail domain (Message-IDs); needed by the transitions that mail (paid, expired). */
  mailDomain?: string | undefined;
  /** The pay-link of an order (it shows the receipt once paid); goes into the receipt mails. */
  linkFor?: ((order: OrderDoc) => string) | undefined;
  /** Signs the payment proof carried by the receipts; none when absent. */
  proofs?: ReceiptProofs | undefined;
  /** The signed link that removes the saved card a payment used or saved (issue 12 part 3); undefined: none. */
  cardRemovalUrl?: ((order: OrderDoc) => string | undefined) | undefined;
}

export function createTransitionEffects(deps: TransitionEffectsDeps, fault: (point: string) => Promise<void>) {
  /** Mails need a domain; a service built without one must not silently skip its mails. */
  function mailDomain(): string {
    if (!deps.mailDomain) throw new Error('order transitions: mailDomain is required to queue mail');
    return deps.mailDomain;
  }

  /**
   * Receipts to the customer (when known) and the merchant, and payment.succeeded; idempotent. For
   * an order paid in parts, those of part `seq`: each part has its own receipts and event.
   */
  async function queueReceipts(order: OrderDoc, merchant: MerchantDoc, holder: string, flow: PaidFlow, seq = 1): Promise<void> {
    const customerEmail = order.customer?.email ?? '';
    // The payment's documents see the part it paid (its amount, its payment, which part).
    const view = partView(order, seq);
    // The same facts the receipt PDF is rendered from again for a download (receipt-document.service.ts).
    const data = {
      ...receiptFacts(view, merchant, deps.proofs),
      customerEmail,
      customerName: order.customer?.name || holder,
      link: deps.linkFor ? deps.linkFor(order) : '',
    };
    const proof = data.proof;
    const common = { merchantId: merchant._id, orderId: order._id, data };
    const removeCardUrl = deps.cardRemovalUrl?.(view);
    // Part 1's keys are the order's own (an order without plan is part 1 of 1).
    const keyOf = (who: string) => (seq > 1 ? `receipt:${order._id}:${seq}:${who}` : `receipt:${order._id}:${who}`);
    if (customerEmail) {
      await enqueueMail(
        {
          ...common,
          dedupeKey: keyOf('customer'),
          template: 'receipt-customer',
          // Only the customer's receipt carries the link that removes a saved card.
          ...(removeCardUrl ? { data: { ...data, removeCardUrl } } : {}),
          locale: order.locale,
          to: [customerEmail],
          replyTo: merchant.email,
        },
        mailDomain(),
        deps.repos.outbox,
      );
    }
    await fault(`${flow}:receipt-customer`);
    await enqueueMail(
      {
        ...common,
        dedupeKey: keyOf('merchant'),
        template: 'receipt-merchant',
        locale: merchant.locale,
        to: [merchant.email],
        ...(customerEmail ? { replyTo: customerEmail } : {}),
      },
      mailDomain(),
      deps.repos.outbox,
    );
    await fault(`${flow}:receipt-merchant`);
    await deps.events?.paymentSucceeded?.(order, merchant, {
      proof,
      number: view.payment?.receiptNumber ?? undefined,
      ...(view.part ? { part: { ...view.part, amountMinor: view.amountMinor } } : {}),
    });
    await fault(`${flow}:event`);
  }

  /** order.expired and the merchant's mail about the expired order; idempotent. */
  async function queueExpired(order: OrderDoc, merchant: MerchantDoc): Promise<void> {
    await deps.events?.orderExpired?.(order, merchant);
    await fault('expire:event');
    await enqueueMail(
      {
        // A renewed order that expires again is announced again (issue 13 part 4).
        dedupeKey: `order-expired:${order._id}${order.renewals?.length ? `:r${order.renewals.length}` : ''}`,
        template: 'order-expired',
        locale: merchant.locale,
        to: [merchant.email],
        merchantId: merchant._id,
        orderId: order._id,
        data: { ...orderFacts(order, merchant), customerEmail: order.customer?.email ?? '' },
      },
      mailDomain(),
      deps.repos.outbox,
    );
    await fault('expire:mail');
  }

  return { queueReceipts, queueExpired };
}

/**
 * What the pay-link, reminder and order-expired mails tell about an order (raw values; the
 * renderer formats). An order paid in parts tells of part `seq` (default: the open one, else the
 * first): its amount, and which part of the total it is.
 */
export function orderFacts(order: OrderDoc, merchant: MerchantDoc, seq?: number) {
  const view = hasPlan(order) ? partView(order, seq ?? openPart(order)?.seq ?? 1) : undefined;
  return {
    merchantName: merchant.name,
    reference: order.reference,
    amountMinor: view ? view.amountMinor : order.amountMinor,
    ...(view?.part ? { part: view.part } : {}),
    currency: order.currency,
    description: order.description ?? '',
    customerName: order.customer?.name ?? '',
    expiresAt: order.expiresAt.toISOString(),
    timeZone: merchant.timezone,
    ...withBrand(merchant),
  };
}
