// Money back on orders paid in parts (issue 13 part 1): each part's payment has its own refund —
// limited to that part's amount, asked of the acquirer on that part's authorisation, with `part`
// on the refund and its refund.succeeded — and cancelling a partly paid order asks what becomes of
// what was paid: in the back office (a required choice), the server API (`refund: all|none`) and
// the CANCEL reply command (CANCEL <ref> REFUND | KEEP). Real database, real HTTP, real intake.
import assert from 'node:assert/strict';
import path from 'node:path';
import { Claim } from '../../src/db/claims.ts';
import { InboundMessage } from '../../src/db/models/inbound-message.model.ts';
import { MerchantUser } from '../../src/db/models/merchant-user.model.ts';
import { Order, type OrderDoc } from '../../src/db/models/order.model.ts';
import { Outbox, type OutboxDoc } from '../../src/db/models/outbox.model.ts';
import { Refund, type RefundDoc } from '../../src/db/models/refund.model.ts';
import { WebhookDelivery } from '../../src/db/models/webhook.model.ts';
import { type MerchantDoc } from '../../src/db/merchants.repository.ts';
import { type Acquirer, type RefundRequest } from '../../src/domain/acquirer.ts';
import { isAppError } from '../../src/domain/errors.ts';
import { type OrderDraft } from '../../src/domain/order-draft.ts';
import { hashPassword } from '../../src/domain/password.ts';
import { createLogger } from '../../src/logger.ts';
import { createMailRenderer } from '../../src/mail/renderer.ts';
import { createSandboxAcquirer } from '../../src/services/acquirer/sandbox-acquirer.ts';
import { createCheckoutService, type CheckoutService } from '../../src/services/checkout.service.ts';
import { createEventsService } from '../../src/services/events.service.ts';
import { createIntakeService } from '../../src/services/intake.service.ts';
import { createMerchantService } from '../../src/services/merchant.service.ts';
import { createOrderAdminService, type OrderAdminService } from '../../src/services/order-admin.service.ts';
import { createOrderService, type OrderService } from '../../src/services/order.service.ts';
import { createPlanService, type PlanService } from '../../src/services/plan.service.ts';
import { createRefundService, type RefundService } from '../../src/services/refund.service.ts';
import { repos, useTestDatabase } from '../helpers/db.ts';
import { loadConformance, startApiApp, type ApiApp, type ApiReply } from './api-client.ts';
import { BoClient, startBackofficeApp, textOf, type BackofficeApp } from './backoffice-client.ts';

const MAIL_DOMAIN = 'paymail.test';
const nextYear = String((new Date().getUTCFullYear() + 2) % 100).padStart(2, '0');
const CARD = { number: '4242 4242 4242 4242', expiry: `09/${nextYear}`, cvc: '913', holder: 'Anna Rossi', email: 'anna@example.org' };

/** The stable code of a rejected promise (or 'ok'). */
async function outcome(p: Promise<unknown>): Promise<string> {
  try {
    await p;
    return 'ok';
  } catch (e) {
    if (isAppError(e)) return e.code;
    throw e;
  }
}
const reload = async (id: string) => (await Order.findById(id).lean<OrderDoc>())!;
const refundsOf = async (orderId: string) => Refund.find({ orderId }).sort({ seq: 1 }).lean<RefundDoc[]>();
const authOf = (o: OrderDoc, seq: number) => o.plan!.parts![seq - 1]!.payment!.authCode!;

