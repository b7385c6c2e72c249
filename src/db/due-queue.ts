// Due queues: a small side collection per work queue (outbox mail, webhook deliveries, inbound
// messages) holding one entry per item that still has work to do, so finding due work never reads
// the finished items.
//
// Why: FerretDB v1.24 (SQLite) runs every filter other than exactly `{_id: X}` as a scan that
// decodes the whole collection. Polling `outbox` for `{status: 'pending', nextAttemptAt <= now}`
// every second therefore cost time proportional to every mail ever sent (measured: the intake
// flood slowed down as the outbox grew). The queue collection stays as small as the backlog; the
// items themselves are only ever read and written by _id.
//
// Protocol (the item collection stays the truth, the queue is an index that may lag):
// - enqueue: the entry is inserted BEFORE the item, under the item's _id. A crash in between
//   leaves an entry without an item, which the worker deletes once it is older than ORPHAN_MS;
//   never an item without an entry.
// - claim: the worker reads due entries (oldest item first), checks the item by _id, and moves
//   the entry's `due` to the lease end, so other instances skip it while it is being worked on.
// - settle: finished items lose their entry; retried ones get `due` = their next attempt.
//   A crash between settling the item and updating the entry is repaired by the next claim,
//   which sees the item's real state.
import mongoose, { Schema, type Model } from 'mongoose';
import { refereeLease } from './claims.ts';
import { conditionalUpdatesAreAtomic } from './engine.ts';

export interface DueEntry {
  _id: unknown;
  /** When the item should next be looked at. */
  due: Date;
  /** The item's creation time: due work goes out oldest first (within its priority). */
  created: Date;
  prio?: number | null;
}

/** Entries without an item older than this are leftovers of a crashed enqueue. */
export const ORPHAN_MS = 60_000;

function queueSchema(idType: typeof Schema.Types.ObjectId | typeof String) {
  const schema = new Schema(
    {
      _id: { type: idType, required: true },
      due: { type: Date, required: true },
      created: { type: Date, required: true },
      /** 0 = urgent (pay-links, receipts, replies), 1 = bulk (recaps, reminders); absent = 0. */
      prio: { type: Number },
    },
    { versionKey: false },
  );
  // MongoDB uses it for the due read; FerretDB v1 scans regardless (the queue is kept small).
  schema.index({ due: 1, created: 1 });
  schema.index({ prio: 1, created: 1 });
  return schema;
}

export const OutboxDue = mongoose.model('OutboxDue', queueSchema(Schema.Types.ObjectId), 'outbox_due');
export const WebhookDue = mongoose.model('WebhookDue', queueSchema(String), 'webhook_due');
/** Inbound messages stored but not yet processed (src/db/inbound.repository.ts). */
export const InboundDue = mongoose.model('InboundDue', queueSchema(Schema.Types.ObjectId), 'inbound_due');

export type DueModel = Model<any>; // eslint-disable-line @typescript-eslint/no-explicit-any

/** The state fields both queues' items share. */
export interface QueueItemState {
  status: string;
  nextAttemptAt?: Date | null;
  leaseUntil?: Date | null;
}

/** Pending and due, or 'sending' whose lease ran out (its sender crashed). */
export function isDueItem(d: QueueItemState, at: Date): boolean {
  if (d.status === 'pending') return !!d.nextAttemptAt && new Date(d.nextAttemptAt) <= at;
  return d.status === 'sending' && !!d.leaseUntil && new Date(d.leaseUntil) < at;
}

/** When an unfinished item should next be looked at; undefined when it is finished. */
export function nextLookAt(d: QueueItemState): Date | undefined {
  if (d.status === 'pending' && d.nextAttemptAt) return new Date(d.nextAttemptAt);
  if (d.status === 'sending' && d.leaseUntil) return new Date(d.leaseUntil);
  return undefined;
}

/** Inserts the entry (idempotent: an existing entry is left as it is). */
export async function addDue(queue: DueModel, id: unknown, due: Date, created: Date, prio = 0): Promise<void> {
  try {
    await queue.create({ _id: id, due, created, ...(prio ? { prio } : {}) });
  } catch (e) {
    if ((e as { code?: number }).code !== 11000) throw e;
  }
}

