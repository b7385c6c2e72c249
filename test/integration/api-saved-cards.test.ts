// The server API's saved cards (issue 12 part 3): POST /api/v1/customers/{code}/charges charges a
// customer's saved card without the customer (201 with the paid order, merchant-initiated), a
// decline is 402 problem+json with the decline code, the same reference is charged once (also
// under an Idempotency-Key), other merchants' customers are not found; orders carry customerCode.
// Every answer is checked against the OpenAPI document.
import assert from 'node:assert/strict';
import { Merchant, type MerchantDoc } from '../../src/db/models/merchant.model.ts';
import { Order, type OrderDoc } from '../../src/db/models/order.model.ts';
import { repos, useTestDatabase } from '../helpers/db.ts';
import { loadConformance, startApiApp, type ApiApp, type ApiReply } from './api-client.ts';

const EXPIRY = `09/${String((new Date().getUTCFullYear() + 2) % 100).padStart(2, '0')}`;

describe('server API: charges of saved cards', function () {
  this.timeout(30_000);
  useTestDatabase();
  let app: ApiApp;
  let conf: Awaited<ReturnType<typeof loadConformance>>;
  let merchant: MerchantDoc;
  let other: MerchantDoc;
  let key: string;
  let seq = 0;

  before(async () => {
    app = await startApiApp();
    conf = await loadConformance(app);
    ({ merchant } = await app.newMerchant('Abbonamenti Rossi'));
    ({ merchant: other } = await app.newMerchant('Altro Negozio'));
    await Merchant.updateOne({ _id: merchant._id }, { $set: { savedCardsEnabled: true } });
    merchant = (await Merchant.findById(merchant._id).lean<MerchantDoc>())!;
    key = (await app.apiKeys.create(merchant._id)).key;
  });
  after(() => app.close());

  const charge = async (code: string, body: Record<string, unknown>, o: { key?: string; headers?: Record<string, string> } = {}): Promise<ApiReply> => {
    const res = await app.request('POST', `/api/v1/customers/${code}/charges`, { key, body, ...o });
    conf.check(res, 'POST', '/customers/{code}/charges');
    return res;
  };

  /** A customer code: an order paid on the checkout with "Save my card" ticked. */
  async function savedCustomer(email: string, number: string): Promise<string> {
    seq += 1;
    const { order } = await app.orders.create(merchant, { amountMinor: 1000, currency: 'EUR', reference: `FIRST-${seq}`, customerEmail: email }, { key: `t:${seq}` });
    const paid = await app.checkout.pay({ order, merchant }, { number, expiry: EXPIRY, cvc: '123', holder: 'Rita Rossi' }, '127.0.0.1', { saveCard: true });
    assert.equal(paid.kind, 'paid');
    return (await Order.findById(order._id).lean<OrderDoc>())!.customerCode!;
  }

  it('approved: 201 with the paid order, merchant-initiated, the customer code on it; the same reference is not charged again', async () => {
    const code = await savedCustomer('rita@example.org', '4242424242424242');
    const res = await charge(code, { amount: 2500, currency: 'EUR', reference: 'SUB-2026-12', description: 'December' });
    assert.equal(res.status, 201, res.text);
    assert.equal(res.body.status, 'paid');
    assert.equal(res.body.amount, 2500);
    assert.equal(res.body.customerCode, code);
    assert.equal(res.body.payment.card.last4, '4242');
    assert.match(res.headers.get('location') ?? '', /\/api\/v1\/orders\/SUB-2026-12$/);
    const order = (await Order.findOne({ merchantId: merchant._id, reference: 'SUB-2026-12' }).lean<OrderDoc>())!;
    assert.equal(order.payment?.initiator, 'merchant');
    const again = await charge(code, { amount: 2500, currency: 'EUR', reference: 'SUB-2026-12' });
    assert.equal(again.status, 201);
    assert.equal(again.body.id, res.body.id);
    assert.equal((await Order.findById(order._id).lean<OrderDoc>())!.attempts.length, 1, 'charged once');
    // The order as the API reads it carries the customer code too.
    const read = await app.request('GET', '/api/v1/orders/SUB-2026-12', { key });
    conf.check(read, 'GET', '/orders/{reference}');
    assert.equal(read.body.customerCode, code);
  });

  it('declined: 402 problem+json with the decline code; repeated under its Idempotency-Key, the same answer', async () => {
    const code = await savedCustomer('poor@example.org', '4000000000009995');
    const headers = { 'idempotency-key': 'charge-poor-1' };
    const res = await charge(code, { amount: 2500, currency: 'EUR', reference: 'SUB-POOR-1' }, { headers });
    assert.equal(res.status, 402, res.text);
    assert.match(res.headers.get('content-type') ?? '', /^application\/problem\+json/);
    assert.equal(res.body.code, 'PAYMENT_DECLINED');
    assert.equal(res.body.declineCode, 'INSUFFICIENT_FUNDS');
    const again = await charge(code, { amount: 2500, currency: 'EUR', reference: 'SUB-POOR-1' }, { headers });
    assert.equal(again.status, 402);
    assert.equal(again.headers.get('idempotent-replayed'), 'true');
    const order = (await Order.findOne({ merchantId: merchant._id, reference: 'SUB-POOR-1' }).lean<OrderDoc>())!;
    assert.deepEqual(order.attempts.map((a) => [a.declineCode, a.initiator]), [['INSUFFICIENT_FUNDS', 'merchant']]);
  });

  it('a card that wants 3-D Secure: 402 AUTHENTICATION_REQUIRED (nobody is there to authenticate)', async () => {
    seq += 1;
    const { order } = await app.orders.create(merchant, { amountMinor: 1000, currency: 'EUR', reference: `FIRST-${seq}`, customerEmail: 'secure@example.org' }, { key: `t:${seq}` });
    const asked = await app.checkout.pay({ order, merchant }, { number: '4000000000003220', expiry: EXPIRY, cvc: '123', holder: 'Rita Rossi' }, '127.0.0.1', { saveCard: true });
    assert.equal(asked.kind, 'challenge');
    const done = await app.checkout.completeChallenge({ order, merchant }, asked.kind === 'challenge' ? asked.challengeId : '', true, '127.0.0.1');
    assert.equal(done.kind, 'paid');
    const code = (await repos.customers.byEmail(merchant._id, 'secure@example.org'))!._id;
    const res = await charge(code, { amount: 2500, currency: 'EUR', reference: 'SUB-3DS-1' });
    assert.equal(res.status, 402);
    assert.equal(res.body.declineCode, 'AUTHENTICATION_REQUIRED');
  });

  it('refuses: another merchant\'s customer (404), an invalid body (422), a reference charged with another amount (409)', async () => {
    const code = await savedCustomer('ana@example.org', '5555555555554444');
    const otherKey = (await app.apiKeys.create(other._id)).key;
    const notFound = await charge(code, { amount: 100, currency: 'EUR', reference: 'X-1' }, { key: otherKey });
    assert.equal(notFound.status, 404);
    assert.equal(notFound.body.code, 'CUSTOMER_NOT_FOUND');
    const invalid = await charge(code, { amount: -5, currency: 'eur', reference: '' });
    assert.equal(invalid.status, 422);
    assert.equal(invalid.body.code, 'VALIDATION_FAILED');
    assert.equal((await charge(code, { amount: 700, currency: 'EUR', reference: 'X-2' })).status, 201);
    const conflict = await charge(code, { amount: 900, currency: 'EUR', reference: 'X-2' });
    assert.equal(conflict.status, 409);
    assert.equal(conflict.body.code, 'CHARGE_CONFLICT');
  });
});