describe('orders paid in parts: refunds per part and cancelling a partly paid order', function () {
  this.timeout(60_000);
  useTestDatabase();

  describe('services', () => {
    let merchant: MerchantDoc;
    let orders: OrderService;
    let checkout: CheckoutService;
    let plans: PlanService;
    let refunds: RefundService;
    let admin: OrderAdminService;
    /** Every refund the acquirer was asked for, in order. */
    const asked: RefundRequest[] = [];
    const sandbox = createSandboxAcquirer({ latencyMs: 1 });
    const recording: Pick<Acquirer, 'refund'> = {
      refund: async (req) => {
        asked.push(req);
        return sandbox.refund!(req);
      },
    };
    let n = 0;

    before(async () => {
      orders = createOrderService({ repos, publicUrl: 'http://127.0.0.1:9', mailDomain: MAIL_DOMAIN, maxLinkLifetimeDays: 60, linkKeys: [{ kid: 'pr1', secret: 'plan-refund-secret-plan-refund-secret-xyz' }] });
      const events = createEventsService({ repos });
      checkout = createCheckoutService({ repos, acquirer: sandbox, linkKeys: [{ kid: 'pr1', secret: 'plan-refund-secret-plan-refund-secret-xyz' }], mailDomain: MAIL_DOMAIN, linkFor: orders.linkFor, events, limits: { failuresPerOrder: 100, failuresPerClient: 100 } });
      plans = createPlanService({ repos, payLinks: orders, maxLinkLifetimeDays: 60 });
      refunds = createRefundService({ repos, acquirer: recording, events });
      admin = createOrderAdminService({ repos, orders, maxLinkLifetimeDays: 60, events, refunds });
      const created = await createMerchantService({ repos, mailDomain: MAIL_DOMAIN }).create({ name: 'B&B Le Rondini', email: 'desk@rondini.example', timezone: 'Europe/Rome', webhookUrl: 'http://127.0.0.1:9/hook' });
      merchant = (await repos.merchants.findById(created.id))!;
    });
    beforeEach(() => {
      asked.length = 0;
    });

    async function newOrder(draft: Partial<OrderDraft> = {}): Promise<OrderDoc> {
      n += 1;
      const r = await orders.create(merchant, { amountMinor: 100_000, currency: 'EUR', reference: `PR-${n}`, customerEmail: 'guest@example.org', delivery: 'customer', ...draft }, { key: `test:plan-refund:${n}` });
      return r.order;
    }
    async function pay(order: OrderDoc): Promise<OrderDoc> {
      const r = await checkout.pay({ order: await reload(order._id), merchant }, { ...CARD }, '127.0.0.1');
      assert.equal(r.kind, 'paid', JSON.stringify(r));
      return reload(order._id);
    }
    /** A 30% deposit of 1,000.00 paid: partially_paid, 300.00 paid. */
    const depositPaid = async () => pay(await newOrder({ plan: { deposit: { percent: 30 } } }));
    /** Deposit and balance both paid. */
    async function bothPaid(): Promise<OrderDoc> {
      const o = await depositPaid();
      assert.equal((await plans.requestNext(o, merchant, 'merchant:test')).outcome, 'requested');
      const paid = await pay(o);
      assert.equal(paid.status, 'paid');
      return paid;
    }
    const refund = (o: OrderDoc, amountMinor: number, part?: number, svc = refunds) => svc.refund(merchant, o._id, { amountMinor, by: 'desk@rondini.example', ...(part ? { part } : {}) });

    it('the deposit alone is refunded on its own authorisation, at most its amount, the refund and its webhook naming part 1', async () => {
      const o = await depositPaid();
      assert.equal(o.status, 'partially_paid');
      assert.equal(await outcome(refund(o, 30_001)), 'REFUND_EXCEEDS_PAID');
      assert.equal(await outcome(refund(o, 1, 2)), 'REFUND_PART_INVALID', 'the balance is not paid');
      const r = await refund(o, 10_000);
      assert.equal(r.part, 1);
      assert.equal(await outcome(refund(o, 20_001)), 'REFUND_EXCEEDS_PAID');
      await refund(o, 20_000);
      assert.deepEqual(asked.map((a) => [a.authCode, a.amountMinor]), [
        [authOf(o, 1), 10_000],
        [authOf(o, 1), 20_000],
      ]);
      assert.deepEqual((await refundsOf(o._id)).map((d) => [d.seq, d.part, d.amountMinor]), [
        [0, 1, 10_000],
        [1, 1, 20_000],
      ]);
      const hook = await WebhookDelivery.findOne({ orderId: o._id, type: 'refund.succeeded', dedupeKey: `refund.succeeded:${r._id}` }).lean();
      const body = JSON.parse(String(hook!.body)) as { data: { part: unknown; refund: { amountMinor: number } } };
      assert.deepEqual(body.data.part, { seq: 1, of: 2, kind: 'deposit', amountMinor: 30_000 });
      assert.equal(body.data.refund.amountMinor, 10_000);
      assert.equal((await reload(o._id)).status, 'partially_paid', 'a refund changes no order state');
    });

    it('after the balance: each part refunded on its own payment and limited to its own amount; without part the latest part that can give it', async () => {
      const o = await bothPaid();
      assert.notEqual(authOf(o, 1), authOf(o, 2));
      await assert.rejects(refund(o, 30_001, 1), (e: unknown) => {
        assert.ok(isAppError(e, 'REFUND_EXCEEDS_PAID'));
        assert.deepEqual(e.details, { refundableMinor: 30_000, part: 1 });
        return true;
      });
      assert.equal((await refund(o, 50_000)).part, 2, 'the balance, the latest part, can give 500.00');
      assert.equal((await refund(o, 25_000)).part, 1, 'the balance has 200.00 left: the deposit gives 250.00');
      // 50.00 left on the deposit, 200.00 on the balance: 250.00 fits neither alone.
      await assert.rejects(refund(o, 25_000), (e: unknown) => {
        assert.ok(isAppError(e, 'REFUND_PART_REQUIRED'));
        assert.equal(e.httpStatus, 409);
        assert.deepEqual(e.details, { parts: [{ part: 1, refundableMinor: 5_000 }, { part: 2, refundableMinor: 20_000 }] });
        return true;
      });
      assert.equal(await outcome(refund(o, 25_001)), 'REFUND_EXCEEDS_PAID', 'more than both parts still hold');
      assert.equal((await refund(o, 20_000, 2)).part, 2);
      assert.equal((await refund(o, 5_000)).part, 1, 'only the deposit has anything left');
      assert.deepEqual(asked.map((a) => [a.authCode, a.amountMinor]), [
        [authOf(o, 2), 50_000],
        [authOf(o, 1), 25_000],
        [authOf(o, 2), 20_000],
        [authOf(o, 1), 5_000],
      ]);
      const docs = await refundsOf(o._id);
      assert.equal(docs.filter((d) => d.part === 1).reduce((s, d) => s + d.amountMinor, 0), 30_000);
      assert.equal(docs.filter((d) => d.part === 2).reduce((s, d) => s + d.amountMinor, 0), 70_000);
    });

    it('two refunds of the same part at once (two instances) never give back more than the part', async () => {
      const services = [0, 1].map(() => createRefundService({ repos, acquirer: createSandboxAcquirer({ latencyMs: 3 }) }));
      for (let round = 0; round < 3; round++) {
        const o = await bothPaid();
        const results = await Promise.all(services.map((svc) => outcome(refund(o, 20_000, 1, svc))));
        assert.deepEqual([...results].sort(), ['REFUND_EXCEEDS_PAID', 'ok'], `round ${round}`);
        const docs = await refundsOf(o._id);
        assert.deepEqual(docs.map((d) => [d.part, d.amountMinor]), [[1, 20_000]]);
        assert.equal(await Claim.countDocuments({ _id: { $regex: `^refund:${o._id}:` } }), 1);
        // The balance is untouched: all of it can still be refunded.
        assert.equal((await refund(o, 70_000, 2, services[0])).part, 2);
      }
    });

    it('a refund of the balance interrupted after its claim is finished by the repair on the balance’s payment, once', async () => {
      const o = await bothPaid();
      const crashing = createRefundService({
        repos,
        acquirer: recording,
        faults: (point) => {
          if (point === 'refund:claimed') throw new Error('crash');
        },
      });
      await assert.rejects(refund(o, 40_000, 2, crashing), /crash/);
      assert.equal(asked.length, 0, 'the acquirer was not asked before the crash');
      const restarted = createRefundService({ repos, acquirer: recording, events: createEventsService({ repos }) });
      assert.equal(await restarted.repairInterrupted(0), 1);
      assert.equal(await restarted.repairInterrupted(0), 0);
      assert.deepEqual(asked.map((a) => [a.authCode, a.amountMinor]), [[authOf(o, 2), 40_000]]);
      assert.deepEqual((await refundsOf(o._id)).map((d) => [d.part, d.amountMinor]), [[2, 40_000]]);
      // The reservation counts on the balance only.
      assert.equal(await outcome(refund(o, 30_001, 2)), 'REFUND_EXCEEDS_PAID');
      assert.equal((await refund(o, 30_000, 1)).part, 1);
    });

    it('an order without plan: as before (part 1 or none), and only once paid', async () => {
      const o = await newOrder({ amountMinor: 5_000 });
      assert.equal(await outcome(refund(o, 100)), 'REFUND_NOT_PAID');
      const paid = await pay(o);
      assert.equal(await outcome(refund(paid, 100, 2)), 'REFUND_PART_INVALID');
      const r = await refund(paid, 5_000, 1);
      assert.equal(r.part ?? null, null);
      assert.deepEqual(asked.map((a) => a.authCode), [paid.payment!.authCode]);
      const hook = await WebhookDelivery.findOne({ dedupeKey: `refund.succeeded:${r._id}` }).lean();
      assert.equal((JSON.parse(String(hook!.body)) as { data: { part: unknown } }).data.part, null);
    });

    it('cancelling a partly paid order needs the choice; keep: cancelled under the open part’s close claim, nothing refunded, the balance no longer payable', async () => {
      const o = await depositPaid();
      assert.equal((await plans.requestNext(o, merchant, 'merchant:test')).outcome, 'requested');
      await assert.rejects(admin.cancel(merchant, o._id, 'user:u1'), (e: unknown) => {
        assert.ok(isAppError(e, 'CANCEL_REFUND_CHOICE_REQUIRED'));
        assert.equal(e.httpStatus, 422);
        assert.deepEqual(e.details, { field: 'refund', paidMinor: 30_000, currency: 'EUR' });
        return true;
      });
      assert.equal((await reload(o._id)).status, 'partially_paid');
      const cancelled = await admin.cancel(merchant, o._id, 'user:u1', { refund: 'none', by: 'desk@rondini.example' });
      assert.equal(cancelled.status, 'cancelled');
      assert.equal((await Claim.findById(`order:${o._id}:close:2`).lean())?.kind, 'order-cancel', 'the referee of a balance payment');
      assert.deepEqual(await refundsOf(o._id), []);
      const again = await checkout.pay({ order: await reload(o._id), merchant }, { ...CARD }, '127.0.0.1');
      assert.notEqual(again.kind, 'paid');
      assert.equal(cancelled.plan!.parts![0]!.payment!.authCode, authOf(o, 1), 'what was paid stays paid');
      // Kept, but still refundable later on the cancelled order.
      assert.equal((await refund(cancelled, 30_000)).part, 1);
    });

    it('cancelling with refund all gives back each paid part in full, once, by the user', async () => {
      const o = await depositPaid();
      await refund(o, 5_000); // part of the deposit was refunded before
      const cancelled = await admin.cancel(merchant, o._id, 'user:u1', { refund: 'all', by: 'desk@rondini.example' });
      assert.equal(cancelled.status, 'cancelled');
      const docs = await refundsOf(o._id);
      assert.deepEqual(docs.map((d) => [d.part, d.amountMinor, d.by]), [
        [1, 5_000, 'desk@rondini.example'],
        [1, 25_000, 'desk@rondini.example'],
      ]);
      assert.deepEqual(await admin.refundCancelled(merchant, o._id, 'desk@rondini.example'), [], 'asked again: nothing left to refund');
      assert.equal(await outcome(admin.cancel(merchant, o._id, 'user:u1', { refund: 'all' })), 'ORDER_NOT_CANCELLABLE');
    });
  });

  describe('back office', () => {
    let app: BackofficeApp;
    let merchant: MerchantDoc;
    let n = 0;
    const password = 'plan refund test password';

    before(async () => {
      app = await startBackofficeApp();
      const m = await createMerchantService({ repos, mailDomain: MAIL_DOMAIN }).create({ name: 'Hotel Bellavista', email: 'desk@bellavista.example', webhookUrl: 'http://127.0.0.1:9/hooks' });
      merchant = (await repos.merchants.findById(m.id))!;
      await MerchantUser.create({ merchantId: merchant._id, email: 'operator@bellavista.example', passwordHash: await hashPassword(password), role: 'operator' });
    });
    after(() => app?.close());

    async function partlyPaid(): Promise<OrderDoc> {
      n += 1;
      const { order } = await app.orders.create(merchant, { amountMinor: 100_000, currency: 'EUR', reference: `BO-${n}`, plan: { deposit: { percent: 30 } } }, { key: `bo-plan:${n}` });
      assert.equal((await app.checkout.pay({ order, merchant }, CARD, '127.0.0.2')).kind, 'paid');
      const o = await reload(order._id);
      assert.equal(o.status, 'partially_paid');
      return o;
    }

    it('the cancel of a partly paid order is a step with a required choice; refund: cancelled and the deposit refunded', async () => {
      const o = await partlyPaid();
      const c = new BoClient(app.base);
      assert.equal((await c.login('operator@bellavista.example', password)).status, 303);
      const detail = await c.get(`/backoffice/orders/${o._id}`);
      assert.match(detail.html, /<form method="get" action="\/backoffice\/orders\/[^"]+\/cancel" class="action" id="cancel-paid-form">/);
      assert.match(detail.html, /id="refund-form"/, 'the paid deposit can be refunded');
      const step = await c.get(`/backoffice/orders/${o._id}/cancel`);
      assert.equal(step.status, 200);
      assert.match(step.html, /<fieldset[^>]*>\s*<legend>What was paid \(€300\.00\)<\/legend>/);
      assert.match(step.html, /<input id="cancel-refund-all" name="refund" type="radio" value="all" required/);
      assert.match(step.html, /<label for="cancel-refund-all">Refund what was paid \(€300\.00\)<\/label>/);
      assert.match(step.html, /<label for="cancel-refund-none">Keep what was paid \(€300\.00\)<\/label>/);

      const missing = await c.post(`/backoffice/orders/${o._id}/cancel`, {});
      assert.equal(missing.status, 422);
      assert.match(textOf(missing.html), /Choose whether what was paid is refunded or kept/);
      assert.equal((await reload(o._id)).status, 'partially_paid');

      const done = await c.post(`/backoffice/orders/${o._id}/cancel`, { refund: 'all' });
      assert.equal(done.status, 303);
      assert.match(done.location, /\?done=cancelledRefunded$/);
      assert.match(textOf((await c.get(done.location)).html), /The order was cancelled and what was paid was refunded\./);
      assert.equal((await reload(o._id)).status, 'cancelled');
      assert.deepEqual((await refundsOf(o._id)).map((d) => [d.part, d.amountMinor, d.by]), [[1, 30_000, 'operator@bellavista.example']]);
    });

    it('both parts paid: the refund form names the payment, the balance first, each refunded on its own', async () => {
      const o = await partlyPaid();
      const planSvc = createPlanService({ repos, payLinks: app.orders, maxLinkLifetimeDays: 60 });
      assert.equal((await planSvc.requestNext(o, merchant, 'merchant:test')).outcome, 'requested');
      assert.equal((await app.checkout.pay({ order: await reload(o._id), merchant }, CARD, '127.0.0.2')).kind, 'paid');
      assert.equal((await reload(o._id)).status, 'paid');
      const c = new BoClient(app.base);
      await c.login('operator@bellavista.example', password);
      let page = await c.get(`/backoffice/orders/${o._id}`);
      assert.match(page.html, /<label for="refund-part">Payment to refund<\/label>/);
      assert.match(page.html, /<option value="1">Part 1 of 2 \(€300\.00 refundable\)<\/option><option value="2" selected>Part 2 of 2 \(€700\.00 refundable\)<\/option>/);
      assert.match(page.html, /name="amount"[^>]*value="700.00"/, 'the default refunds the selected part in full');
      // The whole 1,000.00 fits no single payment: refused, nothing refunded.
      const spread = await c.post(`/backoffice/orders/${o._id}/refund`, { amount: '1000.00' });
      assert.equal(spread.status, 409);
      assert.match(textOf(spread.html), /No single payment of this order can give back that much/);
      assert.equal((await c.post(`/backoffice/orders/${o._id}/refund`, { amount: '700.00', part: '2' })).status, 303);
      page = await c.get(`/backoffice/orders/${o._id}`);
      assert.match(page.html, /<option value="2" disabled>Part 2 of 2 \(€0\.00 refundable\)<\/option>/);
      assert.match(page.html, /<option value="1" selected>/);
      assert.equal((await c.post(`/backoffice/orders/${o._id}/refund`, { amount: '300.01', part: '1' })).status, 409);
      assert.equal((await c.post(`/backoffice/orders/${o._id}/refund`, { amount: '300.00', part: '1' })).status, 303);
      assert.deepEqual((await refundsOf(o._id)).map((d) => [d.part, d.amountMinor]), [
        [2, 70_000],
        [1, 30_000],
      ]);
    });

    it('keep: cancelled, nothing refunded; an order without plan is cancelled in one step as before', async () => {
      const o = await partlyPaid();
      const c = new BoClient(app.base);
      await c.login('operator@bellavista.example', password);
      const done = await c.post(`/backoffice/orders/${o._id}/cancel`, { refund: 'none' });
      assert.equal(done.status, 303);
      assert.match(done.location, /\?done=cancelledKept$/);
      assert.equal((await reload(o._id)).status, 'cancelled');
      assert.deepEqual(await refundsOf(o._id), []);

      n += 1;
      const { order: plain } = await app.orders.create(merchant, { amountMinor: 1_000, currency: 'EUR', reference: `BO-${n}` }, { key: `bo-plan:${n}` });
      const page = await c.get(`/backoffice/orders/${plain._id}`);
      assert.doesNotMatch(page.html, /cancel-paid-form/);
      const r = await c.post(`/backoffice/orders/${plain._id}/cancel`, {});
      assert.equal(r.status, 303);
      assert.match(r.location, /\?done=cancelled$/);
    });
  });

  describe('server API', () => {
    let app: ApiApp;
    let conf: Awaited<ReturnType<typeof loadConformance>>;
    let key: string;
    let n = 0;

    before(async () => {
      app = await startApiApp();
      conf = await loadConformance(app);
      const { merchant } = await app.newMerchant('Bottega Parti');
      key = (await app.apiKeys.create(merchant._id)).key;
    });
    after(() => app?.close());

    async function call(op: string, p: string, o: Parameters<ApiApp['request']>[2] = {}): Promise<ApiReply> {
      const [method, template] = op.split(' ') as [string, string];
      const res = await app.request(method, `/api/v1${p}`, { key, ...o });
      conf.check(res, method, template);
      return res;
    }
    async function partlyPaid(): Promise<string> {
      const reference = `API-P-${++n}`;
      const created = await call('POST /payment-links', '/payment-links', { body: { amount: 100_000, currency: 'EUR', reference, deposit: { percent: 30 } } });
      assert.equal(created.status, 201, created.text);
      const link = new URL(created.body.url as string);
      const state = await app.checkout.open(link.pathname.split('/').pop()!, Object.fromEntries(link.searchParams));
      assert.equal((await app.checkout.pay(state as never, { ...CARD, number: '4242424242424242' }, '127.0.0.1')).kind, 'paid');
      return reference;
    }

    it('POST /orders/{reference}/cancel of a partly paid order: 422 naming `refund` without it; all: cancelled with the deposit refunded, replayed once', async () => {
      const reference = await partlyPaid();
      const missing = await call('POST /orders/{reference}/cancel', `/orders/${reference}/cancel`, { body: {} });
      assert.equal(missing.status, 422, missing.text);
      assert.match(missing.headers.get('content-type') ?? '', /^application\/problem\+json/);
      assert.equal(missing.body.code, 'VALIDATION_FAILED');
      assert.deepEqual(missing.body.errors.map((e: { field: string }) => e.field), ['refund']);
      const bad = await call('POST /orders/{reference}/cancel', `/orders/${reference}/cancel`, { body: { refund: 'some' } });
      assert.equal(bad.status, 422);
      assert.deepEqual(bad.body.errors.map((e: { field: string }) => e.field), ['refund']);
      assert.equal((await call('GET /orders/{reference}', `/orders/${reference}`)).body.status, 'partially_paid');

      const headers = { 'idempotency-key': `cancel-${reference}` };
      const done = await call('POST /orders/{reference}/cancel', `/orders/${reference}/cancel`, { body: { refund: 'all' }, headers });
      assert.equal(done.status, 200, done.text);
      assert.equal(done.body.status, 'cancelled');
      assert.equal(done.body.refundedAmount, 30_000);
      assert.deepEqual(done.body.refunds.map((r: { amount: number; part: number }) => [r.amount, r.part]), [[30_000, 1]]);
      const again = await call('POST /orders/{reference}/cancel', `/orders/${reference}/cancel`, { body: { refund: 'all' }, headers });
      assert.equal(again.status, 200);
      assert.equal(again.headers.get('idempotent-replayed'), 'true');
      assert.equal(again.body.refundedAmount, 30_000, 'not refunded twice');
    });

    it('refund: none keeps what was paid; a refund names its part', async () => {
      const reference = await partlyPaid();
      const refunded = await call('POST /orders/{reference}/refunds', `/orders/${reference}/refunds`, { body: { amount: 1_000, part: 1 } });
      assert.equal(refunded.status, 201, refunded.text);
      assert.equal(refunded.body.part, 1);
      const notPaid = await call('POST /orders/{reference}/refunds', `/orders/${reference}/refunds`, { body: { amount: 1_000, part: 2 } });
      assert.equal(notPaid.status, 422);
      assert.equal(notPaid.body.code, 'REFUND_PART_INVALID');
      const done = await call('POST /orders/{reference}/cancel', `/orders/${reference}/cancel`, { body: { refund: 'none' } });
      assert.equal(done.status, 200, done.text);
      assert.equal(done.body.status, 'cancelled');
      assert.equal(done.body.refundedAmount, 1_000);
    });
  });

  describe('CANCEL reply command', () => {
    const logger = createLogger('silent');
    let merchant: MerchantDoc;
    let shop: Awaited<ReturnType<ReturnType<typeof createMerchantService>['create']>>;
    let orders: OrderService;
    let checkout: CheckoutService;
    let intake: ReturnType<typeof createIntakeService>;
    let n = 0;

    before(async () => {
      const keys = [{ kid: 'pc1', secret: 'd'.repeat(32) }];
      orders = createOrderService({ repos, publicUrl: 'http://127.0.0.1:9', mailDomain: MAIL_DOMAIN, maxLinkLifetimeDays: 60, linkKeys: keys });
      const sandbox = createSandboxAcquirer({ latencyMs: 1 });
      checkout = createCheckoutService({ repos, acquirer: sandbox, linkKeys: keys, mailDomain: MAIL_DOMAIN, linkFor: orders.linkFor });
      const refunds = createRefundService({ repos, acquirer: sandbox });
      intake = createIntakeService({ repos, orders, mailDomain: MAIL_DOMAIN, maxLinkLifetimeDays: 60, logger, refunds });
      const merchants = createMerchantService({ repos, mailDomain: MAIL_DOMAIN });
      shop = await merchants.create({ name: 'Bottega', email: 'owner@bottega-parti.example', locale: 'en' });
      merchant = (await repos.merchants.findById(shop.id))!;
    });
    after(() => intake.close());

    async function store(subject: string): Promise<string> {
      const raw = Buffer.from(
        `From: owner@bottega-parti.example\r\nTo: ${shop.inboundAddress}\r\nSubject: ${subject}\r\nMessage-ID: <pc${++n}.${Date.now()}@bottega-parti.example>\r\n` +
          `Content-Type: text/plain; charset=utf-8\r\n\r\n\r\n`,
      );
      const r = await intake.store({ merchantId: merchant._id, door: 'submission', raw, envelope: { rcptTo: [] } });
      await intake.idle();
      return r.id;
    }
    async function replyOf(inboundId: string): Promise<{ code: string; text: string }> {
      const doc = await Outbox.findOne({ dedupeKey: `command-reply:${inboundId}` }).lean<OutboxDoc>();
      assert.ok(doc, 'a command reply was queued');
      const renderer = await createMailRenderer({ templatesDir: path.resolve('templates'), publicUrl: 'http://127.0.0.1:9' });
      const rendered = await renderer.render({ template: doc.template, locale: doc.locale, data: doc.data as Record<string, unknown> });
      return { code: (doc.data as { code: string }).code, text: rendered.text };
    }
    async function partlyPaid(): Promise<OrderDoc> {
      n += 1;
      const { order } = await orders.create(merchant, { amountMinor: 100_000, currency: 'EUR', reference: `CM-${n}`, plan: { deposit: { percent: 30 } } }, { key: `cmd-plan:${n}` });
      assert.equal((await checkout.pay({ order, merchant }, CARD, '127.0.0.3')).kind, 'paid');
      return reload(order._id);
    }

    it('CANCEL <ref> of a partly paid order does nothing and asks; CANCEL <ref> REFUND cancels and refunds, once', async () => {
      const o = await partlyPaid();
      const asking = await replyOf(await store(`CANCEL ${o.reference}`));
      assert.equal(asking.code, 'COMMAND_CANCEL_CHOICE');
      assert.match(asking.text, new RegExp(`partly paid \\(€300\\.00 so far\\)`));
      assert.match(asking.text, new RegExp(`CANCEL ${o.reference} REFUND`));
      assert.match(asking.text, new RegExp(`CANCEL ${o.reference} KEEP`));
      assert.equal((await reload(o._id)).status, 'partially_paid');

      const id = await store(`Re: cancel ${o.reference} refund`);
      const done = await replyOf(id);
      assert.equal(done.code, 'COMMAND_CANCELLED_REFUNDED');
      assert.match(done.text, /what was paid \(€300\.00\) has been refunded/);
      assert.equal((await reload(o._id)).status, 'cancelled');
      assert.deepEqual((await refundsOf(o._id)).map((d) => [d.part, d.amountMinor, d.by]), [[1, 30_000, `command:${id}`]]);
      // Processed again (a crash before it was marked done): nothing refunded twice.
      await InboundMessage.updateOne({ _id: id }, { $set: { status: 'received' } });
      assert.equal((await intake.process(id)).status, 'processed');
      assert.equal((await refundsOf(o._id)).length, 1);
    });

    it('CANCEL <ref> KEEP cancels and keeps what was paid; an order without plan is cancelled as before', async () => {
      const o = await partlyPaid();
      const kept = await replyOf(await store(`CANCEL ${o.reference} KEEP`));
      assert.equal(kept.code, 'COMMAND_CANCELLED_KEPT');
      assert.equal((await reload(o._id)).status, 'cancelled');
      assert.deepEqual(await refundsOf(o._id), []);

      n += 1;
      const { order: plain } = await orders.create(merchant, { amountMinor: 2_500, currency: 'EUR', reference: `CM-${n}` }, { key: `cmd-plan:${n}` });
      assert.equal((await replyOf(await store(`CANCEL ${plain.reference}`))).code, 'COMMAND_CANCELLED');
      assert.equal((await reload(plain._id)).status, 'cancelled');
    });
  });
});
