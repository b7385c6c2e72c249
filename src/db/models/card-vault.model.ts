// The sandbox acquirer's card vault (src/services/acquirer/sandbox-acquirer.ts): what a bank's PCI
// vault would keep, reduced to what the sandbox needs to play its test cards again. For a test
// card that is the outcome its number is scripted to give later (approved, a decline code, or 3-D
// Secure) and its last four digits: never the card number, never the security code.
import mongoose, { Schema, type InferSchemaType } from 'mongoose';

const CardVaultSchema = new Schema(
  {
    /** The vault token handed to paymail (`tok_…`). */
    _id: { type: String, required: true },
    last4: { type: String, required: true },
    /** What a later charge of this card answers: approved, declined (with `declineCode`) or challenge. */
    outcome: { type: String, enum: ['approved', 'declined', 'challenge'], required: true },
    declineCode: String,
    message: String,
    /** pending: saved by an authorisation still waiting for its 3-D Secure challenge. */
    status: { type: String, enum: ['pending', 'active'], required: true },
    createdAt: { type: Date, required: true },
  },
  { versionKey: false },
);

export type CardVaultDoc = InferSchemaType<typeof CardVaultSchema> & { _id: string };
export const CardVaultEntry = mongoose.model('SandboxCardVault', CardVaultSchema, 'sandbox_card_vault');
