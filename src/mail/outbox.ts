// Enqueueing side of the durable outbox. A mail is a document before it is anything else; the
// dedupe key makes enqueueing idempotent, so re-running a step after a crash never sends twice.
import { randomBytes } from 'node:crypto';
import { EventEmitter } from 'node:events';
import { type MailPriority, type NewMail, type OutboxDoc, type OutboxRepository } from '../db/outbox.repository.ts';
import { AppError } from '../domain/errors.ts';
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

/** What enqueueMails did with one mail: queued now, queued before (same dedupe key), or refused. */
export type BatchOutcome = 'created' | 'existing' | { invalid: AppError };

/**
 * enqueueMail for many mails in two batched writes per priority (bulk runs: the daily recap).
 * A mail whose data breaks its contract is refused on its own (its outcome carries the
 * MAIL_DATA_INVALID error), the others are queued.
 */
export async function enqueueMails<T extends MailTemplate>(reqs: Array<MailRequest<T>>, mailDomain: string, outbox: OutboxRepository): Promise<BatchOutcome[]> {
  const outcomes: BatchOutcome[] = new Array(reqs.length);
  const valid: number[] = [];
  reqs.forEach((r, i) => {
    try {
      validateMailData(r.template, r.data);
      valid.push(i);
    } catch (e) {
      if (!(e instanceof AppError)) throw e;
      outcomes[i] = { invalid: e };
    }
  });
  // One batch per priority (bulk mail queues behind the rest).
  for (const prio of [0, 1] as const) {
    const group = valid.filter((i) => mailPriority(reqs[i]!.template) === prio);
    if (group.length === 0) continue;
    const created = await outbox.enqueueMany(
      group.map((i) => ({ ...reqs[i]!, data: reqs[i]!.data as Record<string, unknown>, messageId: newMessageId(mailDomain) })),
      prio,
    );
    group.forEach((i, k) => (outcomes[i] = created[k] ? 'created' : 'existing'));
    if (created.some(Boolean)) outboxEvents.emit('enqueued', prio);
  }
  return outcomes;
}
