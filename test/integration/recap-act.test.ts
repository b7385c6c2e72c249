// A recap that asks for action (issue 13 part 7), against the real database: at the recap's time the
// merchant reads the open pay-links expiring within 24 hours (with "reply EXTEND <ref> 7 days") and
// those the customer opened but has not paid, in the HTML and the text, in all five languages;
// paid, cancelled, expired and other merchants' orders are not listed; the orders are read in the
// recap's one pass over `orders` (no query per order).
import assert from 'node:assert/strict';
import mongoose from 'mongoose';
import { Merchant, type MerchantDoc } from '../../src/db/models/merchant.model.ts';
import { Order } from '../../src/db/models/order.model.ts';
import { createMailRenderer, type MailRenderer } from '../../src/mail/renderer.ts';
import { createMerchantService } from '../../src/services/merchant.service.ts';
import { createRecapService } from '../../src/services/recap.service.ts';
import { TEMPLATES_DIR } from '../../src/server.ts';
import { useTestDatabase, repos } from '../helpers/db.ts';

const HOUR = 3_600_000;

describe('daily recap: expiring soon and opened but not paid (issue 13 part 7)', function () {
  this.timeout(30_000);
  useTestDatabase();
  let renderer: MailRenderer;
  let seq = 0;
  const recap = createRecapService({ repos, mailDomain: 'paymail.test' });

  async function merchant(name: string): Promise<MerchantDoc> {
    const created = await createMerchantService({ repos, mailDomain: 'paymail.test' }).create({ name, email: `desk${++seq}@act.example` });
    await Merchant.collection.updateOne({ _id: created.id as never }, { $set: { createdAt: new Date('2026-01-01T00:00:00Z'), status: 'suspended' } });
    return (await Merchant.findById(created.id).lean<MerchantDoc>())!;
  }

  async function order(m: MerchantDoc, o: { reference: string; expiresAt: Date; status?: string; viewedAt?: Date; customer?: { name?: string; email?: string } }) {
    const id = `ord_act${++seq}`;
    const status = o.status ?? 'pending';
    await Order.collection.insertOne({
      _id: id as never, publicId: `pubact${seq}`, merchantId: m._id, reference: o.reference, openReference: status === 'pending' ? o.reference : id,
      sourceKey: `act:${seq}`, amountMinor: 25000, currency: 'EUR', customer: o.customer ?? {}, locale: 'en', delivery: 'merchant', status,
      expiresAt: o.expiresAt, linkExpiresAt: Math.floor(o.expiresAt.getTime() / 1000), attempts: [],
      ...(o.viewedAt ? { viewedAt: o.viewedAt } : {}), createdAt: new Date('2026-05-01T08:00:00Z'), updatedAt: new Date('2026-05-01T08:00:00Z'),
    });
  }

  before(async () => {
    renderer = await createMailRenderer({ templatesDir: TEMPLATES_DIR, publicUrl: 'https://pay.example.test' });
  });

  it('lists the open links expiring within 24 hours and the opened unpaid ones, with EXTEND, in five languages, from the one pass', async () => {
    const m = await merchant('Agriturismo Colle');
    const other = await merchant('Someone Else');
    const now = new Date('2026-06-11T05:00:00Z'); // 07:00 in Rome, the recap of 2026-06-10
    await order(m, { reference: 'EXP-SOON', expiresAt: new Date(now.getTime() + 5 * HOUR), customer: { name: 'Rita', email: 'rita@example.org' } });
    await order(m, { reference: 'EXP-EDGE', expiresAt: new Date(now.getTime() + 24 * HOUR) });
    await order(m, { reference: 'EXP-LATER', expiresAt: new Date(now.getTime() + 30 * HOUR) });
    await order(m, { reference: 'OPENED', expiresAt: new Date(now.getTime() + 4 * 24 * HOUR), viewedAt: new Date('2026-06-09T10:00:00Z') });
    await order(m, { reference: 'OPENED-SOON', expiresAt: new Date(now.getTime() + 2 * HOUR), viewedAt: new Date('2026-06-10T10:00:00Z') });
    await order(m, { reference: 'PAID', status: 'paid', expiresAt: new Date(now.getTime() + 3 * HOUR), viewedAt: new Date('2026-06-10T10:00:00Z') });
    await order(m, { reference: 'CANCELLED', status: 'cancelled', expiresAt: new Date(now.getTime() + 3 * HOUR) });
    await order(m, { reference: 'GONE', expiresAt: new Date(now.getTime() - HOUR), viewedAt: new Date('2026-06-10T10:00:00Z') });
    await order(other, { reference: 'NOT-MINE', expiresAt: new Date(now.getTime() + 3 * HOUR), viewedAt: new Date('2026-06-10T10:00:00Z') });

    const reads: string[] = [];
    mongoose.set('debug', (collection: string, method: string) => {
      if (collection === 'orders') reads.push(method);
    });
    let d;
    try {
      d = await recap.buildRecap(m, '2026-06-10', now);
    } finally {
      mongoose.set('debug', false);
    }
    assert.deepEqual(reads, ['find'], 'the orders are read once, in the recap’s pass');
    assert.deepEqual(d.expiringSoon?.items.map((i) => i.reference), ['OPENED-SOON', 'EXP-SOON', 'EXP-EDGE']);
    assert.equal(d.expiringSoon?.items[1]!.customer, 'Rita <rita@example.org>');
    assert.deepEqual(d.openedUnpaid?.items.map((i) => i.reference), ['OPENED-SOON', 'OPENED']);

    const expected: Record<string, [string, string]> = {
      en: ['Expiring in the next 24 hours', 'Opened but not paid'],
      it: ['In scadenza nelle prossime 24 ore', 'Aperti ma non pagati'],
      fr: ['Expirent dans les prochaines 24 heures', 'Ouverts mais non payés'],
      de: ['Laufen in den nächsten 24 Stunden ab', 'Geöffnet, aber nicht bezahlt'],
      es: ['Caducan en las próximas 24 horas', 'Abiertos pero no pagados'],
    };
    for (const [locale, [soon, opened]] of Object.entries(expected)) {
      const mail = await renderer.render({ template: 'daily-recap', locale, data: JSON.parse(JSON.stringify(d)) as Record<string, unknown> });
      for (const part of [mail.text, mail.html]) {
        assert.ok(part.includes(soon), `${locale}: ${soon}`);
        assert.ok(part.includes(opened), `${locale}: ${opened}`);
        assert.ok(part.includes('EXTEND EXP-SOON 7 days'), `${locale}: the command to keep one open`);
        assert.ok(!part.includes('EXP-LATER') && !part.includes('NOT-MINE') && !part.includes('CANCELLED'), `${locale}: only what to act on`);
      }
    }
    assert.match((await renderer.render({ template: 'daily-recap', locale: 'en', data: JSON.parse(JSON.stringify(d)) as Record<string, unknown> })).text, /Reply to this email with EXTEND <ref> 7 days to keep one open\./);
  });

  it('says so when nothing is to act on; recaps queued before the sections existed still render', async () => {
    const m = await merchant('Quiet Shop');
    const d = await recap.buildRecap(m, '2026-06-10', new Date('2026-06-11T05:00:00Z'));
    assert.equal(d.expiringSoon?.count, 0);
    const mail = await renderer.render({ template: 'daily-recap', locale: 'en', data: JSON.parse(JSON.stringify(d)) as Record<string, unknown> });
    assert.match(mail.text, /No open pay-link expires in the next 24 hours\./);
    assert.match(mail.text, /No opened pay-link is waiting for payment\./);
    const old = JSON.parse(JSON.stringify(d)) as Record<string, unknown>;
    delete old['expiringSoon'];
    delete old['openedUnpaid'];
    assert.match((await renderer.render({ template: 'daily-recap', locale: 'en', data: old })).text, /No open pay-link expires/);
  });
});
