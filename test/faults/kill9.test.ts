// Fault 2: `kill -9` of a real paymail process (a) right after it answered 250 to an order mail,
// with more mails in flight, and (b) while the outbox is being sent (a DATA is in flight at the
// relay). After a restart every order exists once, and every queued mail reaches the relay under
// one Message-ID: a mail whose send was cut off may arrive again, but with the same Message-ID.
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { InboundMessage } from '../../src/db/models/inbound-message.model.ts';
import { Order } from '../../src/db/models/order.model.ts';
import { Outbox } from '../../src/db/models/outbox.model.ts';
import { useTestDatabase } from '../helpers/db.ts';
import { startPaymail, type PaymailProcess } from '../helpers/paymail-process.ts';
import {
  createMerchant,
  processEnv,
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

const ROUNDS = 3;
const BURST = 8;
const OUTBOX_MAILS = 30;

describe('fault 2: kill -9 of paymail', function () {
  this.timeout(240_000);
  const db = useTestDatabase();
  let relay: FaultRelay;
  let dataDir: string;
  let env: Record<string, string>;
  let merchant: FaultMerchant;
  let app: PaymailProcess;
  let client: SubmissionClient;
  const run = Date.now().toString(36);

  async function restart(): Promise<void> {
    client?.close();
    app = await startPaymail(env);
    client = submissionClient(app.ports.submission, merchant, BURST);
  }

  async function kill9(): Promise<void> {
    assert.equal(await app.stop('SIGKILL'), null, 'killed by the signal');
  }

  /** Orders per description of this merchant, e.g. { "kill #3": 1 }. */
  async function ordersPerMail(prefix: string): Promise<Record<string, number>> {
    const docs = await Order.find({ merchantId: merchant.id }, { description: 1 }).lean<Array<{ description?: string }>>();
    return tally(docs.map((d) => d.description ?? '?').filter((d) => d.startsWith(prefix)));
  }

  /**
   * Every pay-link mail of the orders whose description starts with `prefix` reached the relay
   * under the one Message-ID fixed at enqueue time; returns how many arrived more than once.
   */
  async function assertMailsOnce(prefix: string, expectedOrders: number, timeoutMs: number): Promise<number> {
    const orders = await Order.find({ merchantId: merchant.id }, { description: 1 }).lean<Array<{ _id: string; description?: string }>>();
    const ids = new Set(orders.filter((o) => o.description?.startsWith(prefix)).map((o) => String(o._id)));
    assert.equal(ids.size, expectedOrders);
    const queued = async () =>
      (await Outbox.find({ template: 'paylink' }, { orderId: 1, messageId: 1, status: 1 }).lean<Array<{ orderId?: string; messageId: string; status: string }>>())
        .filter((m) => m.orderId && ids.has(m.orderId));
    await waitUntil(
      async () => {
        const q = await queued();
        const counts = relay.counts();
        return q.length === expectedOrders && q.every((m) => m.status === 'sent' && counts.has(m.messageId));
      },
      timeoutMs,
      async () => `outbox ${JSON.stringify(tally((await queued()).map((m) => m.status)))}, relay has ${relay.accepted.length}`,
      500,
    );
    const q = await queued();
    assert.deepEqual(tally(q.map((m) => m.orderId!)), Object.fromEntries([...ids].map((id) => [id, 1])), 'one pay-link mail per order');
    const counts = relay.counts();
    const again = q.filter((m) => counts.get(m.messageId)! > 1);
    return again.reduce((s, m) => s + counts.get(m.messageId)! - 1, 0);
  }

  before(async function () {
    this.timeout(90_000);
    relay = await startFaultRelay();
    dataDir = await mkdtemp(path.join(os.tmpdir(), 'paymail-fault2-'));
    env = processEnv(db.uri(), dataDir, relay.url);
    merchant = await createMerchant(env, 'Fault Two Tickets', 'desk@fault2.example');
    await restart();
  });

  after(async () => {
    client?.close();
    await app?.stop('SIGKILL');
    await relay?.close();
    if (dataDir) await rm(dataDir, { recursive: true, force: true });
  });

  it(`kill -9 right after a 250 (${ROUNDS} rounds of ${BURST} mails in flight): every mail one order, its pay-link mail once`, async () => {
    const started = Date.now();
    const outcomes: MailOutcome[] = [];
    for (let round = 0; round < ROUNDS; round++) {
      let killed: Promise<void> | undefined;
      const burst = await inParallel(BURST, BURST, async (j) => {
        const i = round * BURST + j;
        return sendWithRetry(
          // After the kill, retries go to the restarted process (whose port is new).
          () => client,
          merchant,
          { messageId: `<kill-${i}.${run}@faults.example>`, subject: `Kill ${i}`, text: `Amount: ${20 + i},00 €\nDescription: kill #${i}\n` },
          { deadlineMs: 60_000 },
        ).then((o) => {
          // The first 250 of the burst: kill -9 at once, then restart.
          if (o.final === 250 && !killed) killed = kill9().then(restart);
          return o;
        });
      });
      await killed;
      outcomes.push(...burst);
    }
    assert.deepEqual(outcomes.filter((o) => o.final !== 250), [], 'every mail ends answered 250');

    // Each mail becomes exactly one order after the restarts (taken by the restarted runner: at once, or when a dead claim's lease has run out).
    let perMail: Record<string, number> = {};
    await waitUntil(
      async () => Object.keys((perMail = await ordersPerMail('kill #'))).length === ROUNDS * BURST,
      120_000,
      async () => {
        const inbound = await InboundMessage.find({ merchantId: merchant.id }, { status: 1, leaseUntil: 1 }).lean<Array<{ status: string; leaseUntil?: Date }>>();
        const open = inbound.filter((m) => m.status !== 'processed').map((m) => `${m.status} lease until ${m.leaseUntil?.toISOString() ?? '-'}`);
        return `${Object.keys(perMail).length}/${ROUNDS * BURST} mails have an order; unfinished inbound messages: ${open.join(', ')} (now ${new Date().toISOString()})`;
      },
      500,
    );
    assert.deepEqual(Object.entries(perMail).filter(([, n]) => n !== 1), [], 'no mail doubled');
    const resent = await assertMailsOnce('kill #', ROUNDS * BURST, 120_000);
    console.log(
      `      fault 2a: ${ROUNDS} kills, ${ROUNDS * BURST} mails; retried after the kill: ${outcomes.filter((o) => o.connectionErrors + o.tempCodes.length > 0).length} ` +
        `(connection errors ${outcomes.reduce((s, o) => s + o.connectionErrors, 0)}, 4xx ${JSON.stringify(tally(outcomes.flatMap((o) => o.tempCodes)))}); ` +
        `${ROUNDS * BURST} orders, pay-link mails re-sent with the same Message-ID: ${resent}; ${((Date.now() - started) / 1000).toFixed(1)} s`,
    );
  });

  it(`kill -9 while the outbox sends ${OUTBOX_MAILS} mails: after restart each arrives, under one Message-ID`, async () => {
    const started = Date.now();
    const before = relay.accepted.length;
    // A slow relay, so the drain is still going when the process dies; the DATA in flight at the
    // kill is held and then accepted (the relay got the mail, paymail never heard the 250).
    let killAt: Promise<void> | undefined;
    let inFlight = '';
    relay.setGate(async (messageId) => {
      if (process.env.FAULT_DEBUG) console.log('gate', messageId, relay.accepted.length - before, !!killAt);
      if (!killAt && relay.accepted.length - before >= OUTBOX_MAILS / 3) {
        inFlight = messageId;
        killAt = kill9().then(restart);
        await killAt;
      }
      await sleep(100);
      return undefined;
    });
    const outcomes = await inParallel(OUTBOX_MAILS, 4, (i) =>
      sendWithRetry(() => client, merchant, {
        messageId: `<drain-${i}.${run}@faults.example>`,
        subject: `Drain ${i}`,
        text: `Amount: ${30 + i},00 €\nDescription: drain #${i}\n`,
      }, { deadlineMs: 60_000 }),
    );
    await waitUntil(() => killAt !== undefined, 60_000, () => `the relay got ${relay.accepted.length - before} mails, no kill yet`);
    await killAt;
    relay.setGate(undefined);
    // Order mails still queued at the kill are processed by the restarted intake runner; one the
    // dead process had claimed waits for its lease (60 s), as do mails the kill cut off.
    let perMail: Record<string, number> = {};
    await waitUntil(
      async () => Object.keys((perMail = await ordersPerMail('drain #'))).length === OUTBOX_MAILS,
      120_000,
      async () => `${Object.keys(perMail).length}/${OUTBOX_MAILS} order mails have an order`,
      500,
    );
    assert.deepEqual(Object.entries(perMail).filter(([, n]) => n !== 1), [], 'no mail doubled');
    const resent = await assertMailsOnce('drain #', OUTBOX_MAILS, 150_000);
    assert.ok(resent <= 1, `only the mail in flight at the kill may arrive twice (same Message-ID), got ${resent}`);
    const submissionsRetried = outcomes.filter((o) => o.connectionErrors + o.tempCodes.length > 0).length;
    console.log(
      `      fault 2b: killed with ${inFlight} in flight at the relay; ${OUTBOX_MAILS} pay-link mails all arrived, ` +
        `re-sent with the same Message-ID: ${resent}; order mails retried by the client: ${submissionsRetried}; ${((Date.now() - started) / 1000).toFixed(1)} s`,
    );
  });
});
