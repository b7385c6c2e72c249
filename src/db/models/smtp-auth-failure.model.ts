// Failed SMTP AUTH attempts on the submission door, one document each, for the brute-force
// throttle (per client address and per user). Counted over a window instead of kept as counters:
// FerretDB applies $inc as read-modify-write and loses concurrent increments, while inserts are
// never lost, so several instances count together. Old documents are deleted by query (no TTL
// index on FerretDB). `SmtpAuthKnown` remembers which address logged in as which user (`_id`
// `<user> <address>`, read by _id alone), so an attack on a user does not lock its merchant out.
import mongoose, { Schema, type InferSchemaType } from 'mongoose';

const SmtpAuthFailureSchema = new Schema(
  {
    _id: { type: String, required: true },
    /** The user name as given (lower-cased), known or not: guessing user names is throttled too. */
    user: { type: String, required: true },
    ip: { type: String, required: true },
    at: { type: Date, required: true },
  },
  { versionKey: false },
);
SmtpAuthFailureSchema.index({ user: 1, at: -1 });
SmtpAuthFailureSchema.index({ ip: 1, at: -1 });
SmtpAuthFailureSchema.index({ at: 1 });

export type SmtpAuthFailureDoc = InferSchemaType<typeof SmtpAuthFailureSchema> & { _id: string };
export const SmtpAuthFailure = mongoose.model('SmtpAuthFailure', SmtpAuthFailureSchema, 'smtp_auth_failures');

const SmtpAuthKnownSchema = new Schema(
  {
    _id: { type: String, required: true },
    at: { type: Date, required: true },
  },
  { versionKey: false },
);
export const SmtpAuthKnown = mongoose.model('SmtpAuthKnown', SmtpAuthKnownSchema, 'smtp_auth_known');
