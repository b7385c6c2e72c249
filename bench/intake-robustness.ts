// Intake robustness benchmark: the hostile-mail set (test/robustness/hostile-mails.ts, 10,000 by
// default) through the submission door of a paymail process, twice in one run: MIME parsing on
// the main thread (baseline) and in the worker pool. Prints, for each: count, answers by SMTP
// code, duration, how long a normal merchant waited for its 250, and the longest event-loop stall
// of the paymail process (during the flood and until every message was processed); then the
// stall ratio baseline / pool.
//
//   npm run bench                              # 10,000 mails per mode (long: FerretDB writes dominate)
//   ROBUSTNESS_COUNT=500 npm run bench         # a quick look
//   BENCH_MODES=pool ROBUSTNESS_COUNT=10000 npm run bench
// MONGODB_URI points it at a running server; otherwise an embedded FerretDB is started.
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import mongoose from 'mongoose';
import { MODELS } from '../src/db/connection.ts';
import { startEmbeddedFerretdb, type EmbeddedDb } from '../src/db/embedded-ferretdb.ts';
import { ensureFerretdb } from '../src/db/ferretdb-build.ts';
import { InboundMessage } from '../src/db/models/inbound-message.model.ts';
import { createMerchantService } from '../src/services/merchant.service.ts';
import { flood, ms, startOrderProbe, startProbedPaymail, type FloodResult, type OrderProbeResult } from '../test/robustness/flood.ts';
import { createRepositories } from '../src/db/repositories.ts';

const repos = createRepositories();

type Mode = 'main' | 'pool';

const COUNT = Number(process.env.ROBUSTNESS_COUNT ?? 10_000);
const SEED = Number(process.env.ROBUSTNESS_SEED ?? 20260601);
const CONNECTIONS = Number(process.env.BENCH_CONNECTIONS ?? 4);
const MODES = (process.env.BENCH_MODES ?? 'main,pool').split(',').map((m) => m.trim()) as Mode[];
const MAIL_DOMAIN = 'paymail.bench';

interface ModeReport {
  mode: Mode;
  run: FloodResult;
  orders: OrderProbeResult;
  stallFloodMs: number;
  stallTotalMs: number;
  p99Ms: number;
  drainMs: number;
  statuses: Record<string, number>;
  pool: unknown;
}

async function runMode(baseUri: string, mode: Mode): Promise<ModeReport> {
  const u = new URL(baseUri);
  u.pathname = `/bench_${mode}_${randomBytes(4).toString('hex')}`;
  const uri = u.toString();
  await mongoose.connect(uri, { serverSelectionTimeoutMS: 10_000, autoIndex: false });
  await Promise.all(MODELS.map((m) => m.createIndexes()));
  const dataDir = await mkdtemp(path.join(os.tmpdir(), `paymail-bench-${mode}-`));
  const app = await startProbedPaymail({
    MONGODB_URI: uri,
    DATA_DIR: dataDir,
    HTTP_PORT: '0',
    SMTP_SUBMISSION_PORT: '0',
    SMTP_MX_PORT: '0',
    MAIL_DOMAIN,
    LOG_LEVEL: 'error',
    MAX_MESSAGE_BYTES: String(15 * 1024 * 1024),
    PAYMAIL_PARSE: mode,
  });
  try {
    const m = await createMerchantService({ repos, mailDomain: MAIL_DOMAIN }).create({ name: `Bench ${mode}`, email: 'desk@bench.example' });
    const target = { port: app.ports.submission, user: m.smtpUser, pass: m.smtpPassword, to: m.inboundAddress, from: m.email };
    await app.stats(true);
    const probe = startOrderProbe(target, 500);
    const started = Date.now();
    const run = await flood({
      target,
      seed: SEED,
      count: COUNT,
      connections: CONNECTIONS,
      onProgress: (n) => n % 500 === 0 && process.stderr.write(`  [${mode}] ${n}/${COUNT} answered, ${Math.round((Date.now() - started) / 1000)} s\n`),
    });
    const orders = await probe.stop();
    const duringFlood = await app.stats();
    // Processing lags behind the SMTP answers: wait until nothing is received or processing.
    const drainStart = Date.now();
    let open = Infinity;
    while (Date.now() - drainStart < 30 * 60_000 && (open = await InboundMessage.countDocuments({ status: { $in: ['received', 'processing'] } })) > 0) {
      await new Promise((r) => setTimeout(r, 1000));
    }
    const drainMs = Date.now() - drainStart;
    const total = await app.stats();
    const statuses: Record<string, number> = {};
    for (const d of await InboundMessage.find({}, { status: 1 }).lean()) statuses[d.status] = (statuses[d.status] ?? 0) + 1;
    if (open > 0) statuses.stillOpen = open;
    if (!app.alive()) statuses.processDied = 1;
    return { mode, run, orders, stallFloodMs: duringFlood.maxStallMs, stallTotalMs: total.maxStallMs, p99Ms: total.p99StallMs, drainMs, statuses, pool: total.pool };
  } finally {
    await app.stop();
    await mongoose.connection.dropDatabase().catch(() => {});
    await mongoose.disconnect();
    await rm(dataDir, { recursive: true, force: true });
  }
}

