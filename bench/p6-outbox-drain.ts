// P6: outbox drain — 2,000 queued pay-link mails drained by the work runner (claim under a lease,
// render, send through the pooled transport, mark sent) to a local smtp-server sink (STARTTLS +
// AUTH, discards) ÷ nodemailer's pooled transport sending the same mails, rendered beforehand,
// straight to the same sink with the same connection count (one sender per connection). Both in
// this process, the sink in its own child process (bench/bench-server.ts).
//   npx tsx bench/p6-outbox-drain.ts        BENCH_P6_MAILS (default 2000), BENCH_P6_CONNECTIONS (4)
import os from 'node:os';
import mongoose from 'mongoose';
import nodemailer from 'nodemailer';
import { setEngineGuarantees } from '../src/db/engine.ts';
import { Outbox } from '../src/db/models/outbox.model.ts';
import { createRepositories } from '../src/db/repositories.ts';
import { createOutboxWorker } from '../src/jobs/outbox-worker.ts';
import { createLogger } from '../src/logger.ts';
import { enqueueMail, type MailRequest } from '../src/mail/outbox.ts';
import { createMailRenderer, type MailRenderer } from '../src/mail/renderer.ts';
import { createMailTransport } from '../src/mail/transport.ts';
import { TEMPLATES_DIR } from '../src/server.ts';
import { type BenchResult, MAIL_DOMAIN, fmt, openDb, printResult, startServer } from './lib.ts';

const MAILS = Number(process.env.BENCH_P6_MAILS ?? 2000);
const CONNECTIONS = Number(process.env.BENCH_P6_CONNECTIONS ?? 4);
export const FROM = `paymail <no-reply@${MAIL_DOMAIN}>`;

/** A pay-link mail to a merchant, as the order service queues it. */
export function paylinkRequest(i: number, run: string): MailRequest {
  return {
    dedupeKey: `paylink:bench_${run}_${i}`,
    template: 'paylink',
    locale: 'en',
    to: [`shop${i % 50}@merchant.bench`],
    cc: [],
    replyTo: `shop${i % 50}@merchant.bench`,
    merchantId: `m_${i % 50}`,
    orderId: `ord_${run}_${i}`,
    data: {
      merchantName: 'Hotel Bellavista',
      reference: `BK-${4711 + i}`,
      amountMinor: 12990 + i,
      currency: 'EUR',
      description: 'Double room, 2 nights',
      customerName: 'Anna Rossi',
      expiresAt: new Date(Date.now() + 7 * 86_400_000).toISOString(),
      link: `http://localhost:3000/pay/AbCdEfGh${i}?e=1798718400&s=abcdefghijklmnopqrstuvwxyz012345`,
      toCustomer: false,
    },
  };
}

/** The sink's URL for our transport (its certificate is self-signed). */
export const sinkUrl = (port: number) => `smtp://bench:bench@127.0.0.1:${port}/?tls.rejectUnauthorized=false`;

/** Renders every mail (baseline input), as the outbox handler would. */
async function renderAll(renderer: MailRenderer, reqs: MailRequest[]) {
  const out = [];
  for (const r of reqs) out.push({ req: r, mail: await renderer.render({ template: r.template, locale: r.locale, data: r.data }) });
  return out;
}

