// Over 300 lines: one walk through every endpoint of the server API, each answer checked against the OpenAPI document.
// The server API (/api/v1) over real HTTP against a real database: API keys (none, malformed,
// unknown, revoked, read-only), pay-link creation with its delivery mails, reading and listing
// orders with a cursor, cancelling and refunding them (with the webhooks the back office's
// services queue), problem+json answers (validation, invalid JSON, unknown routes, no leaks), and
// the OpenAPI document: validated with an OpenAPI validator, and every response of these tests
// checked against its schemas. Idempotency and the rate limit: api-limits.test.ts.
import assert from 'node:assert/strict';
import { Validator } from '@seriousme/openapi-schema-validator';
import { Merchant, type MerchantDoc } from '../../src/db/models/merchant.model.ts';
import { Order } from '../../src/db/models/order.model.ts';
import { localDate } from '../../src/domain/local-day.ts';
import { toProblem } from '../../src/http/api/problem.ts';
import { repos, useTestDatabase } from '../helpers/db.ts';
import { loadConformance, startApiApp, type ApiApp, type ApiReply } from './api-client.ts';

const EXPIRY = `09/${String((new Date().getUTCFullYear() + 2) % 100).padStart(2, '0')}`;
const PROBLEM_FIELDS = ['type', 'title', 'status', 'detail', 'instance', 'code'];

