// Sending side of the durable outbox. A worker claims one due mail at a time (a once-only claim
// document, then a lease in the mail, so any number of instances can run), renders it, sends it
// with its fixed Message-ID, and marks it sent; a failure backs off exponentially, and a mail
// that keeps failing ends 'dead' instead of retrying for ever.
//
// Permanent failures go dead at once instead of after maxAttempts: a 5xx from the relay at MAIL
// FROM / RCPT TO / DATA (it refused this very message; see isPermanentRejection) and mail data the
// renderer rejects (re-rendering the same data gives the same error). Everything else, including
// 5xx about authentication or TLS, is treated as transient: fixing the set-up fixes the send.
import { randomBytes } from 'node:crypto';
import os from 'node:os';
import { isAppError } from '../domain/errors.ts';
import { writeUntilStored } from '../db/durable-write.ts';
import { type OutboxDoc } from '../db/outbox.repository.ts';
import { type Logger } from '../logger.ts';
import { outboxEvents } from '../mail/outbox.ts';
import { type MailRenderer } from '../mail/renderer.ts';
import { isPermanentRejection, type MailTransport } from '../mail/transport.ts';
import { HELD_MAIL_TEMPLATES, releaseHeldMail } from '../services/merchant-suspension.service.ts';
import { createPollLoop } from './poll-loop.ts';
import { type Repositories } from '../db/repositories.ts';

export interface OutboxWorkerDeps {
  /** The storage seam (src/db/repositories.ts). */
  repos: Repositories;
  renderer: MailRenderer;
  transport: MailTransport;
  /** From header, e.g. `paymail <no-reply@paymail.localhost>`. */
  from: string;
  logger: Logger;
  /** How long a claimed mail belongs to this worker; longer than the transport's timeouts. */
  leaseMs?: number;
  pollMs?: number;
  /** 75 attempts ≈ 3 days with the default back-off (10 s doubling, capped at 1 h). */
  maxAttempts?: number;
  ownerId?: string;
  now?: () => Date;
  /** Delay before attempt `attempt + 1` after `attempt` failed; defaults to backoffDelay. */
  backoff?: (attempt: number) => number;
}

