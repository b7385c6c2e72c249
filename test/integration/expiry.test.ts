// Expiry and reminders with an injected clock, against the real database: pending orders past
// their expiry become 'expired' by query (no TTL), exactly once even when a payment or another
// instance races for the same close claim; order.expired fires and the merchant is mailed; the
// customer's reminder goes out once per slot (src/domain/reminders.ts), only when it makes sense.
import assert from 'node:assert/strict';
import { Claim, claimOnce } from '../../src/db/claims.ts';
import { Merchant, type MerchantDoc } from '../../src/db/models/merchant.model.ts';
import { Order, type OrderDoc } from '../../src/db/models/order.model.ts';
import { Outbox, type OutboxDoc } from '../../src/db/models/outbox.model.ts';
import { WebhookDelivery } from '../../src/db/models/webhook.model.ts';
import { type LinkKey } from '../../src/domain/pay-link.ts';
import { createExpiryJob, type ExpiryJob } from '../../src/jobs/expiry.job.ts';
import { createLogger } from '../../src/logger.ts';
import { createMailRenderer } from '../../src/mail/renderer.ts';
import { closeClaimKey } from '../../src/services/checkout.service.ts';
import { createEventsService } from '../../src/services/events.service.ts';
import { createMerchantService } from '../../src/services/merchant.service.ts';
import { createOrderService, type OrderService } from '../../src/services/order.service.ts';
import { TEMPLATES_DIR } from '../../src/server.ts';
import { useTestDatabase } from '../helpers/db.ts';
import { repos } from '../helpers/db.ts';

const KEYS: LinkKey[] = [{ kid: 'ex1', secret: 'expiry-test-secret-expiry-test-secret-xx' }];
const HOUR = 3600_000;
const logger = createLogger('silent');

