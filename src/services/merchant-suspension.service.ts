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
import { type Repositories } from '../db/repositories.ts';
import { AppError } from '../domain/errors.ts';
import { isCollecting } from '../domain/order-plan.ts';
import { mailPriority, outboxEvents } from '../mail/outbox.ts';
import { WEBHOOK_RETRY_WINDOW_MS, webhookEvents } from './events.service.ts';

/** The SMTP reply text both doors give a suspended merchant's mail. */
export const SUSPENDED_SMTP_REPLY = '5.7.1 this merchant account is suspended: paymail accepts no orders for it at the moment';

/** Mails that wait while their merchant is suspended: they ask for or report on payments it cannot take. */
export const HELD_MAIL_TEMPLATES: ReadonlySet<string> = new Set(['reminder', 'daily-recap']);

export const MAX_REASON_LENGTH = 500;

/** A held mail made due now; a reminder whose order can no longer be paid is dropped instead. */
export async function releaseHeldMail(repos: Pick<Repositories, 'outbox' | 'orders'>, id: unknown, at = new Date()): Promise<boolean> {
  const doc = await repos.outbox.findHeld(id);
  if (!doc) return false;
  if (doc.template === 'reminder' && doc.orderId) {
    const order = await repos.orders.stateOf(doc.orderId);
    // Paid in parts: payable while a part is open (issue 13 part 1).
    if (!order || !isCollecting(order) || order.expiresAt <= at) {
      await repos.outbox.dropHeld(id, 'reminder dropped: the order could no longer be paid when the merchant was resumed');
      return false;
    }
  }
  if (!(await repos.outbox.releaseHeld(id, at))) return false;
  outboxEvents.emit('enqueued', mailPriority(doc.template));
  return true;
}

/** A held webhook made due now, with a fresh retry window (the wait was not the merchant's endpoint's fault). */
export async function releaseHeldWebhook(repos: Pick<Repositories, 'webhooks'>, id: string, at = new Date()): Promise<boolean> {
  if (!(await repos.webhooks.releaseHeld(id, at, new Date(at.getTime() + WEBHOOK_RETRY_WINDOW_MS)))) return false;
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
    for (const id of await deps.repos.outbox.heldIds(m._id)) {
      if (await releaseHeldMail(deps.repos, id, at)) mails++;
    }
    let webhooks = 0;
    for (const id of await deps.repos.webhooks.heldIds(m._id)) {
      if (await releaseHeldWebhook(deps.repos, id, at)) webhooks++;
    }
    return { id: m._id, name: m.name, status: 'active', changed: !!resumed, released: { mails, webhooks } };
  }

  return { suspend, resume };
}
export type MerchantSuspensionService = ReturnType<typeof createMerchantSuspensionService>;
