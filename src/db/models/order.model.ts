import mongoose, { Schema, type InferSchemaType } from 'mongoose';
import { ORDER_STATUSES } from '../../domain/order-status.ts';

export { ORDER_STATUSES, type OrderStatus } from '../../domain/order-status.ts';

/** What may be kept of a card: never the full number or the CVC. */
const CardSchema = new Schema(
  {
    brand: String,
    bin: String,
    last4: String,
    expMonth: Number,
    expYear: Number,
    country: String,
  },
  { _id: false },
);

const AttemptSchema = new Schema(
  {
    at: { type: Date, required: true },
    /** Set when the attempt may be recorded again by a repair: it is recorded once per key. */
    key: String,
    outcome: { type: String, enum: ['approved', 'declined', 'error', 'challenge', 'lost-race'], required: true },
    declineCode: String,
    message: String,
    authCode: String,
    /** The 3-D Secure challenge this attempt started or finished. */
    challengeId: String,
    card: CardSchema,
    clientIp: String,
    /** Taken by an operator over the phone (mail/telephone order) in the back office. */
    moto: Boolean,
    /** A charge of a saved card: `customer` (one-click) or `merchant` (merchant-initiated, customer not present). */
    initiator: String,
  },
  { _id: false },
);

const OrderSchema = new Schema(
  {
    _id: { type: String, required: true },
    /** Unguessable id carried by the pay-link. */
    publicId: { type: String, required: true, unique: true },
    merchantId: { type: String, required: true },
    reference: { type: String, required: true },
    /**
     * Equal to `reference` while the order is open, and to the order id once it is closed: a full
     * unique index on (merchantId, openReference) makes "one open order per reference" atomic
     * without a partial index (which FerretDB lacks).
     */
    openReference: { type: String, required: true },
    /** Where the order came from, for idempotent re-processing: "msg:<inboundId>:<n>". */
    sourceKey: { type: String, required: true },
    amountMinor: { type: Number, required: true },
    currency: { type: String, required: true },
    description: { type: String },
    customer: {
      email: String,
      name: String,
    },
    /** The locale of the order's mails: the language the merchant gave, else the merchant's locale. */
    locale: { type: String, required: true },
    /**
     * Whether the merchant gave the language: only then does the checkout page use `locale` before
     * the browser's languages. Absent on orders stored before it existed (treated as given).
     */
    localeGiven: { type: Boolean },
    delivery: { type: String, enum: ['merchant', 'customer'], required: true },
    status: { type: String, enum: ORDER_STATUSES, required: true, default: 'pending' },
    expiresAt: { type: Date, required: true },
    /** Unix seconds signed into the current pay-link. */
    linkExpiresAt: { type: Number, required: true },
    source: {
      inboundMessageId: String,
      messageId: String,
      subject: String,
    },
    /** Where a sealed request from the merchant's website sends the buyer back (paid / not paid). */
    returnUrls: {
      success: String,
      cancel: String,
    },
    attempts: { type: [AttemptSchema], default: [] },
    payment: {
      receiptNumber: String,
      authCode: String,
      paidAt: Date,
      card: CardSchema,
      /** Mail/telephone order: the card was keyed in by an operator in the back office. */
      moto: Boolean,
      /** The acquirer that took the payment (absent on payments before acquirers were per merchant: the sandbox). */
      acquirer: String,
      /** The saved card this payment was made with, or saved (the customer's card id, `card_…`). */
      savedCardId: String,
      /** Made with a saved card: `customer` (one-click) or `merchant` (merchant-initiated). */
      initiator: String,
    },
    /**
     * Paid in parts (issue 13 part 1, src/domain/order-plan.ts): `amountMinor` stays the total;
     * each part keeps its amount, due date and payment; `payment` above is the latest part's.
     */
    plan: {
      type: new Schema(
        {
          parts: {
            type: [
              new Schema(
                {
                  seq: { type: Number, required: true },
                  kind: { type: String, required: true },
                  amountMinor: { type: Number, required: true },
                  dueDate: String,
                  requestedAt: Date,
                  payment: {
                    type: new Schema(
                      { receiptNumber: String, authCode: String, paidAt: Date, card: CardSchema, moto: Boolean, acquirer: String, savedCardId: String, initiator: String },
                      { _id: false },
                    ),
                    default: undefined,
                  },
                },
                { _id: false },
              ),
            ],
            default: undefined,
          },
          /** The part the pay-link collects now; 0 while the next part waits for its date or the merchant. */
          openSeq: Number,
          /** When the plan job opens the next part by itself (its due date, in the merchant's zone). */
          nextDueAt: Date,
        },
        { _id: false },
      ),
      default: undefined,
    },
    /** The customer (`cus_…`) whose saved card paid the order, or who saved the card paying it. */
    customerCode: String,
    cancelledAt: Date,
    expiredAt: Date,
    /**
     * The first time a person interacted with the checkout (its beacon, or the form submitted):
     * never set by merely opening the link, which mail scanners do. Once, while pending.
     */
    viewedAt: Date,
    /** The order's own reminder plan (`Reminders: off` or `Reminders: 5, 2`); absent: the merchant's settings. */
    reminderPlan: {
      off: Boolean,
      daysBefore: { type: [Number], default: undefined },
    },
    /**
     * When the expiry job looks at this order's reminders next (src/domain/reminders.ts); unset when
     * none is left. A hint: the job decides with the settings of that moment.
     */
    remindAt: Date,
    /** Reminders sent, one per slot (`before-3d@<expiry>`, `unopened`). */
    reminders: {
      type: [new Schema({ slot: { type: String, required: true }, slotAt: { type: Date, required: true }, at: { type: Date, required: true } }, { _id: false })],
      default: undefined,
    },
    /** The customer stopped reminders for this order (the link in every reminder). */
    remindersOffAt: Date,
    /** The customer asked for a new link on the expired page (once per expiry: `generation` = renewals so far). */
    renewalRequest: {
      at: Date,
      email: String,
      generation: Number,
    },
    /** Renewals of the expired link: expired -> pending with a new expiry (issue 13 part 4). */
    renewals: {
      type: [
        new Schema(
          { at: { type: Date, required: true }, expiresAt: { type: Date, required: true }, previousExpiredAt: Date, by: { type: String, required: true } },
          { _id: false },
        ),
      ],
      default: undefined,
    },
  },
  { timestamps: true, versionKey: false },
);
OrderSchema.index({ merchantId: 1, openReference: 1 }, { unique: true });
OrderSchema.index({ merchantId: 1, sourceKey: 1 }, { unique: true });
OrderSchema.index({ merchantId: 1, createdAt: -1 });
OrderSchema.index({ status: 1, expiresAt: 1 });
// The expiry job's one query is an $or: pending orders expired, or whose reminder check is due.
OrderSchema.index({ status: 1, remindAt: 1 });
// Reply commands find an order by reference (newest first) when it is not the open one.
OrderSchema.index({ merchantId: 1, reference: 1, createdAt: -1 });
// The daily recap reads a group of merchants' orders at a time (src/db/recaps.repository.ts): an
// $or over the money events of a day window under `merchantId: {$in}`, one index per branch, so
// MongoDB scans only the group's orders in the window ({merchantId, createdAt} is above).
OrderSchema.index({ merchantId: 1, 'payment.paidAt': 1 });
OrderSchema.index({ merchantId: 1, expiredAt: 1 });
OrderSchema.index({ merchantId: 1, viewedAt: 1 });
OrderSchema.index({ merchantId: 1, 'attempts.at': 1 });
// Part payments of orders paid in parts (the recap counts each), the recap's open and part-paid
// orders to act on, and the plan job's due parts.
OrderSchema.index({ merchantId: 1, 'plan.parts.payment.paidAt': 1 });
OrderSchema.index({ merchantId: 1, status: 1, expiresAt: 1 });
OrderSchema.index({ merchantId: 1, status: 1, 'plan.nextDueAt': 1 });
OrderSchema.index({ status: 1, 'plan.nextDueAt': 1 });

export type OrderDoc = InferSchemaType<typeof OrderSchema> & { _id: string };
export const Order = mongoose.model('Order', OrderSchema, 'orders');