export interface OutboxWorker {
  readonly ownerId: string;
  start(): void;
  /** Stops polling and waits for the mail being sent, if any. */
  stop(): Promise<void>;
  /** Claims and sends until nothing is due; returns how many mails it handled (sent or not). */
  runOnce(): Promise<number>;
  healthy(): boolean;
}

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
  const pollMs = deps.pollMs ?? 1_000;
  const maxAttempts = deps.maxAttempts ?? DEFAULT_MAX_ATTEMPTS;
  const ownerId = deps.ownerId ?? `${os.hostname()}:${process.pid}:${randomBytes(4).toString('hex')}`;
  const now = deps.now ?? (() => new Date());
  const backoff = deps.backoff ?? ((n: number) => backoffDelay(n));
  const log = deps.logger.child({ component: 'outbox-worker', owner: ownerId });
  const { outbox } = deps.repos;

  /** Set by stop(): a drain in progress ends after the mail being sent. */
  let closing = false;
  let lastPollOk = true;
  let lastPollAt = Date.now();
  /** While the relay is down (isRelayDown), nothing is sent before this time (ms). */
  let pausedUntil = 0;

  // Due entries from the last read of the due queue (src/db/due-queue.ts), oldest mail first: one
  // read serves up to CANDIDATES claims.
  let candidates: Awaited<ReturnType<typeof outbox.dueCandidates>> = [];
  const CANDIDATES = 50;

  /**
   * Takes the oldest due mail (pending and due, or 'sending' with an expired lease: its sender
   * crashed); a mail another worker took first moves on to the next.
   */
  async function claim(): Promise<OutboxDoc | null> {
    const at = now();
    for (let reads = 0; reads < 2; reads++) {
      if (candidates.length === 0) {
        if (reads > 0) return null;
        candidates = await outbox.dueCandidates(at, CANDIDATES);
        lastPollAt = Date.now();
      }
      while (candidates.length > 0) {
        const c = candidates.shift()!;
        const doc = await outbox.claim(c, ownerId, leaseMs, at);
        if (doc) return doc;
      }
    }
    return null;
  }

  async function fail(doc: OutboxDoc, err: unknown, permanent: boolean, mlog: Logger): Promise<void> {
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
    candidates = [];
    if (isRelayDown(err)) {
      // The relay itself is unavailable: hold the whole queue until this mail's next attempt,
      // so that when the relay is back the mails leave oldest first (this one leads), instead of
      // each backing off on its own and the order being lost to jitter.
      pausedUntil = nextAttemptAt.getTime();
      mlog.warn({ err: lastError, nextAttemptAt }, 'outbound relay unavailable: queue paused until the next attempt');
      return;
    }
    mlog.warn({ err: lastError, nextAttemptAt }, 'outbox send failed: will retry');
  }

  async function handle(doc: OutboxDoc): Promise<void> {
    // Identifiers only: bodies and addresses stay in the database.
    const mlog = log.child({ outboxId: String(doc._id), template: doc.template, attempt: doc.attempts, messageId: doc.messageId });
    if (doc.attempts > maxAttempts) {
      // Reclaimed again and again after its lease expired: something crashes the sender on it.
      await fail(doc, new Error('lease expired too many times'), true, mlog);
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
        subject: rendered.subject,
        html: rendered.html,
        text: rendered.text,
        attachments: rendered.attachments,
      });
    } catch (err) {
      const permanent =
        isPermanentRejection(err) || isAppError(err, 'MAIL_DATA_INVALID') || isAppError(err, 'MAIL_TEMPLATE_UNKNOWN');
      await fail(doc, err, permanent, mlog);
      return;
    }
    // The relay has the mail: from here on that fact must reach the database, however long it is
    // away, or the lease would run out and the mail go out twice (src/db/durable-write.ts). A
    // retried write that had been applied before its answer was lost finds the mail sent.
    const sentAt = now();
    const captured = result.mode === 'capture' ? result.captured : undefined;
    const marked = await writeUntilStored(() => outbox.markSent(doc, ownerId, sentAt, captured), { stopping: () => closing, log: mlog, what: 'mail sent' });
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

  async function runOnce(): Promise<number> {
    let handled = 0;
    if (!reconciled) await reconcile();
    for (;;) {
      if (closing) break;
      if (now().getTime() < pausedUntil) {
        lastPollAt = Date.now();
        break;
      }
      const doc = await claim();
      if (!doc) break;
      await handle(doc);
      handled++;
      // Progress is health: a worker draining a long backlog after an outage is working, not
      // failing (readiness would otherwise stay false until the backlog is gone).
      lastPollOk = true;
    }
    lastPollOk = true;
    return handled;
  }

  /** Mails stored before the due queue existed get their entries once, before the first claim. */
  let reconciled = false;
  async function reconcile(): Promise<void> {
    const added = await outbox.reconcile(now());
    if (added > 0) log.info({ added }, 'outbox due queue: entries added for unfinished mail');
    reconciled = true;
  }

  const loop = createPollLoop(
    async () => {
      try {
        await runOnce();
      } catch (err) {
        lastPollOk = false;
        throw err;
      }
    },
    pollMs,
    (err) => log.error({ err: describeError(err) }, 'outbox poll failed'),
  );
  // A mail enqueued in this process must not wait for the next poll.
  const onEnqueued = () => loop.kick();

  function start(): void {
    if (loop.running) return;
    closing = false;
    outboxEvents.on('enqueued', onEnqueued);
    loop.start();
  }

  async function stop(): Promise<void> {
    closing = true;
    outboxEvents.off('enqueued', onEnqueued);
    await loop.stop();
    closing = false;
  }

  function healthy(): boolean {
    // Polls at least every pollMs; a send is bounded by the transport's timeouts, below leaseMs.
    return loop.running && lastPollOk && Date.now() - lastPollAt < leaseMs + 2 * pollMs;
  }

  return { ownerId, start, stop, runOnce, healthy };
}
