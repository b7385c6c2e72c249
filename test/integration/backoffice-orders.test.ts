// Back-office orders over real HTTP against the real database: search filters and paging, the
// detail timeline, cancel (also racing a real payment), resend, extend, a new link by form, and
// the streamed CSV export (time-zone day bounds, quoting, formula injection, major units).
import assert from 'node:assert/strict';
import { parse as parseCsv } from 'csv-parse/sync';
import { Claim } from '../../src/db/claims.ts';
import { Merchant, type MerchantDoc } from '../../src/db/models/merchant.model.ts';
import { MerchantUser } from '../../src/db/models/merchant-user.model.ts';
import { Order, type OrderDoc } from '../../src/db/models/order.model.ts';
import { Outbox } from '../../src/db/models/outbox.model.ts';
import { hashPassword } from '../../src/domain/password.ts';
import { closeClaimKey } from '../../src/services/checkout.service.ts';
import { createMerchantService } from '../../src/services/merchant.service.ts';
import { addDays } from '../../src/domain/local-day.ts';
import { CSV_COLUMNS, csvCell, zonedDay, zonedDayStart } from '../../src/services/order-admin.service.ts';
import { useTestDatabase } from '../helpers/db.ts';
import { BoClient, MAIL_DOMAIN, MAX_DAYS, startBackofficeApp, textOf, type BackofficeApp } from './backoffice-client.ts';
import { repos } from '../helpers/db.ts';

const DAY = 86_400_000;
const nextYear = String((new Date().getUTCFullYear() + 2) % 100).padStart(2, '0');

