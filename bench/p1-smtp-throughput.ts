// P1: order mails per second end to end — the SMTP 250 (after the durable store), the order
// created and its pay-link mail queued — ÷ a durable smtp-server sink that stores each raw message
// with one insert into the same database before its 250 (the discarding sink's figure beside it),
// same client (nodemailer, pooled, STARTTLS + AUTH), same mails. Also p50/p99 time-to-250.
//   npx tsx bench/p1-smtp-throughput.ts        BENCH_P1_MAILS (default 400), BENCH_P1_CONNECTIONS (4)
import nodemailer from 'nodemailer';
import { Order } from '../src/db/models/order.model.ts';
import { Outbox } from '../src/db/models/outbox.model.ts';
import { createMerchantService } from '../src/services/merchant.service.ts';
import { type BenchResult, MAIL_DOMAIN, fmt, openDb, orderMailText, percentile, printResult, startServer } from './lib.ts';
import { createRepositories } from '../src/db/repositories.ts';

const repos = createRepositories();

const MAILS = Number(process.env.BENCH_P1_MAILS ?? 400);
const CONNECTIONS = Number(process.env.BENCH_P1_CONNECTIONS ?? 4);
const TIME_LIMIT_MS = 5 * 60_000;

interface Run {
  seconds: number;
  perSecond: number;
  p50: number;
  p99: number;
  refused: number;
  codes: string;
}

async function sendAll(port: number, auth: { user: string; pass: string }, from: string, to: string, offset: number): Promise<{ latencies: number[]; refused: number; started: number; codes: Map<string, number> }> {
  const smtp = nodemailer.createTransport({
    host: '127.0.0.1',
    port,
    secure: false,
    pool: true,
    maxConnections: CONNECTIONS,
    maxMessages: Infinity,
    auth,
    tls: { rejectUnauthorized: false },
  });
  const latencies: number[] = [];
  let refused = 0;
  const codes = new Map<string, number>();
  const started = performance.now();
  // Closed loop, one sender per pooled connection: time-to-250 is the SMTP transaction, not a queue wait.
  let next = 0;
  await Promise.all(
    Array.from({ length: CONNECTIONS }, async () => {
      while (next < MAILS) {
        const i = next++;
        const t0 = performance.now();
        try {
          await smtp.sendMail({ from, to, ...orderMailText(offset + i) });
          latencies.push(performance.now() - t0);
        } catch (err) {
          refused++;
          const code = String((err as { responseCode?: number }).responseCode ?? (err as Error).message);
          codes.set(code, (codes.get(code) ?? 0) + 1);
        }
      }
    }),
  );
  smtp.close();
  return { latencies: latencies.sort((a, b) => a - b), refused, started, codes };
}

export async function runP1(): Promise<BenchResult> {
  const db = await openDb('p1');
  try {
    const m = await createMerchantService({ repos, mailDomain: MAIL_DOMAIN }).create({ name: 'Bench P1', email: 'desk@p1.example' });
    const auth = { user: m.smtpUser, pass: m.smtpPassword };

    // Baselines: a sink that stores each message with one insert into the same database before
    // its 250 (the ratio's baseline: durable acceptance is what paymail promises), and a sink that
    // discards (shown beside it).
    const sinkRun = async (mode: 'sink' | 'durable-sink', offset: number): Promise<Run> => {
      const sink = await startServer(mode, mode === 'durable-sink' ? { MONGODB_URI: db.uri } : {});
      try {
        const r = await sendAll(sink.ports.submission!, auth, m.email, m.inboundAddress, offset);
        const seconds = (performance.now() - r.started) / 1000;
        return { seconds, perSecond: r.latencies.length / seconds, p50: percentile(r.latencies, 50), p99: percentile(r.latencies, 99), refused: r.refused, codes: [...r.codes].map(([c, n]) => `${n}× ${c}`).join(', ') };
      } finally {
        await sink.stop();
      }
    };
    const discard = await sinkRun('sink', 0);
    const base = await sinkRun('durable-sink', 500_000);

    // paymail: done when every order exists and its pay-link mail is in the outbox.
    const app = await startServer('paymail', { MONGODB_URI: db.uri });
    let pm: Run;
    let lastAnswerSeconds: number;
    try {
      const r = await sendAll(app.ports.submission!, auth, m.email, m.inboundAddress, 1_000_000);
      lastAnswerSeconds = (performance.now() - r.started) / 1000;
      const deadline = Date.now() + TIME_LIMIT_MS;
      const accepted = r.latencies.length;
      let orders = 0;
      let queued = 0;
      while (Date.now() < deadline) {
        [orders, queued] = await Promise.all([Order.countDocuments({ merchantId: m.id }), Outbox.countDocuments({ template: 'paylink' })]);
        if (orders >= accepted && queued >= accepted) break;
        await new Promise((res) => setTimeout(res, 50));
      }
      const seconds = (performance.now() - r.started) / 1000;
      if (orders < accepted || queued < accepted) console.error(`P1: only ${orders} orders / ${queued} link mails of ${accepted} within the time limit`);
      pm = { seconds, perSecond: Math.min(orders, queued) / seconds, p50: percentile(r.latencies, 50), p99: percentile(r.latencies, 99), refused: r.refused, codes: [...r.codes].map(([c, n]) => `${n}× ${c}`).join(', ') };
    } finally {
      await app.stop();
    }

    const ratio = pm.perSecond / base.perSecond;
    const discardRatio = pm.perSecond / discard.perSecond;
    const d = db.description;
    return {
      id: 'P1',
      title: 'order mails/s end to end ÷ a durable smtp-server sink (one insert per mail before its 250)',
      database: d,
      lines: [
        `${MAILS} mails, nodemailer pool of ${CONNECTIONS} connections (STARTTLS + AUTH PLAIN), 127.0.0.1`,
        `| | mails/s | p50 time-to-250 | p99 time-to-250 | refused | database |`,
        `|---|---|---|---|---|---|`,
        `| durable sink: one insert, then 250 (baseline) | ${fmt(base.perSecond, 1)} | ${fmt(base.p50, 1)} ms | ${fmt(base.p99, 1)} ms | ${base.refused} ${base.codes} | ${d} |`,
        `| discarding sink (for comparison) | ${fmt(discard.perSecond, 1)} | ${fmt(discard.p50, 1)} ms | ${fmt(discard.p99, 1)} ms | ${discard.refused} ${discard.codes} | none |`,
        `| paymail (250 + order + link mail queued) | ${fmt(pm.perSecond, 1)} | ${fmt(pm.p50, 1)} ms | ${fmt(pm.p99, 1)} ms | ${pm.refused} ${pm.codes} | ${d} |`,
        `| paymail, SMTP answers only | ${fmt(MAILS / lastAnswerSeconds, 1)} | | | | ${d} |`,
        `ratio ${fmt(ratio)} (paymail ${fmt(pm.seconds, 1)} s vs durable sink ${fmt(base.seconds, 1)} s; ${fmt(discardRatio)} of the discarding sink); p99 time-to-250 ratio ${fmt(pm.p99 / base.p99, 1)}× [${d}]`,
      ],
      checks: [
        { name: 'P1 mails/s ratio (÷ durable sink)', value: ratio, target: '≥ 0.6', ok: ratio >= 0.6 },
        { name: 'P1 mails/s ratio (÷ discarding sink)', value: discardRatio, target: 'report', ok: true },
      ],
    };
  } finally {
    await db.stop();
  }
}

if (import.meta.url === `file://${process.argv[1]}`) printResult(await runP1());
