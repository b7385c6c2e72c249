// Failed payment attempts, one document each, for the card-testing defence (rate limits per order
// and per client address). Counted with countDocuments over a time window rather than kept as
// counters: FerretDB applies $inc as read-modify-write and loses concurrent increments, while
// inserts are never lost. Old documents are deleted by query in the periodic sweep (no TTL index
// on FerretDB).
import mongoose, { Schema, type InferSchemaType } from 'mongoose';

const PaymentFailureSchema = new Schema(
  {
    _id: { type: String, required: true },
    orderId: { type: String, required: true },
    clientIp: { type: String, required: true },
    at: { type: Date, required: true },
    /** The decline code (DeclineCode); never card data. */
    code: { type: String, required: true },
  },
  { versionKey: false },
);
PaymentFailureSchema.index({ orderId: 1, at: 1 });
PaymentFailureSchema.index({ clientIp: 1, at: 1 });
PaymentFailureSchema.index({ at: 1 });

export type PaymentFailureDoc = InferSchemaType<typeof PaymentFailureSchema> & { _id: string };
export const PaymentFailure = mongoose.model('PaymentFailure', PaymentFailureSchema, 'payment_failures');
