// P2: checkout GET requests/s (the real pay-link page: signature check, order and merchant
// look-up, CSRF cookie, HTML render) ÷ a bare Koa route doing one raw-driver findOne on the same
// `orders` collection; and the p99 latency ratio. autocannon, bounded duration, 127.0.0.1.
//   npx tsx bench/p2-checkout-get.ts      BENCH_HTTP_SECONDS (default 8), BENCH_HTTP_CONNECTIONS (10), BENCH_P2_ROUNDS (2)
import { readFileSync } from 'node:fs';
import autocannon from 'autocannon';
import nodemailer from 'nodemailer';
import { Outbox } from '../src/db/models/outbox.model.ts';
import { createMerchantService } from '../src/services/merchant.service.ts';
import { type BenchResult, MAIL_DOMAIN, fmt, openDb, orderMailText, printResult, startServer, type ServerProcess } from './lib.ts';
import { createRepositories } from '../src/db/repositories.ts';

const repos = createRepositories();

export const HTTP_SECONDS = Number(process.env.BENCH_HTTP_SECONDS ?? 8);
export const HTTP_CONNECTIONS = Number(process.env.BENCH_HTTP_CONNECTIONS ?? 10);
const ROUNDS = Number(process.env.BENCH_P2_ROUNDS ?? 2);

export interface Load {
  rps: number;
  p50: number;
  p99: number;
  non2xx: number;
  errors: number;
  /** CPU the server process used per request (all its threads), µs; undefined without /proc. */
  cpuUs?: number | undefined;
}

/** User + system CPU of a process so far, in clock ticks (Linux /proc); undefined elsewhere. */
function cpuTicks(pid: number | undefined): number | undefined {
  try {
    const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
    return Number(fields[11]) + Number(fields[12]);
  } catch {
    return undefined;
  }
}
/** USER_HZ: the kernel reports CPU times in hundredths of a second. */
const TICK_US = 10_000;

/** autocannon for `seconds` after a 2 s warm-up; with `pid`, the server's CPU per request too. */
export async function load(url: string, seconds = HTTP_SECONDS, pid?: number): Promise<Load> {
  await autocannon({ url, connections: HTTP_CONNECTIONS, duration: 2 });
  const before = cpuTicks(pid);
  const r = await autocannon({ url, connections: HTTP_CONNECTIONS, duration: seconds });
  const after = cpuTicks(pid);
  const cpuUs = before !== undefined && after !== undefined && r.requests.total > 0 ? ((after - before) * TICK_US) / r.requests.total : undefined;
  return { rps: r.requests.average, p50: r.latency.p50, p99: r.latency.p99, non2xx: r.non2xx, errors: r.errors, cpuUs };
}

/** Mails one order to a running paymail and returns the path + query of its pay-link. */
export async function createPayLink(app: ServerProcess, n: number): Promise<{ path: string; publicId: string }> {
  const m = await createMerchantService({ repos, mailDomain: MAIL_DOMAIN }).create({ name: `Bench ${n}`, email: `desk${n}@bench.example` });
  const smtp = nodemailer.createTransport({
    host: '127.0.0.1',
    port: app.ports.submission!,
    secure: false,
    auth: { user: m.smtpUser, pass: m.smtpPassword },
    tls: { rejectUnauthorized: false },
  });
  await smtp.sendMail({ from: m.email, to: m.inboundAddress, ...orderMailText(n) });
  smtp.close();
  const deadline = Date.now() + 30_000;
  while (Date.now() < deadline) {
    const mail = await Outbox.findOne({ template: 'paylink', 'data.reference': `B-${n}` }).lean<{ data: { link: string } }>();
    if (mail) {
      const u = new URL(mail.data.link);
      return { path: u.pathname + u.search, publicId: u.pathname.split('/').pop()! };
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error('no pay-link mail queued within 30 s');
}

const cpu = (l: Load) => (l.cpuUs === undefined ? 'n/a' : `${fmt(l.cpuUs, 0)} µs`);

export async function runP2(): Promise<BenchResult> {
  const db = await openDb('p2');
  try {
    // Both servers up at once, measured alternately (ROUNDS each), best round of each kept: the
    // machine is shared, and a neighbour's burst should not land on one side only.
    const app = await startServer('paymail', { MONGODB_URI: db.uri });
    const koa = await startServer('koa', { MONGODB_URI: db.uri }).catch(async (e: unknown) => {
      await app.stop();
      throw e;
    });
    let pm: Load | undefined;
    let base: Load | undefined;
    const best = (a: Load | undefined, b: Load) => (!a || b.rps > a.rps ? b : a);
    try {
      const link = await createPayLink(app, 2);
      for (let r = 0; r < ROUNDS; r++) {
        base = best(base, await load(`http://127.0.0.1:${koa.ports.http}/raw/${link.publicId}`, HTTP_SECONDS, koa.child.pid));
        pm = best(pm, await load(`http://127.0.0.1:${app.ports.http}${link.path}`, HTTP_SECONDS, app.child.pid));
      }
    } finally {
      await Promise.all([app.stop(), koa.stop()]);
    }
    if (!pm || !base) throw new Error('no measurement');
    const ratio = pm.rps / base.rps;
    const p99 = pm.p99 / Math.max(base.p99, 1);
    const d = db.description;
    return {
      id: 'P2',
      title: 'checkout GET requests/s ÷ bare Koa + raw findOne',
      database: d,
      lines: [
        `autocannon, ${HTTP_CONNECTIONS} connections, ${HTTP_SECONDS} s after a 2 s warm-up, 127.0.0.1; ${ROUNDS} alternating rounds, best of each`,
        `| | req/s | p50 | p99 | server CPU per request | non-2xx | errors | database |`,
        `|---|---|---|---|---|---|---|---|`,
        `| bare Koa + findOne (baseline) | ${fmt(base.rps, 0)} | ${base.p50} ms | ${base.p99} ms | ${cpu(base)} | ${base.non2xx} | ${base.errors} | ${d} |`,
        `| paymail checkout GET | ${fmt(pm.rps, 0)} | ${pm.p50} ms | ${pm.p99} ms | ${cpu(pm)} | ${pm.non2xx} | ${pm.errors} | ${d} |`,
        // At this load the checkout's main thread is busy all the time: its req/s is 1 ÷ its CPU per request.
        `server CPU per request: all threads of the server process (/proc), during the round kept`,
        `ratio ${fmt(ratio)} req/s, p99 ${fmt(p99)}× [${d}]`,
      ],
      checks: [
        { name: 'P2 req/s ratio', value: ratio, target: '≥ 0.7', ok: ratio >= 0.7 },
        { name: 'P2 p99 ratio', value: p99, target: '≤ 1.5', ok: p99 <= 1.5 },
      ],
    };
  } finally {
    await db.stop();
  }
}

if (import.meta.url === `file://${process.argv[1]}`) printResult(await runP2());
