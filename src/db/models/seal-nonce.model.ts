// Nonces of sealed payment requests already accepted, one document per merchant and nonce. The
// insert under the unique _id referees a replay (like src/db/claims.ts); FerretDB has no TTL
// index, so the checkout's periodic sweep deletes them by `at` once the ts window is long past.
// Recorded and pruned by src/db/limits.repository.ts.
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

