// A small worker_threads pool that runs mailparser off the main event loop: a 10 MB body or a
// hostile MIME structure costs a worker seconds, not the SMTP doors and HTTP pages their
// responsiveness. Each message has a deadline; a worker that overruns it (or dies, e.g. at its
// memory limit) is terminated and replaced, and only that message fails (intake retries it).
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import os from 'node:os';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { Worker } from 'node:worker_threads';
import { AppError } from '../domain/errors.ts';
import { type Logger } from '../logger.ts';
import { PARSE_WORKER_MARK, reviveBuffers, type ParsedInboundMail, type ParseReply, type ParseRequest } from './parse-worker.ts';

export interface ParsePoolOptions {
  /** Workers; default min(2, available cores). */
  size?: number;
  /** Messages waiting for a worker beyond which parse() refuses at once (MAIL_PARSE_BUSY). */
  maxQueue?: number;
  /** Per-message deadline, from the moment a worker takes the message. */
  timeoutMs?: number;
  /** V8 old-generation limit per worker; past it the worker dies and is replaced. */
  maxHeapMb?: number;
  logger?: Logger;
}

export interface ParsePoolStats {
  workers: number;
  busy: number;
  queued: number;
  /** Deepest the queue has been since start. */
  maxQueued: number;
  parsed: number;
  failed: number;
  timeouts: number;
  crashes: number;
  refused: number;
}

export interface ParsePool {
  parse(raw: Buffer): Promise<ParsedInboundMail>;
  stats(): ParsePoolStats;
  /** Refuses new work, fails what is queued or running (MAIL_PARSE_CLOSED), stops the workers. */
  close(): Promise<void>;
}

interface Job {
  id: number;
  raw: Buffer;
  resolve(mail: ParsedInboundMail): void;
  reject(err: Error): void;
}

interface Slot {
  worker: Worker | undefined;
  /** The worker has loaded mailparser; until then its message's deadline has not started. */
  ready: boolean;
  job: Job | undefined;
  timer: NodeJS.Timeout | undefined;
}

export const DEFAULT_PARSE_TIMEOUT_MS = 20_000;
/** Longest a new worker may take to load (tsx + mailparser, ~0.3–1 s) before its message fails. */
const BOOT_TIMEOUT_MS = 30_000;

// Compiled (dist/, production) the worker is plain JavaScript beside this file; from the sources it needs tsx.
const COMPILED = import.meta.url.endsWith('.js');
const WORKER_URL = new URL(COMPILED ? './parse-worker.js' : './parse-worker.ts', import.meta.url);
// Node 20 applies neither `--import tsx` nor the parent's loader to a worker's entry module, so each
// worker (a CommonJS eval script) registers tsx's ESM hooks itself, then imports the TypeScript
// worker file. The hooks' module is found through tsx's package.json (not import.meta.resolve:
// under mocha this file is loaded as CommonJS, and tsx's CommonJS API build fails in a worker).
const TSX_PACKAGE = createRequire(import.meta.url).resolve('tsx/package.json');
const TSX_API = pathToFileURL(
  path.join(path.dirname(TSX_PACKAGE), (JSON.parse(readFileSync(TSX_PACKAGE, 'utf8')) as { exports: Record<string, { import: { default: string } }> }).exports['./esm/api']!.import.default),
);
const BOOT = COMPILED
  ? `import(${JSON.stringify(WORKER_URL.href)});`
  : `import(${JSON.stringify(TSX_API.href)}).then((tsx) => { tsx.register(); return import(${JSON.stringify(WORKER_URL.href)}); });`;

