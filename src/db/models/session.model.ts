// Back-office sessions, kept in the database so every paymail instance recognises them. The cookie
// carries a random token; only its SHA-256 is stored (as _id), so a copy of this collection cannot
// be replayed as cookies. No TTL index on FerretDB: expired sessions are deleted by query.
import mongoose, { Schema, type InferSchemaType } from 'mongoose';

const SessionSchema = new Schema(
  {
    /** hex SHA-256 of the cookie token. */
    _id: { type: String, required: true },
    userId: { type: String, required: true },
    merchantId: { type: String, required: true },
    /** Per-session CSRF token, echoed in every back-office form. */
    csrfToken: { type: String, required: true },
    createdAt: { type: Date, required: true },
    lastSeenAt: { type: Date, required: true },
    /** Sliding: pushed forward on use, never beyond createdAt + the absolute maximum. */
    expiresAt: { type: Date, required: true },
    ip: { type: String },
    userAgent: { type: String },
  },
  { versionKey: false },
);
SessionSchema.index({ userId: 1 });
SessionSchema.index({ expiresAt: 1 });

export type SessionDoc = InferSchemaType<typeof SessionSchema> & { _id: string };
export const Session = mongoose.model('Session', SessionSchema, 'sessions');
