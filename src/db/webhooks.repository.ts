// Webhook deliveries, their attempts and their due queue (src/db/due-queue.ts). All database
// access for this aggregate; callers get it injected (src/db/repositories.ts). Every state change
// is one conditional update on the expected state (the worker's lease for a delivery in flight).
import { WebhookDue, createLeasedQueue } from './due-queue.ts';
import { WebhookAttempt, WebhookDelivery, type WebhookAttemptDoc, type WebhookDeliveryDoc, type WebhookEventType } from './models/webhook.model.ts';

export type { WebhookAttemptDoc, WebhookDeliveryDoc, WebhookEventType } from './models/webhook.model.ts';
export { WEBHOOK_EVENT_TYPES } from './models/webhook.model.ts';

export interface NewDelivery {
  /** The event id (evt_…), the same on every retry. */
  _id: string;
  dedupeKey: string;
  type: WebhookEventType;
  merchantId: string;
  orderId?: string;
  body: string;
  giveUpAt: Date;
}

export type NewAttempt = Omit<WebhookAttemptDoc, '_id' | 'url' | 'statusCode' | 'error'> & { url?: string | null; statusCode?: number; error?: string };

export function createWebhooksRepository() {
  const queue = createLeasedQueue<WebhookDeliveryDoc>({ kind: 'webhook', items: WebhookDelivery, queue: WebhookDue });
  const leaseOff = ['leaseUntil', 'leaseOwner'];

  return {
    /**
     * Stores the delivery unless one with the same dedupe key exists; returns its event id and
     * whether this call created it. The due entry goes in first (see src/db/due-queue.ts).
     */
    async enqueue(d: NewDelivery, at: Date): Promise<{ id: string; created: boolean }> {
      await queue.addDue(d._id, at);
      try {
        await WebhookDelivery.create({ ...d, status: 'pending', attempts: 0, nextAttemptAt: at });
        return { id: d._id, created: true };
      } catch (e) {
        await queue.removeDue(d._id).catch(() => {});
        if ((e as { code?: number }).code !== 11000) throw e;
        const existing = await WebhookDelivery.findOne({ dedupeKey: d.dedupeKey }, { _id: 1 }).lean<{ _id: string }>();
        if (existing) return { id: existing._id, created: false };
        throw e;
      }
    },
    dueCandidates: queue.candidates,
    claim: queue.claim,
    reconcile: queue.reconcile,
    /** Records one attempt (its _id `<eventId>:<n>` is unique per claimed attempt). */
    recordAttempt: async (a: NewAttempt): Promise<void> => {
      await WebhookAttempt.create({ _id: `${a.deliveryId}:${a.attempt}`, ...a });
    },
    /** The outcome of `owner`'s attempt; false after a lost lease. */
    async settle(
      d: Pick<WebhookDeliveryDoc, '_id' | 'attempts'>,
      owner: string,
      outcome: { status: 'delivered' | 'dead' | 'held' } | { status: 'pending'; nextAttemptAt: Date },
      extra: Record<string, unknown> = {},
    ): Promise<boolean> {
      return !!(await queue.settle(d._id, owner, d.attempts, { ...outcome, ...extra }, leaseOff));
    },
    /** A held delivery made due at `at` with a fresh retry window; false when it was not held. */
    releaseHeld: (id: string, at: Date, giveUpAt: Date) => queue.release(id, at, { giveUpAt }),
    /** The merchant's held deliveries (a scan on FerretDB; resuming is rare and the held set small). */
    heldIds: async (merchantId: string) =>
      (await WebhookDelivery.find({ merchantId, status: 'held' }, { _id: 1 }).lean<Array<{ _id: string }>>()).map((d) => d._id),

    /** The merchant's delivery `id`, or null (another merchant's is not found either). */
    async findForMerchant(merchantId: string, id: string): Promise<Pick<WebhookDeliveryDoc, '_id' | 'status' | 'merchantId'> | null> {
      const d = await WebhookDelivery.findById(id, { status: 1, merchantId: 1 }).lean<WebhookDeliveryDoc>();
      return d?.merchantId === merchantId ? d : null;
    },
    /**
     * Queues a delivery again (same event id and body), due at `at` until `giveUpAt`; false when
     * it is being sent right now (or is not the merchant's).
     */
    async replay(merchantId: string, id: string, at: Date, giveUpAt: Date): Promise<boolean> {
      const r = await WebhookDelivery.updateOne(
        { _id: id, merchantId, status: { $ne: 'sending' } },
        { $set: { status: 'pending', nextAttemptAt: at, giveUpAt } },
      );
      if (r.matchedCount === 0) return false;
      // Back in the due queue (finished deliveries have no entry).
      await queue.dueAt(id, at);
      return true;
    },
    /** The latest deliveries with their attempts (two queries: FerretDB has no $lookup). */
    async log(merchantId: string, limit: number): Promise<Array<WebhookDeliveryDoc & { createdAt?: Date; attemptList: WebhookAttemptDoc[] }>> {
      const deliveries = await WebhookDelivery.find({ merchantId }).sort({ createdAt: -1, _id: -1 }).limit(limit).lean<Array<WebhookDeliveryDoc & { createdAt?: Date }>>();
      const attempts = deliveries.length
        ? await WebhookAttempt.find({ merchantId, deliveryId: { $in: deliveries.map((d) => d._id) } }).sort({ attempt: 1 }).lean<WebhookAttemptDoc[]>()
        : [];
      return deliveries.map((d) => ({ ...d, attemptList: attempts.filter((a) => a.deliveryId === d._id) }));
    },
  };
}

export type WebhooksRepository = ReturnType<typeof createWebhooksRepository>;
