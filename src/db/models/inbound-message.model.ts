// Raw inbound mail, stored before the SMTP door answers 250. Processing happens afterwards and
// is resumable: a message left in `received` or with an expired lease is picked up again.
import mongoose, { Schema, type InferSchemaType } from 'mongoose';

const InboundMessageSchema = new Schema(
  {
    merchantId: { type: String, required: true },
    door: { type: String, enum: ['submission', 'mx'], required: true },
    /** Message-ID header, or a hash of the raw bytes when absent: the duplicate-delivery key. */
    messageKey: { type: String, required: true },
    messageId: { type: String },
    envelope: {
      mailFrom: { type: String },
      rcptTo: { type: [String], default: [] },
      remoteAddress: { type: String },
      /** MX door: the SPF/DKIM/DMARC/ARC summary that admitted the message. */
      auth: { type: Schema.Types.Mixed },
    },
    /**
     * Legacy/inline copy of the raw bytes. New messages keep them in `inbound_raw` (same _id):
     * FerretDB rewrites a whole document on every update, so status changes must not carry
     * megabytes of mail with them.
     */
    raw: { type: Buffer },
    size: { type: Number, required: true },
    status: { type: String, enum: ['received', 'processing', 'processed', 'failed'], required: true, default: 'received' },
    leaseUntil: { type: Date },
    attempts: { type: Number, default: 0 },
    lastError: { type: String },
    result: {
      orderIds: { type: [String], default: [] },
      problems: { type: Schema.Types.Mixed },
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

/** The raw bytes of an inbound message, written once before the SMTP answer and never updated. */
const InboundRawSchema = new Schema(
  {
    raw: { type: Buffer, required: true },
  },
  { versionKey: false },
);
export const InboundRaw = mongoose.model('InboundRaw', InboundRawSchema, 'inbound_raw');
