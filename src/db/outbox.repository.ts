// Outgoing mail: the durable outbox, its due queue (src/db/due-queue.ts) and the captured copies
// of development mail. All database access for this aggregate; callers get it injected
// (src/db/repositories.ts). Every state change is one conditional update on the expected state
// (the worker's lease for a mail being sent).
import mongoose from 'mongoose';
import { OutboxDue, createLeasedQueue } from './due-queue.ts';
import { CapturedMail, Outbox, type OutboxDoc } from './models/outbox.model.ts';

export type { OutboxDoc } from './models/outbox.model.ts';

/** What enqueue() stores (the outbox fixes status, attempts and times itself). */
export interface NewMail {
  dedupeKey: string;
  template: string;
  locale: string;
  to: string[];
  cc?: string[];
  replyTo?: string;
  inReplyTo?: string;
  references?: string[];
  data: Record<string, unknown>;
  merchantId?: string;
  orderId?: string;
  messageId: string;
  /** One-click unsubscribe URL (RFC 8058): List-Unsubscribe and List-Unsubscribe-Post headers (reminders). */
  listUnsubscribe?: string;
}

/** The full copy of a captured (development) mail, as /dev/mail shows it. */
export interface CapturedCopy {
  from?: string;
  to?: string;
  cc?: string;
  subject?: string;
  html?: string;
  text?: string;
  /** In mail order; inline images without content. Read back, `content` may be a BSON Binary. */
  attachments?: Array<{ filename: string; contentType: string; size: number; inline: boolean; content?: Buffer | { buffer: Uint8Array } | null }>;
}

/** What a bounce says about one mail (issue 13 part 8): when, which address, and why. */
export interface BounceFacts {
  at: Date;
  recipient: string;
  status?: string | undefined;
  reason: string;
  /** The stored inbound message that carried the bounce. */
  inboundId: string;
}

/** The mail a bounce is about: its recipients, template and order. */
export type BounceTarget = Pick<OutboxDoc, '_id' | 'template' | 'to' | 'cc' | 'merchantId' | 'orderId' | 'locale' | 'status' | 'bounce'>;

/** Lower is sooner: 0 for mail a person waits for, 1 for bulk mail (recaps, reminders). */
export type MailPriority = 0 | 1;

