// One leased work-queue runner for every kind of background work (outbox mail, webhooks, intake):
// the queue's repository finds due work (urgent first, then oldest first) and takes it under a
// lease; the runner keeps `concurrency` lanes busy, reads candidates once for many claims, pauses
// the whole queue when a handler says its destination is down, and reports its health. A queue
// provides only its handler. Leases make it safe to run any number of instances: work whose
// holder died is taken over once its lease has run out (the repository's claim does that).
import { randomBytes } from 'node:crypto';
import { type EventEmitter } from 'node:events';
import os from 'node:os';
import { type Logger } from '../logger.ts';
import { createPollLoop } from './poll-loop.ts';

/** A due entry as the repositories return it (src/db/due-queue.ts). */
export interface Candidate {
  _id: unknown;
  prio?: number | null;
}

/** The storage side of a queue: its repository's due read and claim. */
export interface QueueStore<T> {
  dueCandidates(at: Date, limit: number): Promise<Candidate[]>;
  claim(c: Candidate, owner: string, leaseMs: number, at: Date): Promise<T | null>;
  /** Unfinished items without a due entry get one; run once before the first claim. */
  reconcile(at: Date): Promise<number>;
}

export interface WorkContext {
  readonly owner: string;
  /** True once stop() was called: durable writes give up after their grace period. */
  readonly closing: boolean;
  /** The destination as a whole is down: nothing more is claimed before `until`. */
  pauseUntil(until: Date): void;
  /** Forget the candidates read so far, so the next claim reads the queue afresh (oldest first). */
  rewind(): void;
}

export interface WorkRunnerOptions<T> {
  /** For logs: 'outbox', 'webhooks', 'intake'. */
  name: string;
  store: QueueStore<T>;
  handle: (item: T, ctx: WorkContext) => Promise<void>;
  logger: Logger;
  /** How long a claimed item belongs to this runner; longer than a handler can take. */
  leaseMs: number;
  pollMs?: number;
  /** Items handled at once. */
  concurrency?: number;
  /**
   * Each run starts with one item alone and opens the other lanes only when it did not pause the
   * queue: while the destination is down, one probe fails instead of `concurrency` items at once.
   * After a pause the backlog drains through one lane until nothing is due, so the items held
   * back leave strictly oldest first (parallel lanes would interleave them).
   */
  probeFirst?: boolean;
  /** Candidates read per due-queue read. */
  batch?: number;
  /** An emitter and event that mean "work was queued in this process" (its argument: priority). */
  wake?: { emitter: EventEmitter; event: string };
  ownerId?: string;
  now?: () => Date;
}

export interface WorkRunner {
  readonly ownerId: string;
  start(): void;
  /** Stops claiming and waits for the items being handled. */
  stop(): Promise<void>;
  /** Claims and handles until nothing is due (or the queue is paused); returns how many items it handled. */
  runOnce(): Promise<number>;
  healthy(): boolean;
}

export const newOwnerId = (): string => `${os.hostname()}:${process.pid}:${randomBytes(4).toString('hex')}`;

