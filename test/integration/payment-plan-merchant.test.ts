// Over 300 lines: the merchant's three ways to ask for the balance (reply command, back office, API) share one walk.
// Orders paid in parts, the merchant's side (issue 13 part 1): asking for the balance or the next
// instalment by reply command (`BALANCE <ref>`, through the real intake), from the order's
// back-office page (the parts table, per-part receipts, the button) and through the server API
// (POST /orders/{reference}/balance, the order resource's paidMinor and plan, checked against the
// OpenAPI document), and the webhooks' order with paidMinor and plan.
import assert from 'node:assert/strict';
import path from 'node:path';
import { InboundMessage } from '../../src/db/models/inbound-message.model.ts';
import { Merchant, type MerchantDoc } from '../../src/db/models/merchant.model.ts';
import { MerchantUser } from '../../src/db/models/merchant-user.model.ts';
import { Order, type OrderDoc } from '../../src/db/models/order.model.ts';
import { Outbox, type OutboxDoc } from '../../src/db/models/outbox.model.ts';
import { WebhookDelivery } from '../../src/db/models/webhook.model.ts';
import { parseCommand } from '../../src/domain/commands.ts';
import { type LinkKey } from '../../src/domain/pay-link.ts';
import { hashPassword } from '../../src/domain/password.ts';
import { createLogger } from '../../src/logger.ts';
import { createMailRenderer, type MailRenderer } from '../../src/mail/renderer.ts';
import { createSandboxAcquirer } from '../../src/services/acquirer/sandbox-acquirer.ts';
import { createCheckoutService, type CheckoutService } from '../../src/services/checkout.service.ts';
import { createEventsService } from '../../src/services/events.service.ts';
import { createIntakeService } from '../../src/services/intake.service.ts';
import { createMerchantService, type CreatedMerchant } from '../../src/services/merchant.service.ts';
import { createOrderService, type OrderDraft } from '../../src/services/order.service.ts';
import { repos, useTestDatabase } from '../helpers/db.ts';
import { loadConformance, startApiApp, type ApiApp, type ApiReply } from './api-client.ts';
import { BoClient, MAIL_DOMAIN as BO_MAIL_DOMAIN, startBackofficeApp, textOf, type BackofficeApp } from './backoffice-client.ts';

const MAIL_DOMAIN = 'paymail.test';
const TEMPLATES_DIR = path.resolve(import.meta.dirname, '../../templates');
const KEYS: LinkKey[] = [{ kid: 'pm1', secret: 'plan-merchant-secret-plan-merchant-secret' }];
const DAY = 86_400_000;
const nextYear = String((new Date().getUTCFullYear() + 2) % 100).padStart(2, '0');
const CARD = { number: '4242 4242 4242 4242', expiry: `09/${nextYear}`, cvc: '913', holder: 'Anna Rossi' };