describe('back office: orders, actions and export', function () {
  this.timeout(60_000);
  useTestDatabase();
  let app: BackofficeApp;
  let merchant: MerchantDoc;
  let admin: BoClient;
  let seq = 0;

  before(async () => {
    app = await startBackofficeApp();
    const m = await createMerchantService({ repos, mailDomain: MAIL_DOMAIN }).create({ name: 'Hotel Bellavista', email: 'desk@bellavista.example', timezone: 'Europe/Rome' });
    merchant = (await Merchant.findById(m.id).lean<MerchantDoc>())!;
    await MerchantUser.create({ merchantId: merchant._id, email: 'ops@bellavista.example', passwordHash: await hashPassword('operator password'), role: 'operator' });
    admin = new BoClient(app.base);
    assert.equal((await admin.login(m.adminEmail, m.adminPassword)).status, 303);
  });
  after(() => app?.close());

  async function order(extra: Partial<Parameters<BackofficeApp['orders']['create']>[1]> = {}, createdAt?: Date): Promise<OrderDoc> {
    seq += 1;
    const r = await app.orders.create(
      merchant,
      { amountMinor: 10_000, currency: 'EUR', reference: `BK-${seq}`, description: 'Double room', ...extra },
      { key: `t:${seq}` },
    );
    if (createdAt) await Order.collection.updateOne({ _id: r.order._id } as never, { $set: { createdAt } });
    return (await Order.findById(r.order._id).lean<OrderDoc>())!;
  }
  const reload = async (id: string) => (await Order.findById(id).lean<OrderDoc>())!;
  const idsIn = (html: string) => [...html.matchAll(/href="\/backoffice\/orders\/(ord_[\w-]+)"/g)].map((m) => m[1]!);
  const unescape = (html: string) => html.replace(/&#x3D;/g, '=').replace(/&amp;/g, '&');

  describe('list', () => {
    const made: Record<string, OrderDoc> = {};
    before(async () => {
      await Order.deleteMany({});
      made['cheap'] = await order({ amountMinor: 1_500, reference: 'SEARCH-A1', customerName: 'Anna Rossi' }, new Date('2026-01-10T10:00:00Z'));
      made['mid'] = await order({ amountMinor: 12_990, reference: 'SEARCH-B2', customerEmail: 'marco@example.org' }, new Date('2026-01-20T10:00:00Z'));
      made['dear'] = await order({ amountMinor: 250_000, reference: 'OTHER-C3', customerName: 'Giulia Verdi' }, new Date('2026-02-01T10:00:00Z'));
      // 00:30 in Rome on 2 February is still 1 February in UTC: the day filter follows the merchant's clock.
      made['midnight'] = await order({ amountMinor: 7_000, reference: 'OTHER-D4' }, new Date('2026-02-01T23:30:00Z'));
      await Order.updateOne({ _id: made['dear']!._id }, { $set: { status: 'paid' } });
    });

    const cases: Array<[string, string, string[]]> = [
      ['no filter, newest first', '', ['midnight', 'dear', 'mid', 'cheap']],
      ['status', 'status=paid', ['dear']],
      ['reference part, any case', 'reference=search-', ['mid', 'cheap']],
      ['reference with regex characters is literal', 'reference=SEARCH.*', []],
      ['customer name', 'customer=rossi', ['cheap']],
      ['customer e-mail', 'customer=MARCO@', ['mid']],
      ['amount range in major units', 'min=10&max=2000', ['midnight', 'mid', 'cheap']],
      ['amount written the Italian way', 'min=2.500,00', ['dear']],
      ['date range, inclusive', 'from=2026-01-10&to=2026-01-20', ['mid', 'cheap']],
      ['a local day in the merchant time zone', 'from=2026-02-02&to=2026-02-02', ['midnight']],
      ['combined', 'status=pending&from=2026-01-10&max=100', ['midnight', 'cheap']],
    ];
    for (const [name, query, expected] of cases) {
      it(name, async () => {
        const r = await admin.get(`/backoffice/orders?${query}`);
        assert.equal(r.status, 200);
        assert.deepEqual(idsIn(r.html), expected.map((k) => made[k]!._id));
        assert.match(textOf(r.html), new RegExp(expected.length === 1 ? '1 order ' : `${expected.length} orders`));
      });
    }

    it('reports an amount it cannot read instead of ignoring it silently', async () => {
      const r = await admin.get('/backoffice/orders?min=abc');
      assert.equal(r.status, 200);
      assert.match(textOf(r.html), /"abc" is not an amount/);
    });

    it('pages 25 at a time with a count, keeping the filters', async () => {
      for (let i = 0; i < 28; i++) await order({ reference: `PAGE-${i}` }, new Date(Date.parse('2026-03-01T08:00:00Z') + i * 60_000));
      const first = await admin.get('/backoffice/orders?reference=PAGE-');
      assert.equal(idsIn(first.html).length, 25);
      assert.match(textOf(first.html), /28 orders/);
      assert.match(textOf(first.html), /Page 1 of 2/);
      const next = unescape(/href="([^"]+)" rel="next"/.exec(first.html)![1]!);
      assert.match(next, /reference=PAGE-/);
      const second = await admin.get(next);
      const ids = idsIn(second.html);
      assert.equal(ids.length, 3);
      const refs = await Order.find({ _id: { $in: ids } }).lean<OrderDoc[]>();
      assert.deepEqual(refs.map((o) => o.reference).sort(), ['PAGE-0', 'PAGE-1', 'PAGE-2'], 'the oldest are last');
    });
  });

  describe('detail', () => {
    it('shows a timeline: mail, link sent, attempts with card and issuing country, payment, receipts', async () => {
      const o = await order({ customerEmail: 'anna@example.org' });
      const at = o.createdAt as unknown as Date;
      await Order.updateOne(
        { _id: o._id },
        {
          $set: {
            status: 'paid',
            payment: { receiptNumber: 'RCPT-TEST1', authCode: 'A1B2C3', paidAt: new Date(at.getTime() + 120_000), card: { brand: 'Visa', last4: '4242', country: 'IT' } },
            'source.subject': 'Booking 4711',
          },
          $push: {
            attempts: {
              $each: [
                { at: new Date(at.getTime() + 60_000), outcome: 'declined', declineCode: 'INSUFFICIENT_FUNDS', card: { brand: 'Mastercard', last4: '9995', country: 'FR' } },
                { at: new Date(at.getTime() + 120_000), outcome: 'approved', authCode: 'A1B2C3', card: { brand: 'Visa', last4: '4242', country: 'IT' } },
              ],
            },
          },
        },
      );
      const r = await admin.get(`/backoffice/orders/${o._id}`);
      assert.equal(r.status, 200);
      const items = [...r.html.matchAll(/<li class="tl tl-\w+">([\s\S]*?)<\/li>/g)].map((m) => textOf(m[1]!).trim());
      assert.equal(items.length, 5, items.join('\n'));
      assert.match(items[0]!, /Order e-mail received Booking 4711/);
      assert.match(items[1]!, /Pay-link mailed to desk@bellavista\.example queued/);
      assert.match(items[2]!, /Payment declined Mastercard •••• 9995 · France · insufficient funds/);
      assert.match(items[3]!, /Payment approved Visa •••• 4242 · Italy · authorisation A1B2C3/);
      assert.match(items[4]!, /Paid · receipt RCPT-TEST1 Visa •••• 4242 · Italy/);
      assert.doesNotMatch(r.html, /\/cancel"/, 'a paid order offers no cancel');
    });

    it('answers 404 for an unknown order id', async () => {
      assert.equal((await admin.get('/backoffice/orders/ord_doesnotexist')).status, 404);
      assert.equal((await admin.get('/backoffice/orders/not-an-id')).status, 404);
    });
  });

  describe('cancel', () => {
    it('cancels an open order once, frees its reference, and refuses closed ones', async () => {
      const o = await order();
      const r = await admin.post(`/backoffice/orders/${o._id}/cancel`);
      assert.equal(r.status, 303);
      assert.equal(r.location, `/backoffice/orders/${o._id}?done=cancelled`);
      const after = await reload(o._id);
      assert.equal(after.status, 'cancelled');
      assert.equal(after.openReference, o._id);
      assert.ok(after.cancelledAt);
      assert.equal((await Claim.findById(closeClaimKey(o._id)).lean())?.kind, 'order-cancel');
      assert.match(textOf((await admin.get(r.location)).html), /The order was cancelled\./);
      const again = await admin.post(`/backoffice/orders/${o._id}/cancel`);
      assert.equal(again.status, 409);
      assert.match(textOf(again.html), /can no longer be cancelled/);
      // The reference is free again for a new order.
      const reuse = await app.orders.create(merchant, { amountMinor: 100, currency: 'EUR', reference: o.reference }, { key: `t:reuse:${o._id}` });
      assert.equal(reuse.created, true);
    });

    it('loses to a payment that already holds the close claim', async () => {
      const o = await order();
      await Claim.create({ _id: closeClaimKey(o._id), at: new Date(), kind: 'order-close', subject: o._id });
      const r = await admin.post(`/backoffice/orders/${o._id}/cancel`);
      assert.equal(r.status, 409);
      assert.equal((await reload(o._id)).status, 'pending');
    });

    it('racing a real card payment: exactly one wins, a losing payment is voided', async function () {
      this.timeout(60_000);
      const outcomes = { paid: 0, cancelled: 0 };
      for (let round = 0; round < 6; round++) {
        const o = await order();
        const link = new URL(app.orders.linkFor(o));
        const state = await app.checkout.open(o.publicId, Object.fromEntries(link.searchParams));
        assert.equal(state.kind, 'payable');
        if (state.kind !== 'payable') return;
        const card = { number: '4242424242424242', expiry: `12/${nextYear}`, cvc: '123', holder: 'Anna Rossi', email: 'anna@example.org' };
        const [pay, cancel] = await Promise.all([app.checkout.pay(state, card, '127.0.0.1'), admin.post(`/backoffice/orders/${o._id}/cancel`)]);
        const final = await reload(o._id);
        assert.ok(final.status === 'paid' || final.status === 'cancelled', final.status);
        outcomes[final.status as 'paid' | 'cancelled'] += 1;
        if (final.status === 'paid') {
          assert.equal(pay.kind, 'paid');
          assert.equal(cancel.status, 409);
          assert.equal(final.cancelledAt, undefined);
        } else {
          assert.equal(cancel.status, 303);
          assert.notEqual(pay.kind, 'paid');
          assert.equal(final.payment?.receiptNumber, undefined);
          if (pay.kind === 'lost-race') assert.equal(final.attempts.at(-1)?.outcome, 'lost-race');
        }
      }
      assert.equal(outcomes.paid + outcomes.cancelled, 6);
    });
  });

  describe('resend and extend', () => {
    it('resends the pay-link as a new mail each time, only while the order is open', async () => {
      const o = await order();
      for (let i = 0; i < 2; i++) assert.equal((await admin.post(`/backoffice/orders/${o._id}/resend`)).status, 303);
      const mails = await Outbox.find({ orderId: o._id, template: 'paylink' }).lean();
      assert.equal(mails.length, 3);
      assert.equal(new Set(mails.map((m) => m.dedupeKey)).size, 3);
      assert.equal(new Set(mails.map((m) => m.messageId)).size, 3);
      await Order.updateOne({ _id: o._id }, { $set: { status: 'cancelled', openReference: o._id } });
      const refused = await admin.post(`/backoffice/orders/${o._id}/resend`);
      assert.equal(refused.status, 409);
      assert.equal(await Outbox.countDocuments({ orderId: o._id }), 3);
    });

    it('extends the expiry to the end of the chosen local day, capped at the maximum lifetime', async () => {
      const o = await order();
      const day = new Date(Date.now() + 20 * DAY).toISOString().slice(0, 10);
      const r = await admin.post(`/backoffice/orders/${o._id}/extend`, { expires: day });
      assert.equal(r.status, 303);
      assert.equal(r.location, `/backoffice/orders/${o._id}?done=extended`);
      const after = await reload(o._id);
      const endOfDay = zonedDayStart(new Date(Date.parse(day) + DAY).toISOString().slice(0, 10), 'Europe/Rome');
      assert.equal(after.expiresAt.getTime(), endOfDay.getTime());
      assert.equal(after.linkExpiresAt, Math.floor(endOfDay.getTime() / 1000));
      const page = await admin.get(`/backoffice/orders/${o._id}`);
      assert.ok(unescape(page.html).includes(`e=${after.linkExpiresAt}`), 'the detail shows the re-signed link');

      const far = new Date(Date.now() + 400 * DAY).toISOString().slice(0, 10);
      const capped = await admin.post(`/backoffice/orders/${o._id}/extend`, { expires: far });
      assert.equal(capped.location, `/backoffice/orders/${o._id}?done=extendedCapped`);
      const max = (await reload(o._id)).expiresAt.getTime() - Date.now();
      assert.ok(max <= MAX_DAYS * DAY && max > MAX_DAYS * DAY - 60_000, `capped at ${MAX_DAYS} days`);

      const past = await admin.post(`/backoffice/orders/${o._id}/extend`, { expires: '2020-01-01' });
      assert.equal(past.status, 422);
      assert.match(textOf(past.html), /in the past/);
      const missing = await admin.post(`/backoffice/orders/${o._id}/extend`, { expires: '' });
      assert.equal(missing.status, 422);
    });
  });

  describe('new link by form', () => {
    it('creates an order from the form (amount as people write it), once per form', async () => {
      const form = await admin.get('/backoffice/orders/new');
      const formKey = /name="formKey" value="([\w-]+)"/.exec(form.html)![1]!;
      const fields = { amount: '1.234,56 €', reference: 'FORM-1', description: 'Suite, 3 nights', customerName: 'Lea Weber', customerEmail: 'lea@example.org', locale: 'de', delivery: 'customer', expires: '', formKey };
      const r = await admin.post('/backoffice/orders', fields);
      assert.equal(r.status, 303);
      const id = /orders\/(ord_[\w-]+)\?done=created/.exec(r.location)![1]!;
      const o = await reload(id);
      assert.equal(o.amountMinor, 123_456);
      assert.equal(o.currency, 'EUR');
      assert.equal(o.sourceKey, `bo:${formKey}`);
      assert.equal(o.delivery, 'customer');
      assert.equal(o.locale, 'de');
      const mail = (await Outbox.findOne({ orderId: id }).lean())!;
      assert.deepEqual(mail.to, ['lea@example.org']);
      const twice = await admin.post('/backoffice/orders', fields);
      assert.equal(twice.location, r.location, 'a double submit shows the same order');
      assert.equal(await Order.countDocuments({ reference: 'FORM-1' }), 1);
      const dup = await admin.post('/backoffice/orders', { ...fields, formKey: 'x'.repeat(21) });
      assert.equal(dup.status, 409, 'an open order already has this reference');
      assert.match(textOf(dup.html), /already exists/);
    });

    const invalid: Array<[string, Record<string, string>, RegExp]> = [
      ['no amount', { amount: '' }, /Amount/],
      ['ambiguous amount', { amount: '1.234' }, /could be read two ways/],
      ['unknown currency', { amount: '10', currency: 'XYZ' }, /ISO code/],
      ['bad e-mail', { amount: '10', customerEmail: 'not-an-address' }, /not an e-mail address/],
      ['customer delivery without e-mail', { amount: '10', delivery: 'customer' }, /needed to send the link/],
      ['expiry in the past', { amount: '10', expires: '2020-01-01' }, /in the past/],
    ];
    for (const [name, fields, message] of invalid) {
      it(`refuses ${name} (422) and keeps what was typed`, async () => {
        const before = await Order.countDocuments({});
        const r = await admin.post('/backoffice/orders', { description: 'Kept text', ...fields });
        assert.equal(r.status, 422);
        assert.match(textOf(r.html), message);
        assert.match(r.html, /value="Kept text"/);
        assert.equal(await Order.countDocuments({}), before);
      });
    }
  });

  describe('new link by form: payment plan (issue 13 part 1)', () => {
    const future = new Date(Date.now() + 30 * DAY).toISOString().slice(0, 10);
    it('shows deposit, balance due and instalments, each with its label and hint', async () => {
      const form = await admin.get('/backoffice/orders/new');
      for (const id of ['deposit', 'balanceDue', 'instalments', 'instalmentsEvery']) {
        assert.match(form.html, new RegExp(`<label for="${id}">[^<]+</label>`), id);
        assert.match(form.html, new RegExp(`<(input|select) id="${id}" name="${id}"`), id);
      }
      for (const id of ['deposit', 'balanceDue', 'instalments']) assert.match(form.html, new RegExp(`aria-describedby="${id}-hint"[^>]*>\\s*<p class="hint" id="${id}-hint">`), id);
      assert.match(form.html, /<legend>Payment plan \(optional\)<\/legend>/);
      assert.doesNotMatch(form.html, /field-error|aria-invalid/);
    });

    it('creates an order with a deposit or instalments, the plan stored in parts', async () => {
      const stored: unknown[] = [];
      const plans: Array<Record<string, string>> = [{ deposit: '30%', balanceDue: future }, { deposit: '200' }, { instalments: '3', instalmentsEvery: 'week' }];
      for (const [i, plan] of plans.entries()) {
        const r = await admin.post('/backoffice/orders', { amount: '1.000,00', reference: `PLAN-FORM-${i}`, delivery: 'merchant', ...plan });
        assert.equal(r.status, 303, `${JSON.stringify(plan)}: ${textOf(r.html)}`);
        const id = /orders\/(ord_[\w-]+)\?done=created/.exec(r.location)![1]!;
        const o = await reload(id);
        assert.equal(o.amountMinor, 100_000);
        stored.push((o.plan?.parts ?? []).map((p) => [p.kind, p.amountMinor, p.dueDate ?? null]));
      }
      assert.deepEqual(stored, [
        [['deposit', 30_000, null], ['balance', 70_000, future]],
        [['deposit', 20_000, null], ['balance', 80_000, null]],
        [['instalment', 33_334, zonedDay(new Date(), 'Europe/Rome')], ['instalment', 33_333, addDays(zonedDay(new Date(), 'Europe/Rome'), 7)], ['instalment', 33_333, addDays(zonedDay(new Date(), 'Europe/Rome'), 14)]],
      ]);
    });

    const invalid: Array<[string, Record<string, string>, string, RegExp]> = [
      ['a share of 100% or more', { deposit: '120%' }, 'deposit', /Deposit: a share from 1% to 99%/],
      ['a deposit not less than the total', { deposit: '50' }, 'deposit', /Deposit: a share from 1% to 99%/],
      ['deposit and instalments together', { deposit: '30%', instalments: '3' }, 'instalments', /Instalments: a number from 2 to 12, and not together with a deposit/],
      ['a balance date without a deposit', { balanceDue: future }, 'balanceDue', /Balance due: a date from today on, and only with a deposit/],
      ['a past balance date', { deposit: '30%', balanceDue: '2020-01-01' }, 'balanceDue', /Balance due: a date from today on/],
      ['too many instalments', { instalments: '13' }, 'instalments', /Instalments: a number from 2 to 12/],
    ];
    for (const [name, fields, field, message] of invalid) {
      it(`refuses ${name} (422): the message next to the field, described, and what was typed kept`, async () => {
        const before = await Order.countDocuments({});
        const r = await admin.post('/backoffice/orders', { amount: '50', description: 'Kept text', delivery: 'merchant', ...fields });
        assert.equal(r.status, 422);
        assert.match(textOf(r.html), message);
        // In the list at the top (a link to the field) and next to the field, which points to it.
        assert.match(r.html, new RegExp(`<a href="#${field}">`));
        assert.match(r.html, new RegExp(`<p class="field-error" id="${field}-error">`));
        assert.match(r.html, new RegExp(`id="${field}" name="${field}"[^>]*aria-describedby="${field}-error ${field}-hint" aria-invalid="true"`));
        assert.equal((r.html.match(/aria-invalid="true"/g) ?? []).length, 1, 'only the field at fault');
        assert.match(r.html, /value="Kept text"/);
        for (const [k, v] of Object.entries(fields)) assert.match(r.html, new RegExp(`name="${k}"[^>]*value="${v}"`), k);
        assert.equal(await Order.countDocuments({}), before);
      });
    }
  });

  describe('CSV export', () => {
    it('quotes cells and defuses spreadsheet formulas', () => {
      const cases: Array<[unknown, string]> = [
        ['plain', 'plain'],
        ['a, b', '"a, b"'],
        ['say "hi"', '"say ""hi"""'],
        ['two\nlines', '"two\nlines"'],
        ['=1+1', "'=1+1"],
        ['+39 055', "'+39 055"],
        ['-5', "'-5"],
        ['@SUM(A1)', "'@SUM(A1)"],
        ['=HYPERLINK("http://x","y")', `"'=HYPERLINK(""http://x"",""y"")"`],
        [undefined, ''],
        [new Date('2026-01-02T03:04:05Z'), '2026-01-02T03:04:05.000Z'],
      ];
      for (const [input, out] of cases) assert.equal(csvCell(input), out, String(input));
    });

    it('streams the orders of a local date range with a header row and amounts in major units', async () => {
      await Order.deleteMany({});
      const inRange = [
        await order({ amountMinor: 123_456, reference: 'CSV-1', description: 'Room, "sea view"', customerName: '=cmd|/C calc' }, new Date('2026-04-01T06:00:00Z')),
        await order({ amountMinor: 1_500, currency: 'JPY', reference: 'CSV-2', description: 'Tickets' }, new Date('2026-04-30T21:30:00Z')), // 23:30 in Rome
      ];
      await order({ reference: 'CSV-LATE' }, new Date('2026-04-30T22:30:00Z')); // 00:30 on 1 May in Rome
      await order({ reference: 'CSV-EARLY' }, new Date('2026-03-31T21:59:00Z')); // 23:59 on 31 March in Rome
      const res = await fetch(`${app.base}/backoffice/export.csv?from=2026-04-01&to=2026-04-30`, {
        headers: { cookie: `pm_bo_session=${admin.cookies.get('pm_bo_session')}` },
      });
      assert.equal(res.status, 200);
      assert.equal(res.headers.get('content-type'), 'text/csv; charset=utf-8');
      assert.equal(res.headers.get('content-disposition'), 'attachment; filename="orders-2026-04-01-to-2026-04-30.csv"');
      assert.equal(res.headers.get('transfer-encoding'), 'chunked', 'streamed, not buffered with a length');
      const text = await res.text();
      const rows = parseCsv(text, { bom: true }) as string[][];
      assert.deepEqual(rows[0], [...CSV_COLUMNS]);
      assert.equal(rows.length, 3);
      const col = (row: string[], name: (typeof CSV_COLUMNS)[number]) => row[CSV_COLUMNS.indexOf(name)];
      assert.deepEqual(rows.slice(1).map((r) => col(r, 'order_id')), inRange.map((o) => o._id), 'oldest first, in range only');
      assert.equal(col(rows[1]!, 'amount'), '1234.56');
      assert.equal(col(rows[1]!, 'currency'), 'EUR');
      assert.equal(col(rows[1]!, 'description'), 'Room, "sea view"');
      assert.equal(col(rows[1]!, 'customer_name'), "'=cmd|/C calc");
      assert.equal(col(rows[2]!, 'amount'), '1500');
      assert.equal(col(rows[2]!, 'currency'), 'JPY');
    });

    it('exports an order paid in parts as partially_paid, with its total and what was paid so far (issue 13 part 1)', async () => {
      await Order.deleteMany({});
      const when = new Date('2026-04-10T08:00:00Z');
      const planned = await order({ amountMinor: 100_000, reference: 'CSV-PARTS', plan: { deposit: { percent: 30 } } }, when);
      const single = await order({ amountMinor: 5_000, reference: 'CSV-ONE' }, new Date(when.getTime() + 60_000));
      const card = { number: '4242424242424242', expiry: `12/${nextYear}`, cvc: '123', holder: 'Anna Rossi', email: 'anna@example.org' };
      assert.equal((await app.checkout.pay({ order: planned, merchant }, card, '127.0.0.1')).kind, 'paid');
      assert.equal((await app.checkout.pay({ order: single, merchant }, card, '127.0.0.1')).kind, 'paid');
      const res = await fetch(`${app.base}/backoffice/export.csv?from=2026-04-10&to=2026-04-10`, { headers: { cookie: `pm_bo_session=${admin.cookies.get('pm_bo_session')}` } });
      const rows = parseCsv(await res.text(), { bom: true }) as string[][];
      const col = (row: string[], name: (typeof CSV_COLUMNS)[number]) => row[CSV_COLUMNS.indexOf(name)];
      assert.deepEqual(
        rows.slice(1).map((r) => [col(r, 'reference'), col(r, 'status'), col(r, 'amount'), col(r, 'paid_so_far'), col(r, 'parts_paid')]),
        [
          ['CSV-PARTS', 'partially_paid', '1000.00', '300.00', '1/2'],
          ['CSV-ONE', 'paid', '50.00', '50.00', ''],
        ],
      );
      assert.ok(col(rows[1]!, 'receipt_number'), 'the deposit’s receipt');
    });

    it('exports a few thousand orders from a cursor', async function () {
      this.timeout(60_000);
      await Order.deleteMany({});
      const base = Date.parse('2026-06-10T08:00:00Z');
      const docs = Array.from({ length: 3000 }, (_, i) => ({
        _id: `ord_bulk${i}`, publicId: `pub_bulk${i}`, merchantId: merchant._id, reference: `BULK-${i}`, openReference: `BULK-${i}`,
        sourceKey: `bulk:${i}`, amountMinor: 1000 + i, currency: 'EUR', locale: 'en', delivery: 'merchant', status: 'pending',
        expiresAt: new Date(base + 7 * DAY), linkExpiresAt: Math.floor((base + 7 * DAY) / 1000),
        createdAt: new Date(base + i * 1000), updatedAt: new Date(base + i * 1000),
      }));
      await Order.collection.insertMany(docs as never[]);
      const started = performance.now();
      const res = await fetch(`${app.base}/backoffice/export.csv?from=2026-06-10&to=2026-06-10`, {
        headers: { cookie: `pm_bo_session=${admin.cookies.get('pm_bo_session')}` },
      });
      let bytes = 0;
      let chunks = 0;
      for await (const chunk of res.body!) {
        bytes += (chunk as Uint8Array).length;
        chunks += 1;
      }
      const ms = performance.now() - started;
      console.log(`      export: 3000 orders, ${bytes} bytes in ${chunks} chunks, ${Math.round(ms)} ms`);
      assert.ok(chunks > 1, 'sent in several chunks');
      assert.ok(bytes > 3000 * 50);
    });

    it('refuses a missing or reversed range (422)', async () => {
      for (const q of ['', 'from=2026-05-02&to=2026-05-01', 'from=2026-05-01', 'from=x&to=y']) {
        const r = await admin.get(`/backoffice/export.csv?${q}`);
        assert.equal(r.status, 422, q);
        assert.match(textOf(r.html), /Choose a start date/);
      }
    });
  });
});
