// Order intake: the SMTP doors hand over raw messages here. `store` makes a message durable (the
// door answers 250 only after it returns); processing runs afterwards on the work runner
// (src/jobs/work-runner.ts), which claims each stored message under a lease from the inbound due
// queue, so a crash between "stored" and "order created" loses nothing.
// The message's parts live beside this file: raw storage and duplicate refereeing
// (intake-raw-store.ts), what a message becomes (intake-handle.ts), the answers
// (intake-reply.ts), the Message-ID and body hash (intake-message-key.ts); this file wakes the
// runner on each stored message, hands it the bytes in hand, and settles each claim (processed,
// or back to 'received' with a back-off).
import { EventEmitter } from 'node:events';
import { AppError, isAppError, type FieldProblem } from '../domain/errors.ts';
import { isDatabaseUnavailable, writeUntilStored } from '../db/durable-write.ts';
import { RAW_CHUNK_BYTES, type InboundMessageDoc } from '../db/inbound.repository.ts';
import { createWorkRunner, newOwnerId } from '../jobs/work-runner.ts';
import { createMessageHandler, type SilenceReason } from './intake-handle.ts';
import { createRawStore, type StoreRequest, type StoreResult } from './intake-raw-store.ts';
import { answerRedelivery } from './intake-reply.ts';
import { type IntakeServiceDeps } from './intake-deps.ts';
import { type BounceOutcomeRecord } from './bounce.service.ts';

export { bodyHash, extractMessageId } from './intake-message-key.ts';
export type { StoreRequest, StoreResult } from './intake-raw-store.ts';
export type { CreatedEntry } from './intake-reply.ts';
export type { SilenceReason } from './intake-handle.ts';
export type { IntakeServiceDeps } from './intake-deps.ts';


export type ProcessOutcome =
  | { status: 'processed'; orderIds: string[]; problems: FieldProblem[]; replied: boolean; command?: string; silenced?: SilenceReason; bounce?: BounceOutcomeRecord }
  | { status: 'skipped' }
  | { status: 'retry' | 'failed'; error: string };

/** Back-off after failed attempt `attempt` (a database hiccup, a crashed parse worker): 2 s doubling, at most 1 min. */
export const intakeBackoff = (attempt: number): number => Math.min(60_000, 1_000 * 2 ** attempt);

/**
 * The bytes of messages just stored by this process, until the runner takes them: processing a
 * new message must not read megabytes back from the database it has just written them to (P4).
 * Bounded in bytes and age: a message claimed by another instance (or never, after a failed
 * claim) is read back from the database as usual.
 */
function createFreshBytes(maxBytes = 64 * 1024 * 1024, maxAgeMs = 60_000) {
  const held = new Map<string, { raw: Buffer; at: number }>();
  let bytes = 0;
  const drop = (id: string) => {
    const e = held.get(id);
    if (!e) return undefined;
    held.delete(id);
    bytes -= e.raw.length;
    return e.raw;
  };
  return {
    put(id: string, raw: Buffer) {
      if (raw.length > maxBytes) return;
      drop(id);
      held.set(id, { raw, at: Date.now() });
      bytes += raw.length;
      // Oldest first (Map keeps insertion order): over the budget, or too old to be taken soon.
      for (const [old, e] of held) {
        if (bytes <= maxBytes && Date.now() - e.at < maxAgeMs) break;
        drop(old);
      }
    },
    take: drop,
  };
}

