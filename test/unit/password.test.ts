// scrypt runs on libuv's thread pool, which file-system work, dns.lookup and zlib share. An AUTH
// storm (up to 100 SMTP clients at once) must not occupy every pool thread: password checks are
// bounded, so other pool work still runs at once.
import assert from 'node:assert/strict';
import { stat } from 'node:fs/promises';
import { hashPassword, passwordHashLoad, verifyPassword } from '../../src/domain/password.ts';

describe('password hashing', function () {
  this.timeout(60_000);

  it('verifies the right password and refuses a wrong one', async () => {
    const stored = await hashPassword('correct horse');
    assert.equal(await verifyPassword('correct horse', stored), true);
    assert.equal(await verifyPassword('battery staple', stored), false);
    assert.equal(await verifyPassword('x', 'not-a-hash'), false);
  });

  it('bounds concurrent scrypt work, leaving the thread pool to file and DNS work during an AUTH storm', async () => {
    const stored = await hashPassword('secret');
    let peak = 0;
    const started = performance.now();
    const storm = Promise.all(
      Array.from({ length: 24 }, () => {
        const p = verifyPassword('guess', stored);
        peak = Math.max(peak, passwordHashLoad().active);
        return p;
      }),
    );
    const statStarted = performance.now();
    await stat(import.meta.filename);
    const statMs = performance.now() - statStarted;
    await storm;
    const stormMs = performance.now() - started;
    assert.ok(peak <= 2, `at most 2 scrypt computations at once (saw ${peak})`);
    assert.ok(statMs < stormMs / 4, `a file-system call waits ${statMs.toFixed(1)} ms during a ${stormMs.toFixed(0)} ms storm`);
    assert.deepEqual(passwordHashLoad(), { active: 0, waiting: 0 });
  });
});
