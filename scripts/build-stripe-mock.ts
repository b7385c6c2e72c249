// Builds and caches stripe-mock, Stripe's official mock API server (the Stripe adapter's tests run
// against it), from the Go module proxy, like the embedded database (src/db/ferretdb-build.ts).
// Run by CI (.ci/run): `npx tsx scripts/build-stripe-mock.ts`; the tests call ensureStripeMock().
// STRIPE_MOCK_BIN points at a binary built elsewhere (no build then).
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { cacheDir, goBuildInto, goModuleSource } from '../src/db/ferretdb-build.ts';

const run = promisify(execFile);

export const STRIPE_MOCK_MODULE = 'github.com/stripe/stripe-mock';
export const STRIPE_MOCK_VERSION = 'v0.203.0';

export class StripeMockBuildError extends Error {
  override name = 'StripeMockBuildError';
}

/** Where the cached binary lives (or STRIPE_MOCK_BIN when set). */
export function stripeMockPath(): string {
  return process.env.STRIPE_MOCK_BIN || path.join(cacheDir(), `stripe-mock-${STRIPE_MOCK_VERSION}`);
}

async function hasGo(): Promise<boolean> {
  return run('go', ['version']).then(
    () => true,
    () => false,
  );
}

/** Builds stripe-mock into `target` (work files in a temporary directory, removed after). */
export async function buildStripeMock(target: string, log: (line: string) => void = () => {}): Promise<string> {
  const work = await mkdtemp(path.join(os.tmpdir(), 'paymail-stripe-mock-'));
  try {
    log(`Building stripe-mock ${STRIPE_MOCK_VERSION} from the Go module proxy (once)...`);
    const src = await goModuleSource(STRIPE_MOCK_MODULE, STRIPE_MOCK_VERSION, work).catch((e: Error) => {
      throw new StripeMockBuildError(e.message);
    });
    await goBuildInto(src, '.', target, ['-mod=mod']);
    log(`stripe-mock built: ${target}`);
    return target;
  } finally {
    await rm(work, { recursive: true, force: true });
  }
}

/** The path of a runnable stripe-mock, built first when missing (needs Go unless STRIPE_MOCK_BIN is set). */
export async function ensureStripeMock(log: (line: string) => void = () => {}): Promise<string> {
  const bin = stripeMockPath();
  if (existsSync(bin)) return bin;
  if (process.env.STRIPE_MOCK_BIN) throw new StripeMockBuildError(`STRIPE_MOCK_BIN=${bin} does not exist`);
  if (!(await hasGo())) throw new StripeMockBuildError('stripe-mock is not built and Go is not installed (or set STRIPE_MOCK_BIN)');
  return buildStripeMock(bin, log);
}

// Run as a script (not when the tests import it; no top-level await, so it also loads through require).
if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  ensureStripeMock((l) => console.log(l)).then(
    (bin) => console.log(bin),
    (e: unknown) => {
      console.error(`build-stripe-mock: ${(e as Error).message}`);
      process.exit(1);
    },
  );
}
