// A crash at every step boundary of every state transition — pay, 3-D Secure completion, expire,
// cancel, refund (FAULT_POINTS) — followed by a "restart" (new service instances, no faults) and
// the crash repair: each transition ends done, and each of its side effects (mails in the outbox,
// webhook events) exists exactly once, however often the repair runs. The same with `kill -9` of a
// real process for payments: test/faults/crash-points-kill9.test.ts.
import assert from 'node:assert/strict';
import { Claim } from '../../src/db/claims.ts';
import { Merchant, type MerchantDoc } from '../../src/db/models/merchant.model.ts';
import { Order, type OrderDoc } from '../../src/db/models/order.model.ts';
import { Outbox } from '../../src/db/models/outbox.model.ts';
import { Refund } from '../../src/db/models/refund.model.ts';
import { WebhookDelivery } from '../../src/db/models/webhook.model.ts';
import { type Acquirer, type RefundRequest } from '../../src/domain/acquirer.ts';
import { type LinkKey } from '../../src/domain/pay-link.ts';
import { createExpiryJob } from '../../src/jobs/expiry.job.ts';
import { createLogger } from '../../src/logger.ts';
import { createSandboxAcquirer } from '../../src/services/acquirer/sandbox-acquirer.ts';
import { createCheckoutService, type CheckoutForm } from '../../src/services/checkout.service.ts';
import { createEventsService } from '../../src/services/events.service.ts';
import { createMerchantService } from '../../src/services/merchant.service.ts';
import { createOrderAdminService } from '../../src/services/order-admin.service.ts';
import { createOrderService, type OrderService } from '../../src/services/order.service.ts';
import { closeClaimKey, FAULT_POINTS, type FaultHook } from '../../src/services/order-transitions.ts';
import { createRefundService } from '../../src/services/refund.service.ts';
import { Crash, crashAt } from '../helpers/crash.ts';
import { useTestDatabase } from '../helpers/db.ts';
import { repos } from '../helpers/db.ts';

const KEYS: LinkKey[] = [{ kid: 'crash1', secret: 'crash-points-test-secret-crash-points' }];
const MAIL_DOMAIN = 'paymail.test';
const EXPIRY = `09/${String((new Date().getUTCFullYear() + 2) % 100).padStart(2, '0')}`;
const NO_LIMITS = { failuresPerOrder: 1000, failuresPerClient: 1000 };


