// Refunds: in full, in part, over-refund refused, refunds racing each other (one process and two
// "instances" with their own services) never add up to more than was paid; the refund.succeeded
// event; refunds through the back-office form and in the order's history.
import assert from 'node:assert/strict';
import { Claim } from '../../src/db/claims.ts';
import { MerchantUser } from '../../src/db/models/merchant-user.model.ts';
import { Merchant, type MerchantDoc } from '../../src/db/models/merchant.model.ts';
import { Order, type OrderDoc } from '../../src/db/models/order.model.ts';
import { Refund } from '../../src/db/models/refund.model.ts';
import { WebhookDelivery } from '../../src/db/models/webhook.model.ts';
import { type Acquirer } from '../../src/domain/acquirer.ts';
import { isAppError } from '../../src/domain/errors.ts';
import { hashPassword } from '../../src/domain/password.ts';
import { createSandboxAcquirer } from '../../src/services/acquirer/sandbox-acquirer.ts';
import { createEventsService } from '../../src/services/events.service.ts';
import { createMerchantService } from '../../src/services/merchant.service.ts';
import { createRefundService, type RefundService } from '../../src/services/refund.service.ts';
import { useTestDatabase } from '../helpers/db.ts';
import { BoClient, MAIL_DOMAIN, startBackofficeApp, textOf, type BackofficeApp } from './backoffice-client.ts';
import { repos } from '../helpers/db.ts';

const CARD = { number: '4242424242424242', expiry: '12/39', cvc: '123', holder: 'Anna Rossi', email: 'anna@example.org' };

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

