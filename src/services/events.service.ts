// Business events for the merchant's webhook. Each event is created ONCE: its dedupe key
// ("payment.succeeded:<orderId>") is unique, so a repeated call (a retry after a crash, two
// instances repairing the same payment) finds the existing event instead of minting a new id.
// The event id and body are fixed here; the webhook worker only re-signs them per attempt.
import { EventEmitter } from 'node:events';
import { nanoid } from 'nanoid';
import { type MerchantDoc } from '../db/merchants.repository.ts';
import { type OrderDoc } from '../db/orders.repository.ts';
import { type WebhookEventType } from '../db/webhooks.repository.ts';
import { webhookOrder, type WebhookEvent } from './webhook.service.ts';
import { type Repositories } from '../db/repositories.ts';

/** Retries stop three days after the event. */
export const WEBHOOK_RETRY_WINDOW_MS = 3 * 24 * 3600_000;

/** Emits 'queued' so an in-process webhook worker starts at once instead of at its next poll. */
export const webhookEvents = new EventEmitter();

export const newEventId = (): string => `evt_${nanoid()}`;

export interface EventsServiceDeps {
  /** The storage seam (src/db/repositories.ts). */
  repos: Repositories;
  now?: () => Date;
}

type Merchant = Pick<MerchantDoc, '_id' | 'webhookUrl'>;

/** A permanent bounce of one outbox mail about an order (src/services/bounce.service.ts). */
export interface MailBounce {
  /** The outbox mail that bounced: the event's dedupe key. */
  mailId: string;
  /** Its template (paylink, reminder, receipt-customer, …). */
  template: string;
  recipient: string;
  status?: string | undefined;
  reason: string;
  at: Date;
}

export interface EmitResult {
  id: string;
  /** False when the event already existed (the call was a repeat). */
  created: boolean;
}

export function createEventsService(deps: EventsServiceDeps) {
  const now = deps.now ?? (() => new Date());

  /** Queues the event for the merchant's webhook; null when the merchant has no webhook URL. */
  async function emit(
    type: WebhookEventType,
    dedupeKey: string,
    merchant: Merchant,
    order: OrderDoc,
    extra: Record<string, unknown> = {},
  ): Promise<EmitResult | null> {
    if (!merchant.webhookUrl) return null;
    const at = now();
    const event: WebhookEvent = {
      id: newEventId(),
      type,
      created: Math.floor(at.getTime() / 1000),
      data: { order: webhookOrder(order), ...extra },
    };
    const stored = await deps.repos.webhooks.enqueue(
      {
        _id: event.id,
        dedupeKey,
        type,
        merchantId: merchant._id,
        orderId: order._id,
        body: JSON.stringify(event),
        giveUpAt: new Date(at.getTime() + WEBHOOK_RETRY_WINDOW_MS),
      },
      at,
    );
    if (stored.created) webhookEvents.emit('queued');
    return stored;
  }

  return {
    emit,
    /**
     * Once per payment: an order paid in parts (issue 13 part 1) fires one per part, carrying
     * which part (`part`: seq, of, kind, amountMinor; null for an order paid at once).
     */
    paymentSucceeded: (order: OrderDoc, merchant: Merchant, receipt: { proof?: string | undefined; number?: string | undefined; part?: { seq: number; of: number; kind: string; amountMinor: number } | undefined } = {}) =>
      emit('payment.succeeded', receipt.part && receipt.part.seq > 1 ? `payment.succeeded:${order._id}:${receipt.part.seq}` : `payment.succeeded:${order._id}`, merchant, order, {
        receipt: { number: receipt.number ?? order.payment?.receiptNumber ?? null, proof: receipt.proof ?? null },
        part: receipt.part ? { seq: receipt.part.seq, of: receipt.part.of, kind: receipt.part.kind, amountMinor: receipt.part.amountMinor } : null,
      }),
    /** One event per failed attempt: its key (the attempt's, when it has one) makes it once. */
    paymentFailed: (order: OrderDoc, merchant: Merchant, attempt: { outcome: string; code: string; at: Date; key?: string }) =>
      emit('payment.failed', `payment.failed:${order._id}:${attempt.key ?? `${attempt.at.getTime()}:${nanoid(8)}`}`, merchant, order, {
        attempt: { outcome: attempt.outcome, declineCode: attempt.code, at: attempt.at.toISOString() },
      }),
    // A renewed order (issue 13 part 4) that expires again fires again: one key per renewal.
    orderExpired: (order: OrderDoc, merchant: Merchant) =>
      emit('order.expired', `order.expired:${order._id}${order.renewals?.length ? `:r${order.renewals.length}` : ''}`, merchant, order),
    /** The expired link was renewed (expired -> pending with a new expiry): once per renewal. */
    orderRenewed: (order: OrderDoc, merchant: Merchant, renewal: { generation: number; by: string }) =>
      emit('order.renewed', `order.renewed:${order._id}:${renewal.generation}`, merchant, order, {
        renewal: { number: renewal.generation + 1, by: renewal.by.split(':')[0], expiresAt: order.expiresAt.toISOString() },
      }),
    /** A mail about the order bounced for good (issue 13 part 8): once per bounced mail. */
    mailBounced: (order: OrderDoc, merchant: Merchant, bounce: MailBounce) =>
      emit('mail.bounced', `mail.bounced:${bounce.mailId}`, merchant, order, {
        bounce: {
          mail: bounce.template,
          recipient: bounce.recipient,
          status: bounce.status ?? null,
          reason: bounce.reason,
          at: bounce.at.toISOString(),
        },
      }),
    orderCancelled: (order: OrderDoc, merchant: Merchant) => emit('order.cancelled', `order.cancelled:${order._id}`, merchant, order),
    orderViewed: (order: OrderDoc, merchant: Merchant) => emit('order.viewed', `order.viewed:${order._id}`, merchant, order),
    /** `part`: the part of an order paid in parts whose payment was refunded (null without plan). */
    refundSucceeded: (
      order: OrderDoc,
      merchant: Merchant,
      refund: { id: string; amountMinor: number; currency: string; at: Date; part?: { seq: number; of: number; kind: string; amountMinor: number } | null },
    ) =>
      emit('refund.succeeded', `refund.succeeded:${refund.id}`, merchant, order, {
        refund: { id: refund.id, amountMinor: refund.amountMinor, currency: refund.currency, at: refund.at.toISOString() },
        part: refund.part ?? null,
      }),
  };
}
export type EventsService = ReturnType<typeof createEventsService>;
