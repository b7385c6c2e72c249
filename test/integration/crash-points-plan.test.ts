// Orders paid in parts (issue 13 part 1) crashed at every step boundary: the balance's payment
// (FAULT_POINTS.pay and .3ds are the same steps for a part) and the opening of the next part
// (part:claimed, part:opened, part:mailed). After a "restart" (new instances without faults) and
// the repair, each ends done and each side effect — the part's receipts, its payment.succeeded,
// its pay-link mail — exists exactly once, however often the repair runs.
import assert from 'node:assert/strict';
import { Merchant, type MerchantDoc } from '../../src/db/models/merchant.model.ts';
import { Order, type OrderDoc } from '../../src/db/models/order.model.ts';
import { Outbox } from '../../src/db/models/outbox.model.ts';
import { WebhookDelivery } from '../../src/db/models/webhook.model.ts';
import { type LinkKey } from '../../src/domain/pay-link.ts';
import { createSandboxAcquirer } from '../../src/services/acquirer/sandbox-acquirer.ts';
import { createCheckoutService, type CheckoutForm } from '../../src/services/checkout.service.ts';
import { createEventsService } from '../../src/services/events.service.ts';
import { createMerchantService } from '../../src/services/merchant.service.ts';
import { createOrderService, type OrderService } from '../../src/services/order.service.ts';
import { FAULT_POINTS, partCloseClaimKey, type FaultHook } from '../../src/services/order-transitions.ts';
import { createPlanService } from '../../src/services/plan.service.ts';
import { Claim } from '../../src/db/claims.ts';
import { Crash, crashAt } from '../helpers/crash.ts';
import { repos, useTestDatabase } from '../helpers/db.ts';

const KEYS: LinkKey[] = [{ kid: 'crashplan1', secret: 'crash-points-plan-secret-crash-points-plan' }];
const MAIL_DOMAIN = 'paymail.test';
const EXPIRY = `09/${String((new Date().getUTCFullYear() + 2) % 100).padStart(2, '0')}`;
const NO_LIMITS = { failuresPerOrder: 1000, failuresPerClient: 1000 };
const PART_POINTS = ['part:claimed', 'part:opened', 'part:mailed'];


