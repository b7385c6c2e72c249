// Enqueueing side of the durable outbox. A mail is a document before it is anything else; the
// dedupe key makes enqueueing idempotent, so re-running a step after a crash never sends twice.
import { randomBytes } from 'node:crypto';
import { EventEmitter } from 'node:events';
import mongoose from 'mongoose';
import { OutboxDue, addDue, removeDue } from '../db/due-queue.ts';
import { Outbox, type OutboxDoc } from '../db/models/outbox.model.ts';

export type MailTemplate = 'paylink' | 'receipt-customer' | 'receipt-merchant' | 'intake-reply' | 'reminder' | 'order-expired' | 'command-reply' | 'daily-recap';

export interface MailRequest {
  dedupeKey: string;
  template: MailTemplate;
  locale: string;
  to: string[];
  cc?: string[];
  replyTo?: string;
  inReplyTo?: string;
  references?: string[];
  /** Template data: raw values (minor units, ISO dates); the renderer formats them for the locale. */
  data: Record<string, unknown>;
  merchantId?: string;
  orderId?: string;
}

/** Emits 'enqueued' so an in-process worker can start at once instead of waiting for its poll. */
export const outboxEvents = new EventEmitter();

export function newMessageId(domain: string): string {
  return `<${Date.now().toString(36)}.${randomBytes(9).toString('base64url')}@${domain}>`;
}

/**
 * Inserts the mail unless one with the same dedupe key exists; returns the stored document.
 * Its due-queue entry (src/db/due-queue.ts) goes in first, so a crash in between never leaves a
 * mail the worker cannot find.
 */
export async function enqueueMail(req: MailRequest, mailDomain: string): Promise<OutboxDoc> {
  const _id = new mongoose.Types.ObjectId();
  const at = new Date();
  await addDue(OutboxDue, _id, at, at);
  try {
    const doc = await Outbox.create({ _id, ...req, messageId: newMessageId(mailDomain), status: 'pending', nextAttemptAt: at, createdAt: at });
    outboxEvents.emit('enqueued');
    return doc.toObject() as OutboxDoc;
  } catch (e) {
    await removeDue(OutboxDue, _id).catch(() => {});
    if ((e as { code?: number }).code === 11000) {
      const existing = await Outbox.findOne({ dedupeKey: req.dedupeKey }).lean<OutboxDoc>();
      if (existing) return existing;
    }
    throw e;
  }
}
