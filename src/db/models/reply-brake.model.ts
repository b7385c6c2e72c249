// The mail-loop brake: paymail answers one sender address at most a few times per hour (RFC
// 3834 §2: responders must not loop). Each answer takes a numbered slot `<sender> <hour> <n>`
// by inserting it under that _id: inserts are atomic on FerretDB and MongoDB (unlike $inc), so
// instances share the count, and the slot look-up is by _id alone. Old slots are deleted by query.
// Taken and swept by src/db/limits.repository.ts.
import mongoose, { Schema } from 'mongoose';

const ReplySlotSchema = new Schema(
  {
    _id: { type: String, required: true },
    /** The inbound message the answer is for. */
    inboundId: { type: String },
    at: { type: Date, required: true },
  },
  { versionKey: false },
);
ReplySlotSchema.index({ at: 1 });

export const ReplySlot = mongoose.model('ReplySlot', ReplySlotSchema, 'reply_slots');