describe('orders paid in parts: a crash at every step boundary is finished by the repair, each side effect once', function () {
  this.timeout(30_000);
  useTestDatabase();
  const acquirer = createSandboxAcquirer({ latencyMs: 1 });
  let orders: OrderService;
  let merchant: MerchantDoc;
  let n = 0;

  before(async () => {
    orders = createOrderService({ repos, publicUrl: 'http://127.0.0.1:1', mailDomain: MAIL_DOMAIN, maxLinkLifetimeDays: 60, linkKeys: KEYS });
    const created = await createMerchantService({ repos, mailDomain: MAIL_DOMAIN }).create({ name: 'Crash B&B', email: 'desk@crashbb.example', timezone: 'Europe/Rome' });
    await Merchant.updateOne({ _id: created.id }, { $set: { webhookUrl: 'https://hooks.crashbb.example/paymail' } });
    merchant = (await Merchant.findById(created.id).lean<MerchantDoc>())!;
  });

  function services(faults?: FaultHook) {
    const events = createEventsService({ repos });
    const f = faults ? { faults } : {};
    return {
      checkout: createCheckoutService({ repos, acquirer, linkKeys: KEYS, mailDomain: MAIL_DOMAIN, linkFor: orders.linkFor, events, limits: NO_LIMITS, ...f }),
      plans: createPlanService({ repos, payLinks: orders, maxLinkLifetimeDays: 60, ...f }),
    };
  }
  async function restartAndRepair(): Promise<void> {
    await new Promise((r) => setTimeout(r, 5));
    for (let i = 0; i < 3; i++) {
      const s = services();
      await s.checkout.repairInterrupted(0);
      await s.plans.repair(0);
    }
  }
  const reload = async (id: string) => (await Order.findById(id).lean<OrderDoc>())!;
  const card = (): CheckoutForm => ({ number: '4242424242424242', expiry: EXPIRY, cvc: '913', holder: 'Anna Rossi' });
  async function pay(order: OrderDoc, svc = services().checkout) {
    const current = await reload(order._id);
    const state = await svc.open(current.publicId, Object.fromEntries(new URL(orders.linkFor(current)).searchParams));
    assert.equal(state.kind, 'payable');
    return svc.pay(state as Extract<typeof state, { kind: 'payable' }>, card(), '127.0.0.1');
  }
  async function effects(orderId: string) {
    const count = (xs: string[]) => xs.reduce<Record<string, number>>((t, x) => ({ ...t, [x]: (t[x] ?? 0) + 1 }), {});
    const mails = (await Outbox.find({ orderId }, { template: 1 }).lean<Array<{ template: string }>>()).map((m) => m.template);
    const events = (await WebhookDelivery.find({ orderId }, { type: 1 }).lean<Array<{ type: string }>>()).map((e) => e.type);
    return { mails: count(mails), events: count(events) };
  }
  /** A deposit order with its deposit paid and its balance open. */
  async function balanceOpen(): Promise<OrderDoc> {
    n += 1;
    const { order } = await orders.create(
      merchant,
      { amountMinor: 50_000, currency: 'EUR', reference: `CP-${n}`, customerEmail: `guest${n}@crashbb.example`, delivery: 'customer', plan: { deposit: { percent: 20 } } },
      { key: `crash-plan:${n}` },
    );
    assert.equal((await pay(order)).kind, 'paid');
    await services().plans.requestNext(await reload(order._id), merchant, 'merchant:desk');
    return reload(order._id);
  }

  const BOTH_PAID = {
    mails: { paylink: 2, 'receipt-customer': 2, 'receipt-merchant': 2 },
    events: { 'payment.succeeded': 2 },
  };

  for (const point of FAULT_POINTS.pay) {
    it(`the balance's payment, crash at ${point}`, async () => {
      const order = await balanceOpen();
      const crashing = services(crashAt(point));
      await assert.rejects(pay(order, crashing.checkout), Crash);
      await restartAndRepair();
      if (point === 'pay:authorized') {
        const still = await reload(order._id);
        assert.equal(still.status, 'partially_paid');
        assert.equal(still.plan!.openSeq, 2, 'the balance is still payable');
        assert.equal((await pay(order)).kind, 'paid');
      }
      const after = await reload(order._id);
      assert.equal(after.status, 'paid');
      assert.equal(after.plan!.parts!.filter((p) => p.payment?.paidAt).length, 2);
      assert.deepEqual(await effects(order._id), BOTH_PAID);
      assert.equal((await Claim.findById(partCloseClaimKey(order._id, 2)).lean())?.applied, true);
    });
  }

  for (const point of PART_POINTS) {
    it(`opening the balance, crash at ${point}`, async () => {
      n += 1;
      const { order } = await orders.create(
        merchant,
        { amountMinor: 50_000, currency: 'EUR', reference: `CQ-${n}`, customerEmail: `guest${n}@crashbb.example`, delivery: 'customer', plan: { deposit: { percent: 20 } } },
        { key: `crash-plan-open:${n}` },
      );
      assert.equal((await pay(order)).kind, 'paid');
      await assert.rejects(services(crashAt(point)).plans.requestNext(await reload(order._id), merchant, 'merchant:desk'), Crash);
      await restartAndRepair();
      const after = await reload(order._id);
      assert.equal(after.plan!.openSeq, 2, 'the balance is open');
      assert.equal((await effects(order._id)).mails['paylink'], 2, 'its link mailed once');
      // Asking again after the repair sends nothing more.
      await services().plans.requestNext(after, merchant, 'merchant:desk');
      assert.equal((await effects(order._id)).mails['paylink'], 2);
      assert.equal((await pay(order)).kind, 'paid');
    });
  }
});
