// P7: pay-link mail latency under bulk load — 1,000 daily-recap mails are queued and the outbox
// work runner (started as paymail starts it: polling, woken by enqueues) drains them; meanwhile a
// pay-link mail is queued every 100 ms. Measured per pay-link: from just before enqueueMail to the
// relay's 250 for it (the sink notes the time its DATA ended, by Message-ID). p50/p99/max, plus
// how many recaps were still queued when the last pay-link was accepted (the load was on).
// The sink runs in this process (no TLS, no AUTH) so both clocks are the same.
//   npx tsx bench/p7-paylink-latency.ts        BENCH_P7_RECAPS (1000), BENCH_P7_PAYLINKS (50), BENCH_P7_CONNECTIONS (4)
import { type AddressInfo } from 'node:net';
import { SMTPServer } from 'smtp-server';
import { Outbox } from '../src/db/models/outbox.model.ts';
import { createRepositories } from '../src/db/repositories.ts';
import { createOutboxWorker } from '../src/jobs/outbox-worker.ts';
import { createLogger } from '../src/logger.ts';
import { enqueueMail, type MailRequest } from '../src/mail/outbox.ts';
import { createMailRenderer } from '../src/mail/renderer.ts';
import { createMailTransport } from '../src/mail/transport.ts';
import { TEMPLATES_DIR } from '../src/server.ts';
import { type BenchResult, MAIL_DOMAIN, fmt, openDb, percentile, printResult } from './lib.ts';
import { FROM, paylinkRequest } from './p6-outbox-drain.ts';

const RECAPS = Number(process.env.BENCH_P7_RECAPS ?? 1000);
const PAYLINKS = Number(process.env.BENCH_P7_PAYLINKS ?? 50);
const CONNECTIONS = Number(process.env.BENCH_P7_CONNECTIONS ?? 4);
const GAP_MS = 100;

/** A daily recap with a day of activity (a few payments, a failure, an expiry, the 7-day chart). */
function recapRequest(i: number, run: string): MailRequest {
  const at = new Date(Date.UTC(2026, 10, 29, 10)).toISOString();
  const item = (n: number) => ({ at, reference: `BK-${n}`, orderId: `ord_${n}`, amountMinor: 12990 + n, currency: 'EUR', card: { brand: 'visa', last4: '4242', country: 'IT' } });
  return {
    dedupeKey: `recap:bench_${run}_${i}`,
    template: 'daily-recap',
    locale: 'en',
    to: [`merchant${i}@merchant.bench`],
    merchantId: `m_${run}_${i}`,
    data: {
      merchantName: `Hotel ${i}`,
      date: '2026-11-29',
      timeZone: 'Europe/Rome',
      hours: 24,
      orders: [{ status: 'paid', currency: 'EUR', count: 5, totalMinor: 65000 }],
      payments: { totals: [{ currency: 'EUR', count: 5, totalMinor: 65000 }], count: 5, items: [1, 2, 3, 4, 5].map(item) },
      refunds: { totals: [], count: 0, items: [] },
      failed: { count: 1, items: [{ at, reference: 'BK-9', amountMinor: 5000, currency: 'EUR', outcome: 'declined', declineCode: 'insufficient_funds', card: null }] },
      expired: { count: 1, items: [{ at, reference: 'BK-8', amountMinor: 7000, currency: 'EUR', customer: 'Anna Rossi' }] },
      opened: { count: 2 },
      chart: { currency: 'EUR', days: Array.from({ length: 7 }, (_, d) => ({ date: `2026-11-${String(23 + d).padStart(2, '0')}`, totalMinor: 10000 * d, count: d })) },
    },
  };
}

