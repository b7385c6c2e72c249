// The server API's aggregate (issue 12 part 2): per-merchant API keys (only a hash of the secret is
// kept), the stored answers of requests sent with an Idempotency-Key, and one document per API
// request for the per-key rate limit. Read and written by src/db/api-keys.repository.ts.
import mongoose, { Schema, type InferSchemaType } from 'mongoose';

const ApiKeySchema = new Schema(
  {
    /** `ak_<16 characters>`; the key itself is `pm_<the same 16>_<secret>`, so it names its record. */
    _id: { type: String, required: true },
    merchantId: { type: String, required: true },
    /** SHA-256 (hex) of the whole key: the key is 190 random bits, so a fast hash is enough. */
    hash: { type: String, required: true },
    /** The first characters of the key, to recognise it in a list (never enough to use it). */
    hint: { type: String, required: true },
    label: { type: String },
    readOnly: { type: Boolean, required: true, default: false },
    revoked: { type: Boolean, required: true, default: false },
    revokedAt: { type: Date },
    /** Who created it: `cli`, or the back-office user's e-mail address. */
    createdBy: { type: String },
  },
  { timestamps: true, versionKey: false },
);
ApiKeySchema.index({ merchantId: 1, createdAt: -1 });

export type ApiKeyDoc = InferSchemaType<typeof ApiKeySchema> & { _id: string; createdAt: Date; updatedAt: Date };
export const ApiKey = mongoose.model('ApiKey', ApiKeySchema, 'api_keys');

const ApiIdempotencySchema = new Schema(
  {
    /** `<merchantId> <Idempotency-Key>`: the insert under this _id referees concurrent duplicates. */
    _id: { type: String, required: true },
    merchantId: { type: String, required: true },
    /** SHA-256 of method, path and body: the same key with another request is refused. */
    requestHash: { type: String, required: true },
    state: { type: String, enum: ['running', 'done'], required: true },
    /** The stored answer (status and JSON body), once done. */
    status: { type: Number },
    body: { type: Schema.Types.Mixed },
    headers: { type: Schema.Types.Mixed },
    at: { type: Date, required: true },
  },
  { versionKey: false, minimize: false },
);
ApiIdempotencySchema.index({ at: 1 });

export type ApiIdempotencyDoc = InferSchemaType<typeof ApiIdempotencySchema> & { _id: string };
export const ApiIdempotency = mongoose.model('ApiIdempotency', ApiIdempotencySchema, 'api_idempotency');

const ApiRateHitSchema = new Schema(
  {
    _id: { type: String, required: true },
    keyId: { type: String, required: true },
    at: { type: Date, required: true },
  },
  { versionKey: false },
);
ApiRateHitSchema.index({ keyId: 1, at: 1 });
ApiRateHitSchema.index({ at: 1 });

export const ApiRateHit = mongoose.model('ApiRateHit', ApiRateHitSchema, 'api_rate_hits');
