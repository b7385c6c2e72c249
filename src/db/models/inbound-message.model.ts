// Raw inbound mail, stored before the SMTP door answers 250. Processing happens afterwards and
// is resumable: a message left in `received` or with an expired lease is picked up again (its
// entry in the `inbound_due` queue says when; src/db/inbound.repository.ts).
import mongoose, { Schema, type InferSchemaType } from 'mongoose';

const InboundMessageSchema = new Schema(
  {
    merchantId: { type: String, required: true },
    door: { type: String, enum: ['submission', 'mx'], required: true },
    /**
     * The duplicate-delivery key: the Message-ID header (or a hash of the raw bytes when absent);
     * `<Message-ID> sha256:<body hash>` for a different mail re-using a Message-ID seen before.
     */
    messageKey: { type: String, required: true },
    messageId: { type: String },
    /**
     * 'bounce': a bounce or delay warning delivered to a mail's VERP return path (issue 13 part 8),
     * processed by src/services/bounce.service.ts; absent for order mail. `bounceOf`: the outbox
     * mail it is about (then `merchantId` is that mail's merchant, or 'none').
     */
    kind: { type: String, enum: ['bounce'] },
    bounceOf: { type: String },
    /** SHA-256 of the bytes after the header block: tells a redelivery from a re-used Message-ID. */
    bodyHash: { type: String },
    /** Stored under a Message-ID that an earlier, different message of this merchant carried. */
    messageIdReused: { type: Boolean },
    envelope: {
      mailFrom: { type: String },
      rcptTo: { type: [String], default: [] },
      remoteAddress: { type: String },
      /** MX door: the SPF/DKIM/DMARC/ARC summary that admitted the message. */
      auth: { type: Schema.Types.Mixed },
    },
    /**
     * Legacy/inline copy of the raw bytes. New messages keep them in `inbound_raw` (rawChunks):
     * FerretDB rewrites a whole document on every update, so status changes must not carry
     * megabytes of mail with them.
     */
    raw: { type: Buffer },
    size: { type: Number, required: true },
    /**
     * How many `inbound_raw` chunks (`<_id>:0` … `<_id>:<n-1>`) hold the raw bytes. Absent on
     * messages stored before chunking: their bytes are one `inbound_raw` document with this _id.
     */
    rawChunks: { type: Number },
    status: { type: String, enum: ['received', 'processing', 'processed', 'failed'], required: true, default: 'received' },
    leaseUntil: { type: Date },
    /** The intake runner holding the message while 'processing' (for logs and take-overs). */
    leaseOwner: { type: String },
    /** 'received' after a failed attempt: not claimed again before this time (back-off). */
    nextAttemptAt: { type: Date },
    attempts: { type: Number, default: 0 },
    lastError: { type: String },
    result: {
      orderIds: { type: [String], default: [] },
      problems: { type: Schema.Types.Mixed },
      /** Recorded without an answer: an automatic mail (RFC 3834) or the loop brake held it. */
      silenced: { type: String },
      /** A bounce: what it said about its mail (outcome, recipient, status) and whether it alerted. */
      bounce: { type: Schema.Types.Mixed },
    },
    receivedAt: { type: Date, required: true, default: () => new Date() },
    processedAt: { type: Date },
  },
  { versionKey: false },
);
InboundMessageSchema.index({ merchantId: 1, messageKey: 1 }, { unique: true });
InboundMessageSchema.index({ status: 1, receivedAt: 1 });

export type InboundMessageDoc = InferSchemaType<typeof InboundMessageSchema> & { _id: mongoose.Types.ObjectId };
export const InboundMessage = mongoose.model('InboundMessage', InboundMessageSchema, 'inbound_messages');

/**
 * The raw bytes of an inbound message, written once before the SMTP answer and never updated.
 * Split into chunks of at most RAW_CHUNK_BYTES under deterministic _ids `<message id>:<n>`, so a
 * mail over MongoDB's 16 MiB document limit can be stored and reading it back is exact-_id
 * look-ups (the only filter FerretDB pushes down to SQL; `$in` would decode the whole collection).
 * Messages stored before chunking have one document whose _id is the message's ObjectId.
 * The documents are read and written through the driver collection: their _id is a string or a
 * legacy ObjectId, which no single mongoose _id type would cast right.
 */
const InboundRawSchema = new Schema(
  {
    _id: { type: Schema.Types.Mixed },
    raw: { type: Buffer, required: true },
  },
  { versionKey: false },
);
export const InboundRaw = mongoose.model('InboundRaw', InboundRawSchema, 'inbound_raw');

/** Largest chunk: small enough that one write holds FerretDB's SQLite writer only briefly. */
export const RAW_CHUNK_BYTES = 4 * 1024 * 1024;

export const rawChunkId = (messageId: string, n: number): string => `${messageId}:${n}`;

/** Chunk boundaries of `size` bytes: [start, end) per chunk; an empty message is one empty chunk. */
export function rawChunkRanges(size: number, chunkBytes = RAW_CHUNK_BYTES): Array<[number, number]> {
  const ranges: Array<[number, number]> = [];
  for (let start = 0; start === 0 || start < size; start += chunkBytes) ranges.push([start, Math.min(size, start + chunkBytes)]);
  return ranges;
}

/** Writes chunk `n` of a message (one insert; a second write of the same chunk is a duplicate key). */
export async function insertRawChunk(messageId: string, n: number, bytes: Buffer): Promise<void> {
  await InboundRaw.collection.insertOne({ _id: rawChunkId(messageId, n) as never, raw: bytes });
}

/** Deletes chunks 0 … count-1 of a message, one exact-_id delete each. */
export async function deleteRawChunks(messageId: string, count: number): Promise<void> {
  for (let n = 0; n < count; n++) await InboundRaw.collection.deleteOne({ _id: rawChunkId(messageId, n) as never });
}

/**
 * The raw bytes of a stored message: its `rawChunks` chunks in order, else (stored before
 * chunking) the single document with the message's own _id, else the legacy inline `raw` field.
 */
export async function readRaw(msg: Pick<InboundMessageDoc, '_id' | 'rawChunks' | 'raw'>): Promise<Buffer> {
  const count = msg.rawChunks ?? 0;
  if (count > 0) {
    const id = String(msg._id);
    const parts: Buffer[] = [];
    // Sequential exact-_id reads: one chunk in memory from the driver at a time besides the result.
    for (let n = 0; n < count; n++) {
      const doc = await InboundRaw.collection.findOne({ _id: rawChunkId(id, n) as never });
      if (!doc) throw new Error(`inbound message ${id} is missing raw chunk ${n} of ${count}`);
      parts.push(toBuffer(doc.raw));
    }
    return parts.length === 1 ? parts[0]! : Buffer.concat(parts);
  }
  const single = await InboundRaw.collection.findOne({ _id: msg._id as never });
  return toBuffer(single?.raw ?? msg.raw);
}

/** Driver reads give a BSON Binary for binary fields; mailparser wants a Buffer. */
function toBuffer(value: unknown): Buffer {
  if (Buffer.isBuffer(value)) return value;
  const bin = value as { buffer?: Uint8Array } | null | undefined;
  if (bin?.buffer instanceof Uint8Array) return Buffer.from(bin.buffer.buffer, bin.buffer.byteOffset, bin.buffer.byteLength);
  throw new Error('inbound message has no raw bytes');
}
