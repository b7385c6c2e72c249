// The running totals behind /metrics (src/db/counters.ts): the orders repository keeps them on
// every write that changes them — including a batch insert refused in part and a transition
// that loses its race — and they are counted from the orders once when a database has none.
import assert from 'node:assert/strict';
import { Counters, metricsSnapshot } from '../../src/db/counters.ts';
import { type NewOrder } from '../../src/db/orders.repository.ts';
import { Order } from '../../src/db/models/order.model.ts';
import { repos, useTestDatabase } from '../helpers/db.ts';

describe('metrics running totals', function () {
  this.timeout(30_000);
  useTestDatabase();

  const order = (n: number, sourceKey = `src-${n}`): NewOrder => ({
    _id: `ord_cnt${n}`, publicId: `cnt${n}`, merchantId: 'm_cnt', reference: `C-${n}`, openReference: `C-${n}`, sourceKey,
    amountMinor: 100, currency: 'EUR', customer: {}, locale: 'en', localeGiven: false, delivery: 'customer', status: 'pending',
    expiresAt: new Date(Date.now() + 86_400_000), linkExpiresAt: 0, source: {},
  });
  const totals = async () => {
    const s = await metricsSnapshot(5_000);
    return { orders: s.orders, payments: s.payments };
  };

  it('follow inserts, partial batch inserts, transitions and attempts, and are rebuilt from the orders', async () => {
    // Empty database: counted once (all zero), then kept.
    assert.deepEqual((await totals()).orders, { pending: 0, partially_paid: 0, paid: 0, cancelled: 0, expired: 0 });
    await repos.orders.insert(order(1));
    // A batch where one order repeats a source key: the others are stored and counted.
    await assert.rejects(repos.orders.insertMany([order(2), order(3, 'src-1'), order(4)]));
    assert.equal(await Order.countDocuments({}), 3);
    assert.equal((await totals()).orders.pending, 3);

    assert.ok(await repos.orders.addAttempt('ord_cnt1', { key: 'a1', at: new Date(), outcome: 'declined' }));
    assert.equal(await repos.orders.addAttempt('ord_cnt1', { key: 'a1', at: new Date(), outcome: 'declined' }), false); // stored once, counted once
    assert.ok(await repos.orders.markExpired('ord_cnt2', new Date()));
    assert.equal(await repos.orders.markCancelled('ord_cnt2', new Date()), null); // lost: not counted
    assert.ok(await repos.orders.markCancelled('ord_cnt4', new Date()));
    const t = await totals();
    assert.deepEqual(t.orders, { pending: 1, partially_paid: 0, paid: 0, cancelled: 1, expired: 1 });
    assert.deepEqual(t.payments, { declined: 1 });

    // Without the marker (a database from before the totals, or reset by an operator): counted again.
    await Counters.deleteMany({});
    assert.deepEqual(await totals(), t);
  });
});
