// Fault 1: FAULT_MAILS order mails (200 by default, 2,000 with `npm run faults`) go to the
// submission door of a real paymail process while the test stops and restarts its FerretDB three
// times. The client retries every 4xx like an MTA. Promise: every mail ends answered 250 (at once,
// or after 4xx answers and retries) and becomes exactly one order — nothing lost, nothing doubled.
// Every outage overlaps mails in flight: the mails after each outage's mark wait until the
// database is down, so they are sent during the outage (asserted: each outage saw 4xx answers or
// failed attempts).
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import mongoose from 'mongoose';
import { ensureFerretdb } from '../../src/db/ferretdb-build.ts';
import { freePort, startEmbeddedFerretdb, type EmbeddedDb } from '../../src/db/embedded-ferretdb.ts';
import { startPaymail, type PaymailProcess } from '../helpers/paymail-process.ts';
import {
  createMerchant,
  processEnv,
  FAULT_MAILS,
  inParallel,
  sendWithRetry,
  sleep,
  startFaultRelay,
  submissionClient,
  tally,
  waitUntil,
  type FaultMerchant,
  type FaultRelay,
  type MailOutcome,
  type SubmissionClient,
} from './fault-kit.ts';

const OUTAGES = 3;
const DOWN_MS = Number(process.env.FAULT_DB_DOWN_MS ?? 3_000);
const CONNECTIONS = 8;

