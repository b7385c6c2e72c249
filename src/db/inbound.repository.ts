// Inbound messages: raw storage (chunks in `inbound_raw`), their processing state and their due
// queue (`inbound_due`, src/db/due-queue.ts), which the intake's work runner reads
// (src/jobs/work-runner.ts). All database access for this aggregate; callers get it injected
// (src/db/repositories.ts). State changes are conditional updates on the expected state and claim
// generation (`attempts`); on FerretDB the claim `inbound:<id>:<attempts>` (src/db/claims.ts)
// referees the take first.
import mongoose from 'mongoose';
import { refereeLease } from './claims.ts';
import { conditionalUpdatesAreAtomic } from './engine.ts';
import { InboundDue, ORPHAN_MS, addDue, dueEntries, removeDue, setDue, type DueEntry } from './due-queue.ts';
import {
  InboundMessage,
  RAW_CHUNK_BYTES,
  deleteRawChunks,
  insertRawChunk,
  rawChunkRanges,
  readRaw,
  type InboundMessageDoc,
} from './models/inbound-message.model.ts';
import { isDatabaseReachable } from './reachability.ts';

export type { InboundMessageDoc } from './models/inbound-message.model.ts';
export { RAW_CHUNK_BYTES, rawChunkRanges };

export interface NewInboundMessage {
  merchantId: string;
  door: 'submission' | 'mx';
  messageKey: string;
  messageId?: string | undefined;
  bodyHash: string;
  messageIdReused?: boolean;
  /** A bounce to a mail's return path (issue 13 part 8) and the outbox mail it is about. */
  kind?: 'bounce';
  bounceOf?: string;
  envelope: { mailFrom?: string | undefined; rcptTo: string[]; remoteAddress?: string | undefined; auth?: object | undefined };
  size: number;
  rawChunks: number;
  status: 'received';
  receivedAt: Date;
}

/** What a stored message collided with (its unique merchant + message key). */
export type EarlierMessage = Pick<InboundMessageDoc, '_id' | 'bodyHash' | 'rawChunks'>;

type MessageState = Pick<InboundMessageDoc, 'status' | 'leaseUntil' | 'nextAttemptAt'>;

/** 'received' (and its back-off over), or 'processing' whose lease ran out (its worker died). */
function isClaimable(d: MessageState, at: Date): boolean {
  if (d.status === 'received') return !d.nextAttemptAt || new Date(d.nextAttemptAt) <= at;
  return d.status === 'processing' && !!d.leaseUntil && new Date(d.leaseUntil) < at;
}

/** isClaimable as a filter. */
const claimableFilter = (at: Date): Array<Record<string, unknown>> => [
  { status: 'received', nextAttemptAt: null },
  { status: 'received', nextAttemptAt: { $lte: at } },
  { status: 'processing', leaseUntil: { $lt: at } },
];

/** When an unfinished message should next be looked at; undefined when it is finished. */
function nextLookAt(d: MessageState, now: Date): Date | undefined {
  if (d.status === 'received') return d.nextAttemptAt ? new Date(d.nextAttemptAt) : now;
  if (d.status === 'processing' && d.leaseUntil) return new Date(d.leaseUntil);
  return undefined;
}

/** The due entry follows the message: moved to its next look, or removed when it is finished. */
async function followMessage(id: unknown, d: MessageState, now: Date): Promise<void> {
  const next = nextLookAt(d, now);
  if (next) await setDue(InboundDue, id, next);
  else await removeDue(InboundDue, id);
}

/** Due-queue priority: order mail is urgent (a merchant waits for the pay-link), bounces are bulk. */
const priorityOf = (kind: string | null | undefined): number => (kind === 'bounce' ? 1 : 0);

