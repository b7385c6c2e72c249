// P5: the daily recap for 1,000 merchants over 100,000 orders ÷ a raw-driver scan of the same
// orders; and the peak RSS of the process doing the recap.
// Seeds a fresh database (insertMany in batches): merchants in ten time zones with varied recap
// hours and currencies; orders spread over the twelve days before the bench clock, with payments,
// failed attempts, expiries, cancellations, foreign currencies and refunds. Claims of the days
// before each merchant's latest due day are seeded as sent, so one run is the steady-state daily
// run: exactly one recap per merchant (the date differs by zone). Then, each in its own child
// process running the production build (bench/p5-child.mjs; peak RSS = the child's VmHWM from
// /proc, and process.memoryUsage().rss sampled):
//   baseline — raw driver `orders.find(<the recap's day window>)` iterated to the end;
//   recap    — the recap job's real pass (createRecapJob().runOnce(): claims, the orders pass,
//              refunds, day totals, one daily-recap mail per merchant queued in the outbox).
// Twice: the first day (no stored day totals: the 7-day chart reads the orders of the week) and
// the next day (the chart's earlier days come from `recap_days`).
//   npx tsx bench/p5-recap.ts      BENCH_P5_MERCHANTS (1000), BENCH_P5_ORDERS (100000)
// BENCH_P5_DB_DIR=<dir> keeps the embedded database there: a later run with the same sizes skips
// the seeding (an hour at P5+) and starts from the seeded merchants, orders and refunds alone.
import { prng } from '../test/robustness/hostile-mails.ts';
import { spawn, spawnSync } from 'node:child_process';
import { rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import mongoose from 'mongoose';
import { Claim } from '../src/db/claims.ts';
import { type MerchantDoc } from '../src/db/models/merchant.model.ts';
import { localDayBounds } from '../src/domain/local-day.ts';
import { createRecapService, recapKey } from '../src/services/recap.service.ts';
import { type BenchResult, MAIL_DOMAIN, fmt, openDb, printResult } from './lib.ts';
import { createRepositories } from '../src/db/repositories.ts';
import { MODELS } from '../src/db/connection.ts';

const repos = createRepositories();

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const MERCHANTS = Number(process.env.BENCH_P5_MERCHANTS ?? 1000);
const ORDERS = Number(process.env.BENCH_P5_ORDERS ?? 100_000);
/** The bench clock: a Wednesday evening in UTC, the next morning in Asia and Oceania. */
export const NOW = new Date('2026-03-11T23:30:00Z');
const DAY = 24 * 3600_000;
const SEED_DAYS = 12;

const ZONES: Array<[string, string, string]> = [
  ['Europe/Rome', 'EUR', 'it'],
  ['Europe/London', 'GBP', 'en'],
  ['America/New_York', 'USD', 'en'],
  ['America/Los_Angeles', 'USD', 'es'],
  ['Asia/Tokyo', 'JPY', 'en'],
  ['Australia/Sydney', 'AUD', 'en'],
  ['Asia/Kolkata', 'INR', 'en'],
  ['Europe/Berlin', 'EUR', 'de'],
  ['Pacific/Auckland', 'NZD', 'en'],
  ['Europe/Paris', 'EUR', 'fr'],
];
const CARDS = [
  { brand: 'visa', bin: '424242', last4: '4242', country: 'IT' },
  { brand: 'mastercard', bin: '555555', last4: '4444', country: 'FR' },
  { brand: 'amex', bin: '378282', last4: '0005', country: 'US' },
  { brand: 'visa', bin: '400000', last4: '0077', country: 'DE' },
];
const DECLINES = ['insufficient_funds', 'generic_decline', 'lost_card', 'over_limit'];
const NAMES = ['Anna Rossi', 'John Smith', 'Marie Dubois', 'Hans Müller', 'Lucía García', 'Kenji Sato', '=cmd|calc', 'O"Brien, Pat'];

interface Seeded {
  merchants: MerchantDoc[];
  orders: number;
  refunds: number;
  paid: number;
}

export async function seed(): Promise<Seeded> {
  const r = prng(20260311); // mulberry32: the same data every run
  const pick = <T>(xs: readonly T[]): T => xs[Math.floor(r() * xs.length)]!;
  const db = mongoose.connection.db!;
  const merchants: MerchantDoc[] = [];
  for (let i = 0; i < MERCHANTS; i++) {
    const [timezone, currency, locale] = ZONES[i % ZONES.length]!;
    const id = `mer_b${String(i).padStart(5, '0')}`;
    merchants.push({
      _id: id,
      name: `Bench Shop ${i}`,
      email: `desk${i}@shop${i}.bench.example`,
      alias: `b${i}x`,
      senderDomains: [`shop${i}.bench.example`],
      currency,
      locale,
      timezone,
      recapHour: 5 + (i % 5),
      delivery: 'merchant',
      linkLifetimeDays: 7,
      webhookSecret: 'whsec_bench',
      smtpUser: `bench-${i}`,
      smtpPasswordHash: 'scrypt$bench',
      status: 'active',
      createdAt: new Date(NOW.getTime() - 60 * DAY),
      updatedAt: new Date(NOW.getTime() - 60 * DAY),
    } as unknown as MerchantDoc);
  }
  await db.collection('merchants').insertMany(merchants as never[]);

  let batch: Record<string, unknown>[] = [];
  let refunds: Record<string, unknown>[] = [];
  let nRefunds = 0;
  let paid = 0;
  const flush = async () => {
    if (batch.length) await db.collection('orders').insertMany(batch as never[], { ordered: false });
    if (refunds.length) await db.collection('refunds').insertMany(refunds as never[], { ordered: false });
    batch = [];
    refunds = [];
  };
  for (let n = 0; n < ORDERS; n++) {
    const m = merchants[n % MERCHANTS]!;
    const id = `ord_b${String(n).padStart(7, '0')}`;
    const created = new Date(NOW.getTime() - r() * SEED_DAYS * DAY);
    const currency = r() < 0.85 ? m.currency : pick(['EUR', 'USD', 'GBP']);
    const amountMinor = currency === 'JPY' ? 1000 + Math.floor(r() * 50_000) : 500 + Math.floor(r() * 60_000);
    const card = pick(CARDS);
    const attempts: Record<string, unknown>[] = [];
    let at = created.getTime();
    const fails = r() < 0.3 ? 1 + Math.floor(r() * 3) : 0;
    for (let k = 0; k < fails; k++) {
      at += Math.floor(r() * 3 * 3600_000);
      if (at >= NOW.getTime()) break;
      attempts.push({ at: new Date(at), outcome: r() < 0.85 ? 'declined' : 'error', declineCode: pick(DECLINES), card, clientIp: '203.0.113.7' });
    }
    const p = r();
    let status = 'pending';
    const extra: Record<string, unknown> = {};
    const paidAt = at + Math.floor(r() * 20 * 3600_000);
    const expiredAt = created.getTime() + (1 + Math.floor(r() * 3)) * DAY;
    if (p < 0.55 && paidAt < NOW.getTime()) {
      status = 'paid';
      paid++;
      attempts.push({ at: new Date(paidAt), outcome: 'approved', authCode: 'A1B2C3', card, clientIp: '203.0.113.7' });
      extra.payment = { receiptNumber: `R-${n}`, authCode: 'A1B2C3', paidAt: new Date(paidAt), card: { ...card, expMonth: 12, expYear: 2029 } };
      if (r() < 0.06) {
        const k = r() < 0.3 ? 2 : 1;
        for (let s = 1; s <= k; s++) {
          const rat = paidAt + Math.floor(r() * 3 * DAY);
          if (rat >= NOW.getTime()) break;
          refunds.push({ _id: `rf_b${n}_${s}`, orderId: id, merchantId: m._id, seq: s, amountMinor: Math.floor(amountMinor / (k + 1)), currency, refundId: `acq_${n}_${s}`, by: 'ops@bench.example', at: new Date(rat) });
          nRefunds++;
        }
      }
    } else if (p < 0.75 && expiredAt < NOW.getTime()) {
      status = 'expired';
      extra.expiredAt = new Date(expiredAt);
    } else if (p < 0.82) {
      status = 'cancelled';
      extra.cancelledAt = new Date(created.getTime() + 3600_000);
    }
    batch.push({
      _id: id,
      publicId: `pub_b${n}`,
      merchantId: m._id,
      reference: `BK-${n}`,
      openReference: status === 'pending' ? `BK-${n}` : id,
      sourceKey: `msg:bench:${n}`,
      amountMinor,
      currency,
      description: r() < 0.5 ? `Double room, ${1 + (n % 5)} nights` : `Booking BK-${n}; "late check-in"`,
      customer: { name: pick(NAMES), email: `guest${n}@example.org` },
      locale: m.locale,
      delivery: 'merchant',
      status,
      expiresAt: new Date(expiredAt),
      linkExpiresAt: Math.floor(expiredAt / 1000),
      source: { inboundMessageId: `in_${n}`, messageId: `<${n}.bench@shop.example>`, subject: `Booking BK-${n}` },
      attempts,
      ...extra,
      createdAt: created,
      updatedAt: new Date(Math.min(NOW.getTime(), at)),
    });
    if (batch.length >= 1000) await flush();
  }
  await flush();
  return { merchants, orders: ORDERS, refunds: nRefunds, paid };
}

/**
 * Marks every due day before the latest as already recapped (claims, as the job leaves them), so
 * the run at `now` recaps exactly one day per merchant; returns each merchant's day window.
 */
export async function seedSentDays(merchants: MerchantDoc[], now: Date): Promise<Array<{ start: Date; end: Date }>> {
  const recap = createRecapService({ repos, mailDomain: MAIL_DOMAIN });
  const claims: Record<string, unknown>[] = [];
  const windows: Array<{ start: Date; end: Date }> = [];
  for (const m of merchants) {
    const dates = recap.dueDates(m, now);
    const last = dates.pop()!;
    windows.push(localDayBounds(last, m.timezone));
    for (const d of dates) claims.push({ _id: recapKey(m._id, d), at: now, kind: 'recap', subject: m._id, payload: { date: d }, applied: true, owner: 'bench' });
  }
  if (claims.length) await Claim.collection.insertMany(claims as never[], { ordered: false }).catch((e: { code?: number }) => { if (e.code !== 11000) throw e; });
  return windows;
}

interface ChildResult {
  ms: number;
  /** Peak RSS (VmHWM) of the whole child process, bytes. */
  hwm: number;
  /** Largest sampled process.memoryUsage().rss during the measured work, bytes. */
  sampled: number;
  detail: Record<string, unknown>;
}

/** Runs bench/p5-child.mjs in `mode` on the production build (dist/). */
function runChild(mode: 'baseline' | 'recap', env: Record<string, string>): Promise<ChildResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [path.join(ROOT, 'bench/p5-child.mjs'), mode], {
      cwd: ROOT,
      env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '', NODE_ENV: 'test', MAIL_DOMAIN, ...env },
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    let out = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    const timer = setTimeout(() => child.kill('SIGKILL'), 30 * 60_000);
    child.once('exit', (code) => {
      clearTimeout(timer);
      const m = /^P5_RESULT (.*)$/m.exec(out);
      if (code !== 0 || !m) return reject(new Error(`P5 ${mode} child exited with ${code}: ${out.slice(-500)}`));
      const r = JSON.parse(m[1]!) as ChildResult;
      // The recap's own log line has its phase timings.
      const log = out.split('\n').find((l) => l.includes('"recaps enqueued"'));
      if (log) r.detail.timings = (JSON.parse(log) as { timings?: unknown }).timings;
      resolve(r);
    });
  });
}

