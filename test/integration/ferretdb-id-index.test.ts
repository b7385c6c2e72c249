// The embedded FerretDB is built with one patch (src/db/ferretdb-build.ts, patchIdLookups): its
// SQLite backend must answer look-ups by _id through the _id index, not by scanning the table.
// Every hot path of paymail reads and writes by _id alone on that promise (README, "Primary-key
// reads on FerretDB"); without the patch each of them costs a full scan. Checked through the
// query plan SQLite reports (FerretDB's explain), for string and ObjectId _ids.
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import mongoose from 'mongoose';
import { Order } from '../../src/db/models/order.model.ts';
import { Outbox } from '../../src/db/models/outbox.model.ts';
import { freePort } from '../../src/db/embedded-ferretdb.ts';
import { useTestDatabase } from '../helpers/db.ts';

describe('FerretDB look-ups by _id', function () {
  this.timeout(20_000);
  useTestDatabase();

  it('use the _id index (SQLite SEARCH … USING INDEX), for string and ObjectId ids', async function () {
    const db = mongoose.connection.db!;
    const build = (await db.admin().command({ buildInfo: 1 })) as { ferretdbVersion?: string };
    if (!build.ferretdbVersion) this.skip(); // MongoDB: its own planner, nothing of ours to check
    await Order.collection.insertOne({ _id: 'ord_plan_check' } as never);
    const oid = new mongoose.Types.ObjectId();
    await Outbox.collection.insertOne({ _id: oid });
    for (const [coll, id] of [['orders', 'ord_plan_check'], ['outbox', oid]] as const) {
      const plan = (await db.command({ explain: { find: coll, filter: { _id: id } } })) as { queryPlanner?: { Plan?: string[] } };
      const lines = (plan.queryPlanner?.Plan ?? []).join('\n');
      assert.match(lines, /SEARCH .* USING INDEX/, `${coll}: ${lines}`);
      assert.doesNotMatch(lines, /\bSCAN\b/, `${coll}: ${lines}`);
    }
  });
});

// The push-down patch (patchIdPushdown): a filter with a top-level _id and more (every conditional
// state transition, `{_id, status: 'pending'}`) is looked up by the primary key too, and the rest
// of the filter is applied by FerretDB afterwards — same results as MongoDB's.
describe('FerretDB filters with _id and more', function () {
  this.timeout(30_000);
  useTestDatabase();
  const ids = ['ord_push_a', 'ord_push_b'];

  before(async () => {
    await Order.collection.insertMany([
      { _id: ids[0], status: 'pending', merchantId: 'm1', amount: 100 },
      { _id: ids[1], status: 'paid', merchantId: 'm1', amount: 200 },
    ] as never[]);
  });

  const planOf = async (cmd: Record<string, unknown>) => {
    const plan = (await mongoose.connection.db!.command({ explain: cmd })) as { queryPlanner?: { Plan?: string[] } };
    return (plan.queryPlanner?.Plan ?? []).join('\n');
  };

  it('find, count and a leading $match use the _id index (query plan SEARCH, no SCAN)', async function () {
    const build = (await mongoose.connection.db!.admin().command({ buildInfo: 1 })) as { ferretdbVersion?: string };
    if (!build.ferretdbVersion) this.skip();
    const filters = [
      { _id: ids[0], status: 'pending' },
      { status: 'pending', _id: ids[0], amount: { $gte: 50 } },
      { _id: ids[0], $or: [{ status: 'pending' }, { status: 'paid' }] },
    ];
    for (const filter of filters) {
      for (const cmd of [
        { find: 'orders', filter },
        { count: 'orders', filter },
        { aggregate: 'orders', pipeline: [{ $match: filter }], cursor: {} },
      ]) {
        const lines = await planOf(cmd);
        assert.match(lines, /SEARCH .* USING INDEX/, `${JSON.stringify(cmd)}: ${lines}`);
        assert.doesNotMatch(lines, /\bSCAN\b/, `${JSON.stringify(cmd)}: ${lines}`);
      }
    }
    // Without an _id equality nothing changes: the table is scanned.
    assert.match(await planOf({ find: 'orders', filter: { status: 'pending' } }), /\bSCAN\b/);
    assert.match(await planOf({ find: 'orders', filter: { _id: { $in: ids }, status: 'pending' } }), /\bSCAN\b/);
  });

  it('finds, counts, updates and deletes exactly what the whole filter matches', async () => {
    const c = Order.collection;
    assert.deepEqual((await c.find({ _id: ids[0], status: 'pending' } as never).toArray()).map((d) => d._id), [ids[0]]);
    assert.equal(await c.countDocuments({ _id: ids[0], status: 'paid' } as never), 0); // no match: rest of the filter
    assert.equal(await c.countDocuments({ _id: 'ord_push_none', status: 'pending' } as never), 0); // no match: _id
    assert.equal(await c.countDocuments({ _id: ids[1], amount: { $gt: 150 } } as never), 1);
    const agg = await c.aggregate([{ $match: { _id: ids[1], status: 'paid' } }, { $project: { amount: 1 } }]).toArray();
    assert.deepEqual(agg, [{ _id: ids[1], amount: 200 }]);

    // Conditional transitions: the first wins, the repeat finds nothing and changes nothing.
    const won = await c.findOneAndUpdate({ _id: ids[0], status: 'pending' } as never, { $set: { status: 'paid' } }, { returnDocument: 'after' });
    assert.equal(won?.status, 'paid');
    assert.equal(await c.findOneAndUpdate({ _id: ids[0], status: 'pending' } as never, { $set: { status: 'expired' } }), null);
    const upd = await c.updateOne({ _id: ids[0], status: 'pending' } as never, { $set: { status: 'expired' } });
    assert.equal(upd.matchedCount, 0);
    assert.equal(upd.modifiedCount, 0);
    const upd2 = await c.updateOne({ _id: ids[0], status: 'paid' } as never, { $set: { note: 'x' } });
    assert.equal(upd2.matchedCount, 1);
    assert.equal((await c.findOne({ _id: ids[0] } as never))?.status, 'paid');

    // An upsert whose filter misses an existing _id inserts that _id again: duplicate key (11000),
    // as on MongoDB, and the stored document is untouched.
    await assert.rejects(
      c.updateOne({ _id: ids[1], status: 'pending' } as never, { $set: { amount: 1 } }, { upsert: true }),
      (e: { code?: number }) => e.code === 11000,
    );
    await assert.rejects(
      c.findOneAndUpdate({ _id: ids[1], status: 'pending' } as never, { $set: { amount: 1 } }, { upsert: true }),
      (e: { code?: number }) => e.code === 11000,
    );
    assert.equal((await c.findOne({ _id: ids[1] } as never))?.amount, 200);

    assert.equal((await c.deleteOne({ _id: ids[1], status: 'pending' } as never)).deletedCount, 0);
    assert.equal((await c.deleteOne({ _id: ids[1], status: 'paid' } as never)).deletedCount, 1);
    assert.equal(await c.countDocuments({}), 1);
  });
});

