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
import { type QueryFilter } from 'mongoose';
import { updateByIdIf } from '../db/by-id.ts';
import { claimLease } from '../db/claims.ts';
import { CapturedMail, Outbox, type OutboxDoc } from '../db/models/outbox.model.ts';
import { type Logger } from '../logger.ts';
import { outboxEvents } from '../mail/outbox.ts';
import { type MailRenderer } from '../mail/renderer.ts';
import { isPermanentRejection, type MailTransport } from '../mail/transport.ts';
import { createPollLoop } from './poll-loop.ts';

export interface OutboxWorkerDeps {
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

/** Pending and due, or 'sending' whose lease ran out (its sender crashed). */
function isDue(d: Pick<OutboxDoc, 'status' | 'nextAttemptAt' | 'leaseUntil'>, at: Date): boolean {
  if (d.status === 'pending') return new Date(d.nextAttemptAt) <= at;
  return d.status === 'sending' && !!d.leaseUntil && new Date(d.leaseUntil) < at;
}

export function createOutboxWorker(deps: OutboxWorkerDeps): OutboxWorker {
  const leaseMs = deps.leaseMs ?? 60_000;
  const pollMs = deps.pollMs ?? 1_000;
  const maxAttempts = deps.maxAttempts ?? DEFAULT_MAX_ATTEMPTS;
  const ownerId = deps.ownerId ?? `${os.hostname()}:${process.pid}:${randomBytes(4).toString('hex')}`;
  const now = deps.now ?? (() => new Date());
  const backoff = deps.backoff ?? ((n: number) => backoffDelay(n));
  const log = deps.logger.child({ component: 'outbox-worker', owner: ownerId });

  /** Set by stop(): a drain in progress ends after the mail being sent. */
  let closing = false;
  let lastPollOk = true;
  let lastPollAt = Date.now();

  // Candidates from the last scan, oldest first: one scan serves up to CANDIDATES claims, since a
  // scan is the costly part on FerretDB (every non-_id filter reads the whole collection).
  let candidates: Array<Pick<OutboxDoc, '_id' | 'attempts'>> = [];
  const CANDIDATES = 50;

  /**
   * Takes the oldest due mail (pending and due, or 'sending' with an expired lease: its sender
   * crashed). The claim document `outbox:<id>:<attempts>` is the referee, because FerretDB's
   * conditional updates are not atomic (see src/db/claims.ts); a lost claim moves on to the next.
   */
  async function claim(): Promise<OutboxDoc | null> {
    const at = now();
    const due: QueryFilter<OutboxDoc> = {
      $or: [
        { status: 'pending', nextAttemptAt: { $lte: at } },
        { status: 'sending', leaseUntil: { $lt: at } },
      ],
    };
    for (let scans = 0; scans < 2; scans++) {
      if (candidates.length === 0) {
        if (scans > 0) return null;
        candidates = await Outbox.find(due, { _id: 1, attempts: 1 }).sort({ createdAt: 1, _id: 1 }).limit(CANDIDATES).lean<OutboxDoc[]>();
        lastPollAt = Date.now();
      }
      while (candidates.length > 0) {
        const c = candidates.shift()!;
        const attempts = c.attempts ?? 0;
        if (!(await claimLease(`outbox:${String(c._id)}:${attempts}`, leaseMs, { owner: ownerId }, at))) continue;
        // Re-checked by _id: the candidate may have been sent or rescheduled since the scan.
        const doc = await updateByIdIf<OutboxDoc>(
          Outbox,
          c._id,
          (d) => (d.attempts ?? 0) === attempts && isDue(d, at),
          { $set: { status: 'sending', leaseUntil: new Date(at.getTime() + leaseMs), leaseOwner: ownerId, attempts: attempts + 1 } },
        );
        if (doc) return doc;
      }
    }
    return null;
  }

  /** Updates a mail this worker still holds; false when the lease was lost meanwhile. */
  async function settle(doc: OutboxDoc, set: Record<string, unknown>, unset: string[]): Promise<boolean> {
    const r = await updateByIdIf<OutboxDoc>(
      Outbox,
      doc._id,
      (d) => d.status === 'sending' && d.leaseOwner === ownerId,
      { $set: set, $unset: Object.fromEntries(unset.map((k) => [k, 1])) },
    );
    return r !== null;
  }

  async function fail(doc: OutboxDoc, err: unknown, permanent: boolean, mlog: Logger): Promise<void> {
    const dead = permanent || doc.attempts >= maxAttempts;
    const lastError = describeError(err);
    if (dead) {
      await settle(doc, { status: 'dead', lastError }, ['leaseUntil', 'leaseOwner']);
      mlog.error({ err: lastError, permanent }, 'outbox mail is dead: giving up');
      return;
    }
    const nextAttemptAt = new Date(now().getTime() + backoff(doc.attempts));
    await settle(doc, { status: 'pending', nextAttemptAt, lastError }, ['leaseUntil', 'leaseOwner']);
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
    const set: Record<string, unknown> = { status: 'sent', sentAt: now() };
    if (result.mode === 'capture') {
      await CapturedMail.replaceOne({ _id: doc._id }, result.captured, { upsert: true });
      set.captured = { subject: result.captured.subject };
    }
    if (!(await settle(doc, set, ['leaseUntil', 'leaseOwner', 'lastError']))) {
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
    for (;;) {
      if (closing) break;
      const doc = await claim();
      if (!doc) break;
      await handle(doc);
      handled++;
    }
    lastPollOk = true;
    return handled;
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
