// The daily recap against the real database with an injected clock: the content of a day
// (payments, declines, expired links, totals per status and currency), local days across DST
// changes in Europe/Rome, exactly one mail per merchant and day with two instances racing and
// after a restart, a crashed claim finished by the next run, missed days sent late (never before
// the merchant existed), the CLI's backfill and re-send, and the mail's PNG chart and CSV file.
import assert from 'node:assert/strict';
import { parse as parseCsv } from 'csv-parse/sync';
import { PNG } from 'pngjs';
import { Claim, claimOnce } from '../../src/db/claims.ts';
import { Merchant, type MerchantDoc } from '../../src/db/models/merchant.model.ts';
import { Order } from '../../src/db/models/order.model.ts';
import { Refund } from '../../src/db/models/refund.model.ts';
import { Outbox, type OutboxDoc } from '../../src/db/models/outbox.model.ts';
import { runRecapCli } from '../../src/cli/recap.ts';
import { CHART_HEIGHT, CHART_WIDTH } from '../../src/domain/recap-chart.ts';
import { createOutboxWorker } from '../../src/jobs/outbox-worker.ts';
import { createRecapJob } from '../../src/jobs/recap.job.ts';
import { createLogger } from '../../src/logger.ts';
import { createMailRenderer, type MailRenderer } from '../../src/mail/renderer.ts';
import { createMailTransport } from '../../src/mail/transport.ts';
import { createMerchantService } from '../../src/services/merchant.service.ts';
import { createRecapService, recapKey } from '../../src/services/recap.service.ts';
import { TEMPLATES_DIR } from '../../src/server.ts';
import { useTestDatabase } from '../helpers/db.ts';
import { runCli } from '../helpers/paymail-process.ts';
import { startSmtpSink } from '../helpers/smtp-sink.ts';
import { repos } from '../helpers/db.ts';

const logger = createLogger('silent');
const MAIL_DOMAIN = 'paymail.test';

interface SeedOrder {
  reference: string;
  createdAt: string;
  amountMinor?: number;
  currency?: string;
  status?: string;
  paidAt?: string;
  card?: { brand: string; last4: string; country: string };
  attempts?: Array<{ at: string; outcome: string; declineCode?: string }>;
  expiredAt?: string;
  viewedAt?: string;
  description?: string;
  customer?: { name?: string; email?: string };
}

