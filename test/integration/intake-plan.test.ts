// Payment plans through mail intake (issue 13 part 1): an Italian order mail with "Acconto:" and
// "Saldo entro:" becomes an order stored in parts; one with a plan that cannot be ("Acconto: 120%",
// an acconto with rate) is answered with a reply naming the field in the merchant's language, the
// value and the line, and creates nothing.
import assert from 'node:assert/strict';
import path from 'node:path';
import { Merchant, type MerchantDoc } from '../../src/db/models/merchant.model.ts';
import { Order, type OrderDoc } from '../../src/db/models/order.model.ts';
import { Outbox, type OutboxDoc } from '../../src/db/models/outbox.model.ts';
import { addDays, localDate } from '../../src/domain/local-day.ts';
import { createLogger } from '../../src/logger.ts';
import { createMailRenderer } from '../../src/mail/renderer.ts';
import { createIntakeService } from '../../src/services/intake.service.ts';
import { createMerchantService } from '../../src/services/merchant.service.ts';
import { createOrderService } from '../../src/services/order.service.ts';
import { repos, useTestDatabase } from '../helpers/db.ts';

const MAIL_DOMAIN = 'paymail.test';
const TEMPLATES_DIR = path.resolve(import.meta.dirname, '../../templates');

interface ReplyData {
  created: Array<{ reference: string }>;
  problems: Array<{ field: string; code: string; value?: string; line?: number }>;
}

describe('payment plans through mail intake (issue 13 part 1)', function () {
  this.timeout(30_000);
  useTestDatabase();
  const logger = createLogger('silent');
  const orders = createOrderService({ repos, publicUrl: 'http://localhost:3000', mailDomain: MAIL_DOMAIN, maxLinkLifetimeDays: 60, linkKeys: [{ kid: 't1', secret: 'c'.repeat(32) }] });
  const intake = createIntakeService({ repos, orders, mailDomain: MAIL_DOMAIN, maxLinkLifetimeDays: 60, logger });
  let merchant: MerchantDoc;
  let n = 0;

  before(async () => {
    const created = await createMerchantService({ repos, mailDomain: MAIL_DOMAIN }).create({ name: 'Cucine Rossi', email: 'ufficio@cucine.example', locale: 'it', timezone: 'Europe/Rome' });
    merchant = (await Merchant.findById(created.id).lean<MerchantDoc>())!;
  });
  after(() => intake.close());

  async function send(text: string) {
    const raw = Buffer.from(
      `From: ufficio@cucine.example\r\nTo: orders+${merchant.alias}@${MAIL_DOMAIN}\r\nSubject: Ordine\r\nMessage-ID: <plan${++n}.${Date.now()}@cucine.example>\r\n` +
        `MIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n${text}\r\n`,
    );
    const stored = await intake.store({ merchantId: merchant._id, door: 'submission', raw, envelope: { rcptTo: [] } });
    await intake.idle();
    const reply = await Outbox.findOne({ dedupeKey: `intake-reply:${stored.id}` }).lean<OutboxDoc>();
    return reply?.data as ReplyData | undefined;
  }

  it('stores a deposit with its balance date, and instalments, as the order’s parts', async () => {
    const due = addDays(localDate(new Date(), 'Europe/Rome'), 40);
    const [y, m, d] = due.split('-');
    await send(`Importo: 4.800,00 €\nRiferimento: CUC-1\nAcconto: 30%\nSaldo entro: ${d}/${m}/${y}`);
    await send('Importo: 900\nRiferimento: CUC-2\nRateizzazione: 3 mensili');
    const deposit = (await Order.findOne({ merchantId: merchant._id, reference: 'CUC-1' }).lean<OrderDoc>())!;
    assert.equal(deposit.amountMinor, 480_000);
    assert.deepEqual(
      deposit.plan?.parts?.map((p) => [p.seq, p.kind, p.amountMinor, p.dueDate ?? null]),
      [
        [1, 'deposit', 144_000, null],
        [2, 'balance', 336_000, due],
      ],
    );
    const rate = (await Order.findOne({ merchantId: merchant._id, reference: 'CUC-2' }).lean<OrderDoc>())!;
    assert.deepEqual(rate.plan?.parts?.map((p) => p.amountMinor), [30_000, 30_000, 30_000]);
  });

  it('answers a plan that cannot be with the field, the value and the line, in Italian, and creates nothing', async () => {
    const before = await Order.countDocuments({ merchantId: merchant._id });
    const data = await send('Importo: 500\nRiferimento: CUC-3\nAcconto: 120%\nSaldo entro: 01/01/2020');
    assert.ok(data);
    assert.deepEqual(
      data.problems.map((p) => [p.field, p.code, p.value, p.line]),
      [
        ['deposit', 'DEPOSIT_INVALID', '120%', 3],
        ['balanceDue', 'BALANCE_DUE_PAST', '01/01/2020', 4],
      ],
    );
    const conflict = await send('Importo: 500\nRiferimento: CUC-4\nCaparra: 100 €\nRateizzazione: 3');
    assert.deepEqual(conflict?.problems.map((p) => [p.field, p.code, p.value, p.line]), [['instalments', 'PLAN_CONFLICT', '3', 4]]);
    assert.equal(await Order.countDocuments({ merchantId: merchant._id }), before);
    const renderer = await createMailRenderer({ templatesDir: TEMPLATES_DIR, publicUrl: 'http://localhost:3000' });
    const mail = await renderer.render({ template: 'intake-reply', locale: 'it', data: data as unknown as Record<string, unknown> });
    for (const s of ['Acconto', 'Saldo entro', '120%', '01/01/2020', 'riga 3']) assert.ok(mail.text.includes(s), `${s} in: ${mail.text}`);
  });
});
