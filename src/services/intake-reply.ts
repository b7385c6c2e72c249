// Reply composition for the intake: the lines of the merchant's answer (one per created or
// already existing order) and the answer to a redelivery of a message processed before.
import { type MerchantDoc } from '../db/merchants.repository.ts';
import { type OrderDoc } from '../db/orders.repository.ts';
import { type Repositories } from '../db/repositories.ts';
import { type MailDataOf } from '../mail/contracts.ts';
import { enqueueMail } from '../mail/outbox.ts';
import { type CreateOptions, type CreateResult, type OrderService } from './order.service.ts';

export interface CreatedEntry {
  reference: string;
  amountMinor: number;
  currency: string;
  link: string;
  expiresAt: string;
  duplicate?: 'source' | 'reference';
  /** The expiry asked for was beyond the maximum and was capped. */
  capped?: boolean;
  /** Batch row delivered to the customer: the link was mailed to this address. */
  deliveredTo?: string;
  /** Batch row number (1 = first order, the header not counted). */
  row?: number;
}

export function entry(order: OrderDoc, link: string, duplicate?: 'source' | 'reference', extra: Partial<CreatedEntry> = {}): CreatedEntry {
  return {
    reference: order.reference,
    amountMinor: order.amountMinor,
    currency: order.currency,
    link,
    expiresAt: order.expiresAt.toISOString(),
    ...(duplicate ? { duplicate } : {}),
    ...extra,
  };
}

/** The reply's line for a created (or already existing) order. */
export function describe(r: CreateResult, opts: CreateOptions, extra: Partial<CreatedEntry>): CreatedEntry {
  const toCustomer = opts.payLinkMail === 'customer-only' && r.order.delivery === 'customer' && r.order.customer?.email;
  return entry(r.order, r.link, r.duplicateOf === 'reference' ? 'reference' : undefined, {
    ...extra,
    ...(toCustomer && r.duplicateOf !== 'reference' ? { deliveredTo: r.order.customer!.email! } : {}),
  });
}

/** The merchant's answer to an order mail, threaded under it and tied to its first order. */
export function queueIntakeReply(
  deps: Pick<ReplyDeps, 'repos' | 'mailDomain'>,
  merchant: MerchantDoc,
  reply: { dedupeKey: string; messageId: string | undefined; orderIds: readonly string[]; data: MailDataOf<'intake-reply'> },
) {
  const { messageId, orderIds } = reply;
  return enqueueMail(
    {
      dedupeKey: reply.dedupeKey,
      template: 'intake-reply',
      locale: merchant.locale,
      to: [merchant.email],
      ...(messageId ? { inReplyTo: messageId, references: [messageId] } : {}),
      merchantId: merchant._id,
      ...(orderIds[0] ? { orderId: orderIds[0] } : {}),
      data: reply.data,
    },
    deps.mailDomain,
    deps.repos.outbox,
  );
}

export interface ReplyDeps {
  repos: Repositories;
  orders: OrderService;
  mailDomain: string;
}

/**
 * The same message delivered again (same merchant and Message-ID, or the same bytes) after it
 * was processed: nothing is created; the merchant is answered once with the existing links.
 */
export async function answerRedelivery(deps: ReplyDeps, id: string): Promise<void> {
  const msg = await deps.repos.inbound.findOutcome(id);
  const orderIds = msg?.result?.orderIds ?? [];
  if (msg?.status !== 'processed' || orderIds.length === 0) return;
  const merchant = await deps.repos.merchants.findById(msg.merchantId);
  if (!merchant) return;
  const found = await deps.repos.orders.manyOfMerchant(merchant._id, orderIds);
  const byId = new Map(found.map((o) => [o._id, o]));
  const created = orderIds.flatMap((oid) => {
    const o = byId.get(oid);
    return o ? [entry(o, deps.orders.linkFor(o), 'source')] : [];
  });
  const messageId = msg.messageId ?? undefined;
  await queueIntakeReply(deps, merchant, {
    dedupeKey: `intake-reply:${id}:redelivered`,
    messageId,
    orderIds,
    data: { subject: found[0]?.source?.subject ?? '', created, problems: [], timeZone: merchant.timezone },
  });
}
