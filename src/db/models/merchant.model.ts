import mongoose, { Schema, type InferSchemaType } from 'mongoose';
import { ACQUIRER_NAMES, DELIVERY_MODES, MERCHANT_STATUSES } from '../../domain/merchant.ts';

export { DELIVERY_MODES, type DeliveryMode } from '../../domain/merchant.ts';

const MerchantSchema = new Schema(
  {
    _id: { type: String, required: true },
    name: { type: String, required: true },
    email: { type: String, required: true, lowercase: true, trim: true },
    /** Private inbound alias: orders+<alias>@MAIL_DOMAIN. */
    alias: { type: String, required: true, unique: true },
    senderDomains: { type: [String], default: [] },
    currency: { type: String, required: true, default: 'EUR' },
    locale: { type: String, required: true, default: 'en' },
    timezone: { type: String, required: true, default: 'Europe/Rome' },
    /** Local hour (0-23, in `timezone`) when the daily recap of the previous day is mailed. */
    recapHour: { type: Number, min: 0, max: 23, default: 7 },
    delivery: { type: String, enum: DELIVERY_MODES, required: true, default: 'merchant' },
    linkLifetimeDays: { type: Number, required: true, default: 7 },
    /** Reminders to the customer (issue 13 part 3; defaults in src/domain/reminders.ts when absent). */
    remindersEnabled: { type: Boolean },
    /** Days before expiry, one reminder each (absent: 3 and 1; empty: none before expiry). */
    reminderDaysBefore: { type: [Number], default: undefined },
    /** One reminder this many hours after creation while the link was not opened (0: off; absent: 48). */
    unopenedReminderHours: { type: Number, min: 0 },
    /** Automatic renewal of an expired link when the customer asks for one: days (0 or absent: off, the merchant decides). */
    autoRenewDays: { type: Number, min: 0 },
    /** Saved cards (issue 12 part 3): the checkout offers "Save my card" and one-click payments. Off unless enabled. */
    savedCardsEnabled: { type: Boolean, default: false },
    webhookUrl: { type: String },
    /** Used to sign webhooks, so it is kept (not hashed); shown to the operator at creation. */
    webhookSecret: { type: String, required: true },
    /** After a rotation the old secret still signs (second v1=) until previousSecretUntil. */
    previousWebhookSecret: { type: String },
    previousSecretUntil: { type: Date },
    /** Seals merchant-website requests and returns (HMAC), so kept like the webhook secret; absent on merchants created before. */
    sealKey: { type: String },
    /** After `paymail merchant rotate-seal-key` the old key still verifies requests until previousSealKeyUntil. */
    previousSealKey: { type: String },
    previousSealKeyUntil: { type: Date },
    smtpUser: { type: String, required: true, unique: true },
    smtpPasswordHash: { type: String, required: true },
    status: { type: String, enum: MERCHANT_STATUSES, default: 'active' },
    /** Set by `paymail merchant suspend` (the reason is shown to the merchant in the back office). */
    suspendedAt: { type: Date },
    suspendedReason: { type: String },
    /** The merchant's own look (src/domain/brand.ts): accent colour and the current logo's facts (bytes in merchant_logos). */
    branding: {
      accent: { type: String },
      logo: { sha256: String, type: { type: String }, width: Number, height: Number },
    },
    /** The acquirer of new payments (absent: the sandbox); set with `paymail merchant set-acquirer` or in the settings. */
    acquirer: { type: String, enum: ACQUIRER_NAMES },
    /**
     * Stripe credentials, encrypted under SECRETS_KEY (src/domain/secret-box.ts); kept after a switch
     * back to the sandbox, since refunds of earlier Stripe payments still go to Stripe.
     */
    stripe: {
      type: new Schema(
        {
          secretKeyEnc: { type: String, required: true },
          /**
           * What is shown of the key without its type prefix (`test_…4242`, shown as `sk_test_…4242`),
           * so that no `sk_` string at all is stored in clear.
           */
          secretKeyHint: { type: String, required: true },
          /** A restricted key (rk_…) rather than a secret key (sk_…). */
          secretKeyRestricted: { type: Boolean },
          webhookSecretEnc: { type: String },
          webhookSecretHint: { type: String },
          /** Another API base (stripe-mock in tests, an egress proxy); absent: api.stripe.com. */
          apiBase: { type: String },
        },
        { _id: false },
      ),
    },
  },
  { timestamps: true, versionKey: false },
);

export type MerchantDoc = InferSchemaType<typeof MerchantSchema> & { _id: string };
export const Merchant = mongoose.model('Merchant', MerchantSchema, 'merchants');
