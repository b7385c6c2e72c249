// Database round trips per order mail and per payment: a real paymail process talks to the
// database through a TCP relay here that reads the MongoDB wire protocol and records every request
// (OP_MSG: command name and collection; the driver's hello/ping monitoring left out), so the count
// does not depend on paymail's own code. Background polling (outbox, webhooks, expiry, recap) is
// measured over an idle window first and subtracted pro rata.
// Twice: as the engine at hand asks (the embedded FerretDB: claims referee every lease), and along
// the MongoDB path (src/db/engine.ts: no lease claims), which the bench server takes on FerretDB
// when BENCH_ENGINE_PATH=mongodb — a count of MongoDB's requests where no MongoDB can run (the
// load is one mail or payment at a time, so the lease race the claims referee does not arise).
//   npx tsx bench/round-trips.ts        BENCH_RT_MAILS (default 40), BENCH_RT_PAYMENTS (20)
import net from 'node:net';
import mongoose from 'mongoose';
import nodemailer from 'nodemailer';
import { Outbox } from '../src/db/models/outbox.model.ts';
import { createRepositories } from '../src/db/repositories.ts';
import { createMerchantService } from '../src/services/merchant.service.ts';
import { type BenchResult, MAIL_DOMAIN, fmt, openDb, orderMailText, printResult, startServer } from './lib.ts';

const MAILS = Number(process.env.BENCH_RT_MAILS ?? 40);
const PAYMENTS = Math.min(MAILS, Number(process.env.BENCH_RT_PAYMENTS ?? 20));
const IDLE_MS = 10_000;

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

async function until(what: string, test: () => Promise<boolean>, ms = 120_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!(await test())) {
    if (Date.now() > deadline) throw new Error(`${what}: not done within ${ms / 1000} s`);
    await sleep(50);
  }
}

const MONITORING = new Set(['hello', 'ismaster', 'isMaster', 'ping', 'buildInfo', 'buildinfo', 'endSessions', 'saslStart', 'saslContinue']);
const OP_MSG = 2013;

/** A TCP relay to `target` that records "command collection" for every request a client sends. */
async function startCountingRelay(target: URL): Promise<{ port: number; commands: string[]; close(): void }> {
  const commands: string[] = [];
  const sockets = new Set<net.Socket>();
  const server = net.createServer((client) => {
    const upstream = net.connect(Number(target.port), target.hostname);
    sockets.add(client).add(upstream);
    let buf = Buffer.alloc(0);
    client.on('data', (chunk: Buffer) => {
      upstream.write(chunk);
      buf = Buffer.concat([buf, chunk]);
      while (buf.length >= 16 && buf.length >= buf.readInt32LE(0)) {
        const len = buf.readInt32LE(0);
        if (buf.readInt32LE(12) === OP_MSG && buf[20] === 0) {
          const docLen = buf.readInt32LE(21);
          const doc = mongoose.mongo.BSON.deserialize(buf.subarray(21, 21 + docLen));
          const name = Object.keys(doc)[0] ?? '?';
          if (!MONITORING.has(name)) commands.push(`${name} ${typeof doc[name] === 'string' ? doc[name] : ''}`);
        }
        buf = buf.subarray(len);
      }
    });
    upstream.on('data', (d: Buffer) => client.write(d));
    const end = () => {
      client.destroy();
      upstream.destroy();
    };
    client.on('close', end).on('error', end);
    upstream.on('close', end).on('error', end);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return {
    port: (server.address() as net.AddressInfo).port,
    commands,
    close() {
      server.close();
      for (const s of sockets) s.destroy();
    },
  };
}

interface Window {
  lines: string[];
  ms: number;
}

/** The requests the server sent to the database during `fn`. */
async function window(log: string[], fn: () => Promise<void>): Promise<Window> {
  const from = log.length;
  const t0 = Date.now();
  await fn();
  // The last writes of the phase (the sent marks) follow the state the phase waited for.
  await sleep(300);
  return { ms: Date.now() - t0, lines: log.slice(from) };
}

/** "find orders" → counts by command and collection. */
function byCommand(lines: string[]): Map<string, number> {
  const m = new Map<string, number>();
  for (const k of lines) m.set(k, (m.get(k) ?? 0) + 1);
  return m;
}

interface Counts {
  perMs: number;
  idle: Window;
  mails: Window;
  payments: Window;
  paymentCount: number;
  description: string;
}

/** One paymail process along `path`'s engine guarantees, counted through its own relay and database. */
async function measure(path: 'engine' | 'mongodb'): Promise<Counts> {
  const db = await openDb(`rt_${path}`);
  const target = new URL(db.uri);
  const relay = await startCountingRelay(target);
  const viaRelay = new URL(db.uri);
  viaRelay.host = `127.0.0.1:${relay.port}`;
  const app = await startServer('paymail', { MONGODB_URI: viaRelay.toString(), ...(path === 'mongodb' ? { BENCH_ENGINE_PATH: 'mongodb' } : {}) });
  const file = relay.commands;
  try {
    const repos = createRepositories();
    const m = await createMerchantService({ repos, mailDomain: MAIL_DOMAIN }).create({ name: `Round trips ${path}`, email: `desk-${path}@rt.example` });
    await sleep(2_000);
    const idle = await window(file, () => sleep(IDLE_MS));
    const perMs = idle.lines.length / idle.ms;

    const smtp = nodemailer.createTransport({
      host: '127.0.0.1',
      port: app.ports.submission!,
      secure: false,
      pool: true,
      maxConnections: 1,
      auth: { user: m.smtpUser, pass: m.smtpPassword },
      tls: { rejectUnauthorized: false },
    });
    const sentLinks = () => Outbox.countDocuments({ template: 'paylink', status: 'sent' });
    const mails = await window(file, async () => {
      for (let i = 0; i < MAILS; i++) await smtp.sendMail({ from: m.email, to: m.inboundAddress, ...orderMailText(i) });
      await until('pay-link mails sent', async () => (await sentLinks()) >= MAILS);
    });
    smtp.close();

    const links = (await Outbox.find({ template: 'paylink' }).limit(PAYMENTS).lean<Array<{ data: { link: string } }>>()).map((o) => new URL(o.data.link));
    const base = `http://127.0.0.1:${app.ports.http}`;
    const sentReceipts = () => Outbox.countDocuments({ template: { $in: ['receipt-customer', 'receipt-merchant'] }, status: 'sent' });
    const payments = await window(file, async () => {
      for (const u of links) {
        const page = await fetch(`${base}${u.pathname}${u.search}`);
        const html = await page.text();
        const token = /name="_csrf" value="([^"]+)"/.exec(html)?.[1];
        const cookie = (page.headers.get('set-cookie') ?? '').split(';')[0]!;
        if (!token) throw new Error(`no checkout form at ${u.pathname} (${page.status})`);
        const res = await fetch(`${base}${u.pathname}${u.search}`, {
          method: 'POST',
          redirect: 'manual',
          headers: { 'content-type': 'application/x-www-form-urlencoded', cookie },
          body: new URLSearchParams({ _csrf: token, number: '4242 4242 4242 4242', expiry: '12/35', cvc: '123', holder: 'Anna Rossi', email: 'anna@rt.example' }),
        });
        if (res.status !== 303) throw new Error(`payment answered ${res.status}`);
        await res.arrayBuffer();
      }
      await until('receipts sent', async () => (await sentReceipts()) >= 2 * links.length);
    });
    return { perMs, idle, mails, payments, paymentCount: links.length, description: db.description };
  } finally {
    await app.stop();
    relay.close();
    await db.stop();
  }
}

