// Orders paid in parts (issue 13 part 1) through the real services and database: a deposit and its
// balance, instalments on their dates; each part paid with its own receipts and payment.succeeded
// (carrying the part), partially_paid in between, each link mailed once.
import assert from 'node:assert/strict';
import { Outbox, type OutboxDoc } from '../../src/db/models/outbox.model.ts';
import { Order, type OrderDoc } from '../../src/db/models/order.model.ts';
import { WebhookDelivery as Webhook } from '../../src/db/models/webhook.model.ts';
import { type MerchantDoc } from '../../src/db/merchants.repository.ts';
import { type LinkKey } from '../../src/domain/pay-link.ts';
import { createSandboxAcquirer } from '../../src/services/acquirer/sandbox-acquirer.ts';
import { createCheckoutService, type CheckoutService } from '../../src/services/checkout.service.ts';
import { createEventsService } from '../../src/services/events.service.ts';
import { createMerchantService } from '../../src/services/merchant.service.ts';
import { createOrderService, type OrderDraft, type OrderService } from '../../src/services/order.service.ts';
import { createPlanService, type PlanService } from '../../src/services/plan.service.ts';
import { createExpiryJob } from '../../src/jobs/expiry.job.ts';
import { createRenewalService } from '../../src/services/renewal.service.ts';
import { createLogger } from '../../src/logger.ts';
import { repos, useTestDatabase } from '../helpers/db.ts';

const KEYS: LinkKey[] = [{ kid: 'plan1', secret: 'plan-test-secret-plan-test-secret-plan-test' }];
const MAIL_DOMAIN = 'paymail.test';
const nextYear = String((new Date().getUTCFullYear() + 2) % 100).padStart(2, '0');
const CARD = { number: '4242 4242 4242 4242', expiry: `09/${nextYear}`, cvc: '913', holder: 'Anna Rossi' };

