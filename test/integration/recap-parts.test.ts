// The daily recap of orders paid in parts (issue 13 parts 1 and 7), through the real order,
// checkout and plan services and the real database with an injected clock: each part counts on the
// day it was paid, with its own amount, card and label (a deposit paid yesterday and its balance
// today: yesterday's recap counts only the deposit, today's only the balance; instalments); the
// CSV has one row per part payment and the order rows say partially_paid, the total and what was
// paid; the "Part-paid orders" section lists what was paid, what remains and the next step, in
// five languages, from the recap's one read of `orders`.
import assert from 'node:assert/strict';
import { parse as parseCsv } from 'csv-parse/sync';
import mongoose from 'mongoose';
import { type MerchantDoc } from '../../src/db/merchants.repository.ts';
import { Order, type OrderDoc } from '../../src/db/models/order.model.ts';
import { Refund } from '../../src/db/models/refund.model.ts';
import { type LinkKey } from '../../src/domain/pay-link.ts';
import { createMailRenderer, type MailRenderer } from '../../src/mail/renderer.ts';
import { createSandboxAcquirer } from '../../src/services/acquirer/sandbox-acquirer.ts';
import { createCheckoutService, type CheckoutService } from '../../src/services/checkout.service.ts';
import { createEventsService } from '../../src/services/events.service.ts';
import { createMerchantService } from '../../src/services/merchant.service.ts';
import { createOrderService, type OrderDraft, type OrderService } from '../../src/services/order.service.ts';
import { createPlanService, type PlanService } from '../../src/services/plan.service.ts';
import { createRecapService, type RecapData } from '../../src/services/recap.service.ts';
import { TEMPLATES_DIR } from '../../src/server.ts';
import { repos, useTestDatabase } from '../helpers/db.ts';

const KEYS: LinkKey[] = [{ kid: 'rp1', secret: 'recap-parts-secret-recap-parts-secret-xx' }];
const MAIL_DOMAIN = 'paymail.test';
const nextYear = String((new Date().getUTCFullYear() + 2) % 100).padStart(2, '0');
const CARD = { number: '4242 4242 4242 4242', expiry: `09/${nextYear}`, cvc: '913', holder: 'Anna Rossi' };
/** 07:00 in Rome on 2026-06-11: the recap of 2026-06-10 goes out. */
const NOW = new Date('2026-06-11T05:00:00Z');

