// Sending side of the durable outbox: the work runner's handler for mail (src/jobs/work-runner.ts
// claims due mail under a lease, urgent before bulk, `concurrency` at a time). The handler renders
// a mail, sends it with its fixed Message-ID, and marks it sent; a failure backs off
// exponentially, and a mail that keeps failing ends 'dead' instead of retrying for ever.
//
// Permanent failures go dead at once instead of after maxAttempts: a 5xx from the relay at MAIL
// FROM / RCPT TO / DATA (it refused this very message; see isPermanentRejection) and mail data the
// renderer rejects (re-rendering the same data gives the same error). Everything else, including
// 5xx about authentication or TLS, is treated as transient: fixing the set-up fixes the send.
import { isAppError } from '../domain/errors.ts';
import { writeUntilStored } from '../db/durable-write.ts';
import { type OutboxDoc } from '../db/outbox.repository.ts';
import { type Logger } from '../logger.ts';
import { outboxEvents } from '../mail/outbox.ts';
import { type MailRenderer } from '../mail/renderer.ts';
import { isPermanentRejection, type MailTransport } from '../mail/transport.ts';
import { HELD_MAIL_TEMPLATES, releaseHeldMail } from '../services/merchant-suspension.service.ts';
import { createWorkRunner, newOwnerId, type WorkContext, type WorkRunner } from './work-runner.ts';
import { type Repositories } from '../db/repositories.ts';

export interface OutboxWorkerDeps {
  /** The storage seam (src/db/repositories.ts). */
  repos: Repositories;
  renderer: MailRenderer;
  transport: MailTransport;
  /** From header, e.g. `paymail <no-reply@paymail.localhost>`. */
  from: string;
  /**
   * The envelope sender of a mail: its VERP return path `bounce+<id>@MAIL_DOMAIN` (verp.returnPath
   * in server.ts), so bounces come back to the MX door naming the mail. Unset: the From address.
   */
  returnPath?: (mailId: string) => string;
  logger: Logger;
  /** How long a claimed mail belongs to this worker; longer than the transport's timeouts. */
  leaseMs?: number;
  pollMs?: number;
  /** Mails sent at once (OUTBOX_CONCURRENCY); default 1, strictly oldest first. */
  concurrency?: number;
  /** 75 attempts ≈ 3 days with the default back-off (10 s doubling, capped at 1 h). */
  maxAttempts?: number;
  ownerId?: string;
  now?: () => Date;
  /** Delay before attempt `attempt + 1` after `attempt` failed; defaults to backoffDelay. */
  backoff?: (attempt: number) => number;
}

/** runOnce(): claims and sends until nothing is due; returns how many mails it handled (sent or not). */
export type OutboxWorker = WorkRunner;

export const BACKOFF_BASE_MS = 10_000;
export const BACKOFF_MAX_MS = 3_600_000;
export const DEFAULT_MAX_ATTEMPTS = 75;

/** 10 s · 2^(attempt−1), capped at 1 h, with ±25 % jitter so retries from many mails spread out. */
export function backoffDelay(attempt: number, random: () => number = Math.random): number {
  const base = Math.min(BACKOFF_MAX_MS, BACKOFF_BASE_MS * 2 ** Math.max(0, attempt - 1));
  return Math.round(Math.min(BACKOFF_MAX_MS, base * (0.75 + 0.5 * random())));
}

function describeError(err: unknown): string {
  const e = err as { code?: unknown; responseCode?: unknown; message?: unknown };
  const parts = [e?.code, e?.responseCode, e?.message ?? String(err)].filter((p) => p !== undefined && p !== '');
  return parts.join(' ').slice(0, 500);
}

/**
 * A failure of the relay as a whole rather than of this one mail: it cannot be reached, times
 * out, drops the connection, refuses the session (421) or a TLS/AUTH set-up, or answers 4xx to
 * MAIL FROM or DATA. A 4xx to RCPT TO (greylisting, a full mailbox) concerns its recipient only
 * and must not hold back everyone else's mail.
 */
export function isRelayDown(err: unknown): boolean {
  const e = err as { code?: unknown; responseCode?: unknown; command?: unknown };
  if (typeof e?.responseCode === 'number') {
    if (e.responseCode === 421) return true;
    if (e.responseCode >= 400 && e.responseCode < 500) {
      const command = typeof e.command === 'string' ? e.command.toUpperCase() : '';
      return !command.startsWith('RCPT');
    }
    return false;
  }
  return ['ECONNECTION', 'ETIMEDOUT', 'ESOCKET', 'EDNS', 'ETLS', 'EAUTH', 'ECONNREFUSED', 'ECONNRESET', 'EPROTOCOL'].includes(String(e?.code));
}

