// Orders: creation (idempotent per source and per open reference), pay-links, and the pay-link mail.
import { AppError } from '../domain/errors.ts';
import { type OrderDraft } from '../domain/order-draft.ts';
import { newOrderReference, newPublicId } from '../domain/ids.ts';
import { payLinkUrl, type LinkKey } from '../domain/pay-link.ts';
import { type MerchantDoc } from '../db/models/merchant.model.ts';
import { Order, type OrderDoc } from '../db/models/order.model.ts';
import { enqueueMail } from '../mail/outbox.ts';

export type { OrderDraft } from '../domain/order-draft.ts';

export interface OrderSource {
  /** Idempotency key of the thing that created the order (e.g. "msg:<inboundId>:0"). */
  key: string;
  inboundMessageId?: string;
  messageId?: string;
  subject?: string;
}

export interface CreateResult {
  order: OrderDoc;
  link: string;
  /** false when an order for this source, or an open order with this reference, already existed. */
  created: boolean;
  duplicateOf?: 'source' | 'reference';
}

export interface OrderServiceDeps {
  publicUrl: string;
  mailDomain: string;
  maxLinkLifetimeDays: number;
  linkKeys: readonly LinkKey[];
  now?: () => Date;
}

const DAY = 86_400_000;

export function createOrderService(deps: OrderServiceDeps) {
  const now = deps.now ?? (() => new Date());

  function linkFor(order: Pick<OrderDoc, 'publicId' | 'amountMinor' | 'currency' | 'linkExpiresAt'>): string {
    return payLinkUrl(deps.publicUrl, deps.linkKeys, {
      publicId: order.publicId,
      amountMinor: order.amountMinor,
      currency: order.currency,
      expiresAt: order.linkExpiresAt,
    });
  }

  /** Queues the pay-link mail for an order (idempotent per order). */
  async function queuePayLinkMail(order: OrderDoc, merchant: MerchantDoc, opts: { inReplyTo?: string } = {}) {
    const toCustomer = order.delivery === 'customer' && !!order.customer?.email;
    await enqueueMail(
      {
        dedupeKey: `paylink:${order._id}`,
        template: 'paylink',
        locale: toCustomer ? order.locale : merchant.locale,
        to: [toCustomer ? order.customer!.email! : merchant.email],
        cc: toCustomer ? [merchant.email] : [],
        replyTo: merchant.email,
        ...(opts.inReplyTo && !toCustomer ? { inReplyTo: opts.inReplyTo, references: [opts.inReplyTo] } : {}),
        merchantId: merchant._id,
        orderId: order._id,
        data: {
          merchantName: merchant.name,
          reference: order.reference,
          amountMinor: order.amountMinor,
          currency: order.currency,
          description: order.description ?? '',
          customerName: order.customer?.name ?? '',
          expiresAt: order.expiresAt.toISOString(),
          link: linkFor(order),
          toCustomer,
          timeZone: merchant.timezone,
        },
      },
      deps.mailDomain,
    );
  }

  async function create(merchant: MerchantDoc, draft: OrderDraft, source: OrderSource): Promise<CreateResult> {
    const existing = await Order.findOne({ merchantId: merchant._id, sourceKey: source.key }).lean<OrderDoc>();
    if (existing) return { order: existing, link: linkFor(existing), created: false, duplicateOf: 'source' };
    const at = now();
    const maxExpiry = new Date(at.getTime() + deps.maxLinkLifetimeDays * DAY);
    let expiresAt = draft.expiresAt ?? new Date(at.getTime() + merchant.linkLifetimeDays * DAY);
    if (expiresAt > maxExpiry) expiresAt = maxExpiry;
    if (expiresAt <= at) {
      throw new AppError('ORDER_EXPIRY_PAST', 'the expiry is in the past', { httpStatus: 400 });
    }
    const delivery = draft.delivery ?? merchant.delivery;
    const reference = draft.reference?.trim() || newOrderReference();
    const id = `ord_${newPublicId()}`;
    const doc = {
      _id: id,
      publicId: newPublicId(),
      merchantId: merchant._id,
      reference,
      openReference: reference,
      sourceKey: source.key,
      amountMinor: draft.amountMinor,
      currency: draft.currency,
      description: draft.description,
      customer: { email: draft.customerEmail?.toLowerCase(), name: draft.customerName },
      locale: draft.locale ?? merchant.locale,
      delivery: (delivery === 'customer' && draft.customerEmail ? 'customer' : 'merchant') as 'customer' | 'merchant',
      status: 'pending' as const,
      expiresAt,
      linkExpiresAt: Math.floor(expiresAt.getTime() / 1000),
      source: { inboundMessageId: source.inboundMessageId, messageId: source.messageId, subject: source.subject },
    };
    try {
      const created = await Order.create(doc);
      const order = created.toObject() as OrderDoc;
      await queuePayLinkMail(order, merchant, source.messageId ? { inReplyTo: source.messageId } : {});
      return { order, link: linkFor(order), created: true };
    } catch (e) {
      if ((e as { code?: number }).code !== 11000) throw e;
      const bySource = await Order.findOne({ merchantId: merchant._id, sourceKey: source.key }).lean<OrderDoc>();
      if (bySource) return { order: bySource, link: linkFor(bySource), created: false, duplicateOf: 'source' };
      const open = await Order.findOne({ merchantId: merchant._id, openReference: reference }).lean<OrderDoc>();
      if (open) return { order: open, link: linkFor(open), created: false, duplicateOf: 'reference' };
      throw e;
    }
  }

  return { create, linkFor, queuePayLinkMail };
}
export type OrderService = ReturnType<typeof createOrderService>;