describe('orders paid in parts (deposits, balances, instalments)', function () {
  this.timeout(30_000);
  useTestDatabase();
  let merchant: MerchantDoc;
  let orders: OrderService;
  let checkout: CheckoutService;
  let plans: PlanService;
  let clock = new Date();
  let n = 0;

  before(async () => {
    const now = () => clock;
    orders = createOrderService({ repos, publicUrl: 'http://127.0.0.1:9', mailDomain: MAIL_DOMAIN, maxLinkLifetimeDays: 60, linkKeys: KEYS, now });
    const events = createEventsService({ repos, now });
    checkout = createCheckoutService({
      repos,
      acquirer: createSandboxAcquirer({ latencyMs: 1 }),
      linkKeys: KEYS,
      mailDomain: MAIL_DOMAIN,
      linkFor: orders.linkFor,
      events,
      now,
      limits: { failuresPerOrder: 100, failuresPerClient: 100 },
    });
    plans = createPlanService({ repos, payLinks: orders, maxLinkLifetimeDays: 60, now });
    const created = await createMerchantService({ repos, mailDomain: MAIL_DOMAIN }).create({
      name: 'B&B Le Rondini',
      email: 'desk@rondini.example',
      timezone: 'Europe/Rome',
      webhookUrl: 'http://127.0.0.1:9/hook',
    });
    merchant = (await repos.merchants.findById(created.id))!;
  });
  beforeEach(() => {
    clock = new Date();
  });

  async function newOrder(draft: Partial<OrderDraft>): Promise<OrderDoc> {
    n += 1;
    const r = await orders.create(
      merchant,
      { amountMinor: 100_000, currency: 'EUR', reference: `BK-${n}`, customerEmail: 'guest@example.org', delivery: 'customer', ...draft },
      { key: `test:plan:${n}` },
    );
    return r.order;
  }
  const reload = async (id: string) => (await Order.findById(id).lean<OrderDoc>())!;
  const mails = async (orderId: string, template: string) =>
    (await Outbox.find({ orderId, template }).sort({ createdAt: 1 }).lean<OutboxDoc[]>()).map((m) => ({ key: m.dedupeKey, data: (m.data ?? {}) as Record<string, unknown> }));
  async function pay(order: OrderDoc) {
    const r = await checkout.pay({ order: await reload(order._id), merchant }, { ...CARD }, '127.0.0.1');
    assert.equal(r.kind, 'paid', JSON.stringify(r));
    return reload(order._id);
  }

  it('a 30% deposit: the first link asks 300.00 of 1,000.00; paying it leaves the order partially_paid', async () => {
    const order = await newOrder({ plan: { deposit: { percent: 30 } } });
    assert.deepEqual(
      order.plan!.parts!.map((p) => [p.seq, p.kind, p.amountMinor]),
      [
        [1, 'deposit', 30_000],
        [2, 'balance', 70_000],
      ],
    );
    assert.equal(order.plan!.openSeq, 1);
    assert.equal(order.amountMinor, 100_000, 'the order keeps its total');
    const [link] = await mails(order._id, 'paylink');
    assert.equal(link!.key, `paylink:${order._id}`);
    assert.equal(link!.data['amountMinor'], 30_000);
    assert.deepEqual(link!.data['part'], { seq: 1, of: 2, kind: 'deposit', totalMinor: 100_000 });

    const paid = await pay(order);
    assert.equal(paid.status, 'partially_paid');
    assert.equal(paid.plan!.openSeq, 0, 'the balance waits for the merchant');
    assert.ok(paid.plan!.parts![0]!.payment?.receiptNumber);
    assert.equal(paid.plan!.parts![1]!.payment ?? undefined, undefined);
    assert.equal(paid.openReference, paid.reference, 'a partly paid order keeps its reference open');
    const receipts = await mails(order._id, 'receipt-customer');
    assert.deepEqual(receipts.map((r) => r.key), [`receipt:${order._id}:customer`]);
    assert.equal(receipts[0]!.data['amountMinor'], 30_000);
    assert.deepEqual(receipts[0]!.data['part'], { seq: 1, of: 2, kind: 'deposit', totalMinor: 100_000 });
    // The checkout takes nothing more until the balance is asked for.
    const again = await checkout.pay({ order: paid, merchant }, { ...CARD }, '127.0.0.1');
    assert.equal(again.kind, 'closed');
  });

  it('the balance asked for by the merchant: its own link, receipt and payment.succeeded; then paid', async () => {
    const order = await newOrder({ plan: { deposit: { amountMinor: 20_000, currency: 'EUR' } } });
    await pay(order);
    const asked = await plans.requestNext(await reload(order._id), merchant, 'merchant:desk@rondini.example');
    assert.equal(asked.outcome, 'requested');
    assert.equal(asked.outcome === 'requested' && asked.already, false);
    const twice = await plans.requestNext(await reload(order._id), merchant, 'merchant:desk@rondini.example');
    assert.equal(twice.outcome === 'requested' && twice.already, true, 'asking again mails nothing new');
    const links = await mails(order._id, 'paylink');
    assert.deepEqual(links.map((l) => l.key), [`paylink:${order._id}`, `paylink:${order._id}:2`]);
    assert.equal(links[1]!.data['amountMinor'], 80_000);
    assert.deepEqual(links[1]!.data['part'], { seq: 2, of: 2, kind: 'balance', totalMinor: 100_000 });

    const paid = await pay(order);
    assert.equal(paid.status, 'paid');
    assert.equal(paid.openReference, paid._id, 'the reference is free once fully paid');
    assert.equal(paid.payment!.receiptNumber, paid.plan!.parts![1]!.payment!.receiptNumber);
    assert.notEqual(paid.plan!.parts![0]!.payment!.receiptNumber, paid.plan!.parts![1]!.payment!.receiptNumber);
    const receipts = await mails(order._id, 'receipt-customer');
    assert.deepEqual(receipts.map((r) => r.key), [`receipt:${order._id}:customer`, `receipt:${order._id}:2:customer`]);
    assert.deepEqual(receipts.map((r) => r.data['amountMinor']), [20_000, 80_000]);
    const events = await Webhook.find({ orderId: order._id, type: 'payment.succeeded' }).sort({ createdAt: 1 }).lean();
    assert.equal(events.length, 2);
    const bodies = events.map((e) => JSON.parse(String((e as { body: string }).body)) as { data: { order: { status: string }; part: unknown; receipt: { number: string } } });
    assert.deepEqual(bodies.map((b) => b.data.part), [
      { seq: 1, of: 2, kind: 'deposit', amountMinor: 20_000 },
      { seq: 2, of: 2, kind: 'balance', amountMinor: 80_000 },
    ]);
    assert.deepEqual(bodies.map((b) => b.data.order.status), ['partially_paid', 'paid']);
    assert.equal(bodies[1]!.data.receipt.number, paid.payment!.receiptNumber);
  });

  it('a balance date: the plan job asks for it on that day at 09:00 in the merchant zone, once', async () => {
    const order = await newOrder({ plan: { deposit: { percent: 50 }, balanceDue: '2030-03-10' } });
    assert.equal(order.plan!.parts![1]!.dueDate, '2030-03-10');
    const paid = await pay(order);
    assert.equal(paid.plan!.nextDueAt!.toISOString(), '2030-03-10T08:00:00.000Z');
    clock = new Date('2030-03-10T07:59:00Z');
    assert.equal(await plans.openDue(), 0);
    clock = new Date('2030-03-10T08:00:00Z');
    assert.equal(await plans.openDue(), 1);
    assert.equal(await plans.openDue(), 0);
    const opened = await reload(order._id);
    assert.equal(opened.plan!.openSeq, 2);
    assert.equal(opened.plan!.nextDueAt ?? undefined, undefined);
    assert.equal(opened.expiresAt.getTime(), clock.getTime() + 7 * 86_400_000);
    assert.equal((await mails(order._id, 'paylink')).length, 2);
  });

  it('a balance link that expired unpaid: asking again opens it with a new expiry and mails it once more', async () => {
    const order = await newOrder({ plan: { deposit: { percent: 40 } } });
    await pay(order);
    await plans.requestNext(await reload(order._id), merchant, 'merchant:desk');
    const first = await reload(order._id);
    clock = new Date(first.expiresAt.getTime() + 60_000);
    const late = await checkout.pay({ order: first, merchant }, { ...CARD }, '127.0.0.1');
    assert.equal(late.kind, 'closed', 'an expired balance link takes no payment');
    const again = await plans.requestNext(first, merchant, 'merchant:desk', 3);
    assert.equal(again.outcome === 'requested' && again.already, false);
    const reopened = await reload(order._id);
    assert.equal(reopened.expiresAt.getTime(), clock.getTime() + 3 * 86_400_000);
    assert.equal(reopened.status, 'partially_paid');
    const links = await mails(order._id, 'paylink');
    assert.deepEqual(links.map((l) => l.key), [`paylink:${order._id}`, `paylink:${order._id}:2`, `paylink:${order._id}:2:r${Math.floor(reopened.expiresAt.getTime() / 1000)}`]);
    assert.equal((await plans.requestNext(reopened, merchant, 'merchant:desk')).outcome, 'requested');
    assert.equal((await mails(order._id, 'paylink')).length, 3, 'asking while open mails nothing');
    assert.equal((await pay(order)).status, 'paid');
  });

  it('reminders: none while the balance waits; the open balance link is reminded of before it expires; never expired by the job', async () => {
    const expiry = createExpiryJob({ repos, events: createEventsService({ repos, now: () => clock }), mailDomain: MAIL_DOMAIN, linkFor: orders.linkFor, logger: createLogger('error'), now: () => clock });
    const order = await newOrder({ plan: { deposit: { percent: 25 } } });
    await pay(order);
    const waiting = await reload(order._id);
    assert.equal(waiting.remindAt ?? undefined, undefined, 'the deposit link is paid: its reminders end');
    clock = new Date(waiting.expiresAt.getTime() + 86_400_000);
    await expiry.runOnce();
    const still = await reload(order._id);
    assert.equal(still.status, 'partially_paid', 'the job never expires a partly paid order');
    assert.equal((await mails(order._id, 'reminder')).length, 0);
    await plans.requestNext(still, merchant, 'merchant:desk');
    const open = await reload(order._id);
    // Default settings: 3 days and 1 day before the expiry (7 days from the link going out).
    clock = new Date(open.expiresAt.getTime() - 3 * 86_400_000 + 60_000);
    await expiry.runOnce();
    const reminders = await mails(order._id, 'reminder');
    assert.equal(reminders.length, 1, 'one reminder of the balance link');
    assert.equal(reminders[0]!.data['amountMinor'], 75_000, 'it asks for the balance');
    assert.deepEqual(reminders[0]!.data['part'], { seq: 2, of: 2, kind: 'balance', totalMinor: 100_000 });
    clock = new Date(open.expiresAt.getTime() + 60_000);
    await expiry.runOnce();
    assert.equal((await reload(order._id)).status, 'partially_paid');
  });

  it("a lapsed balance link: the customer's 'Ask for a new link' reaches the merchant, whose renewal mails the balance link", async () => {
    const renewals = createRenewalService({ repos, mailDomain: MAIL_DOMAIN, maxLinkLifetimeDays: 60, linkFor: orders.linkFor, events: createEventsService({ repos, now: () => clock }), now: () => clock });
    const order = await newOrder({ plan: { deposit: { percent: 10 } } });
    await pay(order);
    await plans.requestNext(await reload(order._id), merchant, 'merchant:desk');
    const open = await reload(order._id);
    assert.equal((await renewals.request(open, merchant, undefined)).kind, 'not-expired', 'a valid link needs no renewal');
    clock = new Date(open.expiresAt.getTime() + 60_000);
    const asked = await renewals.request(open, merchant, undefined);
    assert.equal(asked.kind, 'asked');
    const [request] = await mails(order._id, 'link-request');
    assert.equal(request!.data['amountMinor'], 90_000, 'the merchant is told of the balance');
    const renewed = await renewals.renew(await reload(order._id), merchant, new Date(clock.getTime() + 5 * 86_400_000), 'merchant:desk');
    assert.equal(renewed.kind, 'renewed');
    const after = await reload(order._id);
    assert.equal(after.status, 'partially_paid');
    assert.equal(after.plan!.openSeq, 2);
    assert.equal(after.expiresAt.getTime(), clock.getTime() + 5 * 86_400_000);
    const [link] = await mails(order._id, 'link-renewed');
    assert.equal(link!.data['amountMinor'], 90_000);
    assert.equal((await pay(order)).status, 'paid');
  });

  it('three monthly instalments: each opened on its date, paid in turn; the last one makes it paid', async () => {
    const order = await newOrder({ amountMinor: 100_001, plan: { instalments: { count: 3, every: 'month' } } });
    assert.deepEqual(order.plan!.parts!.map((p) => p.amountMinor), [33_334, 33_334, 33_333]);
    await pay(order);
    for (const seq of [2, 3]) {
      const o = await reload(order._id);
      assert.equal(o.status, 'partially_paid');
      clock = new Date(o.plan!.nextDueAt!.getTime() + 1000);
      assert.equal(await plans.openDue(), 1);
      assert.equal((await reload(order._id)).plan!.openSeq, seq);
      await pay(order);
    }
    const done = await reload(order._id);
    assert.equal(done.status, 'paid');
    assert.equal(done.plan!.parts!.filter((p) => p.payment?.paidAt).length, 3);
    assert.equal((await mails(order._id, 'receipt-merchant')).length, 3);
  });

  it('refuses a deposit that is not less than the total, naming the field', async () => {
    await assert.rejects(newOrder({ plan: { deposit: { amountMinor: 100_000, currency: 'EUR' } } }), (e: { code?: string; details?: { field?: string } }) => {
      assert.equal(e.code, 'DEPOSIT_NOT_LESS_THAN_TOTAL');
      assert.equal(e.details?.field, 'deposit');
      return true;
    });
  });
});
