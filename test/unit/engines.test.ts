// Every installed package must support the oldest Node.js paymail promises (package.json
// `engines`), or a clean `npm install` on that Node prints EBADENGINE warnings.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';

// semver ships without types; the two functions used here are typed by hand.
const semver = createRequire(import.meta.url)('semver') as {
  minVersion(range: string): { version: string } | null;
  satisfies(version: string, range: string): boolean;
};

const ROOT = path.resolve(import.meta.dirname, '../..');

interface LockPackage { version?: string; engines?: { node?: string } | string[] }

describe('package engines', () => {
  it('every package in the lock file supports the oldest Node.js in package.json engines', () => {
    const pkg = JSON.parse(readFileSync(path.join(ROOT, 'package.json'), 'utf8')) as { engines: { node: string } };
    const oldest = semver.minVersion(pkg.engines.node)?.version;
    assert.ok(oldest, `engines.node "${pkg.engines.node}" has no minimum`);
    const lock = JSON.parse(readFileSync(path.join(ROOT, 'package-lock.json'), 'utf8')) as {
      packages: Record<string, LockPackage>;
    };
    const refused = Object.entries(lock.packages)
      .filter(([name, p]) => name !== '' && !Array.isArray(p.engines) && p.engines?.node)
      .filter(([, p]) => !semver.satisfies(oldest, (p.engines as { node: string }).node))
      .map(([name, p]) => `${name}@${p.version} wants node ${(p.engines as { node: string }).node}`);
    assert.deepEqual(refused, [], `these would print EBADENGINE on Node ${oldest}`);
  });
});
