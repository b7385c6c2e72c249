// Webhook delivery queue. One document per event and merchant: its _id IS the event id
// (evt_<nanoid>), created once under a unique dedupe key, and `body` holds the exact JSON sent on
// every attempt. Attempts are separate inserted documents (one per claimed attempt), not a
// $push into the delivery: FerretDB's updates are read-modify-write and could lose entries.
import mongoose, { Schema, type InferSchemaType } from 'mongoose';

export const WEBHOOK_EVENT_TYPES = [
  'payment.succeeded',
  'payment.failed',
  'order.expired',
  'order.cancelled',
  'order.viewed',
  'order.renewed',
  'refund.succeeded',
  'mail.bounced',
] as const;
export type WebhookEventType = (typeof WEBHOOK_EVENT_TYPES)[number];

// `held`: waits for its suspended merchant to be resumed (src/services/merchant-suspension.service.ts).
export const WEBHOOK_STATUSES = ['pending', 'sending', 'delivered', 'dead', 'held'] as const;

const WebhookDeliverySchema = new Schema(
  {
    /** The event id, the same on every retry. */
    _id: { type: String, required: true },
    /** "payment.succeeded:<orderId>": the same business event never becomes two events. */
    dedupeKey: { type: String, required: true, unique: true },
    type: { type: String, enum: WEBHOOK_EVENT_TYPES, required: true },
    merchantId: { type: String, required: true },
    orderId: { type: String },
    /** The serialised event ({ id, type, created, data }); signed per attempt with a fresh t. */
    body: { type: String, required: true },
    status: { type: String, enum: WEBHOOK_STATUSES, required: true, default: 'pending' },
    attempts: { type: Number, required: true, default: 0 },
    nextAttemptAt: { type: Date, required: true },
    /** Retries stop here (created + 3 days). */
    giveUpAt: { type: Date, required: true },
    leaseUntil: { type: Date },
    leaseOwner: { type: String },
    lastStatusCode: { type: Number },
    lastError: { type: String },
    deliveredAt: { type: Date },
  },
  { timestamps: true, versionKey: false },
);
WebhookDeliverySchema.index({ status: 1, nextAttemptAt: 1 });
WebhookDeliverySchema.index({ merchantId: 1, createdAt: -1 });
WebhookDeliverySchema.index({ orderId: 1 });

export type WebhookDeliveryDoc = InferSchemaType<typeof WebhookDeliverySchema> & { _id: string };
export const WebhookDelivery = mongoose.model('WebhookDelivery', WebhookDeliverySchema, 'webhook_deliveries');

const WebhookAttemptSchema = new Schema(
  {
    /** "<eventId>:<n>", n = attempt number: the claim already made it unique. */
    _id: { type: String, required: true },
    deliveryId: { type: String, required: true },
    merchantId: { type: String, required: true },
    attempt: { type: Number, required: true },
    at: { type: Date, required: true },
    url: { type: String },
    statusCode: { type: Number },
    error: { type: String },
    durationMs: { type: Number, required: true },
    ok: { type: Boolean, required: true },
  },
  { versionKey: false },
);
WebhookAttemptSchema.index({ deliveryId: 1, attempt: 1 });
WebhookAttemptSchema.index({ merchantId: 1, at: -1 });
// /metrics counts the failed attempts (src/db/counters.ts).
WebhookAttemptSchema.index({ ok: 1 });

export type WebhookAttemptDoc = InferSchemaType<typeof WebhookAttemptSchema> & { _id: string };
export const WebhookAttempt = mongoose.model('WebhookAttempt', WebhookAttemptSchema, 'webhook_attempts');
