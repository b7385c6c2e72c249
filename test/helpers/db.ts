// Gives the calling test file its own fresh database on the test server.
import mongoose from 'mongoose';
import { randomBytes } from 'node:crypto';
import { MODELS } from '../../src/db/connection.ts';
import { createRepositories } from '../../src/db/repositories.ts';

export function testDbUri(): string {
  const base = process.env.PAYMAIL_TEST_DB_URI;
  if (!base) throw new Error('PAYMAIL_TEST_DB_URI is not set: run the tests through mocha (test/setup.ts)');
  const u = new URL(base);
  u.pathname = `/t_${randomBytes(6).toString('hex')}`;
  return u.toString();
}

/**
 * Registers before/after hooks: connect mongoose to a new database, drop it afterwards. With
 * `monitorCommands`, the driver emits `commandStarted` for every command sent (tests that count them).
 */
export function useTestDatabase(opts: { monitorCommands?: boolean } = {}): { uri: () => string } {
  let uri = '';
  before(async function () {
    this.timeout(60_000);
    uri = testDbUri();
    await mongoose.connect(uri, { serverSelectionTimeoutMS: 10_000, autoIndex: false, ...(opts.monitorCommands ? { monitorCommands: true } : {}) });
    await Promise.all(MODELS.map((m) => m.createIndexes()));
  });
  after(async () => {
    await mongoose.connection.dropDatabase().catch(() => {});
    await mongoose.disconnect();
  });
  return { uri: () => uri };
}

/** The repositories over the test database mongoose is connected to (src/db/repositories.ts). */
export const repos = createRepositories();