describe('crash at every step boundary: the repair finishes each transition, each side effect once', function () {
  this.timeout(60_000);
  useTestDatabase();
  const logger = createLogger('silent');
  let merchant: MerchantDoc;
  let orders: OrderService;
  let seq = 0;
  /** The acquirer's refunds, by idempotency key: a second refund for a key would be money lost. */
  const refundsAtAcquirer = new Map<string, Set<string>>();
  const sandbox = createSandboxAcquirer();
  const acquirer: Acquirer = {
    ...sandbox,
    async refund(req: RefundRequest) {
      const r = await sandbox.refund!(req);
      if (r.ok) refundsAtAcquirer.set(req.idempotencyKey, (refundsAtAcquirer.get(req.idempotencyKey) ?? new Set()).add(r.refundId));
      return r;
    },
  };

  before(async () => {
    orders = createOrderService({ repos, publicUrl: 'http://127.0.0.1:1', mailDomain: MAIL_DOMAIN, maxLinkLifetimeDays: 60, linkKeys: KEYS });
    const created = await createMerchantService({ repos, mailDomain: MAIL_DOMAIN }).create({ name: 'Crash Hotel', email: 'desk@crash.example', timezone: 'Europe/Rome' });
    // Events are only queued for a merchant with a webhook URL (nothing is delivered here).
    await Merchant.updateOne({ _id: created.id }, { $set: { webhookUrl: 'https://hooks.crash.example/paymail' } });
    merchant = (await Merchant.findById(created.id).lean<MerchantDoc>())!;
  });

  /** One instance of each service; `faults` makes it crash at a point. */
  function services(faults?: FaultHook) {
    const events = createEventsService({ repos });
    const f = faults ? { faults } : {};
    return {
      checkout: createCheckoutService({ repos, acquirer, linkKeys: KEYS, mailDomain: MAIL_DOMAIN, linkFor: orders.linkFor, events, limits: NO_LIMITS, ...f }),
      refunds: createRefundService({ repos, acquirer, events, ...f }),
      orderAdmin: createOrderAdminService({ repos, orders, maxLinkLifetimeDays: 60, events, ...f }),
      expiry: createExpiryJob({ repos, events, mailDomain: MAIL_DOMAIN, linkFor: orders.linkFor, logger, ...f }),
    };
  }

  /** A restart: new instances without faults run the repair, three times over (idempotent). */
  async function restartAndRepair(): Promise<void> {
    await new Promise((r) => setTimeout(r, 5));
    for (let i = 0; i < 3; i++) {
      const s = services();
      await s.checkout.repairInterrupted(0);
      await s.refunds.repairInterrupted(0);
    }
  }

  async function newOrder(): Promise<OrderDoc> {
    seq += 1;
    const r = await orders.create(
      merchant,
      { amountMinor: 12_990, currency: 'EUR', reference: `CR-${seq}`, description: 'Room', customerEmail: `guest${seq}@crash.example`, customerName: 'Guest' },
      { key: `crash:${seq}` },
    );
    return r.order;
  }

  const card = (number: string): CheckoutForm => ({ number, expiry: EXPIRY, cvc: '913', holder: 'Anna Rossi', email: 'anna@crash.example' });

  async function open(order: OrderDoc, svc = services().checkout) {
    const state = await svc.open(order.publicId, Object.fromEntries(new URL(orders.linkFor(order)).searchParams));
    assert.equal(state.kind, 'payable');
    return state as Extract<typeof state, { kind: 'payable' }>;
  }

  /** Mails queued (but the order's pay-link mail) and webhook events, counted by template and type. */
  async function effects(orderId: string) {
    const count = (xs: string[]) => xs.reduce<Record<string, number>>((t, x) => ({ ...t, [x]: (t[x] ?? 0) + 1 }), {});
    const mails = (await Outbox.find({ orderId }, { template: 1 }).lean<Array<{ template: string }>>()).map((m) => m.template).filter((t) => t !== 'paylink');
    const events = (await WebhookDelivery.find({ orderId }, { type: 1 }).lean<Array<{ type: string }>>()).map((e) => e.type);
    return { mails: count(mails), events: count(events) };
  }

  const reload = async (id: string) => (await Order.findById(id).lean<OrderDoc>())!;
  const claimApplied = async (key: string) => (await Claim.findById(key).lean())?.applied === true;

  const PAID = { mails: { 'receipt-customer': 1, 'receipt-merchant': 1 }, events: { 'payment.succeeded': 1 } };

  for (const point of FAULT_POINTS.pay) {
    it(`pay, crash at ${point}`, async () => {
      const order = await newOrder();
      const crashing = services(crashAt(point));
      await assert.rejects(crashing.checkout.pay(await open(order, crashing.checkout), card('4242424242424242'), '127.0.0.1'), Crash);
      await restartAndRepair();
      if (point === 'pay:authorized') {
        // Nothing was recorded: the order is still payable and the authorisation lapses unused.
        assert.equal((await reload(order._id)).status, 'pending');
        assert.deepEqual(await effects(order._id), { mails: {}, events: {} });
        const paid = await services().checkout.pay(await open(order), card('4242424242424242'), '127.0.0.1');
        assert.equal(paid.kind, 'paid');
      }
      const after = await reload(order._id);
      assert.equal(after.status, 'paid');
      assert.deepEqual(after.attempts.map((a) => a.outcome), ['approved']);
      assert.deepEqual(await effects(order._id), PAID);
      assert.ok(await claimApplied(closeClaimKey(order._id)), 'the transition is finished');
    });
  }

  for (const point of FAULT_POINTS['3ds']) {
    it(`3-D Secure completion, crash at ${point}`, async () => {
      const order = await newOrder();
      const started = await services().checkout.pay(await open(order), card('4000000000003220'), '127.0.0.1');
      assert.equal(started.kind, 'challenge');
      if (started.kind !== 'challenge') return;
      const crashing = services(crashAt(point));
      await assert.rejects(crashing.checkout.completeChallenge(await open(order, crashing.checkout), started.challengeId, true, '127.0.0.1'), Crash);
      await restartAndRepair();
      const after = await reload(order._id);
      assert.equal(after.status, 'paid');
      assert.deepEqual(after.attempts.map((a) => a.outcome), ['challenge', 'approved']);
      assert.deepEqual(await effects(order._id), PAID);
      assert.ok(await claimApplied(`3ds:${started.challengeId}`), 'the challenge is finished');
      assert.ok(sandbox.voided.size === 0 || ![...sandbox.voided].includes(after.payment!.authCode!), 'the payment was not voided');
    });
  }

  it('3-D Secure failed, crash before it is settled: one declined attempt, one payment.failed', async () => {
    const order = await newOrder();
    const started = await services().checkout.pay(await open(order), card('4000000000003220'), '127.0.0.1');
    if (started.kind !== 'challenge') return assert.fail(started.kind);
    const crashing = services(crashAt('3ds:finished'));
    await assert.rejects(crashing.checkout.completeChallenge(await open(order, crashing.checkout), started.challengeId, false, '127.0.0.1'), Crash);
    await restartAndRepair();
    const after = await reload(order._id);
    assert.equal(after.status, 'pending');
    assert.deepEqual(after.attempts.map((a) => a.outcome), ['challenge', 'declined']);
    assert.deepEqual(await effects(order._id), { mails: {}, events: { 'payment.failed': 1 } });
  });

  for (const point of FAULT_POINTS.expire) {
    it(`expire, crash at ${point}`, async () => {
      const order = await newOrder();
      await Order.updateOne({ _id: order._id }, { $set: { expiresAt: new Date(Date.now() - 1000) } });
      await assert.rejects(services(crashAt(point)).expiry.runOnce(), Crash);
      await restartAndRepair();
      assert.equal((await reload(order._id)).status, 'expired');
      assert.deepEqual(await effects(order._id), { mails: { 'order-expired': 1 }, events: { 'order.expired': 1 } });
      assert.ok(await claimApplied(closeClaimKey(order._id)));
    });
  }

  for (const point of FAULT_POINTS.cancel) {
    it(`cancel, crash at ${point}`, async () => {
      const order = await newOrder();
      await assert.rejects(services(crashAt(point)).orderAdmin.cancel(merchant, order._id, 'op@crash.example'), Crash);
      await restartAndRepair();
      assert.equal((await reload(order._id)).status, 'cancelled');
      assert.deepEqual(await effects(order._id), { mails: {}, events: { 'order.cancelled': 1 } });
      assert.ok(await claimApplied(closeClaimKey(order._id)));
      // Nobody can pay it now.
      const state = await services().checkout.open(order.publicId, Object.fromEntries(new URL(orders.linkFor(order)).searchParams));
      assert.equal(state.kind, 'cancelled');
    });
  }

  for (const point of FAULT_POINTS.refund) {
    it(`refund, crash at ${point}`, async () => {
      const order = await newOrder();
      assert.equal((await services().checkout.pay(await open(order), card('4242424242424242'), '127.0.0.1')).kind, 'paid');
      await assert.rejects(services(crashAt(point)).refunds.refund(merchant, order._id, { amountMinor: 2_000, by: 'op@crash.example' }), Crash);
      await restartAndRepair();
      const refunds = await Refund.find({ orderId: order._id }).lean();
      assert.deepEqual(refunds.map((r) => r.amountMinor), [2_000]);
      assert.deepEqual((await effects(order._id)).events, { 'payment.succeeded': 1, 'refund.succeeded': 1 });
      const key = `refund:${order._id}:0`;
      assert.equal(refundsAtAcquirer.get(key)?.size, 1, 'one refund at the acquirer, however often it was asked');
      assert.equal(refunds[0]!.refundId, [...refundsAtAcquirer.get(key)!][0]);
      assert.ok(await claimApplied(key));
      // The rest is still refundable, and exactly the rest.
      const { reservedMinor } = await services().refunds.reservations(order._id);
      assert.equal(reservedMinor, 2_000);
    });
  }

  // The states a crash leaves behind, written directly (no fault hook): what the repair finds.
  describe('states a crash leaves behind', () => {
    const oldClaim = async (orderId: string, kind: string, payload: Record<string, unknown>) =>
      Claim.create({ _id: closeClaimKey(orderId), at: new Date(Date.now() - 120_000), kind, subject: orderId, payload, applied: false });

    it('order paid, close claim not applied, no receipts: the repair queues receipts and payment.succeeded once', async () => {
      const order = await newOrder();
      const payment = { receiptNumber: `RCPT-CRASH${seq}`, authCode: 'A1B2C3', paidAt: new Date(), card: { brand: 'visa', bin: '424242', last4: '4242', expMonth: 9, expYear: 2030 } };
      await oldClaim(order._id, 'order-close', { payment, attempt: { at: new Date(), outcome: 'approved', authCode: 'A1B2C3' }, holder: 'Anna Rossi' });
      await Order.updateOne({ _id: order._id }, { $set: { status: 'paid', openReference: order._id, payment }, $push: { attempts: { at: new Date(), outcome: 'approved', authCode: 'A1B2C3' } } });
      await services().checkout.repairInterrupted();
      await services().checkout.repairInterrupted();
      assert.deepEqual(await effects(order._id), PAID);
    });

    it('order expired, close claim not applied, no mail: the expiry run sends order-expired and order.expired once', async () => {
      const order = await newOrder();
      await oldClaim(order._id, 'order-expire', {});
      await Order.updateOne({ _id: order._id }, { $set: { status: 'expired', openReference: order._id, expiredAt: new Date() } });
      await services().expiry.runOnce();
      await services().expiry.runOnce();
      assert.deepEqual(await effects(order._id), { mails: { 'order-expired': 1 }, events: { 'order.expired': 1 } });
    });

    it('close claim of a cancellation, order still pending: the repair cancels it (else nobody could pay or cancel it)', async () => {
      const order = await newOrder();
      await oldClaim(order._id, 'order-cancel', { cancelledAt: new Date() });
      await services().checkout.repairInterrupted();
      assert.equal((await reload(order._id)).status, 'cancelled');
      assert.deepEqual(await effects(order._id), { mails: {}, events: { 'order.cancelled': 1 } });
    });
  });
});
