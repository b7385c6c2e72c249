// Nonces of sealed payment requests already accepted, one document per merchant and nonce. The
// insert under the unique _id referees a replay (like src/db/claims.ts); FerretDB has no TTL
// index, so the checkout's periodic sweep deletes them by `at` once the ts window is long past.
import mongoose, { Schema } from 'mongoose';

const SealNonceSchema = new Schema(
  {
    /** `<merchantId>:<nonce>` */
    _id: { type: String, required: true },
    at: { type: Date, required: true },
  },
  { versionKey: false },
);
SealNonceSchema.index({ at: 1 });

export const SealNonce = mongoose.model('SealNonce', SealNonceSchema, 'seal_nonces');

/** Records `nonce` for `merchantId`; false when it was seen before (by any instance). */
export async function recordNonce(merchantId: string, nonce: string, at: Date): Promise<boolean> {
  try {
    await SealNonce.create({ _id: `${merchantId}:${nonce}`, at });
    return true;
  } catch (e) {
    if ((e as { code?: number }).code === 11000) return false;
    throw e;
  }
}

/** Deletes nonces recorded before `before`; how many. */
export async function pruneNonces(before: Date): Promise<number> {
  return (await SealNonce.deleteMany({ at: { $lt: before } })).deletedCount;
}