describe('daily recap: orders paid in parts (issue 13 parts 1 and 7)', function () {
  this.timeout(60_000);
  useTestDatabase();
  let merchant: MerchantDoc;
  let orders: OrderService;
  let checkout: CheckoutService;
  let plans: PlanService;
  let renderer: MailRenderer;
  let clock = new Date();
  const recap = createRecapService({ repos, mailDomain: MAIL_DOMAIN });
  const ids: Record<string, string> = {};

  const at = (iso: string) => {
    clock = new Date(iso);
  };
  const reload = async (id: string) => (await Order.findById(id).lean<OrderDoc>())!;
  async function newOrder(reference: string, when: string, draft: Partial<OrderDraft>): Promise<string> {
    at(when);
    const r = await orders.create(merchant, { amountMinor: 100_000, currency: 'EUR', reference, customerEmail: `${reference.toLowerCase()}@example.org`, delivery: 'customer', ...draft }, { key: `test:recap-parts:${reference}` });
    ids[reference] = r.order._id;
    // Mongoose stamps createdAt with the real time: the order is created at the test's clock.
    await Order.collection.updateOne({ _id: r.order._id as never }, { $set: { createdAt: clock } });
    return r.order._id;
  }
  async function pay(reference: string, when: string): Promise<OrderDoc> {
    at(when);
    const r = await checkout.pay({ order: await reload(ids[reference]!), merchant }, { ...CARD }, '127.0.0.1');
    assert.equal(r.kind, 'paid', `${reference} at ${when}: ${JSON.stringify(r)}`);
    return reload(ids[reference]!);
  }
  async function askNext(reference: string, when: string): Promise<void> {
    at(when);
    const r = await plans.requestNext(await reload(ids[reference]!), merchant, 'merchant:desk@colle.example');
    assert.equal(r.outcome, 'requested');
  }
  const plain = (d: RecapData) => JSON.parse(JSON.stringify(d)) as RecapData;

  before(async () => {
    const now = () => clock;
    orders = createOrderService({ repos, publicUrl: 'http://127.0.0.1:9', mailDomain: MAIL_DOMAIN, maxLinkLifetimeDays: 60, linkKeys: KEYS, now });
    const events = createEventsService({ repos, now });
    checkout = createCheckoutService({ repos, acquirer: createSandboxAcquirer({ latencyMs: 1 }), linkKeys: KEYS, mailDomain: MAIL_DOMAIN, linkFor: orders.linkFor, events, now, limits: { failuresPerOrder: 100, failuresPerClient: 100 } });
    plans = createPlanService({ repos, payLinks: orders, maxLinkLifetimeDays: 60, now });
    renderer = await createMailRenderer({ templatesDir: TEMPLATES_DIR, publicUrl: 'https://pay.example.test' });
    const created = await createMerchantService({ repos, mailDomain: MAIL_DOMAIN }).create({ name: 'Agriturismo Colle', email: 'desk@colle.example', timezone: 'Europe/Rome' });
    merchant = (await repos.merchants.findById(created.id))!;

    // A 30% deposit paid on 06-09, the balance asked for and paid on 06-10.
    await newOrder('DEP-BAL', '2026-06-09T08:00:00Z', { plan: { deposit: { percent: 30 } } });
    await pay('DEP-BAL', '2026-06-09T10:00:00Z');
    await askNext('DEP-BAL', '2026-06-10T08:00:00Z');
    assert.equal((await pay('DEP-BAL', '2026-06-10T09:00:00Z')).status, 'paid');
    // Three monthly instalments from 06-10: the first paid that day, the second due on 07-10.
    await newOrder('INST', '2026-06-10T07:00:00Z', { amountMinor: 100_001, plan: { instalments: { count: 3, every: 'month' } } });
    await pay('INST', '2026-06-10T07:30:00Z');
    // Part-paid on 06-08: the balance waits for the merchant; is due on 06-14; is due on 07-30; is open.
    await newOrder('WAIT', '2026-06-08T08:00:00Z', { plan: { deposit: { percent: 30 } } });
    await pay('WAIT', '2026-06-08T09:00:00Z');
    await newOrder('SOON', '2026-06-08T08:00:00Z', { plan: { deposit: { percent: 50 }, balanceDue: '2026-06-14' } });
    await pay('SOON', '2026-06-08T09:10:00Z');
    await newOrder('LATER', '2026-06-08T08:00:00Z', { plan: { deposit: { percent: 50 }, balanceDue: '2026-07-30' } });
    await pay('LATER', '2026-06-08T09:20:00Z');
    await newOrder('OPEN', '2026-06-08T08:00:00Z', { plan: { deposit: { amountMinor: 20_000, currency: 'EUR' } } });
    await pay('OPEN', '2026-06-08T09:30:00Z');
    await askNext('OPEN', '2026-06-10T12:00:00Z');
    // A deposit paid long before (outside the chart's week): listed for its balance due on 06-15.
    await newOrder('DUE-OLD', '2026-05-20T08:00:00Z', { plan: { deposit: { percent: 10 }, balanceDue: '2026-06-15' } });
    await pay('DUE-OLD', '2026-05-20T09:00:00Z');
    // The balance asked for on 05-29: its link expired on 06-05 unpaid.
    await newOrder('EXPIRED', '2026-05-28T08:00:00Z', { plan: { deposit: { percent: 40 } } });
    await pay('EXPIRED', '2026-05-28T09:00:00Z');
    await askNext('EXPIRED', '2026-05-29T08:00:00Z');
  });

  it('counts each part on the day it was paid, with its own amount and label, in the list, the totals, the chart and the CSV', async () => {
    const d09 = plain(await recap.buildRecap(merchant, '2026-06-09', NOW));
    assert.deepEqual(d09.payments.items.map((p) => [p.reference, p.amountMinor, p.part]), [['DEP-BAL', 30_000, { seq: 1, of: 2, kind: 'deposit' }]], 'the day before: only the deposit');
    assert.deepEqual(d09.payments.totals, [{ currency: 'EUR', count: 1, totalMinor: 30_000 }]);
    assert.equal(d09.payments.items[0]!.card?.last4, '4242');

    const d10 = plain(await recap.buildRecap(merchant, '2026-06-10', NOW));
    assert.deepEqual(d10.payments.items.map((p) => [p.reference, p.amountMinor, p.part]), [
      ['INST', 33_334, { seq: 1, of: 3, kind: 'instalment' }],
      ['DEP-BAL', 70_000, { seq: 2, of: 2, kind: 'balance' }],
    ], 'the day of the balance: the balance, not the deposit again');
    assert.deepEqual(d10.payments.totals, [{ currency: 'EUR', count: 2, totalMinor: 103_334 }]);
    const chart = Object.fromEntries(d10.chart.days.map((x) => [x.date, [x.count, x.totalMinor]]));
    assert.deepEqual(chart['2026-06-10'], [2, 103_334]);
    assert.deepEqual(chart['2026-06-09'], [1, 30_000]);
    // 06-08: four deposits (30% + 50% + 50% + 200.00).
    assert.deepEqual(chart['2026-06-08'], [4, 30_000 + 50_000 + 50_000 + 20_000]);

    const rows = parseCsv(d10.csv.content, { columns: true, bom: true }) as Array<Record<string, string>>;
    assert.deepEqual(
      rows.filter((r) => r.record === 'payment').map((r) => [r.reference, r.part, r.amount, r.status, r.order_total, r.order_paid]),
      [
        ['INST', 'instalment 1/3', '333.34', 'partially_paid', '1000.01', '333.34'],
        ['DEP-BAL', 'balance 2/2', '700.00', 'paid', '1000.00', '1000.00'],
      ],
    );
    assert.deepEqual(rows.filter((r) => r.record === 'order').map((r) => [r.reference, r.status, r.amount, r.order_total, r.order_paid]), [['INST', 'partially_paid', '1000.01', '1000.01', '333.34']]);
    assert.deepEqual(d10.orders, [{ status: 'partially_paid', currency: 'EUR', count: 1, totalMinor: 100_001 }]);
  });

  it('counts a refund as a refund; one that names its part is labelled with it, with that part’s card', async () => {
    // Stored as the refund service stores them: one naming the part it gave money back on, one
    // from before refunds named their part.
    await Refund.collection.insertMany([
      { _id: 'rf_parts_1' as never, orderId: ids['DEP-BAL']!, merchantId: merchant._id, seq: 1, part: 1, amountMinor: 5_000, currency: 'EUR', refundId: 'acq_p1', by: 'op@colle.example', at: new Date('2026-06-10T15:00:00Z') },
      { _id: 'rf_parts_2' as never, orderId: ids['OPEN']!, merchantId: merchant._id, seq: 1, amountMinor: 1_000, currency: 'EUR', refundId: 'acq_p2', by: 'op@colle.example', at: new Date('2026-06-10T16:00:00Z') },
    ]);
    try {
      const d = plain(await recap.buildRecap(merchant, '2026-06-10', NOW));
      assert.deepEqual(d.refunds.items.map((r) => [r.reference, r.amountMinor, r.part ?? null, r.card?.last4]), [
        ['DEP-BAL', 5_000, { seq: 1, of: 2, kind: 'deposit' }, '4242'],
        ['OPEN', 1_000, null, '4242'],
      ]);
      assert.deepEqual(d.refunds.totals, [{ currency: 'EUR', count: 2, totalMinor: 6_000 }]);
      assert.deepEqual(d.payments.totals, [{ currency: 'EUR', count: 2, totalMinor: 103_334 }], 'payments stay as paid');
      const rows = parseCsv(d.csv.content, { columns: true, bom: true }) as Array<Record<string, string>>;
      assert.deepEqual(rows.filter((r) => r.record === 'refund').map((r) => [r.reference, r.part, r.amount]), [['DEP-BAL', 'deposit 1/2', '-50.00'], ['OPEN', '', '-10.00']]);
      const text = (await renderer.render({ template: 'daily-recap', locale: 'it', data: d as unknown as Record<string, unknown> })).text;
      assert.match(text, /DEP-BAL · Acconto {2}-/);
    } finally {
      await Refund.deleteMany({ _id: { $in: ['rf_parts_1', 'rf_parts_2'] } });
    }
  });

  it('lists the part-paid orders with paid so far, what remains and the next step, from the one read of orders', async () => {
    const reads: string[] = [];
    mongoose.set('debug', (collection: string, method: string) => {
      if (collection === 'orders') reads.push(method);
    });
    let d10: RecapData;
    let d09: RecapData;
    try {
      d10 = plain(await recap.buildRecap(merchant, '2026-06-10', NOW));
      d09 = plain(await recap.buildRecap(merchant, '2026-06-09', NOW));
    } finally {
      mongoose.set('debug', false);
    }
    assert.deepEqual(reads, ['find', 'find'], 'one read of orders per recap');
    const items = d10.partPaid!.items;
    // Waiting for the merchant first, then the expired link, the open one, the dates (soonest first);
    // LATER (due on 07-30, nothing paid that day) is not listed; DEP-BAL is paid in full.
    assert.deepEqual(items.map((i) => [i.reference, i.next.step, i.next.kind, i.next.seq]), [
      ['WAIT', 'ask', 'balance', 2],
      ['EXPIRED', 'expired', 'balance', 2],
      ['OPEN', 'open', 'balance', 2],
      ['SOON', 'due', 'balance', 2],
      ['DUE-OLD', 'due', 'balance', 2],
      ['INST', 'due', 'instalment', 2],
    ]);
    assert.equal(d10.partPaid!.count, 6);
    const open = items.find((i) => i.reference === 'OPEN')!;
    assert.deepEqual([open.totalMinor, open.paidMinor, open.partsPaid, open.next.amountMinor], [100_000, 20_000, 1, 80_000]);
    assert.equal(open.next.at, new Date(Date.parse('2026-06-10T12:00:00Z') + 7 * 86_400_000).toISOString());
    assert.equal(items.find((i) => i.reference === 'SOON')!.next.at, '2026-06-14T07:00:00.000Z', '09:00 in Rome on the due date');
    assert.equal(items.find((i) => i.reference === 'INST')!.next.at, '2026-07-10T07:00:00.000Z');
    // The recap of 06-09: the instalments (nothing paid that day, next due in a month) are not listed.
    assert.deepEqual(d09.partPaid!.items.map((i) => i.reference), ['WAIT', 'EXPIRED', 'OPEN', 'SOON', 'DUE-OLD']);
  });

  it('renders the parts and the part-paid section in five languages (HTML and text)', async () => {
    const d = plain(await recap.buildRecap(merchant, '2026-06-10', NOW));
    const expected: Record<string, { title: string; balance: string; instalment: string; ask: string; remaining: string }> = {
      en: { title: 'Part-paid orders', balance: 'Balance', instalment: 'Instalment 1/3', ask: 'reply BALANCE WAIT to send its pay-link', remaining: 'to pay' },
      it: { title: 'Ordini pagati in parte', balance: 'Saldo', instalment: 'Rata 1/3', ask: 'rispondi BALANCE WAIT per inviare il suo link di pagamento', remaining: 'da pagare' },
      fr: { title: 'Commandes payées en partie', balance: 'Solde', instalment: 'Versement 1/3', ask: 'répondez BALANCE WAIT pour envoyer son lien de paiement', remaining: 'à payer' },
      de: { title: 'Teilweise bezahlte Bestellungen', balance: 'Restzahlung', instalment: 'Rate 1/3', ask: 'antworten Sie BALANCE WAIT, um den Zahlungslink zu senden', remaining: 'offen' },
      es: { title: 'Pedidos pagados en parte', balance: 'Saldo', instalment: 'Cuota 1/3', ask: 'responde BALANCE WAIT para enviar su enlace de pago', remaining: 'por pagar' },
    };
    for (const [locale, e] of Object.entries(expected)) {
      const mail = await renderer.render({ template: 'daily-recap', locale, data: d as unknown as Record<string, unknown> });
      const text = mail.text.replace(/\u00a0|\u202f/g, ' ');
      const html = mail.html.replace(/\u00a0|\u202f|&nbsp;/g, ' ').replace(/&#x27;|&#39;/g, "'");
      for (const [name, part] of [['text', text], ['html', html]] as const) {
        assert.ok(part.includes(e.title), `${locale} ${name}: ${e.title}`);
        assert.ok(part.includes(`DEP-BAL</strong> · ${e.balance}`) || part.includes(`DEP-BAL · ${e.balance}`), `${locale} ${name}: the balance row is labelled`);
        assert.ok(part.includes(e.instalment), `${locale} ${name}: ${e.instalment}`);
        assert.ok(part.includes(e.ask), `${locale} ${name}: ${e.ask}`);
        assert.ok(part.includes(e.remaining), `${locale} ${name}: ${e.remaining}`);
        assert.ok(!part.includes('LATER'), `${locale} ${name}: nothing to do for LATER yet`);
      }
    }
    const en = (await renderer.render({ template: 'daily-recap', locale: 'en', data: d as unknown as Record<string, unknown> })).text.replace(/\u00a0|\u202f/g, ' ');
    assert.match(en, /OPEN {2}open@example\.org\n {4}€200\.00 paid of €1,000\.00 · €800\.00 to pay\n {4}→ Balance \(€800\.00\): pay-link open until Jun 17, 02:00 PM/);
    assert.match(en, /SOON .*\n.*\n {4}→ Balance \(€500\.00\): due on Jun 14, 09:00 AM, its pay-link is mailed by itself/);
    assert.match(en, /EXPIRED .*\n.*\n {4}→ Balance \(€600\.00\): pay-link expired on Jun 5, 10:00 AM; reply BALANCE EXPIRED to send it again/);
  });

  it('says so when no order is part-paid; recaps queued before the section existed still render', async () => {
    const created = await createMerchantService({ repos, mailDomain: MAIL_DOMAIN }).create({ name: 'Quiet Parts', email: 'quiet@parts.example', timezone: 'Europe/Rome' });
    const quiet = (await repos.merchants.findById(created.id))!;
    const d = plain(await recap.buildRecap(quiet, '2026-06-10', NOW));
    assert.deepEqual(d.partPaid, { count: 0, items: [] });
    assert.match((await renderer.render({ template: 'daily-recap', locale: 'en', data: d as unknown as Record<string, unknown> })).text, /No part-paid order is waiting\./);
    const old = JSON.parse(JSON.stringify(d)) as Record<string, unknown>;
    delete old['partPaid'];
    assert.match((await renderer.render({ template: 'daily-recap', locale: 'en', data: old })).text, /No part-paid order is waiting\./);
  });
});
