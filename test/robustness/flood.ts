// The robustness run, shared by test/robustness/hostile-mails.test.ts and
// bench/intake-robustness.ts: start paymail as a probed child process, send the hostile mails
// through the submission door with a standard SMTP client (nodemailer, several connections),
// send well-formed orders from another client at the same time, and report every answer.
import { fork, type ChildProcess } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import nodemailer from 'nodemailer';
import { hostileMail, type HostileKind } from './hostile-mails.ts';
// `import type`: probed-paymail.ts is the child's entry point and must not run here.
import type { ProbeReply, ProbeRequest } from './probed-paymail.ts';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');

export type StatsReply = Extract<ProbeReply, { type: 'stats' }>;

export interface ProbedPaymail {
  child: ChildProcess;
  ports: { http: number; submission: number };
  /** Everything the child wrote to stdout/stderr (logs), for diagnosis. */
  output: string[];
  alive(): boolean;
  stats(reset?: boolean): Promise<StatsReply>;
  stop(): Promise<void>;
}

/** Forks test/robustness/probed-paymail.ts with `env` (plus PATH and HOME) and waits until it is ready. */
export async function startProbedPaymail(env: Record<string, string>, timeoutMs = 60_000): Promise<ProbedPaymail> {
  const child = fork(path.join(ROOT, 'test/robustness/probed-paymail.ts'), [], {
    cwd: ROOT,
    execArgv: ['--import', 'tsx'],
    env: {
      PATH: process.env.PATH ?? '',
      HOME: process.env.HOME ?? '',
      NODE_ENV: 'test',
      // Diagnostics pass through (src/db/connection.ts: slow database commands).
      ...Object.fromEntries(Object.entries(process.env).filter(([k]) => k.startsWith('SLOW_QUERY_'))),
      ...env,
    },
    stdio: ['ignore', 'pipe', 'pipe', 'ipc'],
  });
  const output: string[] = [];
  const keep = (d: Buffer) => {
    output.push(d.toString());
    if (output.length > 2000) output.splice(0, 1000);
  };
  child.stdout!.on('data', keep);
  child.stderr!.on('data', keep);
  let exited = false;
  child.once('exit', () => (exited = true));
  const next = <T extends ProbeReply['type']>(type: T, ms: number) =>
    new Promise<Extract<ProbeReply, { type: T }>>((resolve, reject) => {
      const onMessage = (m: ProbeReply) => {
        if (m.type !== type) return;
        cleanup();
        resolve(m as Extract<ProbeReply, { type: T }>);
      };
      const onExit = (code: number | null) => {
        cleanup();
        reject(new Error(`paymail exited (${code}) while waiting for "${type}":\n${output.join('').slice(-4000)}`));
      };
      const t = setTimeout(() => {
        cleanup();
        reject(new Error(`no "${type}" from paymail within ${ms} ms:\n${output.join('').slice(-4000)}`));
      }, ms);
      const cleanup = () => {
        clearTimeout(t);
        child.off('message', onMessage);
        child.off('exit', onExit);
      };
      child.on('message', onMessage);
      child.once('exit', onExit);
    });
  const ready = await next('ready', timeoutMs);
  const request = (m: ProbeRequest) => child.send(m);
  return {
    child,
    ports: ready.ports,
    output,
    alive: () => !exited && child.connected,
    async stats(reset = false) {
      const reply = next('stats', 10_000);
      request({ type: 'stats', reset });
      return reply;
    },
    async stop() {
      if (exited) return;
      const stopped = next('stopped', 30_000).catch(() => child.kill('SIGKILL'));
      request({ type: 'stop' });
      await stopped;
    },
  };
}

export interface SmtpTarget {
  port: number;
  user: string;
  pass: string;
  /** Envelope and header addresses: the merchant's inbound address and its own address. */
  to: string;
  from: string;
}

function transport(t: SmtpTarget, connections: number) {
  return nodemailer.createTransport({
    host: '127.0.0.1',
    port: t.port,
    secure: false,
    // Plain SMTP on the loopback (allowed outside production): the run measures intake, not TLS.
    ignoreTLS: true,
    auth: { user: t.user, pass: t.pass },
    pool: true,
    maxConnections: connections,
    maxMessages: Infinity,
    connectionTimeout: 30_000,
    greetingTimeout: 30_000,
    socketTimeout: 120_000,
  });
}

/** The SMTP answer to one mail: its reply code, or 'none' when the connection failed without one. */
export type Answer = { code: number; storedId?: string } | { code: 'none'; error: string };

async function send(tr: ReturnType<typeof transport>, t: SmtpTarget, raw: Buffer, deadlineMs: number): Promise<Answer> {
  let timer: NodeJS.Timeout | undefined;
  const deadline = new Promise<Answer>((resolve) => {
    timer = setTimeout(() => resolve({ code: 'none', error: `no answer within ${deadlineMs} ms` }), deadlineMs);
  });
  const attempt = tr.sendMail({ envelope: { from: t.from, to: [t.to] }, raw }).then(
    (info): Answer => {
      const code = Number(/^(\d{3})/.exec(info.response)?.[1] ?? NaN);
      const id = /stored as (\w+)/.exec(info.response)?.[1];
      return { code, ...(id ? { storedId: id } : {}) };
    },
    (err: { responseCode?: number; code?: string; message?: string }): Answer =>
      typeof err.responseCode === 'number' ? { code: err.responseCode } : { code: 'none', error: `${err.code ?? ''} ${err.message ?? ''}`.trim() },
  );
  try {
    return await Promise.race([attempt, deadline]);
  } finally {
    clearTimeout(timer);
  }
}

