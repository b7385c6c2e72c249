// The third patch of our FerretDB build (src/db/ferretdb-merchant-pushdown.ts): a top-level
// `merchantId` equality or `$in` is answered from an index that starts with `merchantId` (the query
// plan SQLite reports through FerretDB's explain), and the rest of the filter is still applied, so
// the documents returned are exactly those a scan returns. Values the patch does not push down
// (not plain ASCII, not strings) are scanned as before.
import assert from 'node:assert/strict';
import mongoose from 'mongoose';
import { Order } from '../../src/db/models/order.model.ts';
import { useTestDatabase } from '../helpers/db.ts';

describe('FerretDB filters on merchantId', function () {
  this.timeout(30_000);
  useTestDatabase();

  const day = (d: number) => new Date(Date.UTC(2026, 2, d, 12));
  const docs = [
    { _id: 'ord_mp_1', merchantId: 'mer_a', status: 'paid', createdAt: day(1) },
    { _id: 'ord_mp_2', merchantId: 'mer_a', status: 'pending', createdAt: day(2) },
    { _id: 'ord_mp_3', merchantId: 'mer_b', status: 'paid', createdAt: day(2) },
    { _id: 'ord_mp_4', merchantId: 'mer_c', status: 'paid', createdAt: day(2) },
    { _id: 'ord_mp_5', merchantId: 'mér_d', status: 'paid', createdAt: day(2) },
    { _id: 'ord_mp_6', status: 'paid', createdAt: day(2) },
  ];

  let ferret = false;
  before(async () => {
    const build = (await mongoose.connection.db!.admin().command({ buildInfo: 1 })) as { ferretdbVersion?: string };
    ferret = Boolean(build.ferretdbVersion);
    await Order.createIndexes();
    await Order.collection.insertMany(docs as never[]);
  });

  const planOf = async (cmd: Record<string, unknown>) => {
    const plan = (await mongoose.connection.db!.command({ explain: cmd })) as { queryPlanner?: { Plan?: string[] } };
    return (plan.queryPlanner?.Plan ?? []).join('\n');
  };

  const pushed = [
    { merchantId: 'mer_a' },
    { merchantId: { $eq: 'mer_a' }, status: 'paid' },
    { merchantId: { $in: ['mer_a', 'mer_b'] }, $or: [{ createdAt: { $gte: day(2) } }, { status: 'pending' }] },
    { status: 'paid', merchantId: { $in: ['mer_b', 'mer_zz'] } },
  ];
  const scanned = [
    { merchantId: 'mér_d' }, // not plain ASCII: the stored JSON text may be escaped differently
    { merchantId: { $in: ['mer_a', 7] } },
    { merchantId: { $ne: 'mer_a' } },
  ];

  it('is answered from a merchantId index (SEARCH, no SCAN) in find, count and a leading $match', async function () {
    if (!ferret) this.skip(); // MongoDB: its own planner, nothing of ours to check
    for (const filter of pushed) {
      for (const cmd of [{ find: 'orders', filter }, { count: 'orders', filter }, { aggregate: 'orders', pipeline: [{ $match: filter }], cursor: {} }]) {
        const lines = await planOf(cmd);
        assert.match(lines, /SEARCH .* USING INDEX .*\(<expr>=\?\)/, `${JSON.stringify(cmd)}: ${lines}`);
        assert.doesNotMatch(lines, /\bSCAN\b/, `${JSON.stringify(cmd)}: ${lines}`);
      }
    }
    for (const filter of scanned) assert.match(await planOf({ find: 'orders', filter }), /\bSCAN\b/, JSON.stringify(filter));
  });

  it('returns, counts, updates and deletes exactly what the whole filter matches', async () => {
    const c = Order.collection;
    const ids = async (filter: Record<string, unknown>) => (await c.find(filter as never, { projection: { _id: 1 } }).toArray()).map((d) => d._id).sort();
    assert.deepEqual(await ids(pushed[0]!), ['ord_mp_1', 'ord_mp_2']);
    assert.deepEqual(await ids(pushed[1]!), ['ord_mp_1']);
    assert.deepEqual(await ids(pushed[2]!), ['ord_mp_2', 'ord_mp_3']);
    assert.deepEqual(await ids(pushed[3]!), ['ord_mp_3']);
    assert.deepEqual(await ids(scanned[0]!), ['ord_mp_5']);
    assert.deepEqual(await ids(scanned[1]!), ['ord_mp_1', 'ord_mp_2']);
    assert.deepEqual(await ids(scanned[2]!), ['ord_mp_3', 'ord_mp_4', 'ord_mp_5', 'ord_mp_6']);
    assert.deepEqual(await ids({ merchantId: { $in: ['mer_a', 'mer_b'] }, $and: [{ merchantId: 'mer_a' }] }), ['ord_mp_1', 'ord_mp_2']);
    assert.deepEqual(await ids({ merchantId: 'mer_none' }), []);
    assert.equal(await c.countDocuments({ merchantId: { $in: ['mer_a', 'mer_c'] }, status: 'paid' } as never), 2);

    const upd = await c.updateMany({ merchantId: 'mer_a', status: 'pending' } as never, { $set: { status: 'expired' } });
    assert.equal(upd.matchedCount, 1);
    assert.deepEqual(await ids({ merchantId: 'mer_a', status: 'expired' }), ['ord_mp_2']);
    assert.equal((await c.deleteMany({ merchantId: { $in: ['mer_b', 'mer_c'] }, status: 'pending' } as never)).deletedCount, 0);
    assert.equal((await c.deleteMany({ merchantId: { $in: ['mer_b', 'mer_c'] } } as never)).deletedCount, 2);
    assert.equal(await c.countDocuments({}), 4);
  });
});