export async function runRoundTrips(): Promise<BenchResult> {
  const here = await measure('engine');
  const mongo = await measure('mongodb');
  {
    const { perMs, idle, mails, payments } = here;
    const net = (w: Window, n: number) => (w.lines.length - perMs * w.ms) / n;
    const top = (w: Window) =>
      [...byCommand(w.lines)]
        .sort((a, b) => b[1] - a[1])
        .slice(0, 12)
        .map(([k, v]) => `${k} ${v}`)
        .join(', ');
    const perMail = net(mails, MAILS);
    const perPayment = net(payments, here.paymentCount);
    const mPerMail = (mongo.mails.lines.length - mongo.perMs * mongo.mails.ms) / MAILS;
    const mPerPayment = (mongo.payments.lines.length - mongo.perMs * mongo.payments.ms) / mongo.paymentCount;
    return {
      id: 'RT',
      title: 'database round trips per order mail and per payment',
      database: here.description,
      lines: [
        `every request on the wire from the paymail process (a counting TCP relay; hello/ping monitoring excluded); ${MAILS} order mails (intake → order → pay-link mail sent), ${here.paymentCount} payments (page GET + form POST → receipts to customer and merchant sent); background ${fmt(perMs * 1000, 1)} commands/s measured idle over ${IDLE_MS / 1000} s and subtracted. The MongoDB path: a second process on its own database that follows MongoDB's guarantees (src/db/engine.ts: no lease claims), on the same engine`,
        `| | commands | window | per item (net of background) | MongoDB path, per item |`,
        `|---|---|---|---|---|`,
        `| order mails | ${mails.lines.length} | ${fmt(mails.ms / 1000, 1)} s | ${fmt(perMail, 1)} | ${fmt(mPerMail, 1)} |`,
        `| payments | ${payments.lines.length} | ${fmt(payments.ms / 1000, 1)} s | ${fmt(perPayment, 1)} | ${fmt(mPerPayment, 1)} |`,
        `order mails: ${top(mails)}`,
        `payments: ${top(payments)}`,
        `idle: ${top(idle)}`,
        `MongoDB path, order mails: ${top(mongo.mails)}`,
        `MongoDB path, payments: ${top(mongo.payments)}`,
      ],
      checks: [
        { name: 'RT commands per order mail', value: perMail, target: 'report', ok: true },
        { name: 'RT commands per payment', value: perPayment, target: 'report', ok: true },
        { name: 'RT commands per order mail, MongoDB path', value: mPerMail, target: 'report', ok: true },
        { name: 'RT commands per payment, MongoDB path', value: mPerPayment, target: 'report', ok: true },
      ],
    };
  }
}

if (import.meta.url === `file://${process.argv[1]}`) printResult(await runRoundTrips());