function print(r: ModeReport): void {
  const o = r.orders.latenciesMs.toSorted((a, b) => a - b);
  console.log(
    [
      `mode ${r.mode === 'main' ? 'main thread (baseline)' : 'worker pool'}`,
      `  count ${r.run.count} (${(r.run.bytes / 2 ** 20).toFixed(0)} MiB), ${CONNECTIONS} connections, seed ${SEED}`,
      `  answers by code ${JSON.stringify(r.run.byCode)}; 4xx retried ${r.run.retried} → ${JSON.stringify(r.run.afterRetry)}${r.run.unanswered.length ? `; unanswered ${JSON.stringify(r.run.unanswered.slice(0, 5))}` : ''}`,
      `  duration ${ms(r.run.durationMs / 1000)} s (${ms(r.run.count / (r.run.durationMs / 1000))} mails/s), drain after it ${ms(r.drainMs / 1000)} s`,
      `  stored messages ${JSON.stringify(r.statuses)}`,
      `  normal orders ${r.orders.accepted}/${r.orders.sent} accepted; answer median ${ms(o[Math.floor(o.length / 2)] ?? 0)} ms, max ${ms(r.orders.maxLatencyMs)} ms`,
      `  longest event-loop stall ${ms(r.stallFloodMs)} ms during the flood, ${ms(r.stallTotalMs)} ms until drained (p99 ${ms(r.p99Ms)} ms)`,
      ...(r.pool ? [`  pool ${JSON.stringify(r.pool)}`] : []),
    ].join('\n'),
  );
}

let embedded: EmbeddedDb | undefined;
let dbDir: string | undefined;
try {
  let uri = process.env.MONGODB_URI;
  if (!uri) {
    dbDir = await mkdtemp(path.join(os.tmpdir(), 'paymail-bench-db-'));
    embedded = await startEmbeddedFerretdb({ binary: await ensureFerretdb((l) => console.error(l)), dir: dbDir });
    uri = embedded.uri;
  }
  console.log(`intake robustness: ${COUNT} hostile mails per mode, node ${process.version}, ${os.availableParallelism()} cores, ${process.env.MONGODB_URI ? 'MONGODB_URI' : 'embedded FerretDB'}`);
  const reports: ModeReport[] = [];
  for (const mode of MODES) {
    const r = await runMode(uri, mode);
    print(r);
    reports.push(r);
  }
  const base = reports.find((r) => r.mode === 'main');
  const pool = reports.find((r) => r.mode === 'pool');
  if (base && pool) {
    console.log(
      `longest stall, baseline / pool: ${ms(base.stallTotalMs)} / ${ms(pool.stallTotalMs)} ms = ${ms(base.stallTotalMs / Math.max(pool.stallTotalMs, 0.001))}×` +
        ` (during the flood ${ms(base.stallFloodMs)} / ${ms(pool.stallFloodMs)} ms = ${ms(base.stallFloodMs / Math.max(pool.stallFloodMs, 0.001))}×)`,
    );
  }
} finally {
  await embedded?.stop();
  if (dbDir) await rm(dbDir, { recursive: true, force: true });
}
