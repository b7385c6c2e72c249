// MoTo (mail and telephone orders): an operator keys in the card on the order's back-office page.
// Same card checks and acquirer as the checkout, marked moto on the payment and the attempt, the
// same once-only close (two operators charging at once → one payment), receipts as for a normal
// payment, and the card number and CVC in no collection and no log line.
import assert from 'node:assert/strict';
import mongoose from 'mongoose';
import { MerchantUser } from '../../src/db/models/merchant-user.model.ts';
import { Merchant, type MerchantDoc } from '../../src/db/models/merchant.model.ts';
import { Order, type OrderDoc } from '../../src/db/models/order.model.ts';
import { Outbox } from '../../src/db/models/outbox.model.ts';
import { hashPassword } from '../../src/domain/password.ts';
import { createMerchantService } from '../../src/services/merchant.service.ts';
import { useTestDatabase } from '../helpers/db.ts';
import { BoClient, MAIL_DOMAIN, startBackofficeApp, textOf, type BackofficeApp } from './backoffice-client.ts';
import { repos } from '../helpers/db.ts';

const CVC = '737';
const PANS = new Set<string>();
const card = (number: string, extra: Record<string, string> = {}) => {
  PANS.add(number.replace(/\s/g, ''));
  return { number, expiry: '11/38', cvc: CVC, holder: 'Mario Bianchi', ...extra };
};

