// Shared by the P1–P4 benchmarks: the database (MONGODB_URI, else an embedded FerretDB in a
// temp dir) and its description, server child processes (bench/bench-server.ts) so the load
// generator never shares an event loop with what it measures, order mails, percentiles.
import { PATCH_LEVEL } from '../src/db/ferretdb-build.ts';
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import mongoose from 'mongoose';
import { MODELS } from '../src/db/connection.ts';
import { startEmbeddedFerretdb, type EmbeddedDb } from '../src/db/embedded-ferretdb.ts';
import { ensureFerretdb } from '../src/db/ferretdb-build.ts';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
export const MAIL_DOMAIN = 'paymail.bench';
/** Fixed for the run, so the bench process can verify links the server signed. */
export const LINK_SIGNING_KEYS = `bench:${'k'.repeat(40)}`;

export interface BenchDb {
  /** URI of the bench's own database on the server. */
  uri: string;
  /** e.g. "FerretDB v1.24.1 (SQLite backend, embedded)", printed beside every figure. */
  description: string;
  stop(): Promise<void>;
}

let shared: { base: string; embedded?: EmbeddedDb; dir?: string; description: string; users: number } | undefined;

async function describe(): Promise<string> {
  const admin = mongoose.connection.db!.admin();
  const info = (await admin.command({ buildInfo: 1 })) as { version?: string; ferretdbVersion?: string; ferretdb?: { version?: string } };
  const ferret = info.ferretdbVersion ?? info.ferretdb?.version;
  if (ferret) {
    const where = process.env.MONGODB_URI ? '' : `, embedded, our build with the _id and merchantId push-down patches (${PATCH_LEVEL})`;
    return `FerretDB ${ferret} (SQLite backend${where}; MongoDB wire ${info.version ?? '?'})`;
  }
  return `MongoDB ${info.version ?? '?'}`;
}

/**
 * Connects mongoose (this process) to a fresh database; the server is shared by the run.
 * `keep` (a bench whose seeding takes an hour, P5+): the embedded server's files go in `keep.dir`
 * and stay, the database is named `keep.name` and is not dropped at the end, so the next run can
 * reuse what was seeded.
 */
export async function openDb(name: string, keep?: { dir: string; name: string }): Promise<BenchDb> {
  if (!shared) {
    let base = process.env.MONGODB_URI;
    let embedded: EmbeddedDb | undefined;
    let dir: string | undefined;
    if (!base && keep) {
      embedded = await startEmbeddedFerretdb({ binary: await ensureFerretdb((l) => console.error(l)), dir: keep.dir });
      base = embedded.uri;
    } else if (!base) {
      dir = await mkdtemp(path.join(os.tmpdir(), 'paymail-bench-db-'));
      embedded = await startEmbeddedFerretdb({ binary: await ensureFerretdb((l) => console.error(l)), dir });
      base = embedded.uri;
    }
    shared = { base, description: '', users: 0, ...(embedded ? { embedded } : {}), ...(dir ? { dir } : {}) };
  }
  shared.users++;
  const u = new URL(shared.base);
  u.pathname = keep ? `/${keep.name}` : `/bench_${name}_${randomBytes(3).toString('hex')}`;
  const uri = u.toString();
  await mongoose.connect(uri, { serverSelectionTimeoutMS: 10_000, autoIndex: false });
  await Promise.all(MODELS.map((m) => m.createIndexes()));
  shared.description ||= await describe();
  const s = shared;
  return {
    uri,
    description: s.description,
    async stop() {
      if (!keep) await mongoose.connection.dropDatabase().catch(() => {});
      await mongoose.disconnect();
      if (--s.users === 0 && !process.env.BENCH_KEEP_DB) {
        await s.embedded?.stop();
        if (s.dir) await rm(s.dir, { recursive: true, force: true });
        shared = undefined;
      }
    },
  };
}

export interface ServerProcess {
  ports: { http?: number; submission?: number; smtp?: number };
  child: ChildProcess;
  stop(): Promise<void>;
}

/** Starts bench/bench-server.ts in `mode` (paymail | sink | koa) and waits for its ports line. */
export async function startServer(mode: 'paymail' | 'sink' | 'durable-sink' | 'koa', env: Record<string, string>): Promise<ServerProcess> {
  const dataDir = await mkdtemp(path.join(os.tmpdir(), `paymail-bench-${mode}-`));
// BENCH_CPU_PROF=<dir>: the servers write V8 CPU profiles there (for "profile, fix").
  const prof = process.env.BENCH_CPU_PROF ? ['--cpu-prof', `--cpu-prof-dir=${process.env.BENCH_CPU_PROF}`] : [];
  const child = spawn(process.execPath, [...prof, '--import', 'tsx', path.join(ROOT, 'bench/bench-server.ts'), mode], {
    cwd: ROOT,
    env: {
      PATH: process.env.PATH ?? '',
      HOME: process.env.HOME ?? '',
      NODE_ENV: 'test',
      LOG_LEVEL: 'warn',
      DATA_DIR: dataDir,
      HTTP_PORT: '0',
      SMTP_SUBMISSION_PORT: '0',
      SMTP_MX_PORT: '0',
      MAIL_DOMAIN,
      LINK_SIGNING_KEYS,
      ...env,
    },
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  const ports = await new Promise<ServerProcess['ports']>((resolve, reject) => {
    let buf = '';
    const timer = setTimeout(() => reject(new Error(`${mode} server not ready in 60 s`)), 60_000);
    child.stdout!.on('data', (d: Buffer) => {
      buf += d.toString();
      const m = /^BENCH_READY (.*)$/m.exec(buf);
      if (m) {
        clearTimeout(timer);
        resolve(JSON.parse(m[1]!) as ServerProcess['ports']);
      }
    });
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`${mode} server exited with ${code}`));
    });
  });
  return {
    ports,
    child,
    async stop() {
      if (child.exitCode === null) {
        const exited = new Promise((r) => child.once('exit', r));
        child.kill('SIGTERM');
        const t = setTimeout(() => child.kill('SIGKILL'), 15_000);
        await exited;
        clearTimeout(t);
      }
      await rm(dataDir, { recursive: true, force: true });
    },
  };
}

export function percentile(sorted: number[], p: number): number {
  if (sorted.length === 0) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)]!;
}

export const fmt = (n: number, digits = 2): string => (Number.isFinite(n) ? n.toFixed(digits) : String(n));

/** A plain order mail, as a merchant's mail client sends it. */
export function orderMailText(i: number): { subject: string; text: string } {
  return {
    subject: `Booking B-${i}`,
    text: `Amount: ${100 + (i % 900)},50 €\nReference: B-${i}\nDescription: Double room, 2 nights\nCustomer: Anna Rossi\n`,
  };
}

/** What every benchmark returns to run-all.ts. */
export interface BenchResult {
  id: string;
  title: string;
  /** Measured ratio, its target and whether it holds. */
  checks: Array<{ name: string; value: number; target: string; ok: boolean }>;
  /** Markdown lines with the figures. */
  lines: string[];
  database: string;
}

export function printResult(r: BenchResult): void {
  console.log(`\n## ${r.id} — ${r.title}\ndatabase: ${r.database}`);
  for (const l of r.lines) console.log(l);
  for (const c of r.checks) console.log(`${c.ok ? 'MET   ' : 'MISSED'} ${c.name} = ${fmt(c.value)} (target ${c.target})`);
}