describe('expiry and reminders', function () {
  this.timeout(20_000);
  useTestDatabase();
  let merchant: MerchantDoc;
  let orders: OrderService;
  let clock = new Date();
  const now = () => clock;
  let seq = 0;

  const job = (owner?: string, batch?: number): ExpiryJob =>
    createExpiryJob({ repos,
      ...(batch ? { batch } : {}),
      events: createEventsService({ repos, now }),
      mailDomain: 'paymail.test',
      linkFor: (o) => orders.linkFor(o),
      logger,
      now,
      ...(owner ? { owner } : {}),
    });

  async function newOrder(lifetimeMs: number, extra: { customerEmail?: string; locale?: string } = {}): Promise<OrderDoc> {
    seq++;
    const r = await orders.create(
      merchant,
      { amountMinor: 4500, currency: 'EUR', reference: `EX-${seq}`, customerName: 'Luca', expiresAt: new Date(Date.now() + lifetimeMs), ...extra },
      { key: `ex:${seq}` },
    );
    return r.order;
  }
  let renderer: Promise<Awaited<ReturnType<typeof createMailRenderer>>> | undefined;
  const rendererOnce = () => (renderer ??= createMailRenderer({ templatesDir: TEMPLATES_DIR, publicUrl: 'https://pay.example.test' }));
  const reload = async (id: string) => (await Order.findById(id).lean<OrderDoc>())!;
  const mails = (template: string, orderId: string) => Outbox.find({ template, orderId }).lean<OutboxDoc[]>();

  before(async () => {
    orders = createOrderService({ repos, publicUrl: 'https://pay.example.test', mailDomain: 'paymail.test', maxLinkLifetimeDays: 60, linkKeys: KEYS });
    const created = await createMerchantService({ repos, mailDomain: 'paymail.test' }).create({
      name: 'Teatro Verdi',
      email: 'box@verdi.example',
      locale: 'it',
      webhookUrl: 'https://verdi.example/hooks',
    });
    // The tests of the reminder before expiry: no reminder for an unopened link (reminders.test.ts has it).
    await Merchant.updateOne({ _id: created.id }, { $set: { unopenedReminderHours: 0 } });
    merchant = (await Merchant.findById(created.id).lean<MerchantDoc>())!;
  });
  beforeEach(() => {
    clock = new Date();
  });

  it('expires a pending order once its time has passed, not before', async () => {
    const order = await newOrder(2 * HOUR);
    clock = new Date(Date.now() + HOUR);
    await job().runOnce();
    assert.equal((await reload(order._id)).status, 'pending', 'not yet');

    clock = new Date(order.expiresAt.getTime() + 1_000);
    const run = await job().runOnce();
    assert.ok(run.expired >= 1);
    const after = await reload(order._id);
    assert.equal(after.status, 'expired');
    assert.equal(after.expiredAt?.getTime(), clock.getTime());
    assert.equal(after.openReference, order._id, 'the reference is free for a new order');
    const claim = await Claim.findById(closeClaimKey(order._id)).lean();
    assert.equal(claim?.kind, 'order-expire');
    assert.equal(claim?.applied, true);
  });

  it('fires order.expired and mails the merchant in its language', async () => {
    const order = await newOrder(HOUR, { customerEmail: 'luca@example.org' });
    clock = new Date(order.expiresAt.getTime() + 1_000);
    await job().runOnce();
    const [mail] = await mails('order-expired', order._id);
    assert.ok(mail, 'merchant mailed');
    assert.deepEqual(mail.to, ['box@verdi.example']);
    assert.equal(mail.locale, 'it');
    const renderer = await rendererOnce();
    const rendered = await renderer.render({ template: mail.template, locale: mail.locale, data: mail.data as Record<string, unknown> });
    assert.match(rendered.subject, /scaduto senza pagamento: ordine EX-\d+ \(45,00\s€\)/);
    assert.match(rendered.text, /Luca <luca@example\.org>/);
    const hooks = await WebhookDelivery.find({ orderId: order._id }).lean();
    assert.deepEqual(hooks.map((h) => h.type), ['order.expired']);
    const body = JSON.parse(hooks[0]!.body) as { data: { order: { status: string; expiredAt: string } } };
    assert.equal(body.data.order.status, 'expired');
    assert.equal(body.data.order.expiredAt, clock.toISOString());
  });

  it('closes an order once when a payment holds its close claim', async () => {
    const order = await newOrder(HOUR);
    // A payment won the claim (and is about to record itself): expiry must leave the order alone.
    assert.ok(await claimOnce(closeClaimKey(order._id), { kind: 'order-close', subject: order._id }));
    clock = new Date(order.expiresAt.getTime() + 1_000);
    await job().runOnce();
    assert.equal((await reload(order._id)).status, 'pending');
    assert.equal((await mails('order-expired', order._id)).length, 0);
    assert.equal(await WebhookDelivery.countDocuments({ orderId: order._id }), 0);
  });

  it('expires each order exactly once with three instances racing', async () => {
    const batch = await Promise.all([1, 2, 3, 4, 5].map(() => newOrder(HOUR)));
    clock = new Date(Date.now() + 2 * HOUR);
    const runs = await Promise.all(['a', 'b', 'c'].map((o) => job(o).runOnce()));
    const ids = batch.map((o) => o._id);
    assert.ok(runs.reduce((n, r) => n + r.expired, 0) >= ids.length);
    for (const id of ids) {
      assert.equal((await reload(id)).status, 'expired');
      assert.equal((await mails('order-expired', id)).length, 1, 'one mail');
      assert.equal(await WebhookDelivery.countDocuments({ orderId: id }), 1, 'one event');
    }
    const owners = await Claim.find({ _id: { $in: ids.map(closeClaimKey) } }).lean();
    assert.equal(owners.length, ids.length);
  });

  it('finishes an expiry whose instance crashed right after winning the claim', async () => {
    const order = await newOrder(HOUR);
    const claimedAt = new Date(order.expiresAt.getTime() + 1_000);
    await claimOnce(closeClaimKey(order._id), { kind: 'order-expire', subject: order._id }, claimedAt);
    clock = new Date(claimedAt.getTime() + 2 * 60_000);
    await job().runOnce();
    assert.equal((await reload(order._id)).status, 'expired');
    assert.equal((await mails('order-expired', order._id)).length, 1);
  });

  it('reaches every order in the reminder window even when more than one batch were reminded before', async () => {
    const batch = 2;
    const all = [];
    for (let i = 0; i < 3; i++) all.push(await newOrder(3 * 24 * HOUR + i * 60_000, { customerEmail: `guest${i}@example.org` }));
    clock = new Date(all[0]!.expiresAt.getTime() - 23 * HOUR);
    // Separate job instances (separate processes): only the database says what was reminded.
    const first = await job(undefined, batch).runOnce();
    assert.equal(first.reminded, 2, 'one batch');
    const second = await job(undefined, batch).runOnce();
    assert.equal(second.reminded, 1, 'the third order, behind the batch already reminded');
    for (const o of all) assert.equal((await mails('reminder', o._id)).length, 1, o.reference);
    assert.equal((await job(undefined, batch).runOnce()).reminded, 0);
  });

  it('reminds the customer once, 1 day before expiry (the default 3 days is before this link existed), in the order language, with the link', async () => {
    const order = await newOrder(3 * 24 * HOUR, { customerEmail: 'anna@example.org', locale: 'de' });
    clock = new Date(order.expiresAt.getTime() - 25 * HOUR);
    await job().runOnce();
    assert.equal((await mails('reminder', order._id)).length, 0, 'too early');

    clock = new Date(order.expiresAt.getTime() - 23 * HOUR);
    await Promise.all([job('a').runOnce(), job('b').runOnce()]);
    await job().runOnce();
    const sent = await mails('reminder', order._id);
    assert.equal(sent.length, 1, 'exactly once');
    assert.equal(sent[0]!.dedupeKey, `reminder:${order._id}:before-1d@${Math.floor(order.expiresAt.getTime() / 1000)}`);
    assert.deepEqual(sent[0]!.to, ['anna@example.org']);
    assert.equal(sent[0]!.replyTo, 'box@verdi.example');
    assert.equal(sent[0]!.locale, 'de');
    const data = sent[0]!.data as { link: string };
    assert.equal(data.link, orders.linkFor(order));
    const renderer = await rendererOnce();
    const rendered = await renderer.render({ template: 'reminder', locale: 'de', data: sent[0]!.data as Record<string, unknown> });
    assert.match(rendered.subject, /^Erinnerung: Ihre Zahlung von 45,00\s€ an Teatro Verdi$/);
    assert.ok(rendered.text.includes(data.link));
  });

  const noReminder: Array<[string, () => Promise<OrderDoc>, (o: OrderDoc) => Promise<void>]> = [
    ['the customer address is unknown', () => newOrder(3 * 24 * HOUR), async () => {}],
    ['the order is already paid', () => newOrder(3 * 24 * HOUR, { customerEmail: 'p@example.org' }),
      async (o) => void (await Order.updateOne({ _id: o._id }, { $set: { status: 'paid', openReference: o._id } }))],
    ['the link was made to last less than a day', () => newOrder(20 * HOUR, { customerEmail: 'short@example.org' }), async () => {}],
  ];
  for (const [why, make, prepare] of noReminder) {
    it(`sends no reminder when ${why}`, async () => {
      const order = await make();
      await prepare(order);
      clock = new Date(order.expiresAt.getTime() - 2 * HOUR);
      await job().runOnce();
      assert.equal((await mails('reminder', order._id)).length, 0);
    });
  }

  it('runs on its own interval once started, and stops cleanly', async () => {
    const order = await newOrder(HOUR);
    clock = new Date(order.expiresAt.getTime() + 1_000);
    const j = createExpiryJob({ repos, events: createEventsService({ repos, now }), mailDomain: 'paymail.test', linkFor: orders.linkFor, logger, now, intervalMs: 20 });
    j.start();
    try {
      for (let i = 0; i < 100 && (await reload(order._id)).status !== 'expired'; i++) await new Promise((r) => setTimeout(r, 20));
    } finally {
      await j.stop();
    }
    assert.equal((await reload(order._id)).status, 'expired');
  });
});
