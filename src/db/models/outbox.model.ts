// Durable outbox: every outbound mail is a document first. A worker claims one with an atomic
// update (lease), renders and sends it, and marks it sent; failures back off and retry.
import mongoose, { Schema, type InferSchemaType } from 'mongoose';

// `held`: waits for its suspended merchant to be resumed (src/services/merchant-suspension.service.ts).
export const OUTBOX_STATUSES = ['pending', 'sending', 'sent', 'dead', 'held'] as const;

const OutboxSchema = new Schema(
  {
    /** Unique per event ("paylink:<orderId>", "receipt:<orderId>:customer"): never sent twice. */
    dedupeKey: { type: String, required: true, unique: true },
    template: { type: String, required: true },
    locale: { type: String, required: true, default: 'en' },
    to: { type: [String], required: true },
    cc: { type: [String], default: [] },
    replyTo: { type: String },
    inReplyTo: { type: String },
    references: { type: [String], default: [] },
    data: { type: Schema.Types.Mixed, required: true },
    /** Fixed at enqueue time so a retry after a crash carries the same Message-ID. */
    messageId: { type: String, required: true },
    merchantId: { type: String },
    orderId: { type: String },
    /** One-click unsubscribe URL (RFC 8058): sent as List-Unsubscribe with List-Unsubscribe-Post (reminders). */
    listUnsubscribe: { type: String },
    status: { type: String, enum: OUTBOX_STATUSES, required: true, default: 'pending' },
    attempts: { type: Number, required: true, default: 0 },
    nextAttemptAt: { type: Date, required: true, default: () => new Date() },
    leaseUntil: { type: Date },
    leaseOwner: { type: String },
    lastError: { type: String },
    sentAt: { type: Date },
    /**
     * The first permanent bounce of this mail (issue 13 part 8, src/services/bounce.service.ts): set
     * once, from the claim `bounce:<id>` that fixed its facts; the order's history shows it.
     */
    bounce: { at: Date, recipient: String, status: String, reason: String, inboundId: String },
    /** The latest delay warning (a 4.x.x DSN): recorded and shown, never alerted on. */
    delayed: { at: Date, recipient: String, status: String, reason: String, inboundId: String },
    /**
     * Present when mail is captured for /dev/mail instead of relayed (development only): the
     * subject here for the list, the whole mail in `captured_mail` (same _id).
     */
    captured: {
      subject: String,
    },
  },
  { timestamps: true, versionKey: false },
);
OutboxSchema.index({ status: 1, nextAttemptAt: 1 });
OutboxSchema.index({ status: 1, createdAt: 1 });
OutboxSchema.index({ orderId: 1 });

export type OutboxDoc = InferSchemaType<typeof OutboxSchema> & { _id: mongoose.Types.ObjectId };
export const Outbox = mongoose.model('Outbox', OutboxSchema, 'outbox');

/**
 * The full copy of a captured mail (development), keyed by the outbox document's _id. Kept out of
 * the outbox documents because the worker scans those to find due mail: on FerretDB every such
 * scan decodes whole documents, and rendered HTML would multiply its cost.
 */
const CapturedMailSchema = new Schema(
  {
    from: String,
    to: String,
    cc: String,
    subject: String,
    html: String,
    text: String,
    /** Every attachment in mail order (src/mail/transport.ts CapturedAttachment): inline ones without content. */
    attachments: {
      type: [
        new Schema(
          { filename: String, contentType: String, size: Number, inline: Boolean, content: Buffer },
          { _id: false },
        ),
      ],
      default: undefined,
    },
  },
  { versionKey: false },
);
export const CapturedMail = mongoose.model('CapturedMail', CapturedMailSchema, 'captured_mail');
