// Inbound messages: raw storage (chunks in `inbound_raw`) and their processing state. All
// database access for this aggregate; callers get it injected (src/db/repositories.ts). State
// changes are conditional updates on the expected state and claim generation (`attempts`); on
// FerretDB the claim `inbound:<id>:<attempts>` (src/db/claims.ts) referees the take first.
import mongoose from 'mongoose';
import { claimLease } from './claims.ts';
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

/** 'received', or 'processing' whose lease ran out (its worker died). */
function isClaimable(d: Pick<InboundMessageDoc, 'status' | 'leaseUntil'>, at: Date): boolean {
  return d.status === 'received' || (d.status === 'processing' && !!d.leaseUntil && new Date(d.leaseUntil) < at);
}

export function createInboundRepository() {
  return {
    /** False while the driver knows the database is away (the door answers 451 at once). */
    reachable: () => isDatabaseReachable(InboundMessage.db),
    /** A fresh message id: its raw chunks are written under it before the message itself. */
    newId: () => String(new mongoose.Types.ObjectId()),
    insertRawChunk,
    deleteRawChunks,
    readRaw,
    /** Inserts the message; a duplicate (merchant, messageKey) throws the driver's 11000. */
    async create(id: string, msg: NewInboundMessage): Promise<void> {
      await InboundMessage.create({ _id: id, ...msg });
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

    /**
     * Takes the message for processing until `at + leaseMs`: the message (status 'processing',
     * attempts + 1); 'held' when another worker holds its claim; null when it is not claimable.
     */
    async claim(id: string, leaseMs: number, at: Date): Promise<InboundMessageDoc | 'held' | null> {
      const current = await InboundMessage.findById(id, { status: 1, leaseUntil: 1, attempts: 1 }).lean<InboundMessageDoc>();
      if (!current || !isClaimable(current, at)) return null;
      const attempts = current.attempts ?? 0;
      if (!(await claimLease(`inbound:${id}:${attempts}`, leaseMs, {}, at))) return 'held';
      return InboundMessage.findOneAndUpdate(
        {
          _id: id,
          attempts: attempts === 0 ? { $in: [0, null] } : attempts,
          $or: [{ status: 'received' }, { status: 'processing', leaseUntil: { $lt: at } }],
        },
        { $set: { status: 'processing', leaseUntil: new Date(at.getTime() + leaseMs), attempts: attempts + 1 } },
        { returnDocument: 'after' },
      ).lean<InboundMessageDoc>();
    },
    /** Processed by the claim `attempts`; false when that claim no longer holds it. */
    async markProcessed(id: unknown, attempts: number, result: NonNullable<InboundMessageDoc['result']>, at: Date): Promise<boolean> {
      const r = await InboundMessage.updateOne(
        { _id: id, status: 'processing', attempts },
        { $set: { status: 'processed', processedAt: at, result }, $unset: { leaseUntil: 1, lastError: 1 } },
      );
      return r.matchedCount > 0;
    },
    /** Back to 'received' for a retry, or 'failed' when given up; false when the claim no longer holds it. */
    async release(id: unknown, attempts: number, giveUp: boolean, lastError: string): Promise<boolean> {
      const r = await InboundMessage.updateOne(
        { _id: id, status: 'processing', attempts },
        { $set: { status: giveUp ? 'failed' : 'received', lastError: lastError.slice(0, 1000) }, $unset: { leaseUntil: 1 } },
      );
      return r.matchedCount > 0;
    },
    /** Ids of messages stored but not finished (received, or processing with a lapsed lease), oldest first. */
    async unfinished(at: Date, limit: number): Promise<string[]> {
      const pending = await InboundMessage.find({ $or: [{ status: 'received' }, { status: 'processing', leaseUntil: { $lt: at } }] }, { _id: 1 })
        .sort({ receivedAt: 1 })
        .limit(limit)
        .lean<Array<{ _id: unknown }>>();
      return pending.map((m) => String(m._id));
    },
  };
}

export type InboundRepository = ReturnType<typeof createInboundRepository>;
