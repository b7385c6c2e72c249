// Batches through the intake service and the real database: CSV/JSON attachments → one order and
// one link per row, per-row problems, one reply listing everything, idempotent reprocessing.
import assert from 'node:assert/strict';
import path from 'node:path';
import { InboundMessage } from '../../src/db/models/inbound-message.model.ts';
import { Merchant, type MerchantDoc } from '../../src/db/models/merchant.model.ts';
import { Order } from '../../src/db/models/order.model.ts';
import { Outbox, type OutboxDoc } from '../../src/db/models/outbox.model.ts';
import { MAX_BATCH_ROWS } from '../../src/domain/batch.ts';
import { createLogger } from '../../src/logger.ts';
import { createMailRenderer, type MailRenderer } from '../../src/mail/renderer.ts';
import { createIntakeService } from '../../src/services/intake.service.ts';
import { createMerchantService } from '../../src/services/merchant.service.ts';
import { createOrderService } from '../../src/services/order.service.ts';
import { useTestDatabase } from '../helpers/db.ts';
import { repos } from '../helpers/db.ts';

const MAIL_DOMAIN = 'paymail.test';
const TEMPLATES_DIR = path.resolve(import.meta.dirname, '../../templates');

interface ReplyData {
  created: Array<{ reference: string; link: string; row?: number; deliveredTo?: string; capped?: boolean; duplicate?: string }>;
  problems: Array<{ field: string; code: string; value?: string; row?: number }>;
  notices: Array<{ code: string; value?: string }>;
  batch?: { filename: string; rows: number };
}