describe('server API /api/v1', function () {
  this.timeout(30_000);
  useTestDatabase();
  let app: ApiApp;
  let conf: Awaited<ReturnType<typeof loadConformance>>;
  let merchant: MerchantDoc;
  let key: string;
  let readOnlyKey: string;
  let seq = 0;
  const ref = (prefix = 'API') => `${prefix}-${++seq}`;

  before(async () => {
    app = await startApiApp();
    conf = await loadConformance(app);
    ({ merchant } = await app.newMerchant('Bottega API'));
    // Webhooks are queued only for merchants with a URL: the API's actions must queue them.
    await Merchant.updateOne({ _id: merchant._id }, { $set: { webhookUrl: 'https://hooks.example/paymail' } });
    key = (await app.apiKeys.create(merchant._id)).key;
    readOnlyKey = (await app.apiKeys.create(merchant._id, { readOnly: true })).key;
  });
  after(async () => {
    await app.close();
  });

  /** A request whose answer is checked against the OpenAPI operation `op` ("POST /payment-links"). */
  async function call(op: string, path: string, o: Parameters<ApiApp['request']>[2] = {}): Promise<ApiReply> {
    const [method, template] = op.split(' ') as [string, string];
    const res = await app.request(method, `/api/v1${path}`, { key, ...o });
    conf.check(res, method, template);
    return res;
  }
  const create = (body: Record<string, unknown>, o: Parameters<ApiApp['request']>[2] = {}) => call('POST /payment-links', '/payment-links', { body, ...o });
  const assertProblem = (res: ApiReply, status: number, code: string) => {
    assert.equal(res.status, status, res.text);
    assert.match(res.headers.get('content-type') ?? '', /^application\/problem\+json/);
    for (const f of PROBLEM_FIELDS) assert.ok(f in res.body, `problem has ${f}: ${res.text}`);
    assert.equal(res.body.status, status);
    assert.equal(res.body.code, code, res.text);
    assert.equal(res.body.type, `${app.base}/api/v1/problems/${code}`);
  };
  async function pay(url: string) {
    const link = new URL(url);
    const state = await app.checkout.open(link.pathname.split('/').pop()!, Object.fromEntries(link.searchParams));
    assert.equal(state.kind, 'payable');
    const paid = await app.checkout.pay(state as never, { number: '4242424242424242', expiry: EXPIRY, cvc: '123', holder: 'Anna Rossi', email: 'anna@api.example' }, '127.0.0.1');
    assert.equal(paid.kind, 'paid');
  }

  describe('the OpenAPI document', () => {
    it('is served without a key at /api/v1/openapi.json and is a valid OpenAPI 3.1 document', async () => {
      const res = await app.request('GET', '/api/v1/openapi.json');
      assert.equal(res.status, 200);
      assert.match(res.headers.get('content-type') ?? '', /^application\/json/);
      assert.equal(res.body.openapi, '3.1.0');
      const result = await new Validator().validate(res.body);
      assert.equal(result.valid, true, JSON.stringify(result.errors, null, 2));
      assert.deepEqual(Object.keys(res.body.paths).sort(), ['/customers/{code}/charges', '/orders', '/orders/{reference}', '/orders/{reference}/balance', '/orders/{reference}/cancel', '/orders/{reference}/refunds', '/payment-links']);
      for (const id of ['Order', 'OrderList', 'PaymentLinkRequest', 'PaymentLinkCreated', 'Refund', 'RefundRequest', 'Problem']) assert.ok(res.body.components.schemas[id], id);
    });

    it('describes each problem code at its type URI', async () => {
      const res = await app.request('GET', '/api/v1/problems/ORDER_REFERENCE_EXISTS');
      assert.equal(res.status, 200);
      assert.deepEqual(res.body, { type: `${app.base}/api/v1/problems/ORDER_REFERENCE_EXISTS`, code: 'ORDER_REFERENCE_EXISTS', status: 409, title: 'Conflict' });
      assert.equal((await app.request('GET', '/api/v1/problems/NO_SUCH_CODE')).status, 404);
      assert.equal((await app.request('GET', '/api/v1/problems/INTERNAL')).body.status, 500);
    });
  });

  describe('API keys', () => {
    it('refuses a request without a key, with a malformed, unknown or revoked one: 401 and WWW-Authenticate: Bearer', async () => {
      const revoked = await app.apiKeys.create(merchant._id);
      assert.equal((await call('GET /orders', '/orders', { key: revoked.key })).status, 200);
      await app.apiKeys.revoke(merchant._id, revoked.id);
      const unknown = `pm_${'A'.repeat(16)}_${'b'.repeat(32)}`;
      const wrongSecret = `${key.slice(0, 20)}${'x'.repeat(32)}`;
      for (const headers of [{} as Record<string, string>, { authorization: 'Bearer nope' }, { authorization: `Bearer ${unknown}` }, { authorization: `Bearer ${wrongSecret}` }, { authorization: `Bearer ${revoked.key}` }, { authorization: `Basic ${Buffer.from(`${key}:`).toString('base64')}` }]) {
        const res = await call('GET /orders', '/orders', { key: '', headers });
        assertProblem(res, 401, 'API_KEY_INVALID');
        assert.match(res.headers.get('www-authenticate') ?? '', /^Bearer realm="paymail"/);
      }
    });

    it('stores only a hash of the key and shows it once', async () => {
      const made = await app.apiKeys.create(merchant._id, { label: 'shop server' });
      assert.match(made.key, /^pm_[0-9A-Za-z]{16}_[0-9A-Za-z]{32}$/);
      assert.equal(made.id, `ak_${made.key.slice(3, 19)}`);
      const stored = await repos.apiKeys.byId(made.id);
      assert.ok(stored);
      assert.ok(!JSON.stringify(stored).includes(made.key.slice(20)), 'the secret part is not stored');
      assert.match(stored.hash, /^[0-9a-f]{64}$/);
      const listed = (await app.apiKeys.list(merchant._id)).find((k) => k.id === made.id)!;
      assert.equal(listed.label, 'shop server');
      assert.equal(listed.hint, `${made.key.slice(0, 11)}…`);
    });

    it('lets a read-only key read but not write (403)', async () => {
      const created = await create({ reference: ref(), amount: 1500, currency: 'EUR' });
      assert.equal(created.status, 201);
      assert.equal((await call('GET /orders/{reference}', `/orders/${created.body.reference}`, { key: readOnlyKey })).status, 200);
      assert.equal((await call('GET /orders', '/orders', { key: readOnlyKey })).status, 200);
      assertProblem(await create({ reference: ref(), amount: 1500, currency: 'EUR' }, { key: readOnlyKey }), 403, 'API_KEY_READ_ONLY');
      assertProblem(await call('POST /orders/{reference}/cancel', `/orders/${created.body.reference}/cancel`, { key: readOnlyKey, body: {} }), 403, 'API_KEY_READ_ONLY');
      assertProblem(await call('POST /orders/{reference}/refunds', `/orders/${created.body.reference}/refunds`, { key: readOnlyKey, body: { amount: 100 } }), 403, 'API_KEY_READ_ONLY');
      assert.equal((await repos.orders.newestByReference(merchant._id, created.body.reference))!.status, 'pending');
    });

    it("keeps merchants apart: another merchant's key does not see the order", async () => {
      const created = await create({ reference: ref(), amount: 990, currency: 'EUR' });
      const other = await app.newMerchant('Other Shop');
      const otherKey = (await app.apiKeys.create(other.merchant._id)).key;
      assertProblem(await call('GET /orders/{reference}', `/orders/${created.body.reference}`, { key: otherKey }), 404, 'ORDER_NOT_FOUND');
      assert.deepEqual((await call('GET /orders', '/orders', { key: otherKey })).body.data, []);
    });
  });

  describe('POST /payment-links', () => {
    it('creates the order through the order service and answers 201 with its pay-link, which opens the checkout', async () => {
      const reference = ref('LINK');
      const res = await create({ reference, amount: 12_990, currency: 'EUR', description: 'Room 12', customer: { email: 'Guest@Api.Example', name: 'Guest' }, language: 'it' });
      assert.equal(res.status, 201);
      assert.deepEqual(Object.keys(res.body).sort(), ['expiresAt', 'orderId', 'reference', 'status', 'url']);
      assert.equal(res.body.reference, reference);
      assert.equal(res.body.status, 'pending');
      assert.equal(res.headers.get('location'), `${app.base}/api/v1/orders/${reference}`);
      const order = (await repos.orders.byId(res.body.orderId))!;
      assert.equal(order.amountMinor, 12_990);
      assert.equal(order.customer?.email, 'guest@api.example');
      assert.equal(order.locale, 'it');
      assert.equal(order.sourceKey, `api:${reference}`);
      assert.equal(res.body.url, app.orders.linkFor(order));
      // Default lifetime: the merchant's (7 days).
      assert.ok(Math.abs(Date.parse(res.body.expiresAt) - (Date.now() + 7 * 86_400_000)) < 60_000, res.body.expiresAt);
      const page = await fetch(res.body.url);
      assert.equal(page.status, 200);
      assert.match(await page.text(), /Room 12/);
      // delivery none (the default): nothing is mailed.
      assert.deepEqual(await repos.outbox.forOrder(order._id, merchant._id), []);
    });

    it('mails the pay-link through the outbox for delivery customer (merchant in copy) and merchant', async () => {
      const toCustomer = await create({ reference: ref(), amount: 2500, currency: 'EUR', customer: { email: 'buyer@api.example' }, delivery: 'customer' });
      assert.equal(toCustomer.status, 201);
      const [mail] = await repos.outbox.forOrder(toCustomer.body.orderId, merchant._id);
      assert.equal(mail?.template, 'paylink');
      assert.deepEqual(mail?.to, ['buyer@api.example']);
      assert.deepEqual(mail?.cc, [merchant.email]);
      const toMerchant = await create({ reference: ref(), amount: 2500, currency: 'EUR', delivery: 'merchant' });
      const [mail2] = await repos.outbox.forOrder(toMerchant.body.orderId, merchant._id);
      assert.equal(mail2?.template, 'paylink');
      assert.deepEqual(mail2?.to, [merchant.email]);
    });

    it('takes expiresAt or a lifetime, capped at MAX_LINK_LIFETIME_DAYS', async () => {
      const at = new Date(Date.now() + 3 * 86_400_000);
      const res = await create({ reference: ref(), amount: 100, currency: 'EUR', expiresAt: at.toISOString().replace('Z', '+00:00') });
      assert.equal(res.body.expiresAt, at.toISOString());
      const life = await create({ reference: ref(), amount: 100, currency: 'EUR', lifetime: '48h' });
      assert.ok(Math.abs(Date.parse(life.body.expiresAt) - (Date.now() + 48 * 3_600_000)) < 60_000);
      const capped = await create({ reference: ref(), amount: 100, currency: 'EUR', lifetime: '52w' });
      assert.ok(Math.abs(Date.parse(capped.body.expiresAt) - (Date.now() + 60 * 86_400_000)) < 60_000);
    });

    it('lists every problem of an invalid request (422) and creates nothing', async () => {
      const before = await repos.orders.count(merchant._id, {});
      const res = await create({ amount: -5, currency: 'euro', customer: { email: 'nope' }, delivery: 'fax', colour: 'red' });
      assertProblem(res, 422, 'VALIDATION_FAILED');
      const fields = (res.body.errors as Array<{ field: string; message: string }>).map((e) => e.field).sort();
      assert.deepEqual(fields, ['amount', 'colour', 'currency', 'customer.email', 'delivery', 'reference']);
      for (const e of res.body.errors) assert.ok(e.message.length > 0);
      // Checks across fields.
      const cross = await create({ reference: ref(), amount: 100, currency: 'XYZ', delivery: 'customer', expiresAt: '2020-01-01T00:00:00Z', lifetime: '2d' });
      assertProblem(cross, 422, 'VALIDATION_FAILED');
      assert.deepEqual(cross.body.errors.map((e: { field: string }) => e.field).sort(), ['currency', 'customer.email', 'expiresAt', 'lifetime']);
      const past = await create({ reference: ref(), amount: 100, currency: 'EUR', expiresAt: '2020-01-01T00:00:00Z' });
      assert.deepEqual(past.body.errors, [{ field: 'expiresAt', message: 'in the past' }]);
      assert.equal(await repos.orders.count(merchant._id, {}), before);
    });

    it('takes a payment plan (issue 13 part 1): a deposit as a share or an amount, a balance date, instalments', async () => {
      const today = localDate(new Date(), merchant.timezone);
      const future = new Date(Date.now() + 30 * 86_400_000).toISOString().slice(0, 10);
      const made: string[] = [];
      for (const plan of [{ deposit: { percent: 30 }, balanceDue: future }, { deposit: { amount: 2000 } }, { instalments: { count: 3, every: 'week' } }, { instalments: { count: 12 } }]) {
        const res = await create({ reference: ref('PLAN'), amount: 10000, currency: 'EUR', ...plan });
        assert.equal(res.status, 201, `${JSON.stringify(plan)}: ${res.text}`);
        made.push(res.body.orderId);
      }
      // Stored as the order's plan: the total unchanged, the parts adding up to it.
      const parts = async (id: string) => ((await Order.findById(id).lean())!.plan?.parts ?? []).map((p) => [p.seq, p.kind, p.amountMinor, p.dueDate ?? null]);
      assert.equal((await Order.findById(made[0]).lean())!.amountMinor, 10000);
      assert.deepEqual(await parts(made[0]!), [[1, 'deposit', 3000, null], [2, 'balance', 7000, future]]);
      assert.deepEqual(await parts(made[1]!), [[1, 'deposit', 2000, null], [2, 'balance', 8000, null]]);
      assert.deepEqual((await parts(made[2]!)).map((p) => p[2]), [3334, 3333, 3333]);
      assert.equal((await parts(made[3]!)).length, 12);
      const before = await repos.orders.count(merchant._id, {});
      const bad: Array<[Record<string, unknown>, string[]]> = [
        [{ deposit: { percent: 120 } }, ['deposit.percent']],
        [{ deposit: { percent: 0 } }, ['deposit.percent']],
        [{ deposit: { amount: 10000 } }, ['deposit.amount']],
        [{ deposit: { amount: 20, currency: 'EUR' } }, ['deposit.currency']],
        [{ deposit: '30%' }, ['deposit']],
        [{ deposit: { percent: 30 }, instalments: { count: 3 } }, ['instalments']],
        [{ balanceDue: future }, ['balanceDue']],
        [{ deposit: { percent: 30 }, balanceDue: '2020-01-01' }, ['balanceDue']],
        [{ deposit: { percent: 30 }, balanceDue: '2026-02-30' }, ['balanceDue']],
        [{ instalments: { count: 13, every: 'month' } }, ['instalments.count']],
        [{ instalments: { count: 3, every: 'day' } }, ['instalments.every']],
      ];
      for (const [plan, fields] of bad) {
        const res = await create({ reference: ref('PLAN'), amount: 10000, currency: 'EUR', ...plan });
        assertProblem(res, 422, 'VALIDATION_FAILED');
        const errors = res.body.errors as Array<{ field: string; message: string }>;
        assert.deepEqual(errors.map((e) => e.field), fields, `${JSON.stringify(plan)}: ${res.text}`);
        for (const e of errors) assert.ok(e.message.length > 0);
      }
      // The merchant's today is a valid balance date.
      assert.equal((await create({ reference: ref('PLAN'), amount: 10000, currency: 'EUR', deposit: { percent: 50 }, balanceDue: today })).status, 201);
      assert.equal(await repos.orders.count(merchant._id, {}), before + 1);
      const doc = (await app.request('GET', '/api/v1/openapi.json')).body;
      const props = doc.components.schemas.PaymentLinkRequest.properties;
      for (const f of ['deposit', 'balanceDue', 'instalments']) assert.ok(props[f]?.description, f);
      assert.equal(props.balanceDue.format, 'date');
      assert.deepEqual(props.instalments.properties.every.enum, ['month', 'week']);
    });

    it('answers 400 for a body that is not JSON and 415 for another media type', async () => {
      assertProblem(await call('POST /payment-links', '/payment-links', { rawBody: '{"reference": "X", amount: }' }), 400, 'BODY_INVALID_JSON');
      assertProblem(await call('POST /payment-links', '/payment-links', { rawBody: 'reference=X', headers: { 'content-type': 'text/plain' } }), 415, 'UNSUPPORTED_MEDIA_TYPE');
      assertProblem(await call('POST /payment-links', '/payment-links', { rawBody: JSON.stringify({ reference: 'x'.repeat(70_000) }) }), 413, 'BODY_TOO_LARGE');
    });

    it('makes one order per reference: the same reference again, or at the same moment, is 409 ORDER_REFERENCE_EXISTS', async () => {
      const reference = ref('ONCE');
      assert.equal((await create({ reference, amount: 100, currency: 'EUR' })).status, 201);
      assertProblem(await create({ reference, amount: 100, currency: 'EUR' }), 409, 'ORDER_REFERENCE_EXISTS');
      const racing = ref('RACE');
      const answers = await Promise.all(Array.from({ length: 5 }, () => create({ reference: racing, amount: 200, currency: 'EUR' })));
      assert.deepEqual(answers.map((a) => a.status).sort(), [201, 409, 409, 409, 409]);
      assert.equal(await repos.orders.count(merchant._id, { reference: racing }), 1);
    });

    it('refuses a suspended merchant (403) while reads go on', async () => {
      const m = await app.newMerchant('Suspended Shop');
      const k = (await app.apiKeys.create(m.merchant._id)).key;
      await repos.merchants.suspend(m.merchant._id, new Date(), 'test');
      assertProblem(await create({ reference: ref(), amount: 100, currency: 'EUR' }, { key: k }), 403, 'MERCHANT_SUSPENDED');
      assert.equal((await call('GET /orders', '/orders', { key: k })).status, 200);
    });
  });

  describe('orders', () => {
    it('reads an order by reference: pending with its url, then paid with the masked card, then refunded', async () => {
      const reference = ref('READ');
      const created = await create({ reference, amount: 5000, currency: 'EUR', description: 'Dinner', customer: { name: 'Anna Rossi', email: 'anna@api.example' } });
      const pending = await call('GET /orders/{reference}', `/orders/${reference}`);
      assert.equal(pending.status, 200);
      assert.equal(pending.body.id, created.body.orderId);
      assert.equal(pending.body.url, created.body.url);
      assert.deepEqual(pending.body.customer, { email: 'anna@api.example', name: 'Anna Rossi' });
      assert.equal(pending.body.payment, null);
      assert.deepEqual(pending.body.refunds, []);
      assertProblem(await call('GET /orders/{reference}', '/orders/NO-SUCH-REF'), 404, 'ORDER_NOT_FOUND');

      await pay(created.body.url);
      const paid = await call('GET /orders/{reference}', `/orders/${reference}`);
      assert.equal(paid.body.status, 'paid');
      assert.equal(paid.body.url, null);
      assert.equal(paid.body.payment.card.brand, 'Visa');
      assert.equal(paid.body.payment.card.last4, '4242');
      assert.ok(!paid.text.includes('4242424242424242'), 'never the card number');
      assert.ok(paid.body.payment.authCode);
      assert.match(paid.body.payment.receiptNumber, /^RCPT-/);

      // Refunds through the refund service: partial, then more than is left (409), then the rest.
      const first = await call('POST /orders/{reference}/refunds', `/orders/${reference}/refunds`, { body: { amount: 1200, reason: 'cold soup' } });
      assert.equal(first.status, 201);
      assert.equal(first.body.amount, 1200);
      assertProblem(await call('POST /orders/{reference}/refunds', `/orders/${reference}/refunds`, { body: { amount: 3801 } }), 409, 'REFUND_EXCEEDS_PAID');
      assertProblem(await call('POST /orders/{reference}/refunds', `/orders/${reference}/refunds`, { body: { amount: 0 } }), 422, 'VALIDATION_FAILED');
      assert.equal((await call('POST /orders/{reference}/refunds', `/orders/${reference}/refunds`, { body: { amount: 3800 } })).status, 201);
      const refunded = await call('GET /orders/{reference}', `/orders/${reference}`);
      assert.deepEqual(refunded.body.refunds.map((r: { amount: number }) => r.amount), [1200, 3800]);
      assert.equal(refunded.body.refundedAmount, 5000);
      // The same webhooks as a refund from the back office.
      const hooks = (await repos.webhooks.log(merchant._id, 50)).filter((d) => d.orderId === created.body.orderId).map((d) => d.type).sort();
      assert.deepEqual(hooks, ['payment.succeeded', 'refund.succeeded', 'refund.succeeded']);
    });

    it('refuses to refund an unpaid order (409 REFUND_NOT_PAID)', async () => {
      const created = await create({ reference: ref(), amount: 700, currency: 'EUR' });
      assertProblem(await call('POST /orders/{reference}/refunds', `/orders/${created.body.reference}/refunds`, { body: { amount: 100 } }), 409, 'REFUND_NOT_PAID');
    });

    it('cancels a pending order once (order.cancelled webhook); a second cancel or a paid order is 409', async () => {
      const created = await create({ reference: ref('CANCEL'), amount: 800, currency: 'EUR' });
      const res = await call('POST /orders/{reference}/cancel', `/orders/${created.body.reference}/cancel`);
      assert.equal(res.status, 200);
      assert.equal(res.body.status, 'cancelled');
      assert.ok(res.body.cancelledAt);
      assertProblem(await call('POST /orders/{reference}/cancel', `/orders/${created.body.reference}/cancel`), 409, 'ORDER_NOT_CANCELLABLE');
      const hooks = (await repos.webhooks.log(merchant._id, 50)).filter((d) => d.orderId === created.body.orderId).map((d) => d.type);
      assert.deepEqual(hooks, ['order.cancelled']);
      const state = await app.checkout.open(new URL(created.body.url).pathname.split('/').pop()!, Object.fromEntries(new URL(created.body.url).searchParams));
      assert.notEqual(state.kind, 'payable');
      assertProblem(await call('POST /orders/{reference}/cancel', '/orders/NO-SUCH-REF/cancel'), 404, 'ORDER_NOT_FOUND');
    });

    it('lists orders newest first in pages with an opaque cursor, filtered by status and since', async () => {
      const m = await app.newMerchant('List Shop');
      const k = (await app.apiKeys.create(m.merchant._id)).key;
      const made: string[] = [];
      for (let i = 0; i < 7; i++) made.push((await create({ reference: `L-${i}`, amount: 100 + i, currency: 'EUR' }, { key: k })).body.reference);
      const middle = new Date();
      await new Promise((r) => setTimeout(r, 5));
      for (let i = 7; i < 9; i++) made.push((await create({ reference: `L-${i}`, amount: 100 + i, currency: 'EUR' }, { key: k })).body.reference);
      await call('POST /orders/{reference}/cancel', '/orders/L-3/cancel', { key: k });
      await call('POST /orders/{reference}/cancel', '/orders/L-8/cancel', { key: k });

      const seen: string[] = [];
      let cursor: string | null = null;
      let pages = 0;
      do {
        const res: ApiReply = await call('GET /orders', `/orders?limit=4${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ''}`, { key: k });
        assert.equal(res.status, 200);
        assert.ok(res.body.data.length <= 4);
        seen.push(...res.body.data.map((o: { reference: string }) => o.reference));
        cursor = res.body.nextCursor;
        pages += 1;
      } while (cursor);
      assert.equal(pages, 3);
      assert.deepEqual(seen, [...made].reverse(), 'every order once, newest first');

      const cancelled = await call('GET /orders', '/orders?status=cancelled', { key: k });
      assert.deepEqual(cancelled.body.data.map((o: { reference: string }) => o.reference), ['L-8', 'L-3']);
      assert.equal(cancelled.body.nextCursor, null);
      const since = await call('GET /orders', `/orders?since=${encodeURIComponent(middle.toISOString())}&limit=1`, { key: k });
      assert.deepEqual(since.body.data.map((o: { reference: string }) => o.reference), ['L-8']);
      const rest = await call('GET /orders', `/orders?since=${encodeURIComponent(middle.toISOString())}&limit=1&cursor=${since.body.nextCursor}`, { key: k });
      assert.deepEqual(rest.body.data.map((o: { reference: string }) => o.reference), ['L-7']);
      assert.equal(rest.body.nextCursor, null);

      assertProblem(await call('GET /orders', '/orders?cursor=not-a-cursor', { key: k }), 400, 'CURSOR_INVALID');
      for (const q of ['limit=0', 'limit=101', 'status=open', 'since=yesterday', 'colour=red']) {
        assertProblem(await call('GET /orders', `/orders?${q}`, { key: k }), 422, 'VALIDATION_FAILED');
      }
    });
  });

  describe('problems', () => {
    it('answers an unknown route with a 404 problem and a wrong method with 405 and Allow', async () => {
      const res = await app.request('GET', '/api/v1/nothing-here', { key });
      assertProblem(res, 404, 'API_ROUTE_NOT_FOUND');
      const wrong = await app.request('GET', '/api/v1/payment-links', { key });
      assertProblem(wrong, 405, 'API_METHOD_NOT_ALLOWED');
      assert.equal(wrong.headers.get('allow'), 'POST');
      assert.equal(wrong.body.instance, '/api/v1/payment-links');
      assertProblem(await app.request('GET', '/api/v1', { key }), 404, 'API_ROUTE_NOT_FOUND');
      const options = await app.request('OPTIONS', '/api/v1/orders/R-1/cancel', { key });
      assert.equal(options.status, 204);
      assert.equal(options.headers.get('allow'), 'POST, OPTIONS');
    });

    it('answers a server error with a bare 500 problem, the cause only in the log', async () => {
      // An order document the representation cannot read (an expiry that is no date) makes the
      // handler throw a RangeError deep inside: the answer must not tell.
      await Order.collection.insertOne({ _id: 'ord_broken', publicId: 'broken', merchantId: merchant._id, reference: 'BROKEN-1', openReference: 'BROKEN-1', sourceKey: 'test:broken', amountMinor: 100, currency: 'EUR', customer: {}, locale: 'en', delivery: 'merchant', status: 'pending', expiresAt: 'not a date', linkExpiresAt: 0, attempts: [], createdAt: new Date() } as never);
      const res = await call('GET /orders/{reference}', '/orders/BROKEN-1');
      assertProblem(res, 500, 'INTERNAL');
      assert.equal(res.body.title, 'Internal Server Error');
      assert.equal(res.body.detail, 'The request could not be completed; try again later.');
      assert.ok(!/RangeError|Invalid time|at \/|\.ts:/.test(res.text), res.text);
      assert.equal(res.body.requestId, res.headers.get('x-request-id'));
      await Order.collection.deleteOne({ _id: 'ord_broken' } as never);
    });

    it('never shows the internals of a server error', () => {
      const problem = toProblem(new Error('connect ECONNREFUSED mongodb://admin:secret@db:27017'), { path: '/api/v1/orders', state: { requestId: 'r1' } } as never, 'https://pay.example');
      assert.equal(problem.status, 500);
      assert.equal(problem.code, 'INTERNAL');
      assert.ok(!JSON.stringify(problem).includes('secret') && !JSON.stringify(problem).includes('ECONNREFUSED'));
      assert.equal(problem.requestId, 'r1');
    });

    it('checked every operation against the document', () => {
      for (const op of ['POST /payment-links 201', 'GET /orders 200', 'GET /orders/{reference} 200', 'POST /orders/{reference}/cancel 200', 'POST /orders/{reference}/refunds 201']) {
        assert.ok(conf.checked.has(op), `${op} checked (${[...conf.checked].join(', ')})`);
      }
    });
  });
});