/** `npm run build`: the children run the production build, as `node dist/main.js` does. */
function buildDist(): void {
  const r = spawnSync(process.execPath, [path.join(ROOT, 'node_modules/typescript/bin/tsc'), '-p', path.join(ROOT, 'tsconfig.build.json')], { cwd: ROOT, stdio: 'inherit' });
  if (r.status !== 0) throw new Error('P5: npm run build failed');
}

const mb = (b: number) => `${fmt(b / 1024 / 1024, 0)} MB`;

/** P5+ (issue 11): ten times the P5 bench, whose recap must stay within 1.5 of the raw scan (P5: 2). */
const ID = MERCHANTS >= 10_000 && ORDERS >= 1_000_000 ? 'P5+' : 'P5';
const MAX_RATIO = ID === 'P5+' ? 1.5 : 2;

/** Bumped whenever seed() changes what it writes, so a kept database is not reused across it. */
const SEED_VERSION = 1;
const SEEDED = ['merchants', 'orders', 'refunds', 'bench_seed'];

/**
 * A kept database seeded with these sizes: everything but the seeded collections is dropped (what an
 * earlier run's recaps wrote) and the indexes made again. Undefined when there is none.
 */
async function reuseSeed(): Promise<{ s: Seeded; seedMs: number } | undefined> {
  const db = mongoose.connection.db!;
  const mark = await db.collection<{ _id: string; orders: number; refunds: number; paid: number; seedMs: number }>('bench_seed').findOne({ _id: `v${SEED_VERSION}` });
  if (!mark) {
    // A partial seeding (interrupted run) or another version: start from an empty database.
    for (const c of await db.listCollections({}, { nameOnly: true }).toArray()) await db.dropCollection(c.name);
    await Promise.all(MODELS.map((m) => m.createIndexes()));
    return undefined;
  }
  for (const c of await db.listCollections({}, { nameOnly: true }).toArray()) if (!SEEDED.includes(c.name)) await db.dropCollection(c.name);
  await Promise.all(MODELS.map((m) => m.createIndexes()));
  const merchants = (await db.collection('merchants').find({}).sort({ _id: 1 }).toArray()) as unknown as MerchantDoc[];
  return { s: { merchants, orders: mark.orders, refunds: mark.refunds, paid: mark.paid }, seedMs: mark.seedMs };
}