export async function runP7(): Promise<BenchResult> {
  const db = await openDb('p7');
  const accepted = new Map<string, number>();
  let recapsAccepted = 0;
  const sink = new SMTPServer({
    authOptional: true,
    disabledCommands: ['STARTTLS', 'AUTH'],
    disableReverseLookup: true,
    size: 64 * 1024 * 1024,
    logger: false,
    onData(stream, _session, cb) {
      let head = '';
      stream.on('data', (c: Buffer) => {
        if (head.length < 8192) head += c.toString('latin1');
      });
      stream.once('end', () => {
        const id = /^Message-ID:\s*(<[^>]+>)/im.exec(head)?.[1];
        if (/^To:\s*merchant\d+@/im.test(head)) recapsAccepted++;
        if (id) accepted.set(id, performance.now());
        cb(null, '2.0.0 discarded');
      });
    },
  });
  await new Promise<void>((r) => sink.listen(0, '127.0.0.1', () => r()));
  const port = (sink.server.address() as AddressInfo).port;
  const repos = createRepositories();
  const renderer = await createMailRenderer({ templatesDir: TEMPLATES_DIR, publicUrl: 'http://localhost:3000' });
  const transport = createMailTransport({ outboundSmtpUrl: `smtp://127.0.0.1:${port}`, production: false, maxConnections: CONNECTIONS });
  const worker = createOutboxWorker({ repos, renderer, transport, from: FROM, logger: createLogger('silent'), concurrency: CONNECTIONS, pollMs: 1_000 });
  const run = Date.now().toString(36);
  try {
    for (let i = 0; i < RECAPS; i++) await enqueueMail(recapRequest(i, run), MAIL_DOMAIN, repos.outbox);
    const drainStart = performance.now();
    worker.start();
    // Let the drain get going, then queue pay-links one by one while it runs.
    while (recapsAccepted < Math.min(50, RECAPS / 10)) await new Promise((r) => setTimeout(r, 20));
    const queuedAt = new Map<string, number>();
    for (let i = 0; i < PAYLINKS; i++) {
      const t = performance.now();
      const doc = await enqueueMail(paylinkRequest(i, run), MAIL_DOMAIN, repos.outbox);
      queuedAt.set(doc.messageId, t);
      await new Promise((r) => setTimeout(r, GAP_MS));
    }
    const deadline = Date.now() + 120_000;
    while ([...queuedAt.keys()].some((id) => !accepted.has(id)) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
    const lastPaylink = Math.max(...[...queuedAt.keys()].map((id) => accepted.get(id) ?? Infinity));
    const recapsLeft = await Outbox.countDocuments({ template: 'daily-recap', status: { $ne: 'sent' } });
    while (recapsAccepted < RECAPS && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
    const drainSeconds = (performance.now() - drainStart) / 1000;
    const latencies = [...queuedAt].map(([id, t]) => (accepted.get(id) ?? Infinity) - t).sort((a, b) => a - b);
    const p50 = percentile(latencies, 50);
    const p99 = percentile(latencies, 99);
    return {
      id: 'P7',
      title: 'pay-link mail p99, queued → accepted by the relay, while recap mails drain',
      database: db.description,
      lines: [
        `${RECAPS} daily-recap mails queued, then ${PAYLINKS} pay-link mails queued one every ${GAP_MS} ms during the drain; runner concurrency ${CONNECTIONS}, ${CONNECTIONS} pooled connections to an smtp-server sink in this process.`,
        `Recaps drained in ${fmt(drainSeconds, 1)} s (${fmt(RECAPS / drainSeconds, 1)}/s); ${recapsLeft} recaps were still queued when the last pay-link was accepted${Number.isFinite(lastPaylink) ? '' : ' (some pay-links never arrived)'}.`,
        '| pay-link latency | ms |',
        '|---|---|',
        `| p50 | ${fmt(p50, 0)} |`,
        `| p99 | ${fmt(p99, 0)} |`,
        `| max | ${fmt(latencies[latencies.length - 1]!, 0)} |`,
      ],
      checks: [{ name: 'pay-link p99 (s) while recaps drain', value: p99 / 1000, target: '≤ 2 s', ok: p99 <= 2_000 }],
    };
  } finally {
    await worker.stop();
    transport.close();
    await new Promise<void>((r) => sink.close(() => r()));
    await db.stop();
  }
}

if (import.meta.url === `file://${process.argv[1]}`) printResult(await runP7());