export function createOutboxWorker(deps: OutboxWorkerDeps): OutboxWorker {
  const leaseMs = deps.leaseMs ?? 60_000;
  const maxAttempts = deps.maxAttempts ?? DEFAULT_MAX_ATTEMPTS;
  const ownerId = deps.ownerId ?? newOwnerId();
  const now = deps.now ?? (() => new Date());
  const backoff = deps.backoff ?? ((n: number) => backoffDelay(n));
  const log = deps.logger.child({ component: 'outbox-worker', owner: ownerId });
  const { outbox } = deps.repos;

  async function fail(doc: OutboxDoc, err: unknown, permanent: boolean, mlog: Logger, ctx: WorkContext): Promise<void> {
    const dead = permanent || doc.attempts >= maxAttempts;
    const lastError = describeError(err);
    if (dead) {
      await outbox.markDead(doc, ownerId, lastError);
      mlog.error({ err: lastError, permanent }, 'outbox mail is dead: giving up');
      return;
    }
    const nextAttemptAt = new Date(now().getTime() + backoff(doc.attempts));
    await outbox.retryLater(doc, ownerId, nextAttemptAt, lastError);
    // The next claim reads the queue afresh, oldest first, so this mail keeps its place.
    ctx.rewind();
    if (isRelayDown(err)) {
      // The relay itself is unavailable: hold the whole queue until this mail's next attempt,
      // so that when the relay is back the mails leave oldest first (this one leads), instead of
      // each backing off on its own and the order being lost to jitter.
      ctx.pauseUntil(nextAttemptAt);
      mlog.warn({ err: lastError, nextAttemptAt }, 'outbound relay unavailable: queue paused until the next attempt');
      return;
    }
    mlog.warn({ err: lastError, nextAttemptAt }, 'outbox send failed: will retry');
  }

  async function handle(doc: OutboxDoc, ctx: WorkContext): Promise<void> {
    // Identifiers only: bodies and addresses stay in the database.
    const mlog = log.child({ outboxId: String(doc._id), template: doc.template, attempt: doc.attempts, messageId: doc.messageId });
    if (doc.attempts > maxAttempts) {
      // Reclaimed again and again after its lease expired: something crashes the sender on it.
      await fail(doc, new Error('lease expired too many times'), true, mlog, ctx);
      return;
    }
    // A suspended merchant's reminders and recaps wait, parked out of the queue, for its resume.
    if (doc.merchantId && HELD_MAIL_TEMPLATES.has(doc.template) && (await deps.repos.merchants.isSuspended(doc.merchantId))) {
      if ((await outbox.hold(doc, ownerId)) && !(await deps.repos.merchants.isSuspended(doc.merchantId))) {
        await releaseHeldMail(deps.repos, doc._id, now());
      }
      mlog.info({ merchantId: doc.merchantId }, 'outbox mail held: merchant suspended');
      return;
    }
    let result;
    try {
      const rendered = await deps.renderer.render({
        template: doc.template,
        locale: doc.locale,
        data: (doc.data ?? {}) as Record<string, unknown>,
      });
      result = await deps.transport.send({
        from: deps.from,
        to: doc.to,
        cc: doc.cc ?? [],
        replyTo: doc.replyTo ?? undefined,
        inReplyTo: doc.inReplyTo ?? undefined,
        references: doc.references ?? [],
        messageId: doc.messageId,
        ...(doc.listUnsubscribe ? { listUnsubscribe: doc.listUnsubscribe } : {}),
        ...(deps.returnPath ? { returnPath: deps.returnPath(String(doc._id)) } : {}),
        subject: rendered.subject,
        html: rendered.html,
        text: rendered.text,
        attachments: rendered.attachments,
      });
    } catch (err) {
      const permanent =
        isPermanentRejection(err) || isAppError(err, 'MAIL_DATA_INVALID') || isAppError(err, 'MAIL_TEMPLATE_UNKNOWN');
      await fail(doc, err, permanent, mlog, ctx);
      return;
    }
    // The relay has the mail: from here on that fact must reach the database, however long it is
    // away, or the lease would run out and the mail go out twice (src/db/durable-write.ts). A
    // retried write that had been applied before its answer was lost finds the mail sent.
    const sentAt = now();
    const captured = result.mode === 'capture' ? result.captured : undefined;
    const marked = await writeUntilStored(() => outbox.markSent(doc, ownerId, sentAt, captured), { stopping: () => ctx.closing, log: mlog, what: 'mail sent' });
    if (!marked) {
      // Sent, but our lease expired and someone else claimed it: the same Message-ID lets the
      // receiving side recognise the duplicate. Leases outlast transport timeouts to avoid this.
      mlog.warn('outbox lease lost before the mail was marked sent');
      return;
    }
    if (result.mode === 'smtp') {
      mlog.info({ rejected: result.rejected.length, response: result.response.slice(0, 200) }, 'outbox mail sent');
    } else {
      mlog.info({ bytes: result.size }, 'outbox mail captured for /dev/mail');
    }
  }

  return createWorkRunner<OutboxDoc>({
    name: 'outbox',
    store: outbox,
    handle,
    logger: deps.logger,
    leaseMs,
    ownerId,
    now,
    ...(deps.pollMs !== undefined ? { pollMs: deps.pollMs } : {}),
    concurrency: deps.concurrency ?? 1,
    // While the relay is down one mail finds out, not `concurrency` of them.
    probeFirst: true,
    // A mail enqueued in this process must not wait for the next poll.
    wake: { emitter: outboxEvents, event: 'enqueued' },
  });
}
