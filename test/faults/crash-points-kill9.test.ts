// `kill -9` of a real paymail process at every step boundary of a payment (FAULT_POINT makes the
// process SIGKILL itself there), then a restart: the order ends paid and the relay gets each
// receipt exactly once, the merchant's server payment.succeeded exactly once. The same for every
// transition with a thrown crash: test/integration/crash-points.test.ts.
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import http from 'node:http';
import { type AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { Merchant, type MerchantDoc } from '../../src/db/models/merchant.model.ts';
import { Order, type OrderDoc } from '../../src/db/models/order.model.ts';
import { Outbox } from '../../src/db/models/outbox.model.ts';
import { WebhookDelivery } from '../../src/db/models/webhook.model.ts';
import { CSRF_COOKIE } from '../../src/http/middleware/csrf.ts';
import { createOrderService, type OrderService } from '../../src/services/order.service.ts';
import { FAULT_POINTS } from '../../src/services/order-transitions.ts';
import { useTestDatabase } from '../helpers/db.ts';
import { startPaymail, type PaymailProcess } from '../helpers/paymail-process.ts';
import { createMerchant, processEnv, sleep, startFaultRelay, waitUntil, type FaultMerchant, type FaultRelay } from './fault-kit.ts';
import { repos } from '../helpers/db.ts';

const KEY = { kid: 'k9', secret: 'kill9-crash-points-link-secret-0123456789' };
const COOKIE = `${CSRF_COOKIE}=kill9-crash-points-browser-0001`;
const EXPIRY = `09/${String((new Date().getUTCFullYear() + 2) % 100).padStart(2, '0')}`;

describe('fault: kill -9 at every step boundary of a payment', function () {
  this.timeout(180_000);
  const db = useTestDatabase();
  let relay: FaultRelay;
  let hooks: http.Server;
  /** Event ids the merchant's server received, in order, with when. */
  const received: Array<{ id: string; at: number }> = [];
  let dataDir: string;
  let env: Record<string, string>;
  let merchant: FaultMerchant;
  let merchantDoc: MerchantDoc;
  let orders: OrderService;
  let app: PaymailProcess | undefined;
  let seq = 0;

  before(async function () {
    this.timeout(90_000);
    relay = await startFaultRelay();
    hooks = http.createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        received.push({ id: (JSON.parse(Buffer.concat(chunks).toString()) as { id: string }).id, at: Date.now() });
        res.writeHead(200).end();
      });
    });
    await new Promise<void>((r) => hooks.listen(0, '127.0.0.1', r));
    dataDir = await mkdtemp(path.join(os.tmpdir(), 'paymail-kill9-pay-'));
    env = processEnv(db.uri(), dataDir, relay.url, { LINK_SIGNING_KEYS: `${KEY.kid}:${KEY.secret}`, WEBHOOK_ALLOW_PRIVATE: 'true' });
    merchant = await createMerchant(env, 'Kill Nine Hotel', 'desk@kill9.example');
    await Merchant.updateOne({ _id: merchant.id }, { $set: { webhookUrl: `http://127.0.0.1:${(hooks.address() as AddressInfo).port}/hook` } });
    merchantDoc = (await Merchant.findById(merchant.id).lean<MerchantDoc>())!;
    orders = createOrderService({ repos, publicUrl: 'http://127.0.0.1:1', mailDomain: 'paymail.test', maxLinkLifetimeDays: 60, linkKeys: [KEY] });
  });

  after(async () => {
    await app?.stop('SIGKILL');
    await relay?.close();
    hooks?.closeAllConnections();
    hooks?.close();
    if (dataDir) await rm(dataDir, { recursive: true, force: true });
  });

  /** Pays the order through the checkout of the running process (the request may die with it). */
  async function pay(link: string): Promise<void> {
    const url = new URL(link);
    const target = `http://127.0.0.1:${app!.ports.http}${url.pathname}${url.search}`;
    const page = await (await fetch(target, { headers: { cookie: COOKIE } })).text();
    const token = /name="_csrf" value="([^"]+)"/.exec(page)?.[1] ?? '';
    assert.ok(token, 'the checkout form carries a CSRF token');
    const body = new URLSearchParams({ _csrf: token, number: '4242 4242 4242 4242', expiry: EXPIRY, cvc: '913', holder: 'Anna Rossi' });
    await fetch(target, { method: 'POST', redirect: 'manual', headers: { 'content-type': 'application/x-www-form-urlencoded', cookie: COOKIE }, body: body.toString() }).catch(
      () => undefined,
    );
  }

  /**
   * Receipt mails of the order at the relay, and payment.succeeded deliveries, counted. A receipt
   * the worker was sending at the moment of the kill (the relay took it, "sent" was never written)
   * goes out again after its lease under the same Message-ID (a webhook under the same event id):
   * the one repeat a crash may cause, so a second copy after one taken before `killedAt` is not
   * counted.
   */
  async function delivered(orderId: string, killedAt = 0) {
    const mails = await Outbox.find({ orderId, template: /^receipt-/ }, { template: 1, messageId: 1 }).lean<Array<{ template: string; messageId: string }>>();
    const copies = (got: Array<{ at: number }>) => (got.length === 2 && got[0]!.at <= killedAt ? 1 : got.length);
    const events = await WebhookDelivery.find({ orderId, type: 'payment.succeeded' }, { _id: 1 }).lean<Array<{ _id: string }>>();
    return {
      receipts: Object.fromEntries(mails.map((m) => [m.template, copies(relay.accepted.filter((a) => a.messageId === m.messageId))])),
      events: events.map((e) => copies(received.filter((r) => r.id === e._id))),
    };
  }

  for (const point of FAULT_POINTS.pay) {
    it(`kill -9 at ${point}, restart: paid, each receipt and the webhook exactly once`, async () => {
      seq += 1;
      const { order, link } = await orders.create(
        merchantDoc,
        { amountMinor: 4_200 + seq, currency: 'EUR', reference: `K9-${seq}`, customerEmail: `guest${seq}@kill9.example` },
        { key: `kill9:${seq}` },
      );
      app = await startPaymail({ ...env, FAULT_POINT: point });
      await pay(link);
      const code = await waitUntil(() => (app!.child.exitCode !== null || app!.child.signalCode !== null ? { signal: app!.child.signalCode } : null), 20_000, () => 'paymail did not die at the fault point');
      assert.equal(code!.signal, 'SIGKILL');
      const killedAt = Date.now();
      // Older than the start-up repair's threshold, as after any real restart.
      await sleep(5_500);
      app = await startPaymail(env);
      if (point === 'pay:authorized') {
        // Killed before anything was recorded: still payable; the customer pays again.
        assert.equal((await Order.findById(order._id).lean<OrderDoc>())!.status, 'pending');
        await pay(link);
      }
      // A receipt that was being sent at the kill waits for its lease (60 s) before it goes again.
      await waitUntil(
        async () => {
          const d = await delivered(order._id, killedAt);
          return d.receipts['receipt-customer'] && d.receipts['receipt-merchant'] && d.events[0] ? d : null;
        },
        90_000,
        async () => `not delivered: ${JSON.stringify(await delivered(order._id, killedAt))}`,
      );
      // A second copy would be on its way by now (outbox and webhook workers poll every second).
      await sleep(2_000);
      assert.equal((await Order.findById(order._id).lean<OrderDoc>())!.status, 'paid');
      assert.deepEqual(await delivered(order._id, killedAt), { receipts: { 'receipt-customer': 1, 'receipt-merchant': 1 }, events: [1] });
      await app.stop();
      app = undefined;
    });
  }
});