export function createWorkRunner<T>(opts: WorkRunnerOptions<T>): WorkRunner {
  const pollMs = opts.pollMs ?? 1_000;
  const concurrency = Math.max(1, opts.concurrency ?? 1);
  const batch = opts.batch ?? Math.max(50, concurrency * 2);
  const ownerId = opts.ownerId ?? newOwnerId();
  const now = opts.now ?? (() => new Date());
  const { store, leaseMs } = opts;
  const log = opts.logger.child({ component: `${opts.name}-runner`, owner: ownerId });

  let closing = false;
  let lastPollOk = true;
  let lastPollAt = Date.now();
  /** While the destination is down, nothing is claimed before this time (ms). */
  let pausedUntil = 0;
  /** Set by a pause (probeFirst): one lane until the backlog is gone. */
  let serial = false;
  let reconciled = false;

  // Due entries from the last read, urgent then oldest first: one read serves many claims. Lanes
  // share it; one read at a time.
  let candidates: Candidate[] = [];
  let reading: Promise<void> | undefined;
  /** Bumped by every rewind: a read that started before it is stale (it cannot see the new work). */
  let generation = 0;

  async function refill(): Promise<void> {
    reading ??= (async () => {
      try {
        for (let tries = 0; tries < 3; tries++) {
          const gen = generation;
          const read = await store.dueCandidates(now(), batch);
          lastPollAt = Date.now();
          candidates = read;
          if (gen === generation) break;
        }
      } finally {
        reading = undefined;
      }
    })();
    await reading;
  }

  // Urgent items (priority 0) being handled: bulk items wait for them, so that on one event loop
  // an urgent mail's render and send do not share the CPU with `concurrency - 1` bulk ones.
  let urgentInFlight = 0;
  let urgentDone: Array<() => void> = [];
  const isBulk = (c: Candidate) => (c.prio ?? 0) > 0;
  const urgentSettled = () => new Promise<void>((r) => urgentDone.push(r));

  /** The next due item for this runner and its candidate; null when nothing (more) is due. */
  async function claimNext(): Promise<{ item: T; c: Candidate } | null> {
    for (let reads = 0; reads < 2; reads++) {
      if (candidates.length === 0) {
        if (reads > 0) return null;
        await refill();
      }
      const gen = generation;
      while (candidates.length > 0) {
        if (closing || paused()) return null;
        if (urgentInFlight > 0 && isBulk(candidates[0]!)) {
          await urgentSettled();
          continue;
        }
        const c = candidates.shift()!;
        const item = await store.claim(c, ownerId, leaseMs, now());
        if (item) return { item, c };
      }
      // Dropped by a rewind (work was queued meanwhile), not used up: read again. Ending here would
      // end the lane, and one lane would be left to drain the backlog alone.
      if (gen !== generation && !closing && !paused()) reads = -1;
    }
    return null;
  }

  const paused = () => now().getTime() < pausedUntil;

  const ctx: WorkContext = {
    owner: ownerId,
    get closing() {
      return closing;
    },
    pauseUntil(until) {
      pausedUntil = Math.max(pausedUntil, until.getTime());
      candidates = [];
      generation++;
      if (opts.probeFirst) serial = true;
    },
    rewind() {
      candidates = [];
      generation++;
    },
  };

  /** Claims and handles until nothing is due; `max` items at most. */
  async function lane(max = Infinity): Promise<number> {
    let handled = 0;
    while (handled < max && !closing && !paused()) {
      const next = await claimNext();
      if (!next) break;
      const urgent = !isBulk(next.c);
      if (urgent) urgentInFlight++;
      try {
        await opts.handle(next.item, ctx);
      } finally {
        if (urgent && --urgentInFlight === 0) {
          const waiting = urgentDone;
          urgentDone = [];
          for (const r of waiting) r();
        }
      }
      handled++;
      // Progress is health: a runner draining a long backlog after an outage is working, not
      // failing (readiness would otherwise stay false until the backlog is gone).
      lastPollOk = true;
    }
    return handled;
  }

  async function runOnce(): Promise<number> {
    if (!reconciled) {
      const added = await store.reconcile(now());
      if (added > 0) log.info({ added }, `${opts.name} due queue: entries added for unfinished items`);
      reconciled = true;
    }
    if (paused()) lastPollAt = Date.now();
    let handled = 0;
    if (opts.probeFirst && concurrency > 1) {
      handled = await lane(serial ? Infinity : 1);
      // A serial drain that ended without a pause or a stop emptied the backlog.
      if (serial && !paused() && !closing) serial = false;
      if (handled === 0 || paused() || closing) {
        lastPollOk = true;
        return handled;
      }
    }
    const run: LaneSet = { lanes: new Set(), handled: 0 };
    running = run;
    try {
      openLanes(run);
      let failed: unknown;
      while (run.lanes.size > 0) {
        for (const r of await Promise.allSettled([...run.lanes])) if (r.status === 'rejected') failed ??= r.reason;
      }
      if (failed !== undefined) throw failed;
    } finally {
      if (running === run) running = undefined;
    }
    lastPollOk = true;
    return handled + run.handled;
  }

  /**
   * The lanes of the run in progress. A lane ends when it finds nothing due; work queued while the
   * run goes on opens lanes again (openLanes on wake-up), so a backlog that builds up during a run
   * is not left to the one lane still busy.
   */
  interface LaneSet {
    lanes: Set<Promise<number>>;
    handled: number;
  }
  let running: LaneSet | undefined;

  function openLanes(run: LaneSet): void {
    while (run.lanes.size < concurrency && !closing && !paused()) {
      const p: Promise<number> = lane().then(
        (n) => {
          run.lanes.delete(p);
          run.handled += n;
          return n;
        },
        (err: unknown) => {
          run.lanes.delete(p);
          throw err;
        },
      );
      // A lane opened on wake-up may fail before runOnce's next allSettled looks at it: handled
      // here, so the failure is reported by runOnce rather than as an unhandled rejection.
      p.catch(() => {});
      run.lanes.add(p);
    }
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
    (err) => log.error({ err }, `${opts.name} poll failed`),
  );

  // Work queued in this process must not wait for the next poll; urgent work must not wait behind
  // bulk candidates already read.
  const onWake = (prio?: number) => {
    if (!prio && (reading || candidates.some(isBulk))) ctx.rewind();
    if (running) openLanes(running);
    loop.kick();
  };

  return {
    ownerId,
    runOnce,
    start() {
      if (loop.running) return;
      closing = false;
      opts.wake?.emitter.on(opts.wake.event, onWake);
      loop.start();
    },
    async stop() {
      closing = true;
      opts.wake?.emitter.off(opts.wake.event, onWake);
      await loop.stop();
      closing = false;
    },
    // Polls at least every pollMs; a handler is bounded by its timeouts, below leaseMs.
    healthy: () => loop.running && lastPollOk && Date.now() - lastPollAt < leaseMs + 2 * pollMs,
  };
}
