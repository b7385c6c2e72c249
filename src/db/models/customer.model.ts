// Customers with saved cards (issue 12 part 3): paymail's side of a saved card is only what shows
// it and finds it at the acquirer — the acquirer's token, brand, last four, expiry and the
// acquirer's name. Never the number, never the security code: the card itself is in the
// acquirer's vault. One customer per merchant and e-mail address; `_id` is the customer code.
import mongoose, { Schema, type InferSchemaType } from 'mongoose';

const SavedCardSchema = new Schema(
  {
    /** paymail's id of the saved card (`card_…`): in the removal link, on the payments it made. */
    id: { type: String, required: true },
    /** The acquirer's vault token (an opaque reference, never card data). */
    token: { type: String, required: true },
    brand: { type: String, required: true },
    last4: { type: String, required: true },
    expMonth: { type: Number, required: true },
    expYear: { type: Number, required: true },
    /** The acquirer whose vault holds the card: it is charged and removed there. */
    acquirer: { type: String, required: true },
    savedAt: { type: Date, required: true },
  },
  { _id: false },
);

const CustomerSchema = new Schema(
  {
    /** The customer code (`cus_…`), given to the merchant on the order, its webhook and the API. */
    _id: { type: String, required: true },
    merchantId: { type: String, required: true },
    /** Lower case: the one-click offer matches a pay-link's customer by it. */
    email: { type: String, required: true },
    cards: { type: [SavedCardSchema], default: [] },
    createdAt: { type: Date, required: true },
  },
  { versionKey: false },
);
// One customer per merchant and address (the referee of two first saves at once); the one-click
// look-up of a pay-link's customer.
CustomerSchema.index({ merchantId: 1, email: 1 }, { unique: true });

export type CustomerDoc = Omit<InferSchemaType<typeof CustomerSchema>, 'cards'> & { _id: string; cards: SavedCardDoc[] };
/** One saved card as stored (plain values: what the checkout builds and the repository returns). */
export interface SavedCardDoc {
  id: string;
  token: string;
  brand: string;
  last4: string;
  expMonth: number;
  expYear: number;
  acquirer: string;
  savedAt: Date;
}
export const Customer = mongoose.model('Customer', CustomerSchema, 'customers');