describe('batches (CSV / JSON attachments)', function () {
  this.timeout(30_000);
  useTestDatabase();
  const logger = createLogger('silent');
  const orders = createOrderService({ repos,
    publicUrl: 'http://localhost:3000',
    mailDomain: MAIL_DOMAIN,
    maxLinkLifetimeDays: 60,
    linkKeys: [{ kid: 't1', secret: 'b'.repeat(32) }],
  });
  const intake = createIntakeService({ repos, orders, mailDomain: MAIL_DOMAIN, maxLinkLifetimeDays: 60, logger });
  let merchant: MerchantDoc;
  let renderer: MailRenderer;
  let n = 0;

  before(async () => {
    const created = await createMerchantService({ repos, mailDomain: MAIL_DOMAIN }).create({ name: 'Bottega', email: 'owner@bottega.example', locale: 'it' });
    merchant = (await Merchant.findById(created.id).lean<MerchantDoc>())!;
    renderer = await createMailRenderer({ templatesDir: TEMPLATES_DIR, publicUrl: 'http://localhost:3000' });
  });
  afterEach(() => intake.idle());
  after(() => intake.close());

  /** A multipart/mixed mail: a cover note and one attachment per entry. */
  function mail(files: Array<{ name?: string; type: string; body: string | Buffer }>, body = 'Ordini di oggi in allegato.'): Buffer {
    const b = `b${++n}`;
    const parts = files.map((f) => {
      const content = (Buffer.isBuffer(f.body) ? f.body : Buffer.from(f.body, 'utf8')).toString('base64').replace(/.{76}/g, '$&\r\n');
      const disp = f.name ? `Content-Disposition: attachment; filename="${f.name}"\r\n` : 'Content-Disposition: attachment\r\n';
      return `--${b}\r\nContent-Type: ${f.type}\r\n${disp}Content-Transfer-Encoding: base64\r\n\r\n${content}\r\n`;
    });
    return Buffer.from(
      `From: owner@bottega.example\r\nTo: orders+${merchant.alias}@${MAIL_DOMAIN}\r\nSubject: Ordini\r\nMessage-ID: <batch${n}.${Date.now()}@bottega.example>\r\n` +
        `MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary="${b}"\r\n\r\n--${b}\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n${body}\r\n` +
        `${parts.join('')}--${b}--\r\n`,
    );
  }
  async function run(raw: Buffer) {
    const stored = await intake.store({ merchantId: merchant._id, door: 'submission', raw, envelope: { rcptTo: [] } });
    await intake.idle();
    const reply = await Outbox.findOne({ dedupeKey: `intake-reply:${stored.id}` }).lean<OutboxDoc>();
    return { id: stored.id, reply, data: reply?.data as ReplyData | undefined };
  }
  const problemsOf = (d: ReplyData | undefined) => d?.problems.map((p) => [p.row ?? null, p.field, p.code, p.value ?? null]);

  it('CSV with ";", a BOM and Italian headers: one order and one link per good row, bad rows named', async () => {
    const csv =
      '\ufeffImporto;Riferimento;Descrizione;Email cliente;Invio;Scadenza\r\n' +
      '129,90;CSV-1;Sedia;;;\r\n' +
      '"1.234,56 €";CSV-2;"Tavolo; rovere";;;90 giorni\r\n' +
      'dieci;CSV-3;Lampada;;;\r\n' +
      ';;;;;\r\n' +
      '45;CSV-4;Divano;anna@example.test;cliente;\r\n' +
      '12;CSV-5;Tappeto;non-una-mail;;\r\n';
    const { id, reply, data } = await run(mail([{ name: 'ordini.csv', type: 'text/csv; charset=utf-8', body: csv }]));
    const made = await Order.find({ 'source.inboundMessageId': id }).sort({ sourceKey: 1 }).lean();
    assert.deepEqual(
      made.map((o) => [o.sourceKey, o.reference, o.amountMinor, o.delivery]),
      [
        [`msg:${id}:1`, 'CSV-1', 12990, 'merchant'],
        [`msg:${id}:2`, 'CSV-2', 123456, 'merchant'],
        // The empty line is skipped, so Divano is the 4th order.
        [`msg:${id}:4`, 'CSV-4', 4500, 'customer'],
      ],
    );
    // One reply for the merchant instead of a pay-link mail per row; the customer row mails its customer only.
    const paylinks = await Outbox.find({ template: 'paylink', orderId: { $in: made.map((o) => o._id) } }).lean<OutboxDoc[]>();
    assert.deepEqual(paylinks.map((p) => [p.to, p.cc]), [[['anna@example.test'], []]]);
    assert.ok(reply);
    assert.deepEqual(reply.to, ['owner@bottega.example']);
    assert.ok(reply.inReplyTo);
    assert.deepEqual(data?.created.map((c) => [c.reference, c.row, c.deliveredTo ?? null, c.capped ?? false]), [
      ['CSV-1', 1, null, false],
      ['CSV-2', 2, null, true],
      ['CSV-4', 4, 'anna@example.test', false],
    ]);
    assert.deepEqual(problemsOf(data), [
      [3, 'amount', 'AMOUNT_INVALID', 'dieci'],
      [5, 'customerEmail', 'ORDER_EMAIL_INVALID', 'non-una-mail'],
    ]);
    assert.deepEqual(data?.batch, { filename: 'ordini.csv', rows: 5 });
    // The rendered reply (Italian) lists every link and names each refused row.
    const rendered = await renderer.render({ template: 'intake-reply', locale: reply.locale, data: reply.data as Record<string, unknown> });
    for (const c of data!.created) assert.ok(rendered.text.includes(c.link), c.reference);
    assert.match(rendered.text, /riga 3 del file/);
    assert.match(rendered.text, /Valore indicato: dieci/);
    assert.match(rendered.text, /ridotta alla durata massima/);
    assert.match(rendered.text, /inviato a anna@example\.test/);
    assert.match(rendered.text, /File ordini\.csv: 5 righe lette/);
  });

  it('JSON by content type, labels in several languages, numbers as numbers; bad rows do not hold back good ones', async () => {
    const json = JSON.stringify([
      { amount: 10, reference: 'JS-1', description: 'Tea' },
      { Betrag: '5,50', Referenz: 'JS-2', Währung: 'CHF' },
      'junk',
      { Importe: '-3', Referencia: 'JS-4' },
      { Montant: 7, Référence: 'JS-5', Note: 'ignored' },
      { amount: { value: 1 }, reference: 'JS-6' },
    ]);
    const { id, data } = await run(mail([{ type: 'application/json', body: json }]));
    const made = await Order.find({ 'source.inboundMessageId': id }).sort({ sourceKey: 1 }).lean();
    assert.deepEqual(made.map((o) => [o.reference, o.amountMinor, o.currency]), [['JS-1', 1000, 'EUR'], ['JS-2', 550, 'CHF'], ['JS-5', 700, 'EUR']]);
    assert.deepEqual(problemsOf(data), [
      [3, 'order', 'BATCH_ROW_INVALID', '"junk"'],
      [4, 'amount', 'AMOUNT_NEGATIVE', '-3'],
      [6, 'amount', 'BATCH_VALUE_INVALID', '{"value":1}'],
    ]);
    assert.deepEqual(data?.notices.map((x) => [x.code, x.value]), [['BATCH_COLUMN_IGNORED', 'Note']]);
  });

  it('CSV recognised by its file name, "," delimiter, an English header; the body is not read as an order', async () => {
    const csv = 'Amount,Reference,Customer email,Delivery\n"1,234.56",FN-1,,\n9.99,FN-2,bob@example.test,customer\n';
    const { id, data } = await run(mail([{ name: 'export.CSV', type: 'application/octet-stream', body: csv }], 'Amount: 999\nReference: BODY'));
    assert.deepEqual((await Order.find({ 'source.inboundMessageId': id }).sort({ sourceKey: 1 }).lean()).map((o) => [o.reference, o.amountMinor]), [
      ['FN-1', 123456],
      ['FN-2', 999],
    ]);
    assert.equal(await Order.countDocuments({ reference: 'BODY' }), 0);
    assert.deepEqual(data?.problems, []);
  });

  it('an Excel CSV in Windows-1252 with French accented headers', async () => {
    const csv = Buffer.from('Montant;Référence;Libellé\r\n12,50;W-1;Crème brûlée\r\n', 'latin1');
    const { id } = await run(mail([{ name: 'commandes.csv', type: 'application/vnd.ms-excel', body: csv }]));
    const order = await Order.findOne({ 'source.inboundMessageId': id }).lean();
    assert.deepEqual([order?.reference, order?.amountMinor, order?.description], ['W-1', 1250, 'Crème brûlée']);
  });

  const refusals: Array<[string, { name?: string; type: string; body: string }, string]> = [
    [
      'more than 500 rows',
      { name: 'big.csv', type: 'text/csv', body: `Amount,Reference\n${Array.from({ length: MAX_BATCH_ROWS + 1 }, (_, i) => `1,BIG-${i}`).join('\n')}\n` },
      'BATCH_TOO_MANY_ROWS',
    ],
    ['no amount column', { name: 'x.csv', type: 'text/csv', body: 'Reference,Description\nA,B\n' }, 'BATCH_AMOUNT_COLUMN_MISSING'],
    ['a field named twice', { name: 'x.csv', type: 'text/csv', body: 'Amount;Importo\n1;2\n' }, 'BATCH_COLUMN_DUPLICATE'],
    ['broken quoting', { name: 'x.csv', type: 'text/csv', body: 'Amount,Reference\n"1,2\n' }, 'BATCH_CSV_INVALID'],
    ['JSON that is not JSON', { name: 'x.json', type: 'application/json', body: '[{"amount": 1,' }, 'BATCH_JSON_INVALID'],
    ['JSON that is not a list', { type: 'application/json', body: '{"amount": 1}' }, 'BATCH_JSON_INVALID'],
    ['header only', { name: 'x.csv', type: 'text/csv', body: 'Amount,Reference\n' }, 'BATCH_EMPTY'],
  ];
  for (const [name, file, code] of refusals) {
    it(`refuses the whole file: ${name} (${code})`, async () => {
      const { id, data } = await run(mail([file]));
      assert.equal(await Order.countDocuments({ 'source.inboundMessageId': id }), 0);
      assert.deepEqual(data?.problems.map((p) => [p.field, p.code]), [['attachment', code]]);
      assert.deepEqual(data?.created, []);
    });
  }

  it('reads one batch file per mail and says so about the others', async () => {
    const { id, data } = await run(
      mail([
        { name: 'a.csv', type: 'text/csv', body: 'Amount,Reference\n1,TWO-1\n' },
        { name: 'b.json', type: 'application/json', body: '[{"amount": 2, "reference": "TWO-2"}]' },
      ]),
    );
    assert.deepEqual((await Order.find({ 'source.inboundMessageId': id }).lean()).map((o) => o.reference), ['TWO-1']);
    assert.deepEqual(problemsOf(data), [[null, 'attachment', 'BATCH_ONE_FILE_ONLY', 'b.json']]);
  });

  it('reprocessing after a crash creates nothing twice; an open reference from an earlier batch answers with its link', async () => {
    const csv = 'Amount,Reference,Email,Delivery\n1,RE-1,,\n2,RE-2,c@example.test,customer\n3,RE-3,,\n';
    const first = await run(mail([{ name: 'r.csv', type: 'text/csv', body: csv }]));
    const ids = (await Order.find({ 'source.inboundMessageId': first.id }).lean()).map((o) => o._id).sort();
    assert.equal(ids.length, 3);
    // As if the process died before the reply was queued and the message marked processed.
    await Outbox.deleteOne({ dedupeKey: `intake-reply:${first.id}` });
    await Outbox.deleteOne({ template: 'paylink', orderId: { $in: ids } });
    await InboundMessage.updateOne({ _id: first.id }, { $set: { status: 'received' } });
    assert.equal((await intake.process(first.id)).status, 'processed');
    assert.deepEqual((await Order.find({ 'source.inboundMessageId': first.id }).lean()).map((o) => o._id).sort(), ids);
    assert.equal(await Outbox.countDocuments({ template: 'paylink', orderId: { $in: ids } }), 1, 'the customer row mail is queued again');
    const again = await Outbox.findOne({ dedupeKey: `intake-reply:${first.id}` }).lean();
    assert.equal((again?.data as ReplyData).created.length, 3);

    // The same rows in a new mail: the references are still open, nothing new is created.
    const second = await run(mail([{ name: 'r.csv', type: 'text/csv', body: csv }]));
    assert.equal(await Order.countDocuments({ reference: { $in: ['RE-1', 'RE-2', 'RE-3'] } }), 3);
    assert.deepEqual(second.data?.created.map((c) => [c.reference, c.duplicate, c.link === first.data?.created.find((x) => x.reference === c.reference)?.link]), [
      ['RE-1', 'reference', true],
      ['RE-2', 'reference', true],
      ['RE-3', 'reference', true],
    ]);
  });

  it(`${MAX_BATCH_ROWS} rows make ${MAX_BATCH_ROWS} orders and one reply`, async function () {
    this.timeout(120_000);
    const csv = `Amount;Reference\n${Array.from({ length: MAX_BATCH_ROWS }, (_, i) => `${i + 1},00;FULL-${i + 1}`).join('\n')}\n`;
    const started = performance.now();
    const { id, data } = await run(mail([{ name: 'full.csv', type: 'text/csv', body: csv }]));
    const ms = performance.now() - started;
    assert.equal(await Order.countDocuments({ 'source.inboundMessageId': id }), MAX_BATCH_ROWS);
    assert.equal(data?.created.length, MAX_BATCH_ROWS);
    const ids = (await Order.find({ 'source.inboundMessageId': id }, { _id: 1 }).lean()).map((o) => o._id);
    assert.equal(await Outbox.countDocuments({ template: 'paylink', orderId: { $in: ids } }), 0);
    console.log(`      ${MAX_BATCH_ROWS}-row batch processed in ${Math.round(ms)} ms`);
  });
});
