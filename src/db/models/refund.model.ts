// Refunds of paid orders: one inserted document per refund that the acquirer accepted. The order
// itself is never updated by a refund (FerretDB updates are read-modify-write of the whole order);
// its refunded total is the sum of these documents. Slot `seq` was won through the claim
// `refund:<orderId>:<seq>` (see refund.service.ts), so (orderId, seq) is unique.
import mongoose, { Schema, type InferSchemaType } from 'mongoose';

const RefundSchema = new Schema(
  {
    /** rf_<nanoid>: our id, also the id of the refund.succeeded event's refund. */
    _id: { type: String, required: true },
    orderId: { type: String, required: true },
    merchantId: { type: String, required: true },
    seq: { type: Number, required: true },
    /** The part of an order paid in parts whose payment was refunded (absent without plan). */
    part: { type: Number },
    amountMinor: { type: Number, required: true },
    currency: { type: String, required: true },
    /** The acquirer's id of the refund. */
    refundId: { type: String, required: true },
    /** E-mail address of the back-office user who refunded. */
    by: { type: String, required: true },
    at: { type: Date, required: true },
    reason: { type: String },
  },
  { versionKey: false },
);
RefundSchema.index({ orderId: 1, seq: 1 }, { unique: true });
RefundSchema.index({ merchantId: 1, at: -1 });
// The daily recap reads the refunds of a window for all merchants at once.
RefundSchema.index({ at: 1 });

export type RefundDoc = InferSchemaType<typeof RefundSchema> & { _id: string };
export const Refund = mongoose.model('Refund', RefundSchema, 'refunds');