const unescape = (html: string) => html.replace(/&#x3D;/g, '=').replace(/&amp;/g, '&');
const reload = async (id: string) => (await Order.findById(id).lean<OrderDoc>())!;
const paylinks = async (orderId: string) => (await Outbox.find({ orderId, template: 'paylink' }).sort({ createdAt: 1 }).lean<OutboxDoc[]>()).map((m) => m.dedupeKey);

/** Pays the order's open part through the real checkout. */
async function payPart(checkout: Pick<CheckoutService, 'pay'>, order: OrderDoc, merchant: MerchantDoc): Promise<OrderDoc> {
  const r = await checkout.pay({ order: await reload(order._id), merchant }, { ...CARD }, '127.0.0.1');
  assert.equal(r.kind, 'paid', JSON.stringify(r));
  return reload(order._id);
}

describe('orders paid in parts: the merchant asks for the balance', function () {
  this.timeout(60_000);
  useTestDatabase();

  describe('reply command BALANCE <ref>', () => {
    const logger = createLogger('silent');
    const orders = createOrderService({ repos, publicUrl: 'http://127.0.0.1:9', mailDomain: MAIL_DOMAIN, maxLinkLifetimeDays: 60, linkKeys: KEYS });
    const checkout = createCheckoutService({
      repos,
      acquirer: createSandboxAcquirer({ latencyMs: 1 }),
      linkKeys: KEYS,
      mailDomain: MAIL_DOMAIN,
      linkFor: orders.linkFor,
      events: createEventsService({ repos }),
      limits: { failuresPerOrder: 100, failuresPerClient: 100 },
    });
    const intake = createIntakeService({ repos, orders, mailDomain: MAIL_DOMAIN, maxLinkLifetimeDays: 60, logger });
    let shop: CreatedMerchant;
    let merchant: MerchantDoc;
    let renderer: MailRenderer;
    let n = 0;

    before(async () => {
      shop = await createMerchantService({ repos, mailDomain: MAIL_DOMAIN }).create({ name: 'B&B Le Rondini', email: 'desk@rondini.example', locale: 'en', timezone: 'Europe/Rome' });
      merchant = (await Merchant.findById(shop.id).lean<MerchantDoc>())!;
      renderer = await createMailRenderer({ templatesDir: TEMPLATES_DIR, publicUrl: 'http://127.0.0.1:9' });
    });
    afterEach(() => intake.idle());
    after(() => intake.close());

    async function store(subject: string): Promise<string> {
      const raw = Buffer.from(
        `From: desk@rondini.example\r\nTo: ${shop.inboundAddress}\r\nSubject: ${subject}\r\nMessage-ID: <b${++n}.${Date.now()}@rondini.example>\r\n` +
          `Content-Type: text/plain; charset=utf-8\r\n\r\nthanks\r\n`,
      );
      const r = await intake.store({ merchantId: merchant._id, door: 'submission', raw, envelope: { rcptTo: [] } });
      await intake.idle();
      return r.id;
    }
    async function reply(inboundId: string) {
      const doc = await Outbox.findOne({ dedupeKey: `command-reply:${inboundId}` }).lean<OutboxDoc>();
      assert.ok(doc, 'a command reply was queued');
      const rendered = await renderer.render({ template: doc.template, locale: doc.locale, data: doc.data as Record<string, unknown> });
      return { data: doc.data as { code: string; part?: { seq: number; of: number; kind: string; amountMinor: number }; resentTo?: string; capped?: boolean; order?: { link: string } }, text: rendered.text };
    }
    async function newOrder(reference: string, draft: Partial<OrderDraft>): Promise<OrderDoc> {
      const r = await orders.create(
        merchant,
        { amountMinor: 100_000, currency: 'EUR', reference, customerEmail: 'guest@example.org', delivery: 'customer', ...draft },
        { key: `cmd:${reference}` },
      );
      return r.order;
    }

    it('parses BALANCE with or without a lifetime, and nothing after the reference but a lifetime', () => {
      assert.deepEqual(parseCommand({ subject: 'Re: BALANCE BK-1042' }), { verb: 'BALANCE', reference: 'BK-1042', from: 'subject' });
      assert.deepEqual(parseCommand({ subject: 'x', text: 'balance BK-1042 10 days\n> quoted' }), { verb: 'BALANCE', reference: 'BK-1042', argument: '10 days', from: 'body' });
      // Not commands: a sentence, an order mail's field, no reference.
      assert.equal(parseCommand({ subject: 'Balance of the account please' }), undefined);
      assert.equal(parseCommand({ subject: 'Order', text: 'Balance due: 2026-12-01\nAmount: 10' }), undefined);
      assert.equal(parseCommand({ subject: 'BALANCE' }), undefined);
    });

    it('after the deposit: the balance link is mailed once, the reply names the balance; asking again says it is open', async () => {
      const order = await newOrder('BK-1042', { plan: { deposit: { percent: 30 } } });
      await payPart(checkout, order, merchant);
      const id = await store('BALANCE BK-1042');
      const first = await reply(id);
      assert.equal(first.data.code, 'COMMAND_BALANCE_SENT');
      assert.deepEqual(first.data.part, { seq: 2, of: 2, kind: 'balance', amountMinor: 70_000 });
      assert.equal(first.data.resentTo, 'guest@example.org');
      assert.match(first.text, /The link for the balance of €700\.00 of order BK-1042 has been sent to guest@example\.org/);
      const opened = await reload(order._id);
      assert.equal(opened.plan!.openSeq, 2);
      assert.equal(first.data.order?.link, orders.linkFor(opened), 'the reply carries the link of the open part');
      assert.deepEqual(await paylinks(order._id), [`paylink:${order._id}`, `paylink:${order._id}:2`]);

      // The same mail processed again (a crash before it was marked processed): the same answer, nothing more.
      await InboundMessage.updateOne({ _id: id }, { $set: { status: 'received' } });
      assert.equal((await intake.process(id)).status, 'processed');
      assert.equal((await reply(id)).data.code, 'COMMAND_BALANCE_SENT');
      assert.equal(await Outbox.countDocuments({ dedupeKey: `command-reply:${id}` }), 1);

      // A second BALANCE mail: the link is open; nothing is mailed twice.
      const again = await reply(await store('BALANCE BK-1042'));
      assert.equal(again.data.code, 'COMMAND_BALANCE_OPEN');
      assert.match(again.text, /already open until/);
      assert.deepEqual(await paylinks(order._id), [`paylink:${order._id}`, `paylink:${order._id}:2`]);

      // Paid in full: nothing to ask for.
      await payPart(checkout, order, merchant);
      assert.equal((await reply(await store('BALANCE BK-1042'))).data.code, 'COMMAND_ALREADY_PAID');
    });

    it('EXTEND and RESEND on a partly paid order: EXTEND sends the balance while none is open, then extends its link; RESEND new@address re-sends it there', async () => {
      const order = await newOrder('BK-4001', { plan: { deposit: { percent: 30 } } });
      await payPart(checkout, order, merchant);
      // STATUS while the balance waits: what was paid so far, not the total.
      const waiting = await reply(await store('STATUS BK-4001'));
      assert.match(waiting.text, /Amount paid: €300\.00/);
      const sent = await reply(await store('EXTEND BK-4001 5 days'));
      assert.equal(sent.data.code, 'COMMAND_BALANCE_SENT', 'no link open: EXTEND sends the balance as BALANCE does');
      const opened = await reload(order._id);
      assert.equal(opened.plan!.openSeq, 2);
      // STATUS with the balance open: the balance is due.
      assert.match((await reply(await store('STATUS BK-4001'))).text, /Amount due: €700\.00/);
      const extended = await reply(await store('EXTEND BK-4001 20 days'));
      assert.equal(extended.data.code, 'COMMAND_EXTENDED', 'the open balance link is extended');
      const after = await reload(order._id);
      assert.ok(after.expiresAt.getTime() > opened.expiresAt.getTime() + 10 * DAY);
      assert.equal(after.status, 'partially_paid');
      const moved = await reply(await store('RESEND BK-4001 other.guest@example.org'));
      assert.equal(moved.data.code, 'COMMAND_RESENT_TO');
      const resent = await Outbox.find({ orderId: order._id, template: 'paylink' }).sort({ createdAt: 1 }).lean<OutboxDoc[]>();
      const last = resent.at(-1)!;
      assert.deepEqual(last.to, ['other.guest@example.org']);
      assert.equal((last.data as { amountMinor: number }).amountMinor, 70_000, 'the balance link, not the total');
    });

    it('names the instalment and takes the link lifetime as EXTEND does', async () => {
      const order = await newOrder('BK-2001', { plan: { instalments: { count: 3, every: 'month' } } });
      await payPart(checkout, order, merchant);
      const before = Date.now();
      const r = await reply(await store('BALANCE BK-2001 10 days'));
      assert.equal(r.data.code, 'COMMAND_BALANCE_SENT');
      assert.equal(r.data.part?.kind, 'instalment');
      assert.match(r.text, /instalment 2 of 3 \(€333\.3[34]\)/);
      const opened = await reload(order._id);
      assert.ok(Math.abs(opened.expiresAt.getTime() - (before + 10 * DAY)) < 60_000, `expires in 10 days: ${opened.expiresAt.toISOString()}`);

      const bad = await newOrder('BK-2002', { plan: { deposit: { percent: 50 } } });
      await payPart(checkout, bad, merchant);
      const invalid = await reply(await store('BALANCE BK-2002 10 fortnights'));
      assert.equal(invalid.data.code, 'COMMAND_BALANCE_DURATION_INVALID');
      assert.match(invalid.text, /BALANCE BK-2002 10 days/);
      assert.deepEqual(await paylinks(bad._id), [`paylink:${bad._id}`], 'nothing opened on a lifetime that cannot be read');
    });

    it('nothing to ask for: the deposit unpaid, an order without plan, a cancelled one, an unknown reference', async () => {
      await newOrder('BK-3001', { plan: { deposit: { amountMinor: 20_000, currency: 'EUR' } } });
      const unpaid = await reply(await store('BALANCE BK-3001'));
      assert.equal(unpaid.data.code, 'COMMAND_DEPOSIT_UNPAID');
      assert.match(unpaid.text, /The deposit of order BK-3001 \(the deposit of €200\.00\) is not paid yet/);
      await newOrder('BK-3002', {});
      assert.equal((await reply(await store('BALANCE BK-3002'))).data.code, 'COMMAND_NO_PLAN');
      const cancelled = await newOrder('BK-3003', { plan: { deposit: { percent: 30 } } });
      await Order.updateOne({ _id: cancelled._id }, { $set: { status: 'cancelled', cancelledAt: new Date() } });
      assert.equal((await reply(await store('BALANCE BK-3003'))).data.code, 'COMMAND_ALREADY_CANCELLED');
      assert.equal((await reply(await store('BALANCE NO-SUCH-1'))).data.code, 'COMMAND_ORDER_NOT_FOUND');
    });
  });

  describe('back office: the parts table and the button', () => {
    let app: BackofficeApp;
    let merchant: MerchantDoc;
    let admin: BoClient;
    let viewer: BoClient;
    let n = 0;

    before(async () => {
      app = await startBackofficeApp();
      const m = await createMerchantService({ repos, mailDomain: BO_MAIL_DOMAIN }).create({ name: 'Agriturismo Il Noce', email: 'info@noce.example', timezone: 'Europe/Rome' });
      merchant = (await Merchant.findById(m.id).lean<MerchantDoc>())!;
      admin = new BoClient(app.base);
      assert.equal((await admin.login(m.adminEmail, m.adminPassword)).status, 303);
      await MerchantUser.create({ merchantId: merchant._id, email: 'viewer@noce.example', passwordHash: await hashPassword('viewer password'), role: 'viewer' });
      viewer = new BoClient(app.base);
      assert.equal((await viewer.login('viewer@noce.example', 'viewer password')).status, 303);
    });
    after(() => app?.close());

    async function newOrder(draft: Partial<OrderDraft>): Promise<OrderDoc> {
      n += 1;
      const r = await app.orders.create(merchant, { amountMinor: 100_000, currency: 'EUR', reference: `NC-${n}`, customerEmail: 'guest@example.org', delivery: 'customer', ...draft }, { key: `bo:${n}` });
      return r.order;
    }

    it('shows each part with its state, the paid and remaining amounts, a PDF per paid part; the button asks for the balance', async () => {
      const order = await newOrder({ plan: { deposit: { percent: 30 } } });
      const pending = textOf((await admin.get(`/backoffice/orders/${order._id}`)).html);
      assert.match(pending, /Payment plan/);
      assert.match(pending, /Deposit €300\.00 +Open until/);
      assert.match(pending, /Balance €700\.00 +Waiting for you/);
      assert.doesNotMatch(pending, /Ask for the balance/, 'nothing to ask while the deposit is unpaid');

      const paid = await payPart(app.checkout, order, merchant);
      const page = await admin.get(`/backoffice/orders/${order._id}`);
      const text = textOf(page.html);
      const receipt = paid.plan!.parts![0]!.payment!.receiptNumber!;
      assert.match(text, new RegExp(`Deposit €300\\.00 +Paid on .+ · Receipt ${receipt}`));
      assert.match(text, /Paid so far €300\.00 Remaining €700\.00/);
      assert.match(text, /Partly paid/);
      // The history names the part paid (the deposit), with its receipt.
      assert.match(text, new RegExp(`Deposit paid · receipt ${receipt}`));
      assert.doesNotMatch(text, new RegExp(`Paid · receipt ${receipt}`));
      const html = page.html.replace(/&#x3D;/g, '=');
      assert.ok(html.includes(`/backoffice/orders/${order._id}/receipt.pdf?part=1`), 'a PDF link for the paid part');
      assert.ok(!html.includes('receipt.pdf?part=2'), 'none for the unpaid part');
      assert.match(page.html, /id="plan-ask-form"/);

      // Each part's PDF: the deposit's, and none for the unpaid balance.
      const pdf = await fetch(`${app.base}/backoffice/orders/${order._id}/receipt.pdf?part=1`, { headers: { cookie: [...admin.cookies].map(([k, v]) => `${k}=${v}`).join('; ') } });
      assert.equal(pdf.status, 200);
      assert.equal(pdf.headers.get('content-type'), 'application/pdf');
      assert.equal((await admin.get(`/backoffice/orders/${order._id}/receipt.pdf?part=2`)).status, 404);

      // A viewer sees the table but not the button, and cannot post it.
      const seen = await viewer.get(`/backoffice/orders/${order._id}`);
      assert.match(textOf(seen.html), /Waiting for you/);
      assert.doesNotMatch(seen.html, /plan-ask-form/);
      assert.equal((await viewer.post(`/backoffice/orders/${order._id}/balance`)).status, 403);
      // Without the CSRF token: refused.
      assert.equal((await admin.post(`/backoffice/orders/${order._id}/balance`, { _csrf: 'forged' })).status, 403);
      assert.deepEqual(await paylinks(order._id), [`paylink:${order._id}`]);

      const asked = await admin.post(`/backoffice/orders/${order._id}/balance`);
      assert.equal(asked.status, 303);
      assert.match(asked.location, /done=balanceRequested/);
      const after = textOf((await admin.get(asked.location.replace(app.base, ''))).html);
      assert.match(after, /The link for the next part was mailed/);
      assert.match(after, /Balance €700\.00 +Open until/);
      const opened = await reload(order._id);
      assert.ok(unescape((await admin.get(`/backoffice/orders/${order._id}`)).html).includes(`value="${app.orders.linkFor(opened)}"`), 'the open part\'s pay-link is shown');
      assert.deepEqual(await paylinks(order._id), [`paylink:${order._id}`, `paylink:${order._id}:2`]);
      const claim = await repos.claims.get(`order:${order._id}:open:2`);
      assert.equal(claim?.owner, 'merchant:info@noce.example', 'asked by the user, by e-mail');

      // Asking again for a paid order: refused with the reason on the page.
      await payPart(app.checkout, order, merchant);
      const refused = await admin.post(`/backoffice/orders/${order._id}/balance`);
      assert.equal(refused.status, 409);
      assert.match(textOf(refused.html), /There is nothing to ask for/);
    });

    it('instalments: "Instalment n of N", due dates, and the next-instalment button; the list filters partly paid orders', async () => {
      const order = await newOrder({ plan: { instalments: { count: 3, every: 'month' } } });
      await payPart(app.checkout, order, merchant);
      const page = await admin.get(`/backoffice/orders/${order._id}`);
      const text = textOf(page.html);
      assert.match(text, /Instalment 1 of 3 €333\.3[34] .*Paid on/);
      assert.match(text, /Instalment 2 of 3 €333\.3[34] \S+ \d+, \d{4} Due on/);
      assert.match(text, /Send the next instalment link \(2 of 3\)/);
      const list = await admin.get('/backoffice/orders?status=partially_paid');
      assert.match(list.html, /<option value="partially_paid" selected>Partly paid<\/option>/);
      assert.ok(list.html.includes(order._id));
    });
  });

  describe('server API and webhooks', () => {
    let app: ApiApp;
    let conf: Awaited<ReturnType<typeof loadConformance>>;
    let merchant: MerchantDoc;
    let key: string;
    let n = 0;

    before(async () => {
      app = await startApiApp();
      conf = await loadConformance(app);
      ({ merchant } = await app.newMerchant('Villa API'));
      await Merchant.updateOne({ _id: merchant._id }, { $set: { webhookUrl: 'https://hooks.example/paymail' } });
      merchant = (await Merchant.findById(merchant._id).lean<MerchantDoc>())!;
      key = (await app.apiKeys.create(merchant._id)).key;
    });
    after(() => app?.close());

    async function call(op: string, p: string, o: Parameters<ApiApp['request']>[2] = {}): Promise<ApiReply> {
      const [method, template] = op.split(' ') as [string, string];
      const res = await app.request(method, `/api/v1${p}`, { key, ...o });
      conf.check(res, method, template);
      return res;
    }
    async function newOrder(draft: Partial<OrderDraft>): Promise<OrderDoc> {
      n += 1;
      const r = await app.orders.create(merchant, { amountMinor: 100_000, currency: 'EUR', reference: `VA-${n}`, customerEmail: 'guest@example.org', delivery: 'customer', ...draft }, { key: `api:${n}` });
      return r.order;
    }

    it('POST /orders/{reference}/balance opens the next part (200, the order); nothing to ask for is 409 ORDER_NOT_PARTLY_PAID', async () => {
      const order = await newOrder({ plan: { deposit: { percent: 30 } } });
      const early = await call('POST /orders/{reference}/balance', `/orders/${order.reference}/balance`);
      assert.equal(early.status, 409, early.text);
      assert.equal(early.body.code, 'ORDER_NOT_PARTLY_PAID');

      const pending = await call('GET /orders/{reference}', `/orders/${order.reference}`);
      assert.equal(pending.body.paidMinor, 0);
      assert.deepEqual(
        pending.body.plan.parts.map((p: { seq: number; kind: string; amountMinor: number; status: string; receiptNumber: string | null }) => [p.seq, p.kind, p.amountMinor, p.status, p.receiptNumber]),
        [
          [1, 'deposit', 30_000, 'open', null],
          [2, 'balance', 70_000, 'waiting', null],
        ],
      );
      const paid = await payPart(app.checkout, order, merchant);
      const partly = await call('GET /orders/{reference}', `/orders/${order.reference}`);
      assert.equal(partly.body.status, 'partially_paid');
      assert.equal(partly.body.paidMinor, 30_000);
      assert.equal(partly.body.url, null, 'no link while no part is open');
      assert.equal(partly.body.plan.parts[0].status, 'paid');
      assert.equal(partly.body.plan.parts[0].receiptNumber, paid.plan!.parts![0]!.payment!.receiptNumber);
      assert.equal(partly.body.plan.parts[0].paidAt, paid.plan!.parts![0]!.payment!.paidAt!.toISOString());

      const before = Date.now();
      const asked = await call('POST /orders/{reference}/balance', `/orders/${order.reference}/balance`, { body: { days: 5 }, headers: { 'idempotency-key': `bal-${order._id}` } });
      assert.equal(asked.status, 200, asked.text);
      assert.equal(asked.body.plan.parts[1].status, 'open');
      assert.ok(asked.body.url, 'the link of the open part');
      assert.ok(Math.abs(Date.parse(asked.body.expiresAt) - (before + 5 * DAY)) < 60_000);
      // The same request again (Idempotency-Key): the same answer, one pay-link mail.
      const replayed = await call('POST /orders/{reference}/balance', `/orders/${order.reference}/balance`, { body: { days: 5 }, headers: { 'idempotency-key': `bal-${order._id}` } });
      assert.equal(replayed.status, 200);
      assert.equal(replayed.body.expiresAt, asked.body.expiresAt);
      // Another request while open: 200, nothing mailed again.
      assert.equal((await call('POST /orders/{reference}/balance', `/orders/${order.reference}/balance`)).status, 200);
      assert.deepEqual(await paylinks(order._id), [`paylink:${order._id}`, `paylink:${order._id}:2`]);
      const claim = await repos.claims.get(`order:${order._id}:open:2`);
      assert.match(String(claim?.owner), /^merchant:api:/);

      const bad = await call('POST /orders/{reference}/balance', `/orders/${order.reference}/balance`, { body: { days: 0 } });
      assert.equal(bad.status, 422);
      const plain = await newOrder({});
      const none = await call('POST /orders/{reference}/balance', `/orders/${plain.reference}/balance`);
      assert.equal(none.body.code, 'ORDER_NOT_PARTLY_PAID');
      const plainRead = await call('GET /orders/{reference}', `/orders/${plain.reference}`);
      assert.equal(plainRead.body.plan, null);
      assert.equal(plainRead.body.paidMinor, 0);

      const doc = (await app.request('GET', '/api/v1/openapi.json')).body;
      assert.ok(doc.paths['/orders/{reference}/balance'].post);
      assert.deepEqual(doc.components.schemas.PlanPart.properties.status.enum, ['paid', 'open', 'due', 'waiting']);
      assert.ok(doc.components.schemas.Order.properties.paidMinor);
    });

    it("webhooks carry the order's paidMinor and plan (null without plan)", async () => {
      const order = await newOrder({ plan: { instalments: { count: 3, every: 'week' } } });
      const paid = await payPart(app.checkout, order, merchant);
      const event = await WebhookDelivery.findOne({ orderId: order._id, type: 'payment.succeeded' }).lean();
      assert.ok(event, 'payment.succeeded queued');
      const body = JSON.parse(String((event as { body: string }).body)) as { data: { order: { paidMinor: number; plan: { parts: Array<Record<string, unknown>> } | null } } };
      assert.equal(body.data.order.paidMinor, paid.plan!.parts![0]!.amountMinor);
      assert.deepEqual(
        body.data.order.plan!.parts.map((p) => [p['seq'], p['kind'], p['status'], p['dueDate'] === null]),
        [
          [1, 'instalment', 'paid', false],
          [2, 'instalment', 'due', false],
          [3, 'instalment', 'due', false],
        ],
      );
      assert.equal(body.data.order.plan!.parts[0]!['receiptNumber'], paid.plan!.parts![0]!.payment!.receiptNumber);

      const plain = await newOrder({});
      await payPart(app.checkout, plain, merchant);
      const plainEvent = await WebhookDelivery.findOne({ orderId: plain._id, type: 'payment.succeeded' }).lean();
      const plainBody = JSON.parse(String((plainEvent as { body: string }).body)) as { data: { order: { paidMinor: number; plan: unknown } } };
      assert.equal(plainBody.data.order.plan, null);
      assert.equal(plainBody.data.order.paidMinor, 100_000);
    });
  });
});