// Update, findAndModify and delete have no explain on FerretDB: read the SQL they send instead, from
// a second FerretDB of the same build logging at debug level. Each of their reads must be the
// primary-key SELECT (the plan of that exact statement is the SEARCH checked above).
describe('FerretDB writes with _id and more', function () {
  this.timeout(30_000);
  let child: ChildProcess | undefined;
  let log = '';
  let dir = '';
  let conn: mongoose.Connection | undefined;

  before(async function () {
    const binary = process.env.PAYMAIL_TEST_FERRETDB_BIN; // set by test/setup.ts (global setup)
    if (!binary) this.skip(); // MongoDB (TEST_MONGODB_URI): nothing of ours to check
    dir = await mkdtemp(path.join(os.tmpdir(), 'paymail-pushdown-'));
    const port = await freePort();
    child = spawn(binary, [
      '--handler=sqlite', `--sqlite-url=file:${dir}/`, `--listen-addr=127.0.0.1:${port}`,
      `--state-dir=${dir}`, '--telemetry=disable', '--debug-addr=-', '--log-level=debug',
    ], { stdio: ['ignore', 'ignore', 'pipe'] });
    child.stderr!.on('data', (d: Buffer) => (log += d.toString()));
    for (let i = 0; ; i++) {
      try {
        conn = await mongoose.createConnection(`mongodb://127.0.0.1:${port}/pushdown`, { serverSelectionTimeoutMS: 500 }).asPromise();
        break;
      } catch (e) {
        if (i > 40) throw e;
      }
    }
  });
  after(async () => {
    await conn?.close();
    child?.kill('SIGTERM');
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  it('updateOne, findOneAndUpdate, deleteOne and countDocuments read by the _id index', async () => {
    const c = conn!.db!.collection<{ _id: string; status: string }>('orders');
    await c.insertMany([{ _id: 'a', status: 'pending' }, { _id: 'b', status: 'pending' }]);
    const table = /SELECT +_ferretdb_sjson FROM "(orders_[0-9a-f]+)"/;
    const ops: Array<[string, () => Promise<unknown>]> = [
      ['updateOne', () => c.updateOne({ _id: 'a', status: 'pending' }, { $set: { status: 'paid' } })],
      ['findOneAndUpdate', () => c.findOneAndUpdate({ _id: 'b', status: 'pending' }, { $set: { status: 'paid' } })],
      ['findOneAndUpdate (no match)', () => c.findOneAndUpdate({ _id: 'b', status: 'pending' }, { $set: { status: 'expired' } })],
      ['deleteOne', () => c.deleteOne({ _id: 'a', status: 'paid' })],
      ['countDocuments', () => c.countDocuments({ _id: 'b', status: 'paid' })],
    ];
    for (const [name, op] of ops) {
      const from = log.length;
      await op();
      await new Promise((r) => setTimeout(r, 50)); // the log line may trail the reply
      const selects = log.slice(from).split('\n').filter((l) => table.test(l) && l.includes('>>>'));
      assert.ok(selects.length > 0, `${name}: no SELECT logged`);
      for (const s of selects) assert.match(s, /WHERE _ferretdb_sjson->"_id" = \?/, `${name}: ${s.slice(0, 300)}`);
    }
    assert.deepEqual(await c.find({}).toArray(), [{ _id: 'b', status: 'paid' }]);
  });
});
