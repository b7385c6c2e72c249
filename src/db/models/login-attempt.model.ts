// Failed back-office log-ins, one document each, for the lock-out. Counted with countDocuments
// per account and per client address within a window instead of kept as counters: FerretDB
// applies $inc as read-modify-write and loses concurrent increments; inserts are never lost.
import mongoose, { Schema, type InferSchemaType } from 'mongoose';

const LoginFailureSchema = new Schema(
  {
    _id: { type: String, required: true },
    /** The e-mail as typed (lower-cased), known account or not: guessing unknown ones is throttled too. */
    email: { type: String, required: true },
    ip: { type: String, required: true },
    at: { type: Date, required: true },
  },
  { versionKey: false },
);
LoginFailureSchema.index({ email: 1, at: -1 });
LoginFailureSchema.index({ ip: 1, at: -1 });
LoginFailureSchema.index({ at: 1 });

export type LoginFailureDoc = InferSchemaType<typeof LoginFailureSchema> & { _id: string };
export const LoginFailure = mongoose.model('LoginFailure', LoginFailureSchema, 'login_failures');
