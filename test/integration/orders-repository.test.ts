// The order transitions of src/db/orders.repository.ts are conditional updates with the expected
// prior state in the filter: a state that changed after the caller (or the repository itself) read
// it is never overwritten. `concurrently` puts a second writer between any read and the write under
// test, at the driver's door, so that a read-then-unconditional-write implementation fails here.
import assert from 'node:assert/strict';
import { MongoNetworkError } from 'mongodb';
import mongoose from 'mongoose';
import { Order } from '../../src/db/models/order.model.ts';
import { type NewOrder } from '../../src/db/orders.repository.ts';
import { repos, useTestDatabase } from '../helpers/db.ts';

const HOUR = 3_600_000;
const WRITES = ['findOneAndUpdate', 'updateOne', 'updateMany', 'replaceOne', 'bulkWrite'] as const;

/** Runs `writer` once, just before the next write on the orders collection is sent. */
function concurrently(writer: () => Promise<unknown>): void {
  const coll = Order.collection as unknown as Record<string, (...args: unknown[]) => Promise<unknown>>;
  const restore = () => WRITES.forEach((m) => delete coll[m]);
  for (const m of WRITES) {
    coll[m] = async (...args: unknown[]) => {
      restore();
      await writer();
      return coll[m]!(...args);
    };
  }
}

let n = 0;
function newOrder(over: Partial<NewOrder> = {}): NewOrder {
  n++;
  const ref = `R-${n}`;
  return {
    _id: `ord_test${n}`,
    publicId: `test${n}`,
    merchantId: 'm_1',
    reference: ref,
    openReference: ref,
    sourceKey: `test:${n}`,
    amountMinor: 1250,
    currency: 'EUR',
    customer: { email: 'buyer@example.com' },
    locale: 'en',
    localeGiven: true,
    delivery: 'merchant',
    status: 'pending',
    expiresAt: new Date(Date.now() + 48 * HOUR),
    linkExpiresAt: Math.floor((Date.now() + 48 * HOUR) / 1000),
    source: {},
    ...over,
  };
}

const paid = (key = 'pay-1') => ({
  payment: { receiptNumber: `RC-${key}`, authCode: `A-${key}`, paidAt: new Date(), card: { brand: 'visa', last4: '4242' } },
  attempt: { at: new Date(), outcome: 'approved', authCode: `A-${key}` },
});

const raw = (id: string) => Order.findById(id).lean();

describe('orders repository: conditional transitions', () => {
  useTestDatabase();
  const orders = repos.orders;

  it('pending → paid: the payment, the attempt, the reference freed', async () => {
    const o = await orders.insert(newOrder());
    const after = await orders.markPaid(o._id, { ...paid(), customerEmail: 'typed@example.com' });
    assert.equal(after?.status, 'paid');
    assert.equal(after?.payment?.receiptNumber, 'RC-pay-1');
    assert.equal(after?.customer?.email, 'typed@example.com');
    assert.equal(after?.openReference, o._id);
    assert.equal(after?.attempts.length, 1);
  });

  // Each close, tried on an order some other transition closed before: null, and nothing changes.
  const closes = [
    { name: 'markPaid', run: (id: string) => orders.markPaid(id, paid('late')) },
    { name: 'markCancelled', run: (id: string) => orders.markCancelled(id, new Date()) },
    { name: 'markExpired', run: (id: string) => orders.markExpired(id, new Date()) },
  ];
  const closers = [
    { state: 'cancelled', run: (id: string) => orders.markCancelled(id, new Date(Date.now() - 1000)) },
    { state: 'expired', run: (id: string) => orders.markExpired(id, new Date(Date.now() - 1000)) },
    { state: 'paid', run: (id: string) => orders.markPaid(id, paid('first')) },
  ];
  for (const close of closes) {
    for (const closer of closers) {
      if (close.name.toLowerCase().includes(closer.state.slice(0, 4))) continue;
      it(`${close.name} on an order already ${closer.state}: null, the order unchanged`, async () => {
        const o = await orders.insert(newOrder());
        await closer.run(o._id);
        const before = await raw(o._id);
        assert.equal(await close.run(o._id), null);
        assert.deepEqual(await raw(o._id), before);
      });

      it(`${close.name} while a concurrent writer closes the order as ${closer.state}: null, that close kept`, async () => {
        const o = await orders.insert(newOrder());
        concurrently(() => closer.run(o._id));
        assert.equal(await close.run(o._id), null);
        const after = await raw(o._id);
        assert.equal(after?.status, closer.state);
        if (closer.state !== 'paid') assert.equal(after?.payment?.receiptNumber, undefined);
        else assert.equal(after?.payment?.receiptNumber, 'RC-first');
      });
    }
  }

  it('extendExpiry with a stale expected expiry changes nothing', async () => {
    const o = await orders.insert(newOrder());
    const other = new Date(o.expiresAt.getTime() + 24 * HOUR);
    assert.ok(await orders.extendExpiry(o._id, { expiresAt: o.expiresAt }, other));
    const before = await raw(o._id);
    // A second extension decided from the first read: refused, the first extension stays.
    assert.equal(await orders.extendExpiry(o._id, { expiresAt: o.expiresAt }, new Date(o.expiresAt.getTime() + 72 * HOUR)), null);
    assert.deepEqual(await raw(o._id), before);
  });

  it('extendExpiry while a concurrent extension lands: null, that extension kept', async () => {
    const o = await orders.insert(newOrder());
    const theirs = new Date(o.expiresAt.getTime() + 24 * HOUR);
    concurrently(() => Order.collection.updateOne({ _id: o._id as never }, { $set: { expiresAt: theirs, linkExpiresAt: Math.floor(theirs.getTime() / 1000) } }));
    assert.equal(await orders.extendExpiry(o._id, { expiresAt: o.expiresAt }, new Date(o.expiresAt.getTime() + 72 * HOUR)), null);
    assert.equal((await raw(o._id))?.expiresAt.getTime(), theirs.getTime());
  });

  it('extendExpiry of another merchant, or of a closed order: null', async () => {
    const o = await orders.insert(newOrder());
    const later = new Date(o.expiresAt.getTime() + 24 * HOUR);
    assert.equal(await orders.extendExpiry(o._id, { expiresAt: o.expiresAt, merchantId: 'm_other' }, later), null);
    await orders.markCancelled(o._id, new Date());
    assert.equal(await orders.extendExpiry(o._id, { expiresAt: o.expiresAt }, later), null);
    assert.equal((await raw(o._id))?.expiresAt.getTime(), o.expiresAt.getTime());
  });

  it('markViewed: once, only while pending, never over a concurrent close', async () => {
    const o = await orders.insert(newOrder());
    const first = new Date(Date.now() - 5000);
    assert.equal((await orders.markViewed(o._id, first))?.viewedAt?.getTime(), first.getTime());
    assert.equal(await orders.markViewed(o._id, new Date()), null);
    assert.equal((await raw(o._id))?.viewedAt?.getTime(), first.getTime());

    const c = await orders.insert(newOrder());
    concurrently(() => orders.markCancelled(c._id, new Date()));
    assert.equal(await orders.markViewed(c._id, new Date()), null);
    const after = await raw(c._id);
    assert.equal(after?.status, 'cancelled');
    assert.equal(after?.viewedAt, undefined);
  });

  it('addAttempt with a key appends it once, also when the same attempt lands concurrently', async () => {
    const o = await orders.insert(newOrder());
    const attempt = { at: new Date(), key: 'att-1', outcome: 'declined', declineCode: 'CARD_DECLINED' };
    assert.equal(await orders.addAttempt(o._id, attempt), true);
    assert.equal(await orders.addAttempt(o._id, attempt), false);
    concurrently(() => Order.collection.updateOne({ _id: o._id as never }, { $push: { attempts: { ...attempt, key: 'att-2' } } as never }));
    assert.equal(await orders.addAttempt(o._id, { ...attempt, key: 'att-2' }), false);
    assert.deepEqual((await raw(o._id))?.attempts.map((a) => a.key), ['att-1', 'att-2']);
    // Attempts without a key are simply appended.
    assert.equal(await orders.addAttempt(o._id, { at: new Date(), outcome: 'error' }), true);
    assert.equal((await raw(o._id))?.attempts.length, 3);
  });
});

