// The mail-loop brake: paymail answers one sender address at most a few times per hour (RFC
// 3834 §2: responders must not loop). Each answer takes a numbered slot `<sender> <hour> <n>`
// by inserting it under that _id: inserts are atomic on FerretDB and MongoDB (unlike $inc), so
// instances share the count, and the slot look-up is by _id alone. Old slots are deleted by query.
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

/**
 * Takes one of `limit` answer slots of `sender` for the clock hour of `at`; false when all are
 * taken (the brake holds). Fixed hours: at most 2 × limit answers can fall in any 60 minutes.
 */
export async function takeReplySlot(sender: string, limit: number, inboundId: string, at: Date): Promise<boolean> {
  const hour = Math.floor(at.getTime() / 3_600_000);
  for (let n = 0; n < limit; n++) {
    try {
      await ReplySlot.create({ _id: `${sender} ${hour} ${n}`, inboundId, at });
      return true;
    } catch (e) {
      if ((e as { code?: number }).code !== 11000) throw e;
    }
  }
  return false;
}

/** Deletes slots of past hours (no TTL index on FerretDB). */
export async function sweepReplySlots(at: Date): Promise<void> {
  await ReplySlot.deleteMany({ at: { $lt: new Date(at.getTime() - 2 * 3_600_000) } });
}