describe('daily recap', function () {
  this.timeout(30_000);
  const db = useTestDatabase();
  let renderer: MailRenderer;
  let seq = 0;
  const recap = createRecapService({ repos, mailDomain: MAIL_DOMAIN });

  /** `jobs: false`: a suspended merchant, only read by buildRecap, so the job runs of other tests stay small. */
  async function newMerchant(name: string, createdAt: string, opts: { jobs?: boolean } = {}): Promise<MerchantDoc> {
    const created = await createMerchantService({ repos, mailDomain: MAIL_DOMAIN }).create({ name, email: `desk${++seq}@shop.example` });
    // Merchants "existed" from this instant: the recap never goes back further.
    await Merchant.collection.updateOne(
      { _id: created.id as never },
      { $set: { createdAt: new Date(createdAt), ...(opts.jobs === false ? { status: 'suspended' } : {}) } },
    );
    return (await Merchant.findById(created.id).lean<MerchantDoc>())!;
  }

  async function seed(merchant: MerchantDoc, orders: SeedOrder[]): Promise<void> {
    await Order.collection.insertMany(
      orders.map((o) => {
        const id = `ord_${++seq}`;
        const status = o.status ?? (o.paidAt ? 'paid' : o.expiredAt ? 'expired' : 'pending');
        return {
          _id: id as never,
          publicId: `pub_${seq}`,
          merchantId: merchant._id,
          reference: o.reference,
          openReference: status === 'pending' ? o.reference : id,
          sourceKey: `seed:${seq}`,
          amountMinor: o.amountMinor ?? 10000,
          currency: o.currency ?? 'EUR',
          description: o.description,
          customer: o.customer ?? {},
          locale: 'en',
          delivery: 'merchant',
          status,
          expiresAt: new Date(o.expiredAt ?? '2027-01-01T00:00:00Z'),
          linkExpiresAt: 1_800_000_000,
          attempts: (o.attempts ?? []).map((a) => ({ ...a, at: new Date(a.at), card: o.card })),
          ...(o.paidAt ? { payment: { paidAt: new Date(o.paidAt), receiptNumber: `R-${seq}`, authCode: 'A1', card: o.card } } : {}),
          ...(o.expiredAt ? { expiredAt: new Date(o.expiredAt) } : {}),
          ...(o.viewedAt ? { viewedAt: new Date(o.viewedAt) } : {}),
          createdAt: new Date(o.createdAt),
          updatedAt: new Date(o.paidAt ?? o.createdAt),
        };
      }),
    );
  }

  const recaps = (merchant: MerchantDoc) =>
    Outbox.find({ merchantId: merchant._id, template: 'daily-recap' }).sort({ dedupeKey: 1 }).lean<OutboxDoc[]>();
  const recapDates = async (merchant: MerchantDoc) => (await recaps(merchant)).map((d) => (d.data as { date: string }).date).sort();
  /** After its test, a merchant stops taking part in job runs (they would recap its days again and again). */
  const retire = (...ms: MerchantDoc[]) => Merchant.updateMany({ _id: { $in: ms.map((x) => x._id) } }, { $set: { status: 'suspended' } });
  const job = (clock: () => Date, owner: string) => createRecapJob({ repos, mailDomain: MAIL_DOMAIN, logger, now: clock, owner });

  before(async () => {
    renderer = await createMailRenderer({ templatesDir: TEMPLATES_DIR, publicUrl: 'https://pay.example.test' });
  });

  // First (mocha runs a suite's own tests before its sub-suites): the outbox holds only this mail.
  it('arrives over SMTP with the chart inline (cid) and the CSV as an attachment', async () => {
    const m = await newMerchant('Mailed Shop', '2026-01-01T00:00:00Z', { jobs: false });
    await seed(m, [{ reference: 'SMTP-1', createdAt: '2026-05-02T08:00:00Z', paidAt: '2026-05-02T08:00:00Z', amountMinor: 4200, card: { brand: 'visa', last4: '4242', country: 'DE' } }]);
    assert.equal(await recap.send(m._id, '2026-05-02', { now: new Date('2026-05-03T05:00:00Z') }), 'sent');
    // `jobs: false` parks the merchant as suspended (the recap job skips it); a suspended merchant's
    // recap mail would be held, so it is active again before the outbox sends.
    await Merchant.updateOne({ _id: m._id }, { $set: { status: 'active' } });
    const relay = await startSmtpSink();
    try {
      const worker = createOutboxWorker({ repos, renderer, transport: createMailTransport({ outboundSmtpUrl: relay.url, production: false }), from: 'paymail <no-reply@paymail.test>', logger });
      assert.equal(await worker.runOnce(), 1);
      const mail = await relay.waitFor((x) => x.to.includes(m.email));
      const png = mail.parsed.attachments.find((a) => a.contentType === 'image/png')!;
      const csv = mail.parsed.attachments.find((a) => a.contentType === 'text/csv')!;
      assert.equal(png.contentDisposition, 'inline');
      assert.ok(png.cid && String(mail.parsed.html).includes(`cid:${png.cid}`), 'the HTML shows the chart by cid');
      assert.deepEqual([PNG.sync.read(png.content).width, PNG.sync.read(png.content).height], [CHART_WIDTH, CHART_HEIGHT]);
      assert.equal(csv.contentDisposition, 'attachment');
      assert.equal(csv.filename, 'paymail-recap-2026-05-02.csv');
      const rows = parseCsv(csv.content, { columns: true, bom: true }) as Array<Record<string, string>>;
      assert.deepEqual(rows.map((r) => [r.record, r.reference, r.amount, r.card_country]), [['payment', 'SMTP-1', '42.00', 'DE'], ['order', 'SMTP-1', '42.00', '']]);
    } finally {
      await relay.close();
    }
  });

  describe('content of a normal day (2026-06-10, Europe/Rome)', () => {
    let merchant: MerchantDoc;
    const VISA = { brand: 'visa', last4: '4242', country: 'IT' };
    const MC = { brand: 'mastercard', last4: '4444', country: 'FR' };
    before(async () => {
      merchant = await newMerchant('Hotel Bellavista', '2026-01-01T00:00:00Z', { jobs: false });
      await seed(merchant, [
        // Local times in CEST (UTC+2).
        { reference: 'BK-1', createdAt: '2026-06-10T07:00:00Z', paidAt: '2026-06-10T07:05:00Z', amountMinor: 12990, card: VISA, description: 'Room "Deluxe", 2 nights', customer: { name: '=HYPERLINK("x")', email: 'anna@example.org' } },
        { reference: 'BK-2', createdAt: '2026-06-10T08:00:00Z', amountMinor: 4550, card: MC, attempts: [{ at: '2026-06-10T08:01:00Z', outcome: 'declined', declineCode: 'insufficient_funds' }, { at: '2026-06-10T08:02:00Z', outcome: 'error' }, { at: '2026-06-09T08:00:00Z', outcome: 'declined' }] },
        { reference: 'BK-3', createdAt: '2026-06-10T09:00:00Z', paidAt: '2026-06-10T21:59:00Z', amountMinor: 2000, currency: 'USD', card: MC },
        { reference: 'BK-4', createdAt: '2026-06-01T09:00:00Z', expiredAt: '2026-06-10T10:00:00Z', amountMinor: 5000, customer: { name: 'Luca' } },
        // Paid on the previous day, created before: only in the chart.
        { reference: 'BK-5', createdAt: '2026-06-07T09:00:00Z', paidAt: '2026-06-08T09:00:00Z', amountMinor: 1000, card: VISA },
        // 00:10 local on the next day: not in this recap.
        { reference: 'BK-6', createdAt: '2026-06-10T22:10:00Z', paidAt: '2026-06-10T22:11:00Z', amountMinor: 777, card: VISA },
      ]);
      const bk1 = (await Order.findOne({ merchantId: merchant._id, reference: 'BK-1' }).lean())!;
      // A partial refund that day, and one the day after (not in).
      await Refund.collection.insertMany([
        { _id: 'rf_1' as never, orderId: bk1._id, merchantId: merchant._id, seq: 1, amountMinor: 3000, currency: 'EUR', refundId: 'acq1', by: 'op@shop.example', at: new Date('2026-06-10T15:00:00Z') },
        { _id: 'rf_2' as never, orderId: bk1._id, merchantId: merchant._id, seq: 2, amountMinor: 100, currency: 'EUR', refundId: 'acq2', by: 'op@shop.example', at: new Date('2026-06-11T15:00:00Z') },
      ]);
    });

    it('counts and totals orders by status and currency, payments by currency', async () => {
      const d = await recap.buildRecap(merchant, '2026-06-10');
      assert.equal(d.hours, 24);
      assert.deepEqual(d.orders, [
        { status: 'paid', currency: 'EUR', count: 1, totalMinor: 12990 },
        { status: 'paid', currency: 'USD', count: 1, totalMinor: 2000 },
        { status: 'pending', currency: 'EUR', count: 1, totalMinor: 4550 },
      ]);
      assert.deepEqual(d.payments.totals, [
        { currency: 'EUR', count: 1, totalMinor: 12990 },
        { currency: 'USD', count: 1, totalMinor: 2000 },
      ]);
      assert.deepEqual(d.payments.items.map((p) => [p.reference, p.card?.last4, p.card?.country]), [['BK-1', '4242', 'IT'], ['BK-3', '4444', 'FR']]);
      assert.deepEqual(d.failed.items.map((f) => [f.reference, f.outcome, f.declineCode]), [['BK-2', 'declined', 'insufficient_funds'], ['BK-2', 'error', '']]);
      assert.equal(d.failed.count, 2);
      assert.deepEqual(d.expired.items.map((e) => [e.reference, e.customer]), [['BK-4', 'Luca']]);
      assert.deepEqual(d.refunds.totals, [{ currency: 'EUR', count: 1, totalMinor: 3000 }]);
      assert.deepEqual(d.refunds.items.map((r) => [r.reference, r.amountMinor, r.card?.last4]), [['BK-1', 3000, '4242']]);
      assert.deepEqual(d.chart.days.map((x) => [x.date, x.totalMinor]), [
        ['2026-06-04', 0], ['2026-06-05', 0], ['2026-06-06', 0], ['2026-06-07', 0], ['2026-06-08', 1000], ['2026-06-09', 0], ['2026-06-10', 12990],
      ]);
    });

    it('renders the mail with the list, an inline PNG chart and a CSV that parses with the right totals', async () => {
      const d = await recap.buildRecap(merchant, '2026-06-10');
      const mail = await renderer.render({ template: 'daily-recap', locale: 'en', data: JSON.parse(JSON.stringify(d)) as Record<string, unknown> });
      assert.match(mail.subject, /^Daily recap Wednesday, June 10, 2026: 2 payments, €129\.90 \+ \$20\.00$/);
      for (const s of ['BK-1', 'Visa •••• 4242', 'Italy', 'BK-2', 'Declined · insufficient_funds', 'BK-4', '€45.50', '€50.00']) {
        assert.ok(mail.text.includes(s), `text has ${s}`);
        assert.ok(mail.html.includes(s.replace(/"/g, '&quot;')), `html has ${s}`);
      }
      assert.ok(!mail.text.includes('BK-6'), 'the next day is not in');
      assert.ok(mail.text.includes('Refunds') && mail.text.includes('-€30.00'), 'the refund is listed');
      for (const part of [mail.text, mail.html]) {
        for (const empty of ['No payments.', 'No failed attempts.', 'No pay-link expired.', 'No new orders.']) assert.ok(!part.includes(empty), `no "${empty}"`);
      }

      const chart = mail.attachments.find((a) => a.contentType === 'image/png')!;
      assert.ok(mail.html.includes(`cid:${chart.cid}`), 'the chart is referenced inline');
      const png = PNG.sync.read(chart.content);
      assert.deepEqual([png.width, png.height], [CHART_WIDTH, CHART_HEIGHT]);

      const csv = mail.attachments.find((a) => a.contentType.startsWith('text/csv'))!;
      assert.equal(csv.disposition, 'attachment');
      assert.equal(csv.filename, 'paymail-recap-2026-06-10.csv');
      const rows = parseCsv(csv.content, { columns: true, bom: true }) as Array<Record<string, string>>;
      const payments = rows.filter((r) => r.record === 'payment');
      const orders = rows.filter((r) => r.record === 'order');
      assert.deepEqual(payments.map((r) => [r.reference, r.amount, r.currency, r.card_last4]), [['BK-1', '129.90', 'EUR', '4242'], ['BK-3', '20.00', 'USD', '4444']]);
      assert.deepEqual(orders.map((r) => r.reference), ['BK-1', 'BK-2', 'BK-3']);
      assert.deepEqual(rows.filter((r) => r.record === 'refund').map((r) => [r.reference, r.amount, r.currency]), [['BK-1', '-30.00', 'EUR']]);
      const eur = payments.filter((r) => r.currency === 'EUR').reduce((s, r) => s + Math.round(Number(r.amount) * 100), 0);
      assert.equal(eur, 12990);
      assert.equal(payments[0]!.description, 'Room "Deluxe", 2 nights', 'quotes and commas survive');
      assert.equal(payments[0]!.customer_name, `'=HYPERLINK("x")`, 'no formula reaches a spreadsheet');
      assert.equal(payments[0]!.time, '2026-06-10T09:05:00+02:00');
    });

    it('caps the lists in the mail body and points to the CSV', async () => {
      const m = await newMerchant('Big Shop', '2026-01-01T00:00:00Z', { jobs: false });
      await seed(
        m,
        Array.from({ length: 205 }, (_, i) => ({ reference: `N-${i}`, createdAt: '2026-06-10T08:00:00Z', paidAt: new Date(Date.parse('2026-06-10T08:00:00Z') + i * 1000).toISOString(), amountMinor: 100, card: VISA })),
      );
      const d = await recap.buildRecap(m, '2026-06-10');
      assert.equal(d.payments.items.length, 200);
      assert.equal(d.payments.count, 205);
      const mail = await renderer.render({ template: 'daily-recap', locale: 'en', data: JSON.parse(JSON.stringify(d)) as Record<string, unknown> });
      assert.ok(mail.text.includes('… and 5 more: see the attached CSV file.'));
      const rows = parseCsv(mail.attachments.find((a) => a.filename.endsWith('.csv'))!.content, { columns: true, bom: true }) as unknown[];
      assert.equal(rows.length, 410, 'every payment and order is in the CSV');
      // FerretDB scans the collection for these queries: keep it small for the tests that follow.
      await Order.deleteMany({ merchantId: m._id });
    });
  });

  it('counts the orders opened that day but not paid by its end ("opened, not paid"), in every language', async () => {
    const m = await newMerchant('Libreria Dante', '2026-01-01T00:00:00Z', { jobs: false });
    await seed(m, [
      // Opened on the day (CEST, UTC+2), still pending: counted.
      { reference: 'OP-1', createdAt: '2026-06-09T08:00:00Z', viewedAt: '2026-06-10T08:00:00Z' },
      // Opened and paid the same day: not counted.
      { reference: 'OP-2', createdAt: '2026-06-10T08:00:00Z', viewedAt: '2026-06-10T08:01:00Z', paidAt: '2026-06-10T08:03:00Z', card: { brand: 'visa', last4: '4242', country: 'IT' } },
      // Opened the day before: not counted.
      { reference: 'OP-3', createdAt: '2026-06-09T08:00:00Z', viewedAt: '2026-06-09T09:00:00Z' },
      // Opened late in the day, paid the next morning: not paid that day, counted.
      { reference: 'OP-4', createdAt: '2026-06-10T18:00:00Z', viewedAt: '2026-06-10T21:30:00Z', paidAt: '2026-06-11T06:00:00Z', card: { brand: 'visa', last4: '4242', country: 'IT' } },
      // Opened, then the link expired that day: counted.
      { reference: 'OP-5', createdAt: '2026-06-03T08:00:00Z', viewedAt: '2026-06-10T07:00:00Z', expiredAt: '2026-06-10T12:00:00Z' },
      // Never opened: not counted.
      { reference: 'OP-6', createdAt: '2026-06-10T09:00:00Z' },
      // 00:10 local the next day: not counted.
      { reference: 'OP-7', createdAt: '2026-06-10T09:00:00Z', viewedAt: '2026-06-10T22:10:00Z' },
    ]);
    const d = await recap.buildRecap(m, '2026-06-10');
    assert.equal(d.opened.count, 3);
    const expected: Record<string, string> = { en: '3 opened, not paid', it: '3 aperti, non pagati', fr: '3 ouverts, non payés', de: '3 geöffnet, nicht bezahlt', es: '3 abiertos, no pagados' };
    for (const [locale, line] of Object.entries(expected)) {
      const mail = await renderer.render({ template: 'daily-recap', locale, data: JSON.parse(JSON.stringify(d)) as Record<string, unknown> });
      assert.ok(mail.text.includes(line), `${locale} text has "${line}"`);
      assert.ok(mail.html.includes(line), `${locale} html has "${line}"`);
    }
    await Order.deleteMany({ merchantId: m._id });
  });

  describe('DST change days in Europe/Rome', () => {
    const cases: Array<{ date: string; hours: number; inside: string[]; outside: string[] }> = [
      // 25 hours: 00:30 CEST (UTC+2) … 23:30 CET (UTC+1).
      { date: '2026-10-25', hours: 25, inside: ['2026-10-24T22:30:00Z', '2026-10-25T22:30:00Z'], outside: ['2026-10-24T21:30:00Z', '2026-10-25T23:30:00Z'] },
      // 23 hours: 00:30 CET … 23:30 CEST.
      { date: '2026-03-29', hours: 23, inside: ['2026-03-28T23:30:00Z', '2026-03-29T21:30:00Z'], outside: ['2026-03-28T22:30:00Z', '2026-03-29T22:30:00Z'] },
    ];
    for (const c of cases) {
      it(`${c.date} (${c.hours} hours): orders at 00:30 and 23:30 local are in, the minutes around are out`, async () => {
        const m = await newMerchant(`DST ${c.date}`, '2026-01-01T00:00:00Z', { jobs: false });
        await seed(m, [
          ...c.inside.map((at, i) => ({ reference: `IN-${i}`, createdAt: at, paidAt: at, amountMinor: 1000, card: { brand: 'visa', last4: '4242', country: 'IT' } })),
          ...c.outside.map((at, i) => ({ reference: `OUT-${i}`, createdAt: at, paidAt: at, amountMinor: 1, card: { brand: 'visa', last4: '4242', country: 'IT' } })),
        ]);
        const d = await recap.buildRecap(m, c.date);
        assert.equal(d.hours, c.hours);
        assert.deepEqual(d.payments.items.map((p) => p.reference), ['IN-0', 'IN-1']);
        assert.deepEqual(d.orders, [{ status: 'paid', currency: 'EUR', count: 2, totalMinor: 2000 }]);
        const en = await renderer.render({ template: 'daily-recap', locale: 'en', data: JSON.parse(JSON.stringify(d)) as Record<string, unknown> });
        assert.ok(en.text.includes(`This day had ${c.hours} hours`));
        assert.ok(!en.text.includes('Refunds') && !en.html.includes('Refunds'), 'no refunds: no section');
        const mail = await renderer.render({ template: 'daily-recap', locale: 'it', data: JSON.parse(JSON.stringify(d)) as Record<string, unknown> });
        assert.ok(mail.text.includes(`durata ${c.hours} ore`));
        assert.ok(mail.text.includes('00:30') && mail.text.includes('23:30'), mail.text);
      });
    }

    it('mails the recap of the 25-hour day at 07:00 local the next morning, not a minute before', async () => {
      const m = await newMerchant('DST job', '2026-10-20T00:00:00Z');
      let clock = new Date('2026-10-26T05:59:00Z'); // 06:59 CET
      await job(() => clock, 'a').runOnce();
      assert.ok(!(await recapDates(m)).includes('2026-10-25'));
      clock = new Date('2026-10-26T06:00:00Z'); // 07:00 CET
      await job(() => clock, 'a').runOnce();
      assert.ok((await recapDates(m)).includes('2026-10-25'));
      await retire(m);
    });
  });

  describe('exactly once', () => {
    let m: MerchantDoc;
    before(async () => {
      m = await newMerchant('Twin Shop', '2026-06-01T08:00:00Z'); // 10:00 local on 2026-06-01
    });

    it('two instances running at the same time send one recap per day', async () => {
      const clock = () => new Date('2026-06-05T05:00:00Z'); // 07:00 CEST
      const runs = await Promise.all([job(clock, 'a').runOnce(), job(clock, 'b').runOnce(), job(clock, 'c').runOnce()]);
      assert.deepEqual(await recapDates(m), ['2026-06-01', '2026-06-02', '2026-06-03', '2026-06-04']);
      assert.ok(runs.reduce((n, r) => n + r.sent, 0) >= 4);
      const docs = await recaps(m);
      assert.deepEqual(docs.map((d) => d.dedupeKey), ['01', '02', '03', '04'].map((dd) => recapKey(m._id, `2026-06-${dd}`)));
      assert.ok(docs.every((d) => d.to[0] === m.email));
    });

    it('a restarted instance sends nothing again, and the next day once', async () => {
      await job(() => new Date('2026-06-05T18:00:00Z'), 'restarted').runOnce();
      assert.equal((await recaps(m)).length, 4);
      await Promise.all([job(() => new Date('2026-06-06T05:00:30Z'), 'a').runOnce(), job(() => new Date('2026-06-06T05:00:31Z'), 'b').runOnce()]);
      assert.deepEqual((await recapDates(m)).slice(-2), ['2026-06-04', '2026-06-05']);
      assert.equal((await recaps(m)).length, 5);
    });

    it('missed days are sent late (at most 7 back), never days before the merchant existed', async () => {
      // Down from 2026-06-06 08:00 to 2026-06-16 12:00: the last 7 days are sent, 06-06…06-08 are beyond the look-back.
      await job(() => new Date('2026-06-16T10:00:00Z'), 'back').runOnce();
      assert.deepEqual(await recapDates(m), [
        '2026-06-01', '2026-06-02', '2026-06-03', '2026-06-04', '2026-06-05',
        '2026-06-09', '2026-06-10', '2026-06-11', '2026-06-12', '2026-06-13', '2026-06-14', '2026-06-15',
      ]);
      const late = await newMerchant('Late Joiner', '2026-06-14T12:00:00Z');
      await job(() => new Date('2026-06-16T10:00:00Z'), 'back').runOnce();
      assert.deepEqual(await recapDates(late), ['2026-06-14', '2026-06-15']);
      await retire(m, late);
    });

    it('a claim whose winner died before enqueueing is finished by a later run, once', async () => {
      const dead = await newMerchant('Crashy', '2026-07-01T00:00:00Z');
      const key = recapKey(dead._id, '2026-07-01');
      const claimedAt = new Date('2026-07-02T05:00:00Z');
      assert.ok(await claimOnce(key, { kind: 'recap', subject: dead._id, payload: { date: '2026-07-01' }, owner: 'dead' }, claimedAt));
      await job(() => new Date(claimedAt.getTime() + 20_000), 'x').runOnce();
      assert.deepEqual(await recapDates(dead), [], 'a fresh claim may still be in progress elsewhere');
      await Promise.all([job(() => new Date(claimedAt.getTime() + 120_000), 'x').runOnce(), job(() => new Date(claimedAt.getTime() + 120_000), 'y').runOnce()]);
      assert.deepEqual(await recapDates(dead), ['2026-07-01']);
      assert.equal((await Claim.findById(key).lean())?.applied, true);
      await retire(dead);
    });
  });

  describe('CLI: paymail recap send', () => {
    const noConnect = async () => ({ close: async () => {} });
    async function cli(args: string[], now = '2026-08-20T12:00:00Z', progress = false) {
      let out = '';
      let err = '';
      const code = await runRecapCli(args, { out: (s) => (out += s), err: (s) => (err += s), progress }, { mailDomain: MAIL_DOMAIN, connect: noConnect, now: () => new Date(now) });
      return { code, out, err };
    }

    it('backfills a day, skips it when sent, re-sends it with --force under new dedupe keys', async () => {
      const m = await newMerchant('Cli Shop', '2026-08-01T00:00:00Z');
      await seed(m, [{ reference: 'C-1', createdAt: '2026-08-10T10:00:00Z', paidAt: '2026-08-10T10:00:00Z', amountMinor: 3000, card: { brand: 'visa', last4: '4242', country: 'IT' } }]);
      const args = ['send', '--merchant', m._id, '--date', '2026-08-10'];
      let r = await cli(args);
      assert.deepEqual([r.code, r.out], [0, `${m._id} 2026-08-10 sent\n`]);
      r = await cli(args);
      assert.equal(r.code, 0);
      assert.match(r.out, /skipped/);
      r = await cli([...args, '--force']);
      assert.deepEqual([r.code, r.out], [0, `${m._id} 2026-08-10 resent\n`]);
      await cli([...args, '--force']);
      const keys = (await recaps(m)).map((d) => d.dedupeKey).sort();
      const base = recapKey(m._id, '2026-08-10');
      assert.deepEqual(keys, [base, `${base}:resend:1`, `${base}:resend:2`]);
      // The job does not send the backfilled day again.
      await job(() => new Date('2026-08-11T05:00:00Z'), 'j').runOnce();
      assert.equal((await recaps(m)).filter((d) => (d.data as { date: string }).date === '2026-08-10').length, 3);
    });

    it('--all sends every merchant its previous day, with progress on a terminal', async () => {
      const total = await Merchant.countDocuments({ status: 'active' });
      const r = await cli(['send', '--all'], '2026-09-02T12:00:00Z', true);
      assert.equal(r.code, 0, r.err);
      assert.ok(r.err.includes(`${total}/${total} merchants`), r.err);
      assert.equal(r.out.trim().split('\n').length, total);
      assert.ok(r.out.split('\n').filter(Boolean).every((l) => / 2026-09-01 (sent|skipped)/.test(l)), r.out);
    });

    it('runs as a real process: npx paymail recap send', async function () {
      this.timeout(60_000);
      const m = await newMerchant('Process Shop', '2026-01-01T00:00:00Z', { jobs: false });
      const env = { MONGODB_URI: db.uri(), MAIL_DOMAIN: MAIL_DOMAIN };
      let r = await runCli(['recap', 'send', '--merchant', m._id, '--date', '2026-04-01'], env);
      assert.deepEqual([r.code, r.stdout], [0, `${m._id} 2026-04-01 sent\n`], r.stderr);
      assert.ok(await Outbox.exists({ dedupeKey: recapKey(m._id, '2026-04-01') }));
      r = await runCli(['recap', 'send', '--date', '2026-04-01'], env);
      assert.equal(r.code, 2);
      assert.match(r.stderr, /--merchant ID or --all/);
    });

    const failures: Array<[string, string[], number, RegExp]> = [
      ['unknown merchant', ['send', '--merchant', 'mer_nope', '--date', '2026-08-10'], 1, /MERCHANT_NOT_FOUND/],
      ['a day not over yet', ['send', '--merchant', '<id>', '--date', '2026-08-20'], 1, /RECAP_DAY_NOT_OVER/],
      ['a bad date', ['send', '--merchant', 'x', '--date', '2026-02-30'], 2, /expected YYYY-MM-DD/],
      ['no merchant', ['send'], 2, /--merchant ID or --all/],
      ['an unknown command', ['show'], 2, /unknown command/],
    ];
    for (const [name, args, code, message] of failures) {
      it(`exits ${code} on ${name}`, async () => {
        const m = await newMerchant(`Cli ${name}`, '2026-08-01T00:00:00Z', { jobs: false });
        const r = await cli(args.map((a) => (a === '<id>' ? m._id : a)));
        assert.equal(r.code, code);
        assert.match(r.out + r.err, message);
      });
    }

    it('prints an error once, on stderr only (stdout keeps the result lines)', async () => {
      const r = await cli(['send', '--merchant', 'mer_nope', '--date', '2026-08-10']);
      assert.equal(r.code, 1);
      assert.equal(r.out, '');
      assert.equal(r.err.trim().split('\n').length, 1, r.err);
      assert.match(r.err, /^paymail: mer_nope 2026-08-10: MERCHANT_NOT_FOUND: /);
    });
  });
});
