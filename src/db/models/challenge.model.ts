// Pending 3-D Secure challenges: what the checkout needs to finish a payment after the customer
// has been to the (sandbox) ACS page — the stored card fields only, never the number or CVC. The
// _id is the acquirer's unguessable challenge id. A challenge is finished once, refereed by a
// claim (src/db/claims.ts); `status` is only informative. Expired ones are deleted by the sweep.
import mongoose, { Schema, type InferSchemaType } from 'mongoose';

const ChallengeSchema = new Schema(
  {
    _id: { type: String, required: true },
    orderId: { type: String, required: true },
    publicId: { type: String, required: true },
    clientIp: { type: String, required: true },
    card: {
      brand: String,
      bin: String,
      last4: String,
      expMonth: Number,
      expYear: Number,
      country: String,
    },
    holder: { type: String, required: true },
    /** The customer's address typed on the form, when the order had none. */
    customerEmail: String,
    /** The acquirer that asked for the challenge and completes it (absent: the sandbox, before acquirers were per merchant). */
    acquirer: String,
    /** The acquirer's own 3-D Secure page (Stripe's redirect), to which the challenge page sends the buyer; absent: the sandbox's page. */
    redirectUrl: String,
    /** The customer asked to save the card (the consent, carried to the payment the challenge finishes). */
    saveFor: { customerCode: String, email: String },
    /** A one-click payment with a saved card waiting for its challenge: which card. */
    paidWith: { customerCode: String, cardId: String },
    status: { type: String, enum: ['pending', 'passed', 'failed'], required: true, default: 'pending' },
    createdAt: { type: Date, required: true },
    expiresAt: { type: Date, required: true },
  },
  { versionKey: false },
);
ChallengeSchema.index({ expiresAt: 1 });

export type ChallengeDoc = InferSchemaType<typeof ChallengeSchema> & { _id: string };
export const Challenge = mongoose.model('ThreeDsChallenge', ChallengeSchema, 'threeds_challenges');
