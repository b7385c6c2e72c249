// Fault 3: the outbound relay is down (port closed), then refuses (421 at the greeting, 451 at
// DATA) for a while, then accepts. Promise: the queued mails wait, none is lost, each arrives once,
// and they go out in the order they were created (the outbox's createdAt, _id order).
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { Order } from '../../src/db/models/order.model.ts';
import { Outbox } from '../../src/db/models/outbox.model.ts';
import { useTestDatabase } from '../helpers/db.ts';
import { startPaymail, type PaymailProcess } from '../helpers/paymail-process.ts';
import { createMerchant, processEnv, sendWithRetry, sleep, startFaultRelay, submissionClient, tally, waitUntil, type FaultMerchant, type FaultRelay, type SubmissionClient } from './fault-kit.ts';

const MAILS = 20;
const PHASE_MS = Number(process.env.FAULT_RELAY_PHASE_MS ?? 5_000);

describe('fault 3: the outbound relay is down, then refuses, then accepts', function () {
  this.timeout(240_000);
  const db = useTestDatabase();
  let relay: FaultRelay;
  let dataDir: string;
  let merchant: FaultMerchant;
  let app: PaymailProcess;
  let client: SubmissionClient;

  before(async function () {
    this.timeout(90_000);
    relay = await startFaultRelay();
    dataDir = await mkdtemp(path.join(os.tmpdir(), 'paymail-fault3-'));
    const env = processEnv(db.uri(), dataDir, relay.url);
    merchant = await createMerchant(env, 'Fault Three B&B', 'desk@fault3.example');
    app = await startPaymail(env);
    client = submissionClient(app.ports.submission, merchant, 1);
  });

  after(async () => {
    client?.close();
    await app?.stop('SIGKILL');
    await relay?.close();
    if (dataDir) await rm(dataDir, { recursive: true, force: true });
  });

  it(`${MAILS} pay-link mails queued during the outage all arrive once, in creation order`, async () => {
    const started = Date.now();
    const run = started.toString(36);
    await relay.down();
    // One at a time, so creation order is the order of the mails.
    for (let i = 0; i < MAILS; i++) {
      const o = await sendWithRetry(() => client, merchant, {
        messageId: `<relay-${i}.${run}@faults.example>`,
        subject: `Relay ${i}`,
        text: `Amount: ${40 + i},00 €\nDescription: relay #${i}\n`,
      });
      assert.equal(o.final, 250);
    }
    const ordersOf = async () =>
      new Set((await Order.find({ merchantId: merchant.id }, { _id: 1 }).lean<Array<{ _id: string }>>()).map((o) => String(o._id)));
    const orderIds = await waitUntil<Set<string> | undefined>(async () => {
      const ids = await ordersOf();
      return ids.size >= MAILS ? ids : undefined;
    }, 30_000, async () => `${(await ordersOf()).size}/${MAILS} orders`);
    assert.ok(orderIds && orderIds.size === MAILS);
    const queued = async () =>
      (await Outbox.find({}, { orderId: 1, messageId: 1, status: 1, createdAt: 1, attempts: 1 }).lean<
        Array<{ _id: unknown; orderId?: string; messageId: string; status: string; createdAt: Date; attempts: number }>
      >()).filter((m) => m.orderId && orderIds.has(m.orderId));
    await waitUntil(async () => (await queued()).length === MAILS, 30_000, () => 'pay-link mails not all queued');
    assert.equal(tally(relay.accepted.map((a) => a.messageId))[''] ?? 0, 0);
    // Down for PHASE_MS more, then 421 at the greeting for PHASE_MS, then 451 at DATA for PHASE_MS.
    await sleep(PHASE_MS);
    relay.refuseConnections(true);
    await relay.up();
    await sleep(PHASE_MS);
    relay.refuseConnections(false);
    relay.setGate(() => 451);
    await sleep(PHASE_MS);
    assert.equal(relay.accepted.length, 0, 'nothing got through the outage');
    const refusedPhaseEnded = Date.now();
    relay.setGate(undefined);

    await waitUntil(
      async () => (await queued()).every((m) => m.status === 'sent'),
      150_000,
      async () => `outbox ${JSON.stringify(tally((await queued()).map((m) => m.status)))}, relay accepted ${relay.accepted.length}`,
      500,
    );
    const mails = (await queued()).sort((a, b) => +new Date(a.createdAt) - +new Date(b.createdAt) || String(a._id).localeCompare(String(b._id)));
    const created = mails.map((m) => m.messageId);
    const counts = relay.counts();
    assert.deepEqual(created.filter((id) => counts.get(id) !== 1), [], 'each queued mail arrives exactly once');
    const arrived = relay.accepted.map((a) => a.messageId).filter((id) => created.includes(id));
    const attempts = mails.reduce((s, m) => s + m.attempts, 0);
    console.log(
      `      fault 3: relay down, then ${relay.refusedConnections} connections refused with 421, ${relay.refused.length} DATA refused with 451; ` +
        `${MAILS} mails, ${attempts} send attempts; all arrived ${((Date.now() - refusedPhaseEnded) / 1000).toFixed(1)} s after the relay recovered ` +
        `(${((Date.now() - started) / 1000).toFixed(1)} s in all); in creation order: ${JSON.stringify(arrived) === JSON.stringify(created)}`,
    );
    assert.deepEqual(arrived, created, 'the mails go out in the order they were created');
  });
});