export function createIntakeService(deps: IntakeServiceDeps) {
  const inbound = deps.repos.inbound;
  const now = deps.now ?? (() => new Date());
  // Short, because a message whose worker died waits this long before another takes it over;
  // processing is idempotent (orders per source key, mails per dedupe key), so a slow worker
  // overtaken after a minute costs a repeat, never a duplicate.
  const leaseMs = deps.leaseMs ?? 60_000;
  const maxAttempts = deps.maxAttempts ?? 5;
  // The composition root names the component (logger.child({ component: 'intake' })).
  const log = deps.logger;
  const rawStore = createRawStore({
    inbound,
    logger: log,
    now,
    storeTimeoutMs: deps.storeTimeoutMs ?? 5_000,
    rawChunkBytes: deps.rawChunkBytes ?? RAW_CHUNK_BYTES,
    bigMailPause: deps.bigMailPause ?? 1,
    afterRawChunk: deps.afterRawChunk,
  });
  const { handle } = createMessageHandler(deps, now);
  const ownerId = deps.ownerId ?? newOwnerId();
  const fresh = createFreshBytes();
  /** Redelivery answers and handlers in flight, so tests and shutdown can wait for them. */
  const running = new Set<Promise<unknown>>();
  const track = <T>(p: Promise<T>): Promise<T> => {
    running.add(p);
    void p.finally(() => running.delete(p)).catch(() => {});
    return p;
  };
  let closing = false;
  /** Wakes the runner: a stored message is processed at once, not at the next poll. */
  const stored = new EventEmitter();

  const runner = createWorkRunner<InboundMessageDoc>({
    name: 'intake',
    store: {
      dueCandidates: (at, limit) => inbound.dueCandidates(at, limit),
      claim: (c, owner, lease, at) => inbound.claim(c as { _id: unknown; created: Date }, owner, lease, at),
      reconcile: (at) => inbound.reconcile(at),
    },
    // Never throws: a failure is settled (back-off) or left to the lease (taken over when it runs out).
    handle: (msg) => track(settle(msg, fresh.take(String(msg._id)))).then(() => undefined),
    logger: log,
    leaseMs,
    ownerId,
    now,
    concurrency: deps.concurrency ?? 4,
    ...(deps.pollMs !== undefined ? { pollMs: deps.pollMs } : {}),
    wake: { emitter: stored, event: 'stored' },
  });

  async function store(req: StoreRequest): Promise<StoreResult> {
    if (closing) throw new AppError('INTAKE_CLOSING', 'shutting down', { smtpCode: 421 });
    const result = await rawStore.store(req);
    // A new message is processed from the bytes in hand: reading megabytes back would cost the
    // database as much again as storing them (P4). A duplicate's original has its own due entry.
    if (!result.duplicate) {
      fresh.put(result.id, req.raw);
      // setImmediate: the SMTP answer goes out first, processing follows.
      setImmediate(() => stored.emit('stored', req.bounce ? 1 : 0));
    }
    // A bounce delivered twice is recorded once and answered never (bounces are not mail to answer).
    if (result.duplicate && !req.bounce) {
      void track(answerRedelivery(deps, result.id)).catch((err) => log.error({ err, inboundId: result.id }, 'could not answer a redelivered message'));
    }
    return result;
  }

  /** Processes one message now, whoever stored it (tests; the runner finds messages by itself). */
  async function processMessage(id: string): Promise<ProcessOutcome> {
    const msg = await inbound.claim({ _id: id, created: now() }, ownerId, leaseMs, now());
    if (!msg) return { status: 'skipped' };
    return settle(msg, fresh.take(id));
  }

  /** Handles a claimed message and settles the claim. `raw`: the stored bytes when in hand (just stored). */
  async function settle(msg: InboundMessageDoc, raw?: Buffer): Promise<ProcessOutcome> {
    const id = String(msg._id);
    try {
      const result = msg.kind === 'bounce' ? await handleBounce(msg, raw) : await handleOrderMail(msg, raw);
      // Processed: that fact must reach the database however long it is away, or the lease would
      // run out and the message be processed again (src/db/durable-write.ts).
      await writeUntilStored(
        () =>
          inbound.markProcessed(
            msg._id,
            msg.attempts ?? 1,
            {
              orderIds: result.orderIds,
              problems: result.problems,
              ...('silenced' in result && result.silenced ? { silenced: result.silenced } : {}),
              ...('bounce' in result ? { bounce: result.bounce } : {}),
            },
            now(),
          ),
        {
          stopping: () => closing,
          log: log.child({ inboundId: id }),
          what: 'message processed',
        },
      );
      log.info({ inboundId: id, merchantId: msg.merchantId, orderIds: result.orderIds, problems: result.problems.length }, 'inbound message processed');
      return { status: 'processed', ...result };
    } catch (e) {
      const error = e instanceof Error ? e.message : String(e);
      const attempts = msg.attempts ?? 1;
      // MAIL_PARSE_FAILED is the parser refusing these bytes (e.g. too many MIME parts): a retry
      // would fail the same way.
      // The database being away is no reason to give a message up, however long it lasts.
      const giveUp =
        !isDatabaseUnavailable(e) &&
        (attempts >= maxAttempts || isAppError(e, 'INTAKE_MERCHANT_GONE') || isAppError(e, 'MAIL_PARSE_FAILED'));
      // The next attempt's time is stored with the message (its due entry moves there), so the
      // back-off holds across restarts and instances. A message that could not be released stays
      // leased: it is taken over when the lease has run out.
      const retryAt = giveUp ? undefined : new Date(now().getTime() + intakeBackoff(attempts));
      await inbound.release(msg._id, attempts, retryAt, error).catch((err) => log.error({ err, inboundId: id }, 'could not release inbound message'));
      log.error({ err: e, inboundId: id, attempts, giveUp, retryAt }, 'inbound message processing failed');
      return { status: giveUp ? 'failed' : 'retry', error };
    }
  }

  async function handleOrderMail(msg: InboundMessageDoc, raw: Buffer | undefined) {
    const merchant = await deps.repos.merchants.findById(msg.merchantId);
    if (!merchant) throw new AppError('INTAKE_MERCHANT_GONE', `merchant ${msg.merchantId} no longer exists`);
    return handle(msg, merchant, raw);
  }

  /** A bounce to a mail's return path (issue 13 part 8): the bounce service records it and alerts once. */
  async function handleBounce(msg: InboundMessageDoc, raw: Buffer | undefined) {
    if (!deps.bounces) throw new Error('bounce processing is not configured');
    const bounce = await deps.bounces.handle(msg, raw);
    return { orderIds: [] as string[], problems: [] as FieldProblem[], replied: false, bounce };
  }

  /**
   * Resolves when nothing stored is due and nothing is being processed: claims and handles what
   * is due now (as the runner's poll would) until none is left (tests, benchmarks).
   */
  async function idle(): Promise<void> {
    for (;;) {
      const handled = closing ? 0 : await runner.runOnce();
      if (running.size > 0) await Promise.allSettled([...running]);
      else if (handled === 0) return;
    }
  }

  /** Stops taking new messages and waits for the ones being processed. */
  async function close(): Promise<void> {
    closing = true;
    await runner.stop();
    while (running.size > 0) await Promise.allSettled([...running]);
  }

  return {
    store,
    process: processMessage,
    /** Starts the runner: stored messages are processed at once, due retries and take-overs on its poll. */
    start: () => runner.start(),
    runOnce: () => runner.runOnce(),
    healthy: () => runner.healthy(),
    idle,
    close,
  };
}
export type IntakeService = ReturnType<typeof createIntakeService>;