export async function runP6(): Promise<BenchResult> {
  const db = await openDb('p6');
  // Again with command monitoring, to count the drain's round trips.
  await mongoose.disconnect();
  await mongoose.connect(db.uri, { serverSelectionTimeoutMS: 10_000, autoIndex: false, monitorCommands: true });
  const sink = await startServer('sink', {});
  const url = sinkUrl(sink.ports.submission!);
  const renderer = await createMailRenderer({ templatesDir: TEMPLATES_DIR, publicUrl: 'http://localhost:3000' });
  const logger = createLogger('silent');
  const repos = createRepositories();
  const run = Date.now().toString(36);
  try {
    // Baseline: the same mails rendered beforehand, `CONNECTIONS` senders on one pooled transport.
    const tr = performance.now();
    const rendered = await renderAll(renderer, Array.from({ length: MAILS }, (_, i) => paylinkRequest(i, `${run}b`)));
    const renderSeconds = (performance.now() - tr) / 1000;
    const direct = nodemailer.createTransport({ url, pool: true, maxConnections: CONNECTIONS, maxMessages: 100 });
    let next = 0;
    const t0 = performance.now();
    await Promise.all(
      Array.from({ length: CONNECTIONS }, async () => {
        while (next < rendered.length) {
          const { req, mail } = rendered[next++]!;
          await direct.sendMail({
            from: FROM,
            to: req.to,
            replyTo: req.replyTo,
            messageId: `<b${next}.${run}@${MAIL_DOMAIN}>`,
            headers: { 'Auto-Submitted': 'auto-generated' },
            subject: mail.subject,
            html: mail.html,
            text: mail.text,
            attachments: mail.attachments.map((a) => ({ filename: a.filename, content: a.content, contentType: a.contentType, ...(a.cid ? { cid: a.cid } : {}), contentDisposition: a.disposition ?? 'inline' })),
          });
        }
      }),
    );
    const baseSeconds = (performance.now() - t0) / 1000;
    direct.close();

    // paymail: the same number of mails queued in the outbox (not timed), then drained by the runner.
    const drain = async (tag: string) => {
      for (let i = 0; i < MAILS; i++) await enqueueMail(paylinkRequest(i, tag), MAIL_DOMAIN, repos.outbox);
      const transport = createMailTransport({ outboundSmtpUrl: url, production: false, maxConnections: CONNECTIONS });
      const worker = createOutboxWorker({ repos, renderer, transport, from: FROM, logger, concurrency: CONNECTIONS });
      // Database round trips of the drain, by command (driver command monitoring).
      const client = mongoose.connection.getClient();
      const commands = new Map<string, number>();
      const count = (e: { commandName: string }) => commands.set(e.commandName, (commands.get(e.commandName) ?? 0) + 1);
      client.on('commandStarted', count);
      const t1 = performance.now();
      let handled = 0;
      for (let round = 0; round < 5 && handled < MAILS; round++) handled += await worker.runOnce();
      const seconds = (performance.now() - t1) / 1000;
      client.off('commandStarted', count);
      transport.close();
      const sent = await Outbox.countDocuments({ status: 'sent', dedupeKey: { $regex: `^paylink:bench_${tag}_` } });
      const retaken = await Outbox.countDocuments({ dedupeKey: { $regex: `^paylink:bench_${tag}_` }, attempts: { $gt: 1 } });
      if (sent !== MAILS || retaken > 0) throw new Error(`P6 ${tag}: ${sent}/${MAILS} mails marked sent, ${retaken} taken more than once`);
      return { seconds, commands, roundTrips: [...commands.values()].reduce((a, b) => a + b, 0) };
    };
    const ours = await drain(run);
    // The MongoDB path (src/db/engine.ts: no lease claims) on the same engine: one process, whose
    // lanes share one candidate list, so no two of them take the same mail and the claim is not missed.
    const saved = setEngineGuarantees({ name: 'mongodb', atomicConditionalUpdates: true });
    const mongo = await drain(`${run}m`).finally(() => setEngineGuarantees(saved));
    const { commands, roundTrips } = ours;
    const oursSeconds = ours.seconds;

    const basePerSecond = MAILS / baseSeconds;
    const oursPerSecond = MAILS / oursSeconds;
    const ratio = oursPerSecond / basePerSecond;
    const mongoRatio = MAILS / mongo.seconds / basePerSecond;
    return {
      id: 'P6',
      title: 'outbox drain ÷ nodemailer pooled transport sending the same rendered mails',
      database: db.description,
      lines: [
        `${MAILS} pay-link mails, ${CONNECTIONS} SMTP connections (STARTTLS + AUTH) to a discarding smtp-server sink in its own process.`,
        '| side | seconds | mails/s |',
        '|---|---|---|',
        `| nodemailer pool, mails rendered beforehand | ${fmt(baseSeconds)} | ${fmt(basePerSecond, 1)} |`,
        `| paymail outbox: claim, render, send (pooled), mark sent; concurrency ${CONNECTIONS} | ${fmt(oursSeconds)} | ${fmt(oursPerSecond, 1)} |`,
        `| the same along the MongoDB path (no lease claims; ratio ${fmt(mongoRatio)}) | ${fmt(mongo.seconds)} | ${fmt(MAILS / mongo.seconds, 1)} |`,
        '',
        `Database round trips per mail drained: ${fmt(roundTrips / MAILS, 2)} (${[...commands].map(([k, v]) => `${k} ${fmt(v / MAILS, 2)}`).join(', ')}); along the MongoDB path ${fmt(mongo.roundTrips / MAILS, 2)} (${[...mongo.commands].map(([k, v]) => `${k} ${fmt(v / MAILS, 2)}`).join(', ')}).`,
        '',
        `Rendering the ${MAILS} mails alone (one after the other, this process) took ${fmt(renderSeconds)} s — work the baseline does not time; load average at the end ${os.loadavg().map((l) => l.toFixed(1)).join(' ')} on ${os.availableParallelism()} cores.`,
      ],
      checks: [
        { name: 'outbox drain ÷ direct pooled send', value: ratio, target: '≥ 0.7', ok: ratio >= 0.7 },
        { name: 'outbox drain ÷ direct pooled send, MongoDB path', value: mongoRatio, target: 'report', ok: true },
      ],
    };
  } finally {
    await sink.stop();
    await db.stop();
  }
}

if (import.meta.url === `file://${process.argv[1]}`) printResult(await runP6());