export async function runP5(): Promise<BenchResult> {
  const keepDir = process.env.BENCH_P5_DB_DIR;
  const db = await openDb('p5', keepDir ? { dir: path.resolve(keepDir), name: `bench_p5_${MERCHANTS}_${ORDERS}` } : undefined);
  try {
    const t0 = performance.now();
    buildDist();
    const reused = keepDir ? await reuseSeed() : undefined;
    const s = reused?.s ?? (await seed());
    const seedMs = reused?.seedMs ?? performance.now() - t0;
    if (keepDir && !reused) {
      await mongoose.connection.db!.collection<{ _id: string; orders: number; refunds: number; paid: number; seedMs: number }>('bench_seed').insertOne({ _id: `v${SEED_VERSION}`, orders: s.orders, refunds: s.refunds, paid: s.paid, seedMs });
    }
    const d = db.description;
    const lines = [
      `${MERCHANTS} merchants in ${ZONES.length} time zones, ${s.orders} orders over the ${SEED_DAYS} days before the bench clock (${s.paid} paid, ${s.refunds} refunds), seeded in ${fmt(seedMs / 1000, 1)} s${reused ? ' (by an earlier run, database kept)' : ''}; each side in its own child process on the production build (plain node, dist/)`,
      `| run | recap result, phase timings (ms) | baseline scan (docs) | recap pass | ratio | recap peak RSS (VmHWM) | sampled RSS | baseline peak RSS | database |`,
      `|---|---|---|---|---|---|---|---|---|`,
    ];
    const checks: BenchResult['checks'] = [];
    const runs: Array<[string, Date]> = [
      ['first day (no stored day totals)', NOW],
      ['next day (chart from recap_days)', new Date(NOW.getTime() + DAY)],
    ];
    for (const [name, now] of runs) {
      const windows = await seedSentDays(s.merchants, now);
      const windowsFile = path.join(os.tmpdir(), `paymail-p5-windows-${process.pid}.json`);
      writeFileSync(windowsFile, JSON.stringify(windows));
      const env = { MONGODB_URI: db.uri, P5_NOW: now.toISOString(), P5_WINDOWS_FILE: windowsFile };
      const base = await runChild('baseline', env);
      const rec = await runChild('recap', env).finally(() => rmSync(windowsFile, { force: true }));
      const mails = await mongoose.connection.db!.collection('outbox').countDocuments({ template: 'daily-recap' });
      const ratio = rec.ms / base.ms;
      lines.push(
        `| ${name} | ${JSON.stringify(rec.detail)}, ${mails} recap mails queued in all | ${fmt(base.ms, 0)} ms (${String(base.detail.docs)}) | ${fmt(rec.ms, 0)} ms | ${fmt(ratio)} | ${mb(rec.hwm)} | ${mb(rec.sampled)} | ${mb(base.hwm)} | ${d} |`,
      );
      const tag = name.startsWith('first') ? 'first day' : 'next day';
      checks.push(
        { name: `${ID} time ratio (${tag})`, value: ratio, target: `≤ ${MAX_RATIO}`, ok: ratio <= MAX_RATIO },
        { name: `${ID} peak RSS MB (${tag})`, value: rec.hwm / 1024 / 1024, target: '≤ 300', ok: rec.hwm <= 300 * 1024 * 1024 },
      );
    }
    lines.push(`ratio = recap pass ÷ raw scan of the orders in the recapped days' window (created, paid, expired or attempted in it) [${d}]`);
    return { id: ID, title: 'daily recap for all merchants ÷ raw-driver scan of the same orders; peak RSS', database: d, lines, checks };
  } finally {
    await db.stop();
  }
}

if (import.meta.url === `file://${process.argv[1]}`) printResult(await runP5());