/** Inserts the entries in one batch (idempotent like addDue: existing entries are left as they are). */
export async function addDueMany(queue: DueModel, ids: unknown[], due: Date, created: Date, prio = 0): Promise<void> {
  if (ids.length === 0) return;
  try {
    await queue.collection.insertMany(
      ids.map((_id) => ({ _id, due, created, ...(prio ? { prio } : {}) }) as never),
      { ordered: false },
    );
  } catch (e) {
    const errors = (e as { writeErrors?: Array<{ code?: number }> }).writeErrors;
    if (!errors?.length || errors.some((w) => w.code !== 11000)) throw e;
  }
}

/** Due entries, urgent ones first, then oldest item first. */
export async function dueEntries(queue: DueModel, at: Date, limit: number): Promise<DueEntry[]> {
  return queue.find({ due: { $lte: at } }).sort({ prio: 1, created: 1, _id: 1 }).limit(limit).lean<DueEntry[]>();
}

/** Makes the item due at `at` (an entry is created when there is none, e.g. a replayed item). */
export async function dueAt(queue: DueModel, id: unknown, at: Date): Promise<void> {
  await queue.updateOne({ _id: id }, { $set: { due: at }, $setOnInsert: { created: at } }, { upsert: true });
}

export async function setDue(queue: DueModel, id: unknown, due: Date): Promise<void> {
  await queue.updateOne({ _id: id }, { $set: { due } });
}

export async function removeDue(queue: DueModel, id: unknown): Promise<void> {
  await queue.deleteOne({ _id: id });
}

/** Moves the entry to when the item should next be looked at, or removes it when the item is finished. */
export async function followItem(queue: DueModel, id: unknown, item: QueueItemState): Promise<void> {
  const next = nextLookAt(item);
  if (next) await setDue(queue, id, next);
  else await removeDue(queue, id);
}

/**
 * The state of a due entry's item when it is due now. Otherwise the entry is brought in step with
 * the item — dropped when its item never came (a crashed enqueue, once older than ORPHAN_MS),
 * moved or removed when the item was rescheduled, leased or finished since — and null returned.
 */
export async function dueItem<T extends QueueItemState & { attempts?: number | null }>(
  queue: DueModel,
  items: DueModel,
  entry: DueEntry,
  at: Date,
): Promise<T | null> {
  const current = await items.findById(entry._id, { status: 1, attempts: 1, nextAttemptAt: 1, leaseUntil: 1 }).lean<T>();
  if (!current) {
    if (at.getTime() - new Date(entry.created).getTime() > ORPHAN_MS) await removeDue(queue, entry._id);
    return null;
  }
  if (!isDueItem(current, at)) {
    await followItem(queue, entry._id, current);
    return null;
  }
  return current;
}

/**
 * Makes sure every unfinished item (pending or sending) has an entry: for items stored before
 * the queue existed, or written by an older version. One scan of the item collection; run at
 * worker start. Returns how many entries it added.
 */
export async function reconcileDue(queue: DueModel, items: DueModel, now: Date): Promise<number> {
  const open = await items
    .find({ status: { $in: ['pending', 'sending'] } }, { _id: 1, status: 1, nextAttemptAt: 1, leaseUntil: 1, createdAt: 1 })
    .lean<Array<QueueItemState & { _id: unknown; createdAt?: Date }>>();
  if (open.length === 0) return 0;
  const have = new Set((await queue.find({}, { _id: 1 }).lean<Array<{ _id: unknown }>>()).map((e) => String(e._id)));
  let added = 0;
  for (const item of open) {
    if (have.has(String(item._id))) continue;
    await addDue(queue, item._id, nextLookAt(item) ?? now, new Date(item.createdAt ?? now));
    added++;
  }
  return added;
}

/**
 * The leased work queue over an item collection and its due queue: what the outbox and webhook
 * repositories share. Every transition is one conditional update with the expected prior state in
 * the filter (atomic on MongoDB); on FerretDB, whose conditional updates are not atomic, the claim
 * `<kind>:<id>:<attempts>` (src/db/claims.ts, refereeLease) referees the take first. MongoDB
 * inserts no claim (src/db/engine.ts).
 */
