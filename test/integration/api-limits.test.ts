// The server API's Idempotency-Key and per-key rate limit, over real HTTP against a real database:
// the same request again answers the stored result (status, body, Location) without a second
// order; another body under the key is 409; concurrent duplicates make one order and the same
// answer; a validation failure or the 24 hours passing frees the key; a request that died holding
// a key (a crash) is taken over. The rate limit answers 429 with Retry-After per key, shared by
// two instances on one database, and frees up when the minute has passed.
import assert from 'node:assert/strict';
import { Refund } from '../../src/db/models/refund.model.ts';
import { repos, useTestDatabase } from '../helpers/db.ts';
import { loadConformance, startApiApp, type ApiApp, type ApiReply } from './api-client.ts';

describe('server API: Idempotency-Key and rate limit', function () {
  this.timeout(30_000);
  useTestDatabase();
  let offset = 0;
  const now = () => new Date(Date.now() + offset);
  let app: ApiApp;
  let conf: Awaited<ReturnType<typeof loadConformance>>;
  let merchantId: string;
  let key: string;

  before(async () => {
    app = await startApiApp({ now, idempotencyWaitMs: 500 });
    conf = await loadConformance(app);
    const { merchant } = await app.newMerchant('Idem Shop');
    merchantId = merchant._id;
    key = (await app.apiKeys.create(merchantId)).key;
  });
  after(async () => {
    await app.close();
  });
  afterEach(() => {
    offset = 0;
  });

  async function create(body: Record<string, unknown>, idem?: string, k = key): Promise<ApiReply> {
    const res = await app.request('POST', '/api/v1/payment-links', { key: k, body, headers: idem ? { 'idempotency-key': idem } : {} });
    conf.check(res, 'POST', '/payment-links');
    return res;
  }
  const orderCount = (reference: string) => repos.orders.count(merchantId, { reference });
  /** Leaves the Idempotency-Key record `id` as a request that died seven minutes ago would: running, no answer. */
  async function dieAfterRunning(id: string) {
    const record = (await repos.apiKeys.idempotencyRecord(id))!;
    await repos.apiKeys.abandon(id, new Date(record.at));
    assert.equal(await repos.apiKeys.begin(id, merchantId, record.requestHash, new Date(Date.now() - 7 * 60_000)), true);
  }
  async function paidOrder(reference: string, amount: number) {
    const made = await create({ reference, amount, currency: 'EUR' });
    const link = new URL(made.body.url);
    const state = await app.checkout.open(link.pathname.split('/').pop()!, Object.fromEntries(link.searchParams));
    const paid = await app.checkout.pay(state as never, { number: '4242424242424242', expiry: `09/${String((new Date().getUTCFullYear() + 2) % 100).padStart(2, '0')}`, cvc: '123', holder: 'Anna Rossi', email: 'anna@api.example' }, '127.0.0.1');
    assert.equal(paid.kind, 'paid');
    return made.body.orderId as string;
  }
  const refundRequest = (reference: string, amount: number, idem: string) =>
    app.request('POST', `/api/v1/orders/${reference}/refunds`, { key, body: { amount }, headers: { 'idempotency-key': idem } });

  describe('Idempotency-Key', () => {
    it('answers the same request again with the stored result; another body under the key is 409', async () => {
      const body = { reference: 'IDEM-1', amount: 4200, currency: 'EUR', description: 'Lunch' };
      const first = await create(body, 'key-1');
      assert.equal(first.status, 201);
      assert.equal(first.headers.get('idempotent-replayed'), null);
      // Same meaning, keys in another order: the same request.
      const again = await create({ currency: 'EUR', description: 'Lunch', amount: 4200, reference: 'IDEM-1' }, 'key-1');
      assert.equal(again.status, 201);
      assert.deepEqual(again.body, first.body);
      assert.equal(again.headers.get('idempotent-replayed'), 'true');
      assert.equal(again.headers.get('location'), first.headers.get('location'));
      assert.equal(await orderCount('IDEM-1'), 1);
      const other = await create({ ...body, amount: 4300 }, 'key-1');
      assert.equal(other.status, 409);
      assert.equal(other.body.code, 'IDEMPOTENCY_KEY_REUSED');
      // The key belongs to one request, whatever the endpoint.
      const elsewhere = await app.request('POST', '/api/v1/orders/IDEM-1/cancel', { key, body: {}, headers: { 'idempotency-key': 'key-1' } });
      assert.equal(elsewhere.status, 409);
      assert.equal(elsewhere.body.code, 'IDEMPOTENCY_KEY_REUSED');
      // Without the key, the same reference is a duplicate.
      assert.equal((await create(body)).body.code, 'ORDER_REFERENCE_EXISTS');
    });

    it('makes one order for concurrent duplicates, and all of them get its answer', async () => {
      const body = { reference: 'IDEM-RACE', amount: 999, currency: 'EUR' };
      const answers = await Promise.all(Array.from({ length: 6 }, () => create(body, 'key-race')));
      assert.deepEqual(answers.map((a) => a.status), [201, 201, 201, 201, 201, 201]);
      assert.equal(new Set(answers.map((a) => a.body.orderId)).size, 1);
      assert.equal(answers.filter((a) => a.headers.get('idempotent-replayed') === 'true').length, 5);
      assert.equal(await orderCount('IDEM-RACE'), 1);
    });

    it('keeps client errors that happened while running (a second cancel replays the first 200, a refused one its 409)', async () => {
      const made = await create({ reference: 'IDEM-C', amount: 500, currency: 'EUR' });
      const cancel = (idem: string) => app.request('POST', '/api/v1/orders/IDEM-C/cancel', { key, headers: { 'idempotency-key': idem } });
      const first = await cancel('cancel-1');
      assert.equal(first.status, 200);
      const again = await cancel('cancel-1');
      assert.equal(again.status, 200);
      assert.deepEqual(again.body, first.body);
      const refused = await cancel('cancel-2');
      assert.equal(refused.status, 409);
      assert.equal(refused.body.code, 'ORDER_NOT_CANCELLABLE');
      const refusedAgain = await cancel('cancel-2');
      assert.equal(refusedAgain.status, 409);
      assert.match(refusedAgain.headers.get('content-type') ?? '', /^application\/problem\+json/);
      assert.equal(refusedAgain.headers.get('idempotent-replayed'), 'true');
      conf.check(refusedAgain, 'POST', '/orders/{reference}/cancel');
      assert.ok(made.body.orderId);
    });

    it('keeps nothing for a request that failed validation: the key is free for the corrected one', async () => {
      const bad = await create({ reference: 'IDEM-V', amount: 'ten', currency: 'EUR' }, 'key-v');
      assert.equal(bad.status, 422);
      const good = await create({ reference: 'IDEM-V', amount: 1000, currency: 'EUR' }, 'key-v');
      assert.equal(good.status, 201);
    });

    it('answers for 24 hours, then the key is free again', async () => {
      assert.equal((await create({ reference: 'IDEM-D1', amount: 100, currency: 'EUR' }, 'key-day')).status, 201);
      offset = 23 * 3_600_000;
      assert.equal((await create({ reference: 'IDEM-D2', amount: 100, currency: 'EUR' }, 'key-day')).body.code, 'IDEMPOTENCY_KEY_REUSED');
      offset = 24 * 3_600_000 + 60_000;
      const later = await create({ reference: 'IDEM-D2', amount: 100, currency: 'EUR' }, 'key-day');
      assert.equal(later.status, 201);
      assert.equal(later.body.reference, 'IDEM-D2');
    });

    it('takes over a key whose request died without an answer, and answers with the order it had made', async () => {
      const body = { reference: 'IDEM-CRASH', amount: 700, currency: 'EUR' };
      const id = `${merchantId} key-crash`;
      const first = await create(body, 'key-crash');
      assert.equal(first.status, 201);
      // As if that request had died after creating the order, before storing its answer: its
      // record is left running, from seven minutes ago (past any request's time limit).
      await dieAfterRunning(id);
      const retried = await create(body, 'key-crash');
      assert.equal(retried.status, 201, retried.text);
      assert.equal(retried.body.orderId, first.body.orderId);
      assert.equal(await orderCount('IDEM-CRASH'), 1);
      assert.equal((await repos.apiKeys.idempotencyRecord(id))!.state, 'done');
    });

    it('answers a cancel retried after a crash with the order it cancelled', async () => {
      await create({ reference: 'IDEM-CX', amount: 400, currency: 'EUR' });
      const cancel = () => app.request('POST', '/api/v1/orders/IDEM-CX/cancel', { key, headers: { 'idempotency-key': 'cancel-crash' } });
      const first = await cancel();
      assert.equal(first.status, 200);
      await dieAfterRunning(`${merchantId} cancel-crash`);
      const retried = await cancel();
      assert.equal(retried.status, 200, retried.text);
      assert.equal(retried.body.status, 'cancelled');
      assert.equal(retried.body.id, first.body.id);
    });

    it('never refunds twice when a refund request died after refunding, or while its refund is being finished', async () => {
      const orderId = await paidOrder('IDEM-REFUND', 3000);
      const first = await refundRequest('IDEM-REFUND', 1000, 'refund-1');
      assert.equal(first.status, 201);
      await dieAfterRunning(`${merchantId} refund-1`);
      const retried = await refundRequest('IDEM-REFUND', 1000, 'refund-1');
      assert.equal(retried.status, 201, retried.text);
      assert.equal(retried.body.id, first.body.id);
      assert.deepEqual((await app.refunds.forOrder({ _id: merchantId }, orderId)).refunds.map((r) => r.amountMinor), [1000]);

      // A refund of the key's request that a crash cut short after the acquirer's answer (its slot
      // reserved, the refund document not stored yet; the repair stores it): the retry is told to
      // come back, refunds nothing, and nothing is kept for the key.
      const second = await refundRequest('IDEM-REFUND', 500, 'refund-2');
      assert.equal(second.status, 201);
      await Refund.deleteOne({ _id: second.body.id });
      await dieAfterRunning(`${merchantId} refund-2`);
      const busy = await refundRequest('IDEM-REFUND', 500, 'refund-2');
      assert.equal(busy.status, 409, busy.text);
      assert.equal(busy.body.code, 'IDEMPOTENCY_IN_PROGRESS');
      assert.equal(busy.headers.get('retry-after'), '60');
      assert.equal(await repos.apiKeys.idempotencyRecord(`${merchantId} refund-2`), null);
      assert.deepEqual((await app.refunds.forOrder({ _id: merchantId }, orderId)).refunds.map((r) => r.amountMinor), [1000]);
      assert.equal((await app.refunds.reservations(orderId)).reservedMinor, 1500);
    });

    it('tells a duplicate to come back (409 IDEMPOTENCY_IN_PROGRESS, Retry-After) while the first request is still running', async () => {
      const body = { reference: 'IDEM-BUSY', amount: 700, currency: 'EUR' };
      await create(body, 'key-hash');
      const { requestHash } = (await repos.apiKeys.idempotencyRecord(`${merchantId} key-hash`))!;
      assert.equal(await repos.apiKeys.begin(`${merchantId} key-busy`, merchantId, requestHash, new Date()), true);
      const busy = await create({ ...body, reference: 'IDEM-BUSY' }, 'key-busy');
      assert.equal(busy.status, 409);
      assert.equal(busy.body.code, 'IDEMPOTENCY_IN_PROGRESS');
      assert.equal(busy.headers.get('retry-after'), '1');
    });

    it('refuses a malformed key (400)', async () => {
      const res = await create({ reference: 'IDEM-BAD', amount: 100, currency: 'EUR' }, 'has space');
      assert.equal(res.status, 400);
      assert.equal(res.body.code, 'IDEMPOTENCY_KEY_INVALID');
      assert.equal(await orderCount('IDEM-BAD'), 0);
    });
  });

  describe('rate limit', () => {
    it('answers 429 with Retry-After past API_RATE_LIMIT a minute per key, counted across instances', async () => {
      const a = await startApiApp({ rateLimit: 3, now });
      const b = await startApiApp({ rateLimit: 3, now });
      try {
        const limited = (await a.apiKeys.create(merchantId)).key;
        const other = (await a.apiKeys.create(merchantId)).key;
        const statuses: number[] = [];
        for (const inst of [a, b, a]) statuses.push((await inst.request('GET', '/api/v1/orders?limit=1', { key: limited })).status);
        assert.deepEqual(statuses, [200, 200, 200]);
        const refused = await b.request('GET', '/api/v1/orders?limit=1', { key: limited });
        assert.equal(refused.status, 429);
        assert.equal(refused.body.code, 'API_RATE_LIMITED');
        assert.match(refused.headers.get('content-type') ?? '', /^application\/problem\+json/);
        const retry = Number(refused.headers.get('retry-after'));
        assert.ok(retry >= 1 && retry <= 60, `Retry-After ${retry}`);
        conf.check(refused, 'GET', '/orders');
        assert.equal((await a.request('GET', '/api/v1/orders?limit=1', { key: limited })).status, 429);
        // Another key of the same merchant has its own allowance.
        assert.equal((await a.request('GET', '/api/v1/orders?limit=1', { key: other })).status, 200);
        // A minute later the window has moved on.
        offset = 61_000;
        assert.equal((await b.request('GET', '/api/v1/orders?limit=1', { key: limited })).status, 200);
      } finally {
        await a.close();
        await b.close();
      }
    });
  });
});
