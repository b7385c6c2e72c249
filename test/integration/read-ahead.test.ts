// readAhead (src/db/read-ahead.ts) against the real database: every document once and in order
// whatever the batch boundaries, the next batch asked for while the caller is still in the current
// one (a plain `for await` asks only when the batch is used up), the cursor closed when the caller
// stops early, and a failed read thrown to the caller.
import assert from 'node:assert/strict';
import { MongoClient, type CommandStartedEvent } from 'mongodb';
import { readAhead } from '../../src/db/read-ahead.ts';
import { testDbUri } from '../helpers/db.ts';

describe('reading a cursor ahead', function () {
  this.timeout(30_000);
  let client: MongoClient;
  const started: CommandStartedEvent[] = [];
  const coll = () => client.db().collection<{ _id: number }>('items');

  before(async () => {
    client = await new MongoClient(testDbUri(), { monitorCommands: true, serverSelectionTimeoutMS: 10_000 }).connect();
    client.on('commandStarted', (e) => started.push(e));
    await coll().insertMany(Array.from({ length: 37 }, (_, i) => ({ _id: i })));
  });
  after(async () => {
    await client.db().dropDatabase().catch(() => {});
    await client.close();
  });

  const getMores = () => started.filter((e) => e.commandName === 'getMore').length;
  const until = async (ok: () => boolean) => {
    for (let i = 0; i < 50 && !ok(); i++) await new Promise((r) => setTimeout(r, 10));
  };

  it('yields every document once, in order, for any batch boundary', async () => {
    for (const [limit, batchSize] of [[0, 10], [1, 10], [9, 10], [10, 10], [11, 10], [37, 10], [37, 1], [37, 100]] as const) {
      const seen: number[] = [];
      const cursor = limit ? coll().find({ _id: { $lt: limit } }, { batchSize, sort: { _id: 1 } }) : coll().find({ _id: { $lt: 0 } }, { batchSize });
      for await (const d of readAhead(cursor)) seen.push(d._id);
      assert.deepEqual(seen, Array.from({ length: limit }, (_, i) => i), `${limit} documents, batches of ${batchSize}`);
      assert.ok(cursor.closed, 'closed at the end');
    }
  });

  it('asks for the next batch while the caller is still in the current one', async () => {
    const plain = coll().find({}, { batchSize: 10, sort: { _id: 1 } });
    const ahead = coll().find({}, { batchSize: 10, sort: { _id: 1 } });
    const firstDocs = async (it: AsyncIterable<{ _id: number }>) => {
      const before = getMores();
      let n = 0;
      for await (const _ of it) {
        if (++n === 2) break; // the second document of the first batch
      }
      await until(() => getMores() > before);
      return getMores() - before;
    };
    assert.equal(await firstDocs(plain), 0, 'a plain cursor waits until its batch is used up');
    assert.equal(await firstDocs(readAhead(ahead)), 1, 'read ahead: the second batch was asked for with the first in hand');
  });

  it('closes the cursor when the caller stops early', async () => {
    const cursor = coll().find({}, { batchSize: 5 });
    for await (const d of readAhead(cursor)) if (d._id >= 0) break;
    assert.ok(cursor.closed);
    assert.ok(cursor.killed, 'the server cursor was killed');
  });

  it('throws a failed read to the caller', async () => {
    const cursor = coll().find({ $where: 1 } as never, { batchSize: 5 });
    await assert.rejects(async () => {
      for await (const _ of readAhead(cursor)) void _;
    });
  });
});
