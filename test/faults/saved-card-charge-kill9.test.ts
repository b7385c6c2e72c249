// `kill -9` of a real paymail process in a merchant-initiated charge of a saved card (issue 12
// part 3; POST /api/v1/customers/{code}/charges), at each step boundary (FAULT_POINT), then a
// restart: the start-up repair finishes the charge — the order paid once, each receipt and
// payment.succeeded exactly once — and the same request again answers that order without a second
// charge. The thrown-crash variant of every point: test/integration/saved-cards.test.ts.
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
import { useTestDatabase, repos } from '../helpers/db.ts';
import { runCli, startPaymail, type PaymailProcess } from '../helpers/paymail-process.ts';
import { createMerchant, processEnv, sleep, startFaultRelay, waitUntil, type FaultMerchant, type FaultRelay } from './fault-kit.ts';

const KEY = { kid: 'k9c', secret: 'kill9-saved-card-charge-link-secret-0123' };
const COOKIE = `${CSRF_COOKIE}=kill9-saved-card-browser-00001`;
const EXPIRY = `09/${String((new Date().getUTCFullYear() + 2) % 100).padStart(2, '0')}`;
const POINTS = ['charge:claimed', 'pay:authorized', 'pay:claimed', 'pay:applied', 'pay:event', 'charge:settled'];

describe('fault: kill -9 in a merchant-initiated charge of a saved card', function () {
  this.timeout(300_000);
  const db = useTestDatabase();
  let relay: FaultRelay;
  let hooks: http.Server;
  const received: string[] = [];
  let dataDir: string;
  let env: Record<string, string>;
  let merchant: FaultMerchant;
  let merchantDoc: MerchantDoc;
  let orders: OrderService;
  let app: PaymailProcess | undefined;
  let apiKey: string;
  let customerCode: string;

  before(async function () {
    this.timeout(120_000);
    relay = await startFaultRelay();
    hooks = http.createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        received.push((JSON.parse(Buffer.concat(chunks).toString()) as { id: string }).id);
        res.writeHead(200).end();
      });
    });
    await new Promise<void>((r) => hooks.listen(0, '127.0.0.1', r));
    dataDir = await mkdtemp(path.join(os.tmpdir(), 'paymail-kill9-charge-'));
    env = processEnv(db.uri(), dataDir, relay.url, { LINK_SIGNING_KEYS: `${KEY.kid}:${KEY.secret}`, WEBHOOK_ALLOW_PRIVATE: 'true' });
    merchant = await createMerchant(env, 'Kill Nine Gym', 'desk@kill9gym.example');
    await Merchant.updateOne({ _id: merchant.id }, { $set: { savedCardsEnabled: true, webhookUrl: `http://127.0.0.1:${(hooks.address() as AddressInfo).port}/hook` } });
    merchantDoc = (await Merchant.findById(merchant.id).lean<MerchantDoc>())!;
    orders = createOrderService({ repos, publicUrl: 'http://127.0.0.1:1', mailDomain: 'paymail.test', maxLinkLifetimeDays: 60, linkKeys: [KEY] });
    const key = await runCli(['apikey', 'create', '--merchant', merchant.id, '--json'], env);
    assert.equal(key.code, 0, key.stderr);
    apiKey = (JSON.parse(key.stdout) as { key: string }).key;

    // A customer saves a card on the checkout of a running paymail.
    app = await startPaymail(env);
    const { order, link } = await orders.create(merchantDoc, { amountMinor: 1_000, currency: 'EUR', reference: 'K9-SAVE', customerEmail: 'member@kill9gym.example' }, { key: 'k9c:save' });
    const url = new URL(link);
    const target = `http://127.0.0.1:${app.ports.http}${url.pathname}${url.search}`;
    const page = await (await fetch(target, { headers: { cookie: COOKIE } })).text();
    const token = /name="_csrf" value="([^"]+)"/.exec(page)?.[1] ?? '';
    const body = new URLSearchParams({ _csrf: token, number: '4242 4242 4242 4242', expiry: EXPIRY, cvc: '913', holder: 'Member One', saveCard: 'yes' });
    const paid = await fetch(target, { method: 'POST', redirect: 'manual', headers: { 'content-type': 'application/x-www-form-urlencoded', cookie: COOKIE }, body: body.toString() });
    assert.equal(paid.status, 303);
    customerCode = (await Order.findById(order._id).lean<OrderDoc>())!.customerCode!;
    assert.match(customerCode, /^cus_/);
    await app.stop();
    app = undefined;
  });

  after(async () => {
    await app?.stop('SIGKILL');
    await relay?.close();
    hooks?.closeAllConnections();
    hooks?.close();
    if (dataDir) await rm(dataDir, { recursive: true, force: true });
  });

  const charge = (reference: string) =>
    fetch(`http://127.0.0.1:${app!.ports.http}/api/v1/customers/${customerCode}/charges`, {
      method: 'POST',
      headers: { authorization: `Bearer ${apiKey}`, 'content-type': 'application/json' },
      body: JSON.stringify({ amount: 2_500, currency: 'EUR', reference }),
    });

  async function delivered(orderId: string) {
    const mails = await Outbox.find({ orderId, template: /^receipt-/ }, { template: 1, messageId: 1 }).lean<Array<{ template: string; messageId: string }>>();
    const events = await WebhookDelivery.find({ orderId, type: 'payment.succeeded' }, { _id: 1 }).lean<Array<{ _id: string }>>();
    return {
      receipts: Object.fromEntries(mails.map((m) => [m.template, relay.accepted.filter((a) => a.messageId === m.messageId).length])),
      events: events.map((e) => received.filter((id) => id === e._id).length),
    };
  }

  for (const point of POINTS) {
    it(`kill -9 at ${point}, restart: charged once, receipts and webhook once, the repeat answers the same order`, async () => {
      const reference = `K9-CH-${point.replace(/\W/g, '-')}`;
      app = await startPaymail({ ...env, FAULT_POINT: point });
      await charge(reference).catch(() => undefined);
      const died = await waitUntil(() => (app!.child.exitCode !== null || app!.child.signalCode !== null ? { signal: app!.child.signalCode } : null), 20_000, () => 'paymail did not die at the fault point');
      assert.equal(died!.signal, 'SIGKILL');
      // Older than the start-up repair's threshold, as after any real restart.
      await sleep(5_500);
      app = await startPaymail(env);
      const order = (await waitUntil(
        async () => {
          const o = await Order.findOne({ merchantId: merchant.id, reference }).lean<OrderDoc>();
          return o?.status === 'paid' ? o : null;
        },
        30_000,
        async () => `not paid after the restart: ${JSON.stringify(await Order.findOne({ merchantId: merchant.id, reference }).lean())}`,
      ))!;
      await waitUntil(
        async () => {
          const d = await delivered(order._id);
          return d.receipts['receipt-customer'] && d.receipts['receipt-merchant'] && d.events[0] ? d : null;
        },
        90_000,
        async () => `not delivered: ${JSON.stringify(await delivered(order._id))}`,
      );
      const again = await charge(reference);
      assert.equal(again.status, 201);
      assert.equal(((await again.json()) as { id: string }).id, order._id);
      await sleep(2_000);
      const final = (await Order.findById(order._id).lean<OrderDoc>())!;
      assert.equal(final.payment?.initiator, 'merchant');
      assert.equal(final.attempts.filter((a) => a.outcome === 'approved').length, 1, 'one approval recorded');
      assert.deepEqual(await delivered(order._id), { receipts: { 'receipt-customer': 1, 'receipt-merchant': 1 }, events: [1] });
      await app.stop();
      app = undefined;
    });
  }
});