export interface FloodOptions {
  target: SmtpTarget;
  seed: number;
  count: number;
  /** Parallel SMTP connections. */
  connections: number;
  /** Longest wait for one mail's answer. */
  perMailDeadlineMs?: number;
  onProgress?: (done: number) => void;
}

export interface FloodResult {
  count: number;
  durationMs: number;
  /** Answers by reply code ('none' = the connection failed without one). */
  byCode: Record<string, number>;
  /** Answers by kind of hostile mail and code, e.g. { 'ten-mb-text': { 250: 1 } }. */
  byKind: Partial<Record<HostileKind, Record<string, number>>>;
  storedIds: Set<string>;
  /** Mails answered 4xx at first and sent again, as an MTA would, and their final answers. */
  retried: number;
  afterRetry: Record<string, number>;
  unanswered: Array<{ index: number; kind: HostileKind; error: string }>;
  bytes: number;
}

export async function flood(opts: FloodOptions): Promise<FloodResult> {
  const tr = transport(opts.target, opts.connections);
  const byCode: Record<string, number> = {};
  const byKind: FloodResult['byKind'] = {};
  const storedIds = new Set<string>();
  const unanswered: FloodResult['unanswered'] = [];
  let nextIndex = 0;
  let done = 0;
  let bytes = 0;
  const temporary: number[] = [];
  const started = performance.now();
  // Two mails in flight per connection keeps every connection busy while the next one is built.
  const lanes = Array.from({ length: opts.connections * 2 }, async () => {
    while (nextIndex < opts.count) {
      const m = hostileMail(opts.seed, nextIndex++, { to: opts.target.to, from: opts.target.from });
      bytes += m.raw.length;
      const a = await send(tr, opts.target, m.raw, opts.perMailDeadlineMs ?? 120_000);
      const key = String(a.code);
      byCode[key] = (byCode[key] ?? 0) + 1;
      const k = (byKind[m.kind] ??= {});
      k[key] = (k[key] ?? 0) + 1;
      if (a.code === 'none') unanswered.push({ index: m.index, kind: m.kind, error: a.error });
      else if (a.storedId) storedIds.add(a.storedId);
      else if (a.code >= 400 && a.code < 500) temporary.push(m.index);
      opts.onProgress?.(++done);
    }
  });
  await Promise.all(lanes);
  const durationMs = performance.now() - started;
  // A 4xx means "try again later": retry like an MTA (a few times, after a pause), so a message
  // that was stored late (after the door gave up waiting) is found as a duplicate and processed.
  const afterRetry: Record<string, number> = {};
  for (const index of temporary) {
    let a: Answer = { code: 'none', error: 'not retried' };
    for (let attempt = 0; attempt < 5; attempt++) {
      await new Promise((r) => setTimeout(r, 1000));
      a = await send(tr, opts.target, hostileMail(opts.seed, index, { to: opts.target.to, from: opts.target.from }).raw, opts.perMailDeadlineMs ?? 120_000);
      if (a.code === 'none' || a.code < 400 || a.code >= 500) break;
    }
    afterRetry[String(a.code)] = (afterRetry[String(a.code)] ?? 0) + 1;
    if (a.code !== 'none' && a.storedId) storedIds.add(a.storedId);
  }
  tr.close();
  return { count: opts.count, durationMs, byCode, byKind, storedIds, retried: temporary.length, afterRetry, unanswered, bytes };
}

export interface OrderProbeResult {
  sent: number;
  accepted: number;
  maxLatencyMs: number;
  latenciesMs: number[];
  references: string[];
}

/**
 * Another merchant client sending well-formed orders one after another while the flood runs:
 * how long does a normal merchant wait for its 250?
 */
export function startOrderProbe(target: SmtpTarget, intervalMs = 250): { stop(): Promise<OrderProbeResult> } {
  const tr = transport(target, 1);
  const result: OrderProbeResult = { sent: 0, accepted: 0, maxLatencyMs: 0, latenciesMs: [], references: [] };
  let stopping = false;
  const loop = (async () => {
    while (!stopping) {
      const reference = `PROBE-${result.sent + 1}-${Date.now()}`;
      const raw = Buffer.from(
        [`From: ${target.from}`, `To: ${target.to}`, `Subject: Order ${reference}`, `Message-ID: <${reference}@probe.test>`, 'Content-Type: text/plain; charset=utf-8', '', 'Amount: 42,50 EUR', `Reference: ${reference}`, 'Description: probe order', ''].join('\r\n'),
      );
      const t0 = performance.now();
      const a = await send(tr, target, raw, 120_000);
      const ms = performance.now() - t0;
      result.sent++;
      result.latenciesMs.push(ms);
      result.maxLatencyMs = Math.max(result.maxLatencyMs, ms);
      if (a.code === 250) {
        result.accepted++;
        result.references.push(reference);
      }
      await new Promise((r) => setTimeout(r, intervalMs));
    }
  })();
  return {
    async stop() {
      stopping = true;
      await loop;
      tr.close();
      return result;
    },
  };
}

/** Milliseconds rounded for reports. */
export const ms = (v: number) => Math.round(v * 10) / 10;
