// Order intake: the SMTP doors hand over raw messages here. `store` makes a message durable (the
// door answers 250 only after it returns); processing runs afterwards, is claimed with a lease,
// and is resumable, so a crash between "stored" and "order created" loses nothing.
// The message's parts live beside this file: raw storage and duplicate refereeing
// (intake-raw-store.ts), what a message becomes (intake-handle.ts), the answers
// (intake-reply.ts), the Message-ID and body hash (intake-message-key.ts); this file schedules
// processing (at once after the 250, back-off, the sweep) and settles each claim.
import { AppError, isAppError, type FieldProblem } from '../domain/errors.ts';
import { isDatabaseUnavailable, writeUntilStored } from '../db/durable-write.ts';
import { RAW_CHUNK_BYTES, type InboundMessageDoc } from '../db/inbound.repository.ts';
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
  /** Processing runs in flight, so tests and shutdown can wait for them. */
  const running = new Set<Promise<unknown>>();
  const timers = new Set<NodeJS.Timeout>();
  let closing = false;
  let sweep: NodeJS.Timeout | undefined;

  /** `raw`: the bytes just stored, handed over so processing need not read them back. */
  function schedule(id: string, delayMs = 0, raw?: Buffer): void {
    if (closing) return;
    const run = () => {
      const p = processMessage(id, raw)
        .catch((e) => {
          // Typically the database went away while claiming: try again once a claim we may have
          // left behind has lapsed (the sweep would too, later).
          log.error({ err: e, inboundId: id }, 'intake processing crashed; will retry');
          schedule(id, leaseMs + 1_000);
        })
        .finally(() => running.delete(p));
      running.add(p);
    };
    if (delayMs === 0) {
      // setImmediate: the SMTP answer goes out first, processing follows.
      const p = new Promise<void>((resolve) => setImmediate(() => (run(), resolve())));
      running.add(p);
      void p.finally(() => running.delete(p));
      return;
    }
    const t = setTimeout(() => {
      timers.delete(t);
      run();
    }, delayMs);
    t.unref();
    timers.add(t);
  }

  async function store(req: StoreRequest): Promise<StoreResult> {
    if (closing) throw new AppError('INTAKE_CLOSING', 'shutting down', { smtpCode: 421 });
    const result = await rawStore.store(req);
    // A duplicate may be a retry of a message whose processing never finished: claiming is atomic,
    // so scheduling it again is harmless. A new message is processed from the bytes in hand:
    // reading megabytes back would cost the database as much again as storing them (P4).
    schedule(result.id, 0, result.duplicate ? undefined : req.raw);
    // A bounce delivered twice is recorded once and answered never (bounces are not mail to answer).
    if (result.duplicate && !req.bounce) {
      const p = answerRedelivery(deps, result.id)
        .catch((err) => log.error({ err, inboundId: result.id }, 'could not answer a redelivered message'))
        .finally(() => running.delete(p));
      running.add(p);
    }
    return result;
  }

  /**
   * Takes the message for processing: 'received', or 'processing' whose lease ran out (the
   * repository referees racing workers).
   */
  async function claim(id: string): Promise<InboundMessageDoc | null> {
    const taken = await inbound.claim(id, leaseMs, now());
    if (taken === 'held') {
      // Held: by a live worker (the re-check then finds it processed), or by one that died
      // between claiming and marking the message (taken over once the claim's lease lapses).
      schedule(id, leaseMs + 1_000);
      return null;
    }
    return taken;
  }

  /** `raw`: the stored bytes when the caller has them (just stored); else they are read back. */
  async function processMessage(id: string, raw?: Buffer): Promise<ProcessOutcome> {
    const msg = await claim(id);
    if (!msg) return { status: 'skipped' };
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
      const released = await inbound.release(msg._id, attempts, giveUp, error).then(
        () => true,
        (err) => (log.error({ err, inboundId: id }, 'could not release inbound message'), false),
      );
      log.error({ err: e, inboundId: id, attempts, giveUp }, 'inbound message processing failed');
      // Back off in-process (resumePending() at start-up covers a crash in between); a message
      // that could not be released stays leased: try again when the lease has run out.
      if (!giveUp) schedule(id, released ? Math.min(60_000, 1_000 * 2 ** attempts) : leaseMs + 1_000);
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

  /** Processes everything stored but not finished (after a crash or restart); returns how many. */
  async function resumePending(limit = 1000): Promise<number> {
    const pending = await inbound.unfinished(now(), limit);
    for (const id of pending) {
      if (closing) break;
      await processMessage(id);
    }
    return pending.length;
  }

  /**
   * Sweeps for unfinished messages every `intervalMs`: picks up work whose in-process retry was
   * lost (e.g. the database went away while releasing it) or whose worker died on another instance.
   */
  function startSweep(intervalMs = 30_000): void {
    if (sweep || closing) return;
    let busy = false;
    sweep = setInterval(() => {
      if (busy) return;
      busy = true;
      const p = resumePending()
        .catch((err) => log.error({ err }, 'intake sweep failed'))
        .finally(() => {
          busy = false;
          running.delete(p);
        });
      running.add(p);
    }, intervalMs);
    sweep.unref();
  }

  /** Resolves when no processing is running or queued to run now (tests, graceful shutdown). */
  async function idle(): Promise<void> {
    while (running.size > 0) await Promise.allSettled([...running]);
  }

  /** Stops taking new messages and waits for the running ones. */
  async function close(): Promise<void> {
    closing = true;
    clearInterval(sweep);
    for (const t of timers) clearTimeout(t);
    timers.clear();
    await idle();
  }

  return { store, process: (id: string) => processMessage(id), resumePending, startSweep, idle, close };
}
export type IntakeService = ReturnType<typeof createIntakeService>;
