// Enqueueing side of the durable outbox. A mail is a document before it is anything else; the
// dedupe key makes enqueueing idempotent, so re-running a step after a crash never sends twice.
import { randomBytes } from 'node:crypto';
import { EventEmitter } from 'node:events';
import { type MailPriority, type NewMail, type OutboxDoc, type OutboxRepository } from '../db/outbox.repository.ts';
import { type MailDataOf, type MailTemplate, validateMailData } from './contracts.ts';

export type { MailTemplate } from './contracts.ts';

/** A mail to queue; with a literal template its data is typed by that template's contract (src/mail/contracts.ts). */
export interface MailRequest<T extends MailTemplate = MailTemplate> extends Omit<NewMail, 'template' | 'data' | 'messageId'> {
  template: T;
  /** Template data: raw values (minor units, ISO dates); the renderer formats them for the locale. */
  data: MailDataOf<T>;
}

/**
 * Emits 'enqueued' (with the mail's priority) so an in-process worker can start at once instead
 * of waiting for its poll.
 */
export const outboxEvents = new EventEmitter();

/** Mail that can wait behind mail a person is waiting for (pay-links, receipts, replies). */
export const BULK_TEMPLATES: ReadonlySet<MailTemplate> = new Set(['daily-recap', 'reminder']);

export const mailPriority = (template: string): MailPriority => (BULK_TEMPLATES.has(template as MailTemplate) ? 1 : 0);

export function newMessageId(domain: string): string {
  return `<${Date.now().toString(36)}.${randomBytes(9).toString('base64url')}@${domain}>`;
}

/**
 * Inserts the mail unless one with the same dedupe key exists (then the stored one is returned);
 * bulk templates queue behind the rest (BULK_TEMPLATES). Data that breaks its template's contract
 * is refused here (MAIL_DATA_INVALID naming the template and fields), not in the worker.
 */
export async function enqueueMail<T extends MailTemplate>(req: MailRequest<T>, mailDomain: string, outbox: OutboxRepository): Promise<OutboxDoc> {
  validateMailData(req.template, req.data);
  const prio = mailPriority(req.template);
  const r = await outbox.enqueue({ ...req, data: req.data as Record<string, unknown>, messageId: newMessageId(mailDomain) }, prio);
  if (r.created) outboxEvents.emit('enqueued', prio);
  return r.mail;
}