export function createLeasedQueue<T extends QueueItemState & { _id: unknown; attempts: number }>(opts: {
  kind: string;
  items: DueModel;
  queue: DueModel;
}) {
  const { kind, items, queue } = opts;

  /** Pending and due, or 'sending' whose lease ran out, as a filter. */
  const dueFilter = (at: Date) => ({
    $or: [
      { status: 'pending', nextAttemptAt: { $lte: at } },
      { status: 'sending', leaseUntil: { $lt: at } },
    ],
  });

  /**
   * Takes the entry's item for `owner` until `at + leaseMs`; null when it is not due (the entry
   * is then brought in step with the item), or another worker took it first.
   */
  async function claim(entry: DueEntry, owner: string, leaseMs: number, at: Date): Promise<T | null> {
    if (conditionalUpdatesAreAtomic()) {
      // MongoDB: the conditional update is the take, in one request; the item is read only when
      // it was not due, to bring the entry in step.
      const leaseUntil = new Date(at.getTime() + leaseMs);
      const doc = await items
        .findOneAndUpdate({ _id: entry._id, ...dueFilter(at) }, { $set: { status: 'sending', leaseUntil, leaseOwner: owner }, $inc: { attempts: 1 } }, { returnDocument: 'after' })
        .lean<T>();
      if (!doc) {
        await dueItem<T>(queue, items, entry, at);
        return null;
      }
      await setDue(queue, entry._id, leaseUntil);
      return doc;
    }
    const current = await dueItem<T>(queue, items, entry, at);
    if (!current) return null;
    const attempts = current.attempts ?? 0;
    if (!(await refereeLease(`${kind}:${String(entry._id)}:${attempts}`, leaseMs, { owner }, at))) return null;
    const leaseUntil = new Date(at.getTime() + leaseMs);
    const doc = await items
      .findOneAndUpdate(
        { _id: entry._id, attempts: attempts === 0 ? { $in: [0, null] } : attempts, ...dueFilter(at) },
        { $set: { status: 'sending', leaseUntil, leaseOwner: owner, attempts: attempts + 1 } },
        { returnDocument: 'after' },
      )
      .lean<T>();
    if (!doc) return null;
    // Other instances skip it until the lease ends (then a crashed worker's item is taken again).
    await setDue(queue, entry._id, leaseUntil);
    return doc;
  }

  /**
   * Applies `set`/`unset` to an item `owner` still holds under attempt `attempts` (the lease is in
   * the filter: after a take-over nothing is written); the updated item, or null.
   */
  async function settle(id: unknown, owner: string, attempts: number, set: Record<string, unknown>, unset: string[] = []): Promise<T | null> {
    const r = await items
      .findOneAndUpdate(
        { _id: id, status: 'sending', leaseOwner: owner, attempts },
        { $set: set, $unset: Object.fromEntries([...unset, 'leaseUntil', 'leaseOwner'].map((k) => [k, 1])) },
        { returnDocument: 'after' },
      )
      .lean<T>();
    // The due entry follows the item; a crash before this line is repaired by the next claim.
    if (r) await followItem(queue, id, r);
    return r;
  }

  /** A held item made due at `at` (with `set` besides); false when it was not held. */
  async function release(id: unknown, at: Date, set: Record<string, unknown> = {}): Promise<boolean> {
    const r = await items.updateOne({ _id: id, status: 'held' }, { $set: { status: 'pending', nextAttemptAt: at, ...set } });
    if (r.modifiedCount === 0) return false;
    await dueAt(queue, id, at);
    return true;
  }

  return {
    /** Due entries, urgent first, then oldest first: the candidates for claim(). */
    candidates: (at: Date, limit: number) => dueEntries(queue, at, limit),
    claim,
    settle,
    release,
    /** Every unfinished item gets its entry (run once at worker start); how many were added. */
    reconcile: (now: Date) => reconcileDue(queue, items, now),
    addDue: (id: unknown, at: Date, prio = 0) => addDue(queue, id, at, at, prio),
    addDueMany: (ids: unknown[], at: Date, prio = 0) => addDueMany(queue, ids, at, at, prio),
    removeDue: (id: unknown) => removeDue(queue, id),
    removeDueMany: async (ids: unknown[]) => {
      if (ids.length) await queue.deleteMany({ _id: { $in: ids } });
    },
    dueAt: (id: unknown, at: Date) => dueAt(queue, id, at),
  };
}

export type LeasedQueue<T extends QueueItemState & { _id: unknown; attempts: number }> = ReturnType<typeof createLeasedQueue<T>>;
