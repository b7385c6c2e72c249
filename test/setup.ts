// Mocha global fixtures: one FerretDB (SQLite in a temp dir) for the whole run; each test file
// gets its own fresh database on it (see helpers/db.ts). TEST_MONGODB_URI points at another server.
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { ensureFerretdb } from '../src/db/ferretdb-build.ts';
import { startEmbeddedFerretdb, type EmbeddedDb } from '../src/db/embedded-ferretdb.ts';

let db: EmbeddedDb | undefined;
let dir: string | undefined;

export async function mochaGlobalSetup(): Promise<void> {
  if (process.env.TEST_MONGODB_URI) {
    process.env.PAYMAIL_TEST_DB_URI = process.env.TEST_MONGODB_URI;
    return;
  }
  // FERRETDB_BIN (as for the app, src/config.ts): run the tests on a given build, e.g. a new patch level.
  const binary = process.env.FERRETDB_BIN || (await ensureFerretdb((l) => console.log(l)));
  dir = await mkdtemp(path.join(process.env.PAYMAIL_TEST_TMP ?? os.tmpdir(), 'paymail-test-db-'));
  db = await startEmbeddedFerretdb({ binary, dir });
  process.env.PAYMAIL_TEST_DB_URI = db.uri;
  process.env.PAYMAIL_TEST_FERRETDB_BIN = binary;
}

export async function mochaGlobalTeardown(): Promise<void> {
  await db?.stop();
  if (dir) await rm(dir, { recursive: true, force: true });
}