export function createInboundRepository() {
  return {
    /** False while the driver knows the database is away (the door answers 451 at once). */
    reachable: () => isDatabaseReachable(InboundMessage.db),
    /** A fresh message id: its raw chunks are written under it before the message itself. */
    newId: () => String(new mongoose.Types.ObjectId()),
    insertRawChunk,
    deleteRawChunks,
    readRaw,
    /**
     * Inserts the message; a duplicate (merchant, messageKey) throws the driver's 11000. Its due
     * entry goes in first, so a crash in between never leaves a message the runner cannot find
     * (an entry without a message is dropped later, src/db/due-queue.ts).
     */
    async create(id: string, msg: NewInboundMessage): Promise<void> {
      await addDue(InboundDue, id, msg.receivedAt, msg.receivedAt, priorityOf(msg.kind));
      try {
        await InboundMessage.create({ _id: id, ...msg });
      } catch (e) {
        // Only a duplicate is surely not stored; after any other error the insert may still land.
        if ((e as { code?: number }).code === 11000) await removeDue(InboundDue, id).catch(() => {});
        throw e;
      }
    },
    findByKey: (merchantId: string, messageKey: string) =>
      InboundMessage.findOne({ merchantId, messageKey }, { _id: 1, bodyHash: 1, rawChunks: 1 }).lean<EarlierMessage>(),
    /** The raw bytes of a stored message by id (read back for its body hash). */
    async rawOf(id: unknown): Promise<Buffer | null> {
      const full = await InboundMessage.findById(id, { rawChunks: 1, raw: 1 }).lean<InboundMessageDoc>();
      return full ? readRaw(full) : null;
    },
    /** Status, result and identity: what answering a redelivery needs. */
    findOutcome: (id: string) =>
      InboundMessage.findById(id, { status: 1, result: 1, merchantId: 1, messageId: 1 }).lean<Pick<InboundMessageDoc, '_id' | 'status' | 'result' | 'merchantId' | 'messageId'>>(),

    /** Due entries, urgent first, then oldest first: the work runner's candidates for claim(). */
    dueCandidates: (at: Date, limit: number) => dueEntries(InboundDue, at, limit),

    /**
     * Takes the entry's message for processing by `owner` until `at + leaseMs`: the message
     * (status 'processing', attempts + 1); null when it is not claimable (the entry is then
     * brought in step with the message) or another worker holds its claim.
     */
    async claim(entry: Pick<DueEntry, '_id' | 'created'>, owner: string, leaseMs: number, at: Date): Promise<InboundMessageDoc | null> {
      if (conditionalUpdatesAreAtomic()) {
        // MongoDB: the conditional update is the take, in one request (see the leased queue's claim).
        const leaseUntil = new Date(at.getTime() + leaseMs);
        const doc = await InboundMessage.findOneAndUpdate(
          { _id: String(entry._id), $or: claimableFilter(at) },
          { $set: { status: 'processing', leaseUntil, leaseOwner: owner }, $inc: { attempts: 1 }, $unset: { nextAttemptAt: 1 } },
          { returnDocument: 'after' },
        ).lean<InboundMessageDoc>();
        if (doc) {
          await setDue(InboundDue, entry._id, leaseUntil);
          return doc;
        }
      }
      const current = await InboundMessage.findById(entry._id, { status: 1, leaseUntil: 1, nextAttemptAt: 1, attempts: 1 }).lean<InboundMessageDoc>();
      if (!current) {
        // An entry whose message never came (a crashed store), once it cannot be a store in progress.
        if (at.getTime() - new Date(entry.created).getTime() > ORPHAN_MS) await removeDue(InboundDue, entry._id);
        return null;
      }
      if (!isClaimable(current, at)) {
        await followMessage(entry._id, current, at);
        return null;
      }
      const id = String(entry._id);
      const attempts = current.attempts ?? 0;
      // Held: by a live worker (which settles the entry), or by one that died between claiming and
      // marking the message (taken over once the claim's lease lapses; the entry stays due).
      if (!(await refereeLease(`inbound:${id}:${attempts}`, leaseMs, { owner }, at))) return null;
      const leaseUntil = new Date(at.getTime() + leaseMs);
      const doc = await InboundMessage.findOneAndUpdate(
        {
          _id: id,
          attempts: attempts === 0 ? { $in: [0, null] } : attempts,
          $or: claimableFilter(at),
        },
        { $set: { status: 'processing', leaseUntil, leaseOwner: owner, attempts: attempts + 1 }, $unset: { nextAttemptAt: 1 } },
        { returnDocument: 'after' },
      ).lean<InboundMessageDoc>();
      if (!doc) return null;
      // Other instances skip it until the lease ends (then a crashed worker's message is taken again).
      await setDue(InboundDue, entry._id, leaseUntil);
      return doc;
    },
    /** Processed by the claim `attempts`; false when that claim no longer holds it. */
    async markProcessed(id: unknown, attempts: number, result: NonNullable<InboundMessageDoc['result']>, at: Date): Promise<boolean> {
      const r = await InboundMessage.updateOne(
        { _id: id, status: 'processing', attempts },
        { $set: { status: 'processed', processedAt: at, result }, $unset: { leaseUntil: 1, leaseOwner: 1, lastError: 1, nextAttemptAt: 1 } },
      );
      // The entry follows; a crash before this line is repaired by the next claim (it sees 'processed').
      if (r.matchedCount > 0) await removeDue(InboundDue, id);
      return r.matchedCount > 0;
    },
    /**
     * Back to 'received' for another attempt at `retryAt` (the due entry moves there), or 'failed'
     * when given up (`retryAt` undefined); false when the claim `attempts` no longer holds it.
     */
    async release(id: unknown, attempts: number, retryAt: Date | undefined, lastError: string): Promise<boolean> {
      const r = await InboundMessage.updateOne(
        { _id: id, status: 'processing', attempts },
        {
          $set: { status: retryAt ? 'received' : 'failed', lastError: lastError.slice(0, 1000), ...(retryAt ? { nextAttemptAt: retryAt } : {}) },
          $unset: { leaseUntil: 1, leaseOwner: 1 },
        },
      );
      if (r.matchedCount === 0) return false;
      if (retryAt) await setDue(InboundDue, id, retryAt);
      else await removeDue(InboundDue, id);
      return true;
    },
    /**
     * Makes sure every unfinished message (received, or processing) has a due entry: messages
     * stored by a version without the queue. One scan of the messages; run when the runner starts.
     * Returns how many entries it added.
     */
    async reconcile(now: Date): Promise<number> {
      const open = await InboundMessage.find(
        { status: { $in: ['received', 'processing'] } },
        { _id: 1, status: 1, leaseUntil: 1, nextAttemptAt: 1, receivedAt: 1, kind: 1 },
      ).lean<Array<MessageState & Pick<InboundMessageDoc, '_id' | 'receivedAt' | 'kind'>>>();
      if (open.length === 0) return 0;
      const have = new Set((await InboundDue.find({}, { _id: 1 }).lean<Array<{ _id: unknown }>>()).map((e) => String(e._id)));
      let added = 0;
      for (const m of open) {
        if (have.has(String(m._id))) continue;
        await addDue(InboundDue, m._id, nextLookAt(m, now) ?? now, new Date(m.receivedAt ?? now), priorityOf(m.kind));
        added++;
      }
      return added;
    },
  };
}

export type InboundRepository = ReturnType<typeof createInboundRepository>;