describe('fault 1: the database stops and starts three times under a stream of order mails', function () {
  this.timeout(180_000 + FAULT_MAILS * 400);
  let dir: string;
  let dataDir: string;
  let binary: string;
  let dbPort: number;
  let db: EmbeddedDb | undefined;
  let uri: string;
  let relay: FaultRelay;
  let app: PaymailProcess;
  let merchant: FaultMerchant;
  let client: SubmissionClient;
  let conn: mongoose.Connection | undefined;

  const lastErrors = () =>
    app.output
      .filter((l) => /"level":(50|60)/.test(l))
      .slice(-8)
      .map((l) => l.slice(0, 400))
      .join('\n');

  before(async function () {
    this.timeout(120_000);
    // Our own FerretDB (not the suite's shared one): this test stops it.
    binary = process.env.PAYMAIL_TEST_FERRETDB_BIN ?? (await ensureFerretdb(() => {}));
    dir = await mkdtemp(path.join(os.tmpdir(), 'paymail-fault1-db-'));
    dataDir = await mkdtemp(path.join(os.tmpdir(), 'paymail-fault1-'));
    dbPort = await freePort();
    db = await startEmbeddedFerretdb({ binary, dir, port: dbPort });
    uri = `mongodb://127.0.0.1:${dbPort}/faults1`;
    relay = await startFaultRelay();
    const env = processEnv(uri, dataDir, relay.url);
    merchant = await createMerchant(env, 'Fault One Hotel', 'desk@fault1.example');
    app = await startPaymail(env);
    client = submissionClient(app.ports.submission, merchant, CONNECTIONS);
  });

  after(async () => {
    client?.close();
    await app?.stop('SIGKILL');
    await conn?.close().catch(() => {});
    await db?.stop();
    await relay?.close();
    if (dir) await rm(dir, { recursive: true, force: true });
    if (dataDir) await rm(dataDir, { recursive: true, force: true });
  });

  it(`${FAULT_MAILS} mails: each answered 250 (after retrying 4xx) and exactly one order each`, async () => {
    const run = Date.now().toString(36);
    const started = Date.now();
    let answered = 0;
    const outages: Array<{ afterAnswered: number; downMs: number; from: number; to: number }> = [];

    // Outage k starts when the mails before its mark (k/4 of them) are answered or in flight; the
    // mails from the mark on are held until the database is down, then sent into the outage.
    const marks = Array.from({ length: OUTAGES }, (_, k) => Math.floor(((k + 1) * FAULT_MAILS) / (OUTAGES + 1)));
    const down: Array<() => void> = [];
    const isDown = marks.map(() => new Promise<void>((r) => down.push(r)));
    const controller = (async () => {
      for (let k = 0; k < OUTAGES; k++) {
        await waitUntil(() => answered >= marks[k]! - CONNECTIONS, FAULT_MAILS * 1_000, () => `only ${answered} answered`, 20);
        const at = Date.now();
        await db!.stop();
        db = undefined;
        const downAt = Date.now();
        down[k]!();
        await sleep(DOWN_MS);
        db = await startEmbeddedFerretdb({ binary, dir, port: dbPort });
        outages.push({ afterAnswered: answered, downMs: Date.now() - at, from: downAt, to: Date.now() });
        if (process.env.FAULT_DEBUG) console.log(`outage ${k + 1}: ${at} .. ${Date.now()}`);
      }
    })();

    const outcomes: MailOutcome[] = await inParallel(FAULT_MAILS, CONNECTIONS, async (i) => {
      for (let k = 0; k < OUTAGES; k++) if (i >= marks[k]!) await isDown[k];
      const r = await sendWithRetry(() => client, merchant, {
        messageId: `<fault1-${i}.${run}@faults.example>`,
        subject: `Fault 1 order ${i}`,
        text: `Amount: ${10 + (i % 90)},50 €\nDescription: fault1 #${i}\n`,
      }, { deadlineMs: 60_000 });
      answered++;
      return r;
    });
    await controller;
    const sendMs = Date.now() - started;

    const notAccepted = outcomes.map((o, i) => ({ i, final: o.final, answers: JSON.stringify(tally(o.tempCodes)), ms: o.ms })).filter((o) => o.final !== 250);
    assert.deepEqual(notAccepted, [], `every mail ends answered 250 (after retrying its 4xx answers); paymail's last errors:\n${lastErrors()}`);
    assert.equal(outages.length, OUTAGES);
    // What each outage met: attempts refused (451) or failed while it lasted, and mails sent during
    // it that were answered only once it was over (held by the door until the database was back).
    const refusedDuring = outages.map((o) => outcomes.reduce((n, m) => n + m.retriedAt.filter((t) => t >= o.from && t <= o.to + 1_000).length, 0));
    const heldOver = outages.map((o) => outcomes.filter((m) => m.startedAt >= o.from && m.startedAt < o.to && m.startedAt + m.ms >= o.to).length);

    // Every mail becomes exactly one order: counted per mail in the database.
    conn = await mongoose.createConnection(uri, { serverSelectionTimeoutMS: 10_000 }).asPromise();
    const orders = conn.collection<{ description?: string }>('orders');
    const perMail = async () => {
      const docs = await orders.find({ merchantId: merchant.id }, { projection: { description: 1 } }).toArray();
      return tally(docs.map((d) => d.description ?? '?'));
    };
    let byMail: Record<string, number> = {};
    await waitUntil(
      async () => {
        byMail = await perMail();
        return Object.keys(byMail).length >= FAULT_MAILS || Object.values(byMail).some((n) => n > 1);
      },
      90_000,
      async () => {
        const statuses = await conn!.collection('inbound_messages').aggregate([{ $group: { _id: '$status', n: { $sum: 1 } } }]).toArray();
        return `${Object.keys(byMail).length}/${FAULT_MAILS} mails have an order; inbound messages by status ${JSON.stringify(statuses)}; last errors:\n${lastErrors()}`;
      },
      500,
    );
    const ordersMs = Date.now() - started;
    const missing = outcomes.map((_, i) => `fault1 #${i}`).filter((d) => !byMail[d]);
    const doubled = Object.entries(byMail).filter(([, n]) => n > 1);
    assert.deepEqual(missing, [], 'no mail lost');
    assert.deepEqual(doubled, [], 'no mail doubled');
    assert.equal(await orders.countDocuments({ merchantId: merchant.id }), FAULT_MAILS);

    // paymail is ready again once the database is back.
    const ready = await waitUntil(async () => (await fetch(`http://127.0.0.1:${app.ports.http}/readyz`)).ok, 30_000, () => '/readyz never 200');
    assert.ok(ready);

    const retried = outcomes.filter((o) => o.tempCodes.length + o.connectionErrors > 0);
    const answers451 = outcomes.reduce((n, o) => n + o.tempCodes.filter((c) => c === 451).length, 0);
    console.log(
      `      fault 1: ${FAULT_MAILS} mails over ${CONNECTIONS} connections, ${OUTAGES} outages ` +
        `${JSON.stringify(outages.map((o, k) => ({ afterAnswered: o.afterAnswered, downMs: o.downMs, attemptsRefusedOrFailed: refusedDuring[k], mailsHeldUntilBack: heldOver[k] })))}; ` +
        `lost ${missing.length}, duplicated ${doubled.length}, 451 answers ${answers451}, ` +
        `all answered 250 in ${(sendMs / 1000).toFixed(1)} s, all orders in ${(ordersMs / 1000).toFixed(1)} s; ` +
        `${retried.length} mails retried, 4xx answers ${JSON.stringify(tally(outcomes.flatMap((o) => o.tempCodes)))}, ` +
        `connection errors ${outcomes.reduce((s, o) => s + o.connectionErrors, 0)}, ` +
        `longest retried mail ${Math.max(0, ...retried.map((o) => o.ms))} ms`,
    );
    assert.ok(
      outages.every((_, k) => refusedDuring[k]! + heldOver[k]! > 0),
      `every outage met mails in flight: refused ${JSON.stringify(refusedDuring)}, held until the database was back ${JSON.stringify(heldOver)}`,
    );
  });
});