describe('back office: MoTo (card taken by phone)', function () {
  this.timeout(30_000);
  useTestDatabase();
  const logLines: string[] = [];
  let app: BackofficeApp;
  let merchant: MerchantDoc;
  let operator: BoClient;
  let seq = 0;

  before(async () => {
    app = await startBackofficeApp({ logLines });
    const m = await createMerchantService({ repos, mailDomain: MAIL_DOMAIN }).create({ name: 'Pizzeria Napoli', email: 'orders@napoli.example' });
    merchant = (await Merchant.findById(m.id).lean<MerchantDoc>())!;
    await MerchantUser.create({ merchantId: merchant._id, email: 'phone@napoli.example', passwordHash: await hashPassword('phone desk password'), role: 'operator' });
    operator = new BoClient(app.base);
    assert.equal((await operator.login('phone@napoli.example', 'phone desk password')).status, 303);
  });
  after(() => app?.close());

  async function openOrder(customerEmail?: string): Promise<OrderDoc> {
    seq += 1;
    const draft = { amountMinor: 2_450, currency: 'EUR', reference: `TEL-${seq}`, customerName: 'Mario Bianchi', ...(customerEmail ? { customerEmail } : {}) };
    return (await app.orders.create(merchant, draft, { key: `moto:${seq}` })).order;
  }

  it('charges the card: paid, marked moto on payment and attempt, receipts queued', async () => {
    const order = await openOrder('mario@example.org');
    const detail = await operator.get(`/backoffice/orders/${order._id}`);
    assert.match(detail.html, new RegExp(`href="/backoffice/orders/${order._id}/moto"`));
    const form = await operator.get(`/backoffice/orders/${order._id}/moto`);
    assert.equal(form.status, 200);
    assert.match(textOf(form.html), /Charge €24\.50/);
    assert.doesNotMatch(form.html, /name="email"/, 'the order knows the customer');

    const r = await operator.post(`/backoffice/orders/${order._id}/moto`, card('4242 4242 4242 4242'));
    assert.equal(r.status, 303);
    assert.match(r.location, /\?done=motoPaid$/);
    const paid = (await Order.findById(order._id).lean<OrderDoc>())!;
    assert.equal(paid.status, 'paid');
    assert.equal(paid.payment?.moto, true);
    assert.equal(paid.payment?.card?.last4, '4242');
    assert.equal(paid.attempts.length, 1);
    assert.equal(paid.attempts[0]!.moto, true);
    assert.equal(paid.attempts[0]!.outcome, 'approved');
    const receipts = await Outbox.find({ orderId: order._id, template: /^receipt-/ }).lean();
    assert.deepEqual(receipts.map((m) => m.template).sort(), ['receipt-customer', 'receipt-merchant']);
    const page = textOf((await operator.get(r.location)).html);
    assert.match(page, /The card was charged/);
    assert.match(page, /MoTo/);
    // Paid: no MoTo page any more.
    assert.equal((await operator.get(`/backoffice/orders/${order._id}/moto`)).status, 409);
  });

  const refusals: Array<{ name: string; form: Record<string, string>; status: number; says: RegExp; attempts: number }> = [
    { name: 'a declined card', form: card('4000 0000 0000 0002'), status: 402, says: /declined/i, attempts: 1 },
    { name: 'insufficient funds', form: card('4000000000009995'), status: 402, says: /insufficient|funds/i, attempts: 1 },
    { name: 'a card that needs 3-D Secure', form: card('4000000000003220'), status: 402, says: /3-D Secure/, attempts: 1 },
    { name: 'a wrong check digit', form: card('4242 4242 4242 4241'), status: 422, says: /card number/i, attempts: 0 },
    { name: 'an expired card', form: card('5555555555554444', { expiry: '01/20' }), status: 422, says: /expir/i, attempts: 0 },
    { name: 'a missing receipt address', form: card('5555555555554444'), status: 422, says: /e-mail/i, attempts: 0 },
  ];
  for (const c of refusals) {
    it(`refuses ${c.name} (${c.status}); the order stays open and the form never echoes the card`, async () => {
      const order = await openOrder(c.name.includes('receipt') ? undefined : 'mario@example.org');
      const r = await operator.post(`/backoffice/orders/${order._id}/moto`, c.form);
      assert.equal(r.status, c.status);
      assert.match(textOf(r.html), c.says);
      assert.ok(!r.html.includes(c.form['number']!.replace(/\s/g, '')) && !r.html.includes(c.form['number']!), 'number not echoed');
      assert.doesNotMatch(r.html, new RegExp(`value="${CVC}"`));
      const after = (await Order.findById(order._id).lean<OrderDoc>())!;
      assert.equal(after.status, 'pending');
      assert.equal(after.attempts.length, c.attempts);
      for (const a of after.attempts) assert.equal(a.moto, true);
    });
  }

  it('two operators charging one order at once: exactly one payment', async () => {
    for (let round = 0; round < 3; round++) {
      const order = await openOrder('mario@example.org');
      const second = new BoClient(app.base, operator.cookies);
      second.csrf = operator.csrf;
      const results = await Promise.all([
        operator.post(`/backoffice/orders/${order._id}/moto`, card('4242424242424242')),
        second.post(`/backoffice/orders/${order._id}/moto`, card('5555555555554444')),
      ]);
      assert.deepEqual(results.map((r) => r.status).sort(), [303, 409], `round ${round}`);
      const paid = (await Order.findById(order._id).lean<OrderDoc>())!;
      assert.equal(paid.status, 'paid');
      assert.equal(paid.attempts.filter((a) => a.outcome === 'approved').length, 1);
      assert.equal(await Outbox.countDocuments({ orderId: order._id, template: 'receipt-merchant' }), 1);
    }
  });

  it('a viewer gets no MoTo page', async () => {
    await MerchantUser.create({ merchantId: merchant._id, email: 'look@napoli.example', passwordHash: await hashPassword('just looking pw'), role: 'viewer' });
    const viewer = new BoClient(app.base);
    await viewer.login('look@napoli.example', 'just looking pw');
    const order = await openOrder('mario@example.org');
    assert.doesNotMatch((await viewer.get(`/backoffice/orders/${order._id}`)).html, /\/moto"/);
    assert.equal((await viewer.get(`/backoffice/orders/${order._id}/moto`)).status, 403);
    assert.equal((await viewer.post(`/backoffice/orders/${order._id}/moto`, card('4242424242424242'))).status, 403);
    assert.equal((await Order.findById(order._id).lean<OrderDoc>())!.status, 'pending');
  });

  it('left no card number or CVC in any collection or log line', async () => {
    assert.ok(PANS.size >= 5);
    const collections = await mongoose.connection.db!.collections();
    for (const c of collections) {
      const dump = JSON.stringify(await c.find({}).toArray());
      for (const pan of PANS) assert.ok(!dump.includes(pan), `${c.collectionName} holds ${pan}`);
      assert.doesNotMatch(dump, new RegExp(`(?<![\\w-])${CVC}(?![\\w-])`), `${c.collectionName} holds the CVC`);
    }
    const logs = logLines.join('');
    assert.ok(logs.includes('"msg":"moto payment"'), 'the outcome is logged');
    for (const pan of PANS) assert.ok(!logs.includes(pan) && !logs.includes(pan.replace(/(\d{4})(?=\d)/g, '$1 ')), `logs hold ${pan}`);
    assert.ok(!logs.includes(`"${CVC}"`), 'logs hold the CVC');
  });
});
