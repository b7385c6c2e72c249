// Suspending a merchant (`paymail merchant suspend ID [--reason TEXT]`) and resuming it.
//
// While suspended: both SMTP doors refuse its mail (550 5.7.1), its pay-links take no payment,
// and the mail and webhooks that speak for it to others wait. The workers park those items as
// `held` (out of the due queues, so a long suspension costs nothing per poll); resume() puts them
// back as due now. Receipts and replies about payments already made are not held: the customer
// paid and is owed the receipt.
//
// Race: a worker may park an item just after resume() looked for held items. So a worker re-reads
// the merchant after parking and releases the item itself when the merchant is active again;
// resume() sets the status first and releases second, so one of the two always sees the other.
import { type MerchantDoc } from '../db/merchants.repository.ts';
import { Order, type OrderDoc } from '../db/models/order.model.ts';
import { Outbox, type OutboxDoc } from '../db/models/outbox.model.ts';
import { WebhookDelivery, type WebhookDeliveryDoc } from '../db/models/webhook.model.ts';
import { OutboxDue, WebhookDue, dueAt } from '../db/due-queue.ts';
import { updateByIdIf } from '../db/by-id.ts';
import { type Repositories } from '../db/repositories.ts';
import { AppError } from '../domain/errors.ts';
import { outboxEvents } from '../mail/outbox.ts';
import { WEBHOOK_RETRY_WINDOW_MS, webhookEvents } from './events.service.ts';

/** The SMTP reply text both doors give a suspended merchant's mail. */
export const SUSPENDED_SMTP_REPLY = '5.7.1 this merchant account is suspended: paymail accepts no orders for it at the moment';

/** Mails that wait while their merchant is suspended: they ask for or report on payments it cannot take. */
export const HELD_MAIL_TEMPLATES: ReadonlySet<string> = new Set(['reminder', 'daily-recap']);

export const MAX_REASON_LENGTH = 500;

/** A held mail made due now; a reminder whose order can no longer be paid is dropped instead. */
export async function releaseHeldMail(id: unknown, at = new Date()): Promise<boolean> {
  const doc = await Outbox.findById(id, { template: 1, orderId: 1, status: 1 }).lean<OutboxDoc>();
  if (doc?.status !== 'held') return false;
  if (doc.template === 'reminder' && doc.orderId) {
    const order = await Order.findById(doc.orderId, { status: 1, expiresAt: 1 }).lean<OrderDoc>();
    if (!order || order.status !== 'pending' || order.expiresAt <= at) {
      await updateByIdIf<OutboxDoc>(Outbox, id, (d) => d.status === 'held', {
        $set: { status: 'dead', lastError: 'reminder dropped: the order could no longer be paid when the merchant was resumed' },
      });
      return false;
    }
  }
  const released = await updateByIdIf<OutboxDoc>(Outbox, id, (d) => d.status === 'held', { $set: { status: 'pending', nextAttemptAt: at } });
  if (!released) return false;
  await dueAt(OutboxDue, id, at);
  outboxEvents.emit('enqueued');
  return true;
}

/** A held webhook made due now, with a fresh retry window (the wait was not the merchant's endpoint's fault). */
export async function releaseHeldWebhook(id: string, at = new Date()): Promise<boolean> {
  const released = await updateByIdIf<WebhookDeliveryDoc>(WebhookDelivery, id, (d) => d.status === 'held', {
    $set: { status: 'pending', nextAttemptAt: at, giveUpAt: new Date(at.getTime() + WEBHOOK_RETRY_WINDOW_MS) },
  });
  if (!released) return false;
  await dueAt(WebhookDue, id, at);
  webhookEvents.emit('queued');
  return true;
}

export interface SuspensionState {
  id: string;
  name: string;
  status: 'active' | 'suspended';
  /** False when the merchant already was in that state (its suspension's time and reason stay). */
  changed: boolean;
  reason?: string;
  suspendedAt?: string;
  /** resume(): how many held mails and webhook events were sent on their way. */
  released?: { mails: number; webhooks: number };
}

export function createMerchantSuspensionService(deps: { repos: Repositories; now?: () => Date }) {
  const now = deps.now ?? (() => new Date());

  const { merchants } = deps.repos;

  async function find(id: string): Promise<MerchantDoc> {
    const m = await merchants.findById(id);
    if (!m) throw new AppError('MERCHANT_NOT_FOUND', `no merchant "${id}" (see: paymail merchant list)`, { httpStatus: 404 });
    return m;
  }

  const stateOf = (m: MerchantDoc, changed: boolean): SuspensionState => ({
    id: m._id,
    name: m.name,
    status: m.status === 'suspended' ? 'suspended' : 'active',
    changed,
    ...(m.suspendedReason ? { reason: m.suspendedReason } : {}),
    ...(m.suspendedAt ? { suspendedAt: new Date(m.suspendedAt).toISOString() } : {}),
  });

  /** Active → suspended. An already suspended merchant keeps its suspension (time and reason): changed false. */
  async function suspend(id: string, reason?: string): Promise<SuspensionState> {
    const text = reason?.trim();
    if (text && text.length > MAX_REASON_LENGTH) {
      throw new AppError('SUSPENSION_REASON_INVALID', `--reason: at most ${MAX_REASON_LENGTH} characters`, { httpStatus: 422 });
    }
    const suspended = await merchants.suspend(id, now(), text || undefined);
    return suspended ? stateOf(suspended, true) : stateOf(await find(id), false);
  }

  /**
   * Active again; then every held mail and webhook event of the merchant is made due (also when it
   * was active already: items a worker parked in a race are released either way).
   */
  async function resume(id: string): Promise<SuspensionState> {
    const resumed = await merchants.resume(id);
    const m = resumed ?? (await find(id));
    const at = now();
    // A scan on FerretDB (not by _id); resuming is rare and the held set small.
    let mails = 0;
    for (const d of await Outbox.find({ merchantId: m._id, status: 'held' }, { _id: 1 }).lean<Array<{ _id: unknown }>>()) {
      if (await releaseHeldMail(d._id, at)) mails++;
    }
    let webhooks = 0;
    for (const d of await WebhookDelivery.find({ merchantId: m._id, status: 'held' }, { _id: 1 }).lean<Array<{ _id: string }>>()) {
      if (await releaseHeldWebhook(d._id, at)) webhooks++;
    }
    return { id: m._id, name: m.name, status: 'active', changed: !!resumed, released: { mails, webhooks } };
  }

  return { suspend, resume };
}
export type MerchantSuspensionService = ReturnType<typeof createMerchantSuspensionService>;