export function createOutboxRepository() {
  const queue = createLeasedQueue<OutboxDoc>({ kind: 'outbox', items: Outbox, queue: OutboxDue });

  /**
   * Inserts the mail unless one with the same dedupe key exists; returns the stored mail and
   * whether this call created it. Its due entry goes in first, so a crash in between never leaves
   * a mail the worker cannot find.
   */
  async function enqueue(mail: NewMail, prio: MailPriority = 0, at = new Date()): Promise<{ mail: OutboxDoc; created: boolean }> {
    const _id = new mongoose.Types.ObjectId();
    await queue.addDue(_id, at, prio);
    try {
      const doc = await Outbox.create({ _id, ...mail, status: 'pending', nextAttemptAt: at, createdAt: at });
      return { mail: doc.toObject() as OutboxDoc, created: true };
    } catch (e) {
      await queue.removeDue(_id).catch(() => {});
      if ((e as { code?: number }).code === 11000) {
        const existing = await Outbox.findOne({ dedupeKey: mail.dedupeKey }).lean<OutboxDoc>();
        if (existing) return { mail: existing, created: false };
      }
      throw e;
    }
  }

  /**
   * enqueue() for many mails in two batched writes (their due entries, then the mails), for bulk
   * runs such as the daily recap: one insert each per mail cost a round trip and, on FerretDB, a
   * write transaction each. Every mail is validated against the outbox schema first (an invalid one
   * refuses the batch, as create() would). Returns, per mail, whether this call created it (false:
   * one with its dedupe key exists, and its due entry is taken back).
   */
  async function enqueueMany(mails: NewMail[], prio: MailPriority = 0, at = new Date()): Promise<boolean[]> {
    if (mails.length === 0) return [];
    const docs = mails.map((mail) => new Outbox({ _id: new mongoose.Types.ObjectId(), ...mail, status: 'pending', nextAttemptAt: at, createdAt: at }));
    await Promise.all(docs.map((d) => d.validate()));
    const ids = docs.map((d) => d._id);
    await queue.addDueMany(ids, at, prio);
    const created = mails.map(() => true);
    try {
      await Outbox.collection.insertMany(
        docs.map((d) => d.toObject({ depopulate: true })),
        { ordered: false },
      );
    } catch (e) {
      const errors = (e as { writeErrors?: Array<{ index: number; code?: number }> }).writeErrors;
      if (!errors?.length) {
        // Unknown outcome (e.g. the connection dropped): mails that were stored keep their entries;
        // entries without a mail are removed as orphans by the worker.
        throw e;
      }
      for (const w of errors) created[w.index] = false;
      await queue.removeDueMany(errors.map((w) => ids[w.index]));
      if (errors.some((w) => w.code !== 11000)) throw e;
    }
    return created;
  }

  const leaseOff = ['leaseUntil', 'leaseOwner'];

  return {
    enqueue,
    enqueueMany,
    /** Due mail, urgent first, then oldest first: candidates for claim(). */
    dueCandidates: queue.candidates,
    /** Takes a candidate's mail for `owner` (status 'sending', attempts + 1); null when not due or taken. */
    claim: queue.claim,
    /** Unfinished mail stored without a due entry gets one; how many were added. */
    reconcile: queue.reconcile,

    /**
     * Sent by `owner`'s attempt: true when this call marked it, or (a retried write whose first
     * try was applied) it is already marked sent by that attempt; false after a lost lease.
     */
    async markSent(m: Pick<OutboxDoc, '_id' | 'attempts'>, owner: string, at: Date, captured?: CapturedCopy): Promise<boolean> {
      if (captured) await CapturedMail.replaceOne({ _id: m._id }, captured, { upsert: true });
      const set = { status: 'sent', sentAt: at, ...(captured ? { captured: { subject: captured.subject } } : {}) };
      if (await queue.settle(m._id, owner, m.attempts, set, ['lastError'])) return true;
      const current = await Outbox.findById(m._id, { status: 1, attempts: 1 }).lean<OutboxDoc>();
      return current?.status === 'sent' && current.attempts === m.attempts;
    },
    /** Back to pending until `nextAttemptAt`; false after a lost lease. */
    async retryLater(m: Pick<OutboxDoc, '_id' | 'attempts'>, owner: string, nextAttemptAt: Date, lastError: string): Promise<boolean> {
      return !!(await queue.settle(m._id, owner, m.attempts, { status: 'pending', nextAttemptAt, lastError }, leaseOff));
    },
    async markDead(m: Pick<OutboxDoc, '_id' | 'attempts'>, owner: string, lastError: string): Promise<boolean> {
      return !!(await queue.settle(m._id, owner, m.attempts, { status: 'dead', lastError }, leaseOff));
    },
    /** Parked out of the queue while its merchant is suspended; false after a lost lease. */
    async hold(m: Pick<OutboxDoc, '_id' | 'attempts'>, owner: string): Promise<boolean> {
      return !!(await queue.settle(m._id, owner, m.attempts, { status: 'held' }, leaseOff));
    },

    /** A held mail's template and order (to decide whether releasing it still makes sense). */
    async findHeld(id: unknown): Promise<Pick<OutboxDoc, '_id' | 'template' | 'orderId' | 'status'> | null> {
      const m = await Outbox.findById(id, { template: 1, orderId: 1, status: 1 }).lean<OutboxDoc>();
      return m?.status === 'held' ? m : null;
    },
    /** A held mail made due at `at`; false when it was not held. */
    releaseHeld: (id: unknown, at: Date) => queue.release(id, at),
    /** A held mail that will never be sent (e.g. a reminder whose order can no longer be paid). */
    async dropHeld(id: unknown, lastError: string): Promise<boolean> {
      const r = await Outbox.updateOne({ _id: id, status: 'held' }, { $set: { status: 'dead', lastError } });
      return r.modifiedCount > 0;
    },
    /** The merchant's held mails (a scan on FerretDB; resuming is rare and the held set small). */
    heldIds: async (merchantId: string) => (await Outbox.find({ merchantId, status: 'held' }, { _id: 1 }).lean<Array<{ _id: unknown }>>()).map((d) => d._id),

    /** What a bounce for mail `id` needs to know about it (the MX door checks it exists); null when unknown. */
    bounceTarget: (id: string) =>
      mongoose.isValidObjectId(id) && /^[0-9a-f]{24}$/i.test(id)
        ? Outbox.findById(id, { template: 1, to: 1, cc: 1, merchantId: 1, orderId: 1, locale: 1, status: 1, bounce: 1 }).lean<BounceTarget>()
        : Promise.resolve(null),
    /** The mail's first permanent bounce; false when one is recorded already (it is never replaced). */
    async recordBounce(id: string, bounce: BounceFacts): Promise<boolean> {
      const r = await Outbox.updateOne({ _id: id, 'bounce.at': null }, { $set: { bounce } });
      return r.modifiedCount > 0;
    },
    /** The mail's latest delay warning (informational). */
    async recordDelay(id: string, delayed: BounceFacts): Promise<void> {
      await Outbox.updateOne({ _id: id }, { $set: { delayed } });
    },

    /** The mails about one order of the merchant (without bodies), oldest first. */
    forOrder: (orderId: string, merchantId: string) =>
      Outbox.find({ orderId, merchantId }).select({ captured: 0, data: 0 }).sort({ createdAt: 1 }).lean<Array<OutboxDoc & { createdAt?: Date }>>(),

    /** /dev/mail: the newest mails, list fields only. */
    recent: (limit: number) =>
      Outbox.find({}, { template: 1, status: 1, to: 1, cc: 1, locale: 1, attempts: 1, createdAt: 1, sentAt: 1, 'captured.subject': 1 })
        .sort({ createdAt: -1, _id: -1 })
        .limit(limit)
        .lean<Array<OutboxDoc & { createdAt?: Date }>>(),
    /** /dev/mail: a mail with its full captured copy merged in; null for an unknown id. */
    async withCapture(id: string): Promise<(Omit<OutboxDoc, 'captured'> & { captured?: CapturedCopy }) | null> {
      if (!mongoose.isValidObjectId(id) || !/^[0-9a-f]{24}$/i.test(id)) return null;
      const [m, copy] = await Promise.all([Outbox.findById(id).lean<OutboxDoc>(), CapturedMail.findById(id).lean<CapturedCopy>()]);
      if (!m) return null;
      const { captured: _subjectOnly, ...rest } = m;
      return copy ? { ...rest, captured: copy } : rest;
    },
  };
}

export type OutboxRepository = ReturnType<typeof createOutboxRepository>;