describe('back office: refunds', function () {
  this.timeout(60_000);
  useTestDatabase();
  let app: BackofficeApp;
  let merchant: MerchantDoc;
  let seq = 0;
  const password = 'refund test password';

  before(async () => {
    app = await startBackofficeApp();
    const m = await createMerchantService({ repos, mailDomain: MAIL_DOMAIN }).create({
      name: 'Hotel Bellavista',
      email: 'desk@bellavista.example',
      webhookUrl: 'http://127.0.0.1:9/hooks',
    });
    merchant = (await Merchant.findById(m.id).lean<MerchantDoc>())!;
    const hash = await hashPassword(password);
    for (const role of ['operator', 'viewer'] as const) {
      await MerchantUser.create({ merchantId: merchant._id, email: `${role}@bellavista.example`, passwordHash: hash, role });
    }
  });
  after(() => app?.close());

  async function paidOrder(amountMinor = 10_000): Promise<OrderDoc> {
    seq += 1;
    const { order } = await app.orders.create(merchant, { amountMinor, currency: 'EUR', reference: `RF-${seq}` }, { key: `rf:${seq}` });
    const r = await app.checkout.pay({ order, merchant }, CARD, '127.0.0.2');
    assert.equal(r.kind, 'paid');
    return (await Order.findById(order._id).lean<OrderDoc>())!;
  }

  const refund = (svc: RefundService, order: OrderDoc, amountMinor: number) =>
    svc.refund(merchant, order._id, { amountMinor, by: 'operator@bellavista.example' });

  describe('service', () => {
    const cases: Array<{ name: string; paid: number; refunds: number[]; expect: string[]; total: number }> = [
      { name: 'in full', paid: 10_000, refunds: [10_000], expect: ['ok'], total: 10_000 },
      { name: 'in parts up to the full amount', paid: 10_000, refunds: [2_500, 7_000, 500], expect: ['ok', 'ok', 'ok'], total: 10_000 },
      { name: 'over-refund refused (one go)', paid: 10_000, refunds: [10_001], expect: ['REFUND_EXCEEDS_PAID'], total: 0 },
      { name: 'over-refund refused (after a part)', paid: 10_000, refunds: [6_000, 4_001, 4_000, 1], expect: ['ok', 'REFUND_EXCEEDS_PAID', 'ok', 'REFUND_EXCEEDS_PAID'], total: 10_000 },
      { name: 'zero refused', paid: 10_000, refunds: [0], expect: ['REFUND_AMOUNT_INVALID'], total: 0 },
    ];
    for (const c of cases) {
      it(c.name, async () => {
        const order = await paidOrder(c.paid);
        const got: string[] = [];
        for (const amount of c.refunds) got.push(await outcome(refund(app.refunds, order, amount)));
        assert.deepEqual(got, c.expect);
        const { refundedMinor, refunds } = await app.refunds.forOrder(merchant, order._id);
        assert.equal(refundedMinor, c.total);
        assert.equal(refunds.length, c.expect.filter((x) => x === 'ok').length);
        // The order stays paid; refunds are their own documents.
        assert.equal((await Order.findById(order._id).lean<OrderDoc>())!.status, 'paid');
      });
    }

    it('says how much is still refundable', async () => {
      const order = await paidOrder(5_000);
      await refund(app.refunds, order, 3_000);
      await assert.rejects(refund(app.refunds, order, 2_001), (e: unknown) => {
        assert.ok(isAppError(e, 'REFUND_EXCEEDS_PAID'));
        assert.deepEqual(e.details, { refundableMinor: 2_000 });
        return true;
      });
    });

    it('refuses an unpaid order and an unknown one', async () => {
      seq += 1;
      const { order } = await app.orders.create(merchant, { amountMinor: 1_000, currency: 'EUR', reference: `RF-${seq}` }, { key: `rf:${seq}` });
      assert.equal(await outcome(refund(app.refunds, order, 100)), 'REFUND_NOT_PAID');
      assert.equal(await outcome(app.refunds.refund(merchant, 'ord_nope', { amountMinor: 1, by: 'x' })), 'ORDER_NOT_FOUND');
    });

    it('stores who refunded, the acquirer refund id, and fires refund.succeeded once per refund', async () => {
      const order = await paidOrder(8_000);
      const r1 = await app.refunds.refund(merchant, order._id, { amountMinor: 3_000, by: 'operator@bellavista.example', reason: 'room not used' });
      await refund(app.refunds, order, 1_000);
      const doc = (await Refund.findById(r1._id).lean())!;
      assert.equal(doc.by, 'operator@bellavista.example');
      assert.equal(doc.reason, 'room not used');
      assert.match(doc.refundId, /^re_/);
      assert.equal(doc.currency, 'EUR');
      const events = await WebhookDelivery.find({ orderId: order._id, type: 'refund.succeeded' }).lean();
      assert.equal(events.length, 2);
      const body = JSON.parse(events.find((e) => e.dedupeKey === `refund.succeeded:${r1._id}`)!.body);
      assert.deepEqual({ ...body.data.refund, at: undefined }, { id: r1._id, amountMinor: 3_000, currency: 'EUR', at: undefined });
      assert.equal(body.data.order.id, order._id);
    });

    it('an acquirer refusal reserves nothing', async () => {
      const sandbox = createSandboxAcquirer();
      let refuse = true;
      const flaky: Pick<Acquirer, 'refund'> = {
        refund: async (req) => (refuse ? { ok: false, code: 'REFUND_REJECTED', message: 'issuer said no' } : sandbox.refund!(req)),
      };
      const svc = createRefundService({ repos, acquirer: flaky });
      const order = await paidOrder(2_000);
      assert.equal(await outcome(refund(svc, order, 2_000)), 'REFUND_REFUSED');
      refuse = false;
      assert.equal(await outcome(refund(svc, order, 2_000)), 'ok');
      assert.equal((await app.refunds.forOrder(merchant, order._id)).refundedMinor, 2_000);
    });
  });

  describe('races', () => {
    // Several refunders of one order at once; together they ask for more than was paid.
    const races: Array<{ name: string; paid: number; amounts: number[]; fits: number; instances: number }> = [
      { name: 'two refunds of 60% each', paid: 10_000, amounts: [6_000, 6_000], fits: 1, instances: 1 },
      { name: 'five refunds of 30% each', paid: 10_000, amounts: [3_000, 3_000, 3_000, 3_000, 3_000], fits: 3, instances: 1 },
      { name: 'two full refunds on two instances', paid: 10_000, amounts: [10_000, 10_000], fits: 1, instances: 2 },
      { name: 'six refunds of 25% on three instances', paid: 10_000, amounts: [2_500, 2_500, 2_500, 2_500, 2_500, 2_500], fits: 4, instances: 3 },
    ];
    const ROUNDS = 4;
    for (const race of races) {
      it(`${race.name}: only what fits succeeds (${ROUNDS} rounds)`, async () => {
        // Each "instance" has its own service and acquirer: nothing shared but the database.
        const services = Array.from({ length: race.instances }, () => createRefundService({ repos, acquirer: createSandboxAcquirer({ latencyMs: 3 }), events: createEventsService({ repos }) }));
        for (let round = 0; round < ROUNDS; round++) {
          const order = await paidOrder(race.paid);
          const results = await Promise.all(race.amounts.map((a, i) => outcome(refund(services[i % services.length]!, order, a))));
          const ok = results.filter((r) => r === 'ok').length;
          assert.equal(ok, race.fits, `round ${round}: ${results.join(', ')}`);
          assert.ok(results.every((r) => r === 'ok' || r === 'REFUND_EXCEEDS_PAID'), results.join(', '));
          const { refundedMinor, refunds } = await app.refunds.forOrder(merchant, order._id);
          assert.ok(refundedMinor <= race.paid, `round ${round}: refunded ${refundedMinor} of ${race.paid}`);
          assert.equal(refunds.length, race.fits);
          assert.deepEqual(refunds.map((r) => r.seq), refunds.map((_, i) => i), 'slots numbered 0..n-1');
          assert.equal(await Claim.countDocuments({ _id: { $regex: `^refund:${order._id}:` } }), race.fits);
        }
      });
    }
  });

  describe('over HTTP', () => {
    it('an operator refunds in part, then the rest; the history and the totals show it', async () => {
      const order = await paidOrder(12_990);
      const c = new BoClient(app.base);
      assert.equal((await c.login('operator@bellavista.example', password)).status, 303);
      let page = await c.get(`/backoffice/orders/${order._id}`);
      assert.match(page.html, /id="refund-form"/);
      assert.match(page.html, /name="amount"[^>]*value="129.90"/);

      const r = await c.post(`/backoffice/orders/${order._id}/refund`, { amount: '30,00', reason: 'late check-in' });
      assert.equal(r.status, 303);
      assert.match(r.location, /\?done=refunded$/);
      page = await c.get(r.location);
      let text = textOf(page.html);
      assert.match(text, /The refund was made/);
      assert.match(text, /Refunded €30\.00/);
      assert.match(text, /by operator@bellavista\.example · late check-in/);
      assert.match(text, /partially refunded/);
      assert.match(text, /€99\.90 still refundable/);

      const over = await c.post(`/backoffice/orders/${order._id}/refund`, { amount: '99,91' });
      assert.equal(over.status, 409);
      assert.match(textOf(over.html), /more than can still be refunded/);

      const bad = await c.post(`/backoffice/orders/${order._id}/refund`, { amount: '10 USD' });
      assert.equal(bad.status, 422);

      assert.equal((await c.post(`/backoffice/orders/${order._id}/refund`, { amount: '99.90' })).status, 303);
      page = await c.get(`/backoffice/orders/${order._id}`);
      text = textOf(page.html);
      assert.match(text, /fully refunded/);
      assert.doesNotMatch(text, /still refundable/);
      assert.doesNotMatch(page.html, /id="refund-form"/, 'nothing left to refund');
      assert.equal((await Order.findById(order._id).lean<OrderDoc>())!.status, 'paid');
    });

    it('a viewer sees the refunds but no refund form, and cannot post one', async () => {
      const order = await paidOrder(5_000);
      await refund(app.refunds, order, 1_000);
      const c = new BoClient(app.base);
      await c.login('viewer@bellavista.example', password);
      const page = await c.get(`/backoffice/orders/${order._id}`);
      assert.match(textOf(page.html), /Refunded €10\.00/);
      assert.doesNotMatch(page.html, /id="refund-form"/);
      assert.equal((await c.post(`/backoffice/orders/${order._id}/refund`, { amount: '1' })).status, 403);
      assert.equal((await app.refunds.forOrder(merchant, order._id)).refundedMinor, 1_000);
    });
  });
});