export function createParsePool(opts: ParsePoolOptions = {}): ParsePool {
  const size = Math.max(1, opts.size ?? Math.min(2, os.availableParallelism()));
  const maxQueue = opts.maxQueue ?? 1000;
  const timeoutMs = opts.timeoutMs ?? DEFAULT_PARSE_TIMEOUT_MS;
  const maxHeapMb = opts.maxHeapMb ?? 256;
  const log = opts.logger;
  const queue: Job[] = [];
  const slots: Slot[] = Array.from({ length: size }, (): Slot => ({ worker: undefined, ready: false, job: undefined, timer: undefined }));
  const counts = { maxQueued: 0, parsed: 0, failed: 0, timeouts: 0, crashes: 0, refused: 0 };
  let nextId = 1;
  let closed = false;

  function spawn(slot: Slot): Worker {
    const worker = new Worker(BOOT, {
      eval: true,
      workerData: { mark: PARSE_WORKER_MARK },
      // Young generation kept small too: a parse allocates mostly short-lived strings.
      resourceLimits: { maxOldGenerationSizeMb: maxHeapMb, maxYoungGenerationSizeMb: 32 },
      stdout: false,
      stderr: false,
    });
    worker.unref();
    worker.on('message', (reply: ParseReply | 'ready') => {
      if (slot.worker !== worker) return;
      if (reply === 'ready') {
        slot.ready = true;
        if (slot.job) arm(slot, slot.job, timeoutMs);
        return;
      }
      const job = slot.job;
      if (slot.worker !== worker || !job || job.id !== reply.id) return;
      finish(slot);
      if ('error' in reply) {
        counts.failed++;
        job.reject(new AppError('MAIL_PARSE_FAILED', `the message could not be parsed: ${reply.error}`));
      } else {
        counts.parsed++;
        job.resolve(reviveBuffers(reply.mail));
      }
      pump();
    });
    // 'error' is an uncaught exception or the memory limit (ERR_WORKER_OUT_OF_MEMORY); 'exit'
    // follows it. Either way the worker is gone: fail its message and let pump() start another.
    const gone = (why: string) => {
      if (slot.worker !== worker) return;
      const job = slot.job;
      finish(slot);
      slot.worker = undefined;
      if (closed) return;
      counts.crashes++;
      log?.warn({ why, hadMessage: Boolean(job) }, 'mail parse worker died; replacing it');
      job?.reject(new AppError('MAIL_PARSE_CRASHED', `the message parser stopped (${why})`));
      pump();
    };
    worker.on('error', (err) => gone(`${(err as { code?: string }).code ?? 'error'}: ${err.message}`));
    worker.on('exit', (code) => gone(`exit ${code}`));
    return worker;
  }

  function finish(slot: Slot): void {
    clearTimeout(slot.timer);
    slot.timer = undefined;
    slot.job = undefined;
    slot.worker?.unref();
  }

  function run(slot: Slot, job: Job): void {
    if (!slot.worker) {
      slot.worker = spawn(slot);
      slot.ready = false;
    }
    const worker = slot.worker;
    slot.job = job;
    worker.ref();
    arm(slot, job, slot.ready ? timeoutMs : BOOT_TIMEOUT_MS + timeoutMs);
    worker.postMessage({ id: job.id, raw: job.raw } satisfies ParseRequest);
  }

  /** (Re)starts the deadline of the slot's message. */
  function arm(slot: Slot, job: Job, ms: number): void {
    const worker = slot.worker!;
    clearTimeout(slot.timer);
    slot.timer = setTimeout(() => {
      if (slot.job !== job) return;
      counts.timeouts++;
      finish(slot);
      // Detach first so the 'exit' of the terminated worker is not counted as a crash.
      slot.worker = undefined;
      void worker.terminate();
      log?.warn({ timeoutMs, bytes: job.raw.length }, 'mail parse timed out; worker replaced');
      job.reject(new AppError('MAIL_PARSE_TIMEOUT', `parsing the message took longer than ${timeoutMs} ms`));
      pump();
    }, ms);
  }

  function pump(): void {
    if (closed) return;
    for (const slot of slots) {
      if (slot.job) continue;
      const job = queue.shift();
      if (!job) return;
      run(slot, job);
    }
  }

  // Started up front: a worker's first start (loader + mailparser) takes a few hundred ms.
  for (const slot of slots) slot.worker = spawn(slot);

  return {
    parse(raw) {
      if (closed) return Promise.reject(new AppError('MAIL_PARSE_CLOSED', 'the message parser is shut down'));
      if (queue.length >= maxQueue) {
        counts.refused++;
        return Promise.reject(new AppError('MAIL_PARSE_BUSY', `more than ${maxQueue} messages are waiting to be parsed`));
      }
      return new Promise<ParsedInboundMail>((resolve, reject) => {
        queue.push({ id: nextId++, raw, resolve, reject });
        counts.maxQueued = Math.max(counts.maxQueued, queue.length);
        pump();
      });
    },
    stats: () => ({
      workers: slots.filter((s) => s.worker).length,
      busy: slots.filter((s) => s.job).length,
      queued: queue.length,
      ...counts,
    }),
    async close() {
      if (closed) return;
      closed = true;
      const stopped = new AppError('MAIL_PARSE_CLOSED', 'the message parser is shut down');
      for (const job of queue.splice(0)) job.reject(stopped);
      const workers: Worker[] = [];
      for (const slot of slots) {
        const job = slot.job;
        finish(slot);
        job?.reject(stopped);
        if (slot.worker) workers.push(slot.worker);
        slot.worker = undefined;
      }
      await Promise.all(workers.map((w) => w.terminate()));
    },
  };
}