describe('orders repository: the checkout read by primary key', () => {
  useTestDatabase({ monitorCommands: true });
  const orders = repos.orders;

  /** The `find` commands sent on `orders` while `run` runs (the driver's command monitoring). */
  async function findsDuring<T>(run: () => Promise<T>): Promise<{ result: T; sent: Array<Record<string, unknown>> }> {
    const client = mongoose.connection.getClient();
    const seen: Array<Record<string, unknown>> = [];
    const onStart = (e: { commandName: string; command: Record<string, unknown> }) => {
      if (e.command[e.commandName] === 'orders' || e.commandName === 'getMore' || e.commandName === 'killCursors') seen.push({ name: e.commandName, ...e.command });
    };
    client.on('commandStarted', onStart);
    try {
      return { result: await run(), sent: seen };
    } finally {
      client.off('commandStarted', onStart);
    }
  }

  it('returns what the driver findOne returns, with one find (limit 1, single batch) and no cursor left', async () => {
    const o = await orders.insert(newOrder({ description: 'Room 12 — two nights', customer: { email: 'buyer@example.com', name: 'Zoë' } }));
    await orders.markViewed(o._id, new Date());
    const reference = await Order.collection.findOne({ _id: o._id as never });
    const { result: found, sent } = await findsDuring(() => orders.forCheckout(o.publicId));
    assert.ok(found?.expiresAt instanceof Date);
    assert.deepEqual(found, reference);
    assert.equal(sent.length, 1, JSON.stringify(sent));
    assert.equal(sent[0]!['name'], 'find');
    assert.deepEqual(sent[0]!['filter'], { _id: o._id });
    assert.equal(sent[0]!['limit'], 1);
    assert.equal(sent[0]!['singleBatch'], true);
  });

  it('a read that fails (a dropped connection, an election) is asked again the driver\'s way, which retries it', async () => {
    const o = await orders.insert(newOrder());
    const db = mongoose.connection.db as unknown as Record<string, unknown>;
    let failed = 0;
    db['command'] = async () => {
      failed++;
      throw new MongoNetworkError('connection closed');
    };
    try {
      const { result: found, sent } = await findsDuring(() => orders.forCheckout(o.publicId));
      assert.equal(failed, 1);
      assert.equal(found?._id, o._id);
      assert.deepEqual(sent.map((c) => c['name']), ['find']);
    } finally {
      delete db['command'];
    }
  });

  it('null for an unknown pay-link; an older order (id not derived from its public id) by its public id', async () => {
    assert.equal(await orders.forCheckout('nosuchlink'), null);
    await orders.insert(newOrder({ _id: 'legacy_1', publicId: 'legacy1pub' }));
    assert.equal((await orders.forCheckout('legacy1pub'))?._id, 'legacy_1');
  });
});
