// What the recap's per-branch indexes on `orders` cost writes on the embedded FerretDB (SQLite
// maintains every index on each insert/update; MongoDB likewise): single inserts and a
// conditional update, with the index set before and after issue 11.
//   npx tsx bench/order-index-cost.ts [ferretdb binary]   BENCH_N (2000)
import mongoose from 'mongoose';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { startEmbeddedFerretdb } from '../src/db/embedded-ferretdb.ts';
import { ensureFerretdb } from '../src/db/ferretdb-build.ts';

const N = Number(process.env.BENCH_N ?? 2000);
const BEFORE: Array<Record<string, number>> = [
  { merchantId: 1, openReference: 1 }, { merchantId: 1, sourceKey: 1 }, { merchantId: 1, createdAt: -1 }, { status: 1, expiresAt: 1 },
];
const AFTER = [...BEFORE, { merchantId: 1, reference: 1, createdAt: -1 }, { createdAt: 1 }, { 'payment.paidAt': 1 }, { expiredAt: 1 }, { viewedAt: 1 }, { 'attempts.at': 1 }];

const binary = process.argv[2] ?? (await ensureFerretdb());
const dir = await mkdtemp(path.join(os.tmpdir(), 'paymail-bench-ixcost-'));
const db = await startEmbeddedFerretdb({ binary, dir });
const conn = await mongoose.createConnection(db.uri).asPromise();
try {
  for (const round of [1, 2]) {
    for (const [name, set] of [['before', BEFORE], ['after', AFTER]] as const) {
      const c = conn.db!.collection(`orders_${name}_${round}`);
      await c.createIndexes(set.map((key) => ({ key })));
      let t = performance.now();
      for (let i = 0; i < N; i++) {
        await c.insertOne({ _id: `o${i}` as never, merchantId: `m${i % 50}`, openReference: `R${i}`, sourceKey: `s${i}`, reference: `R${i}`, status: 'pending', createdAt: new Date(), expiresAt: new Date(), amountMinor: 100 });
      }
      const ins = (performance.now() - t) / N;
      t = performance.now();
      for (let i = 0; i < N; i++) {
        await c.findOneAndUpdate({ _id: `o${i}` as never, status: 'pending' }, { $set: { status: 'paid', payment: { paidAt: new Date() } }, $push: { attempts: { at: new Date(), outcome: 'approved' } } } as never);
      }
      const upd = (performance.now() - t) / N;
      console.log(`round ${round} ${name.padEnd(6)} (${set.length} indexes): insertOne ${ins.toFixed(2)} ms, findOneAndUpdate {_id,status} ${upd.toFixed(2)} ms`);
    }
  }
} finally {
  await conn.close();
  await db.stop();
  await rm(dir, { recursive: true, force: true });
}
