// The FerretDB _id push-down patch (src/db/ferretdb-build.ts, patchIdPushdown), before/after: a
// conditional state transition `findOneAndUpdate({_id, status: 'pending'}, …)` and a
// `findOne({_id, status})` on a collection of N orders, for each FerretDB binary given.
//   npx tsx bench/ferretdb-id-pushdown.ts <ferretdb binary>...   BENCH_SIZES (3000,30000), BENCH_REPS (100)
import mongoose from 'mongoose';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { startEmbeddedFerretdb } from '../src/db/embedded-ferretdb.ts';

const sizes = (process.env.BENCH_SIZES ?? '3000,30000').split(',').map(Number);
const REPS = Number(process.env.BENCH_REPS ?? 100);
const id = (i: number) => `ord_${String(i).padStart(7, '0')}`;

for (const binary of process.argv.slice(2)) {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'paymail-bench-pushdown-'));
  const db = await startEmbeddedFerretdb({ binary, dir });
  const conn = await mongoose.createConnection(db.uri).asPromise();
  try {
    const coll = conn.db!.collection<{ _id: string }>('orders');
    let have = 0;
    for (const n of sizes) {
      while (have < n) {
        const batch = Array.from({ length: Math.min(1000, n - have) }, (_, i) => ({
          _id: id(have + i),
          status: 'pending',
          merchantId: `m${(have + i) % 100}`,
          amount: 1000 + i,
          items: [{ name: 'x'.repeat(40), qty: 1 }],
          createdAt: new Date(),
        }));
        await coll.insertMany(batch);
        have += batch.length;
      }
      const t: number[] = [];
      for (let i = 0; i < REPS; i++) {
        const s = performance.now();
        await coll.findOneAndUpdate({ _id: id(Math.floor(Math.random() * n)), status: 'pending' }, { $set: { touched: i } });
        t.push(performance.now() - s);
      }
      const f: number[] = [];
      for (let i = 0; i < REPS; i++) {
        const s = performance.now();
        await coll.findOne({ _id: id(Math.floor(Math.random() * n)), status: 'pending' });
        f.push(performance.now() - s);
      }
      const med = (a: number[]) => a.sort((x, y) => x - y)[a.length >> 1]!.toFixed(2);
      console.log(`${path.basename(binary)}  N=${n}  findOneAndUpdate{_id,status} median ${med(t)} ms  findOne{_id,status} median ${med(f)} ms`);
    }
  } finally {
    await conn.close();
    await db.stop();
    await rm(dir, { recursive: true, force: true });
  }
}
