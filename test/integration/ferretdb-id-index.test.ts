// The embedded FerretDB is built with one patch (src/db/ferretdb-build.ts, patchIdLookups): its
// SQLite backend must answer look-ups by _id through the _id index, not by scanning the table.
// Every hot path of paymail reads and writes by _id alone on that promise (README, "Primary-key
// reads on FerretDB"); without the patch each of them costs a full scan. Checked through the
// query plan SQLite reports (FerretDB's explain), for string and ObjectId _ids.
import assert from 'node:assert/strict';
import mongoose from 'mongoose';
import { Order } from '../../src/db/models/order.model.ts';
import { Outbox } from '../../src/db/models/outbox.model.ts';
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
