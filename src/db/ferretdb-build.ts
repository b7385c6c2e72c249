// Builds the FerretDB binary (MongoDB wire protocol over SQLite) from the Go module proxy once and
// caches it. Used by `npm start` when the binary is missing, and by scripts/build-ferretdb.ts (CI).
// Two patches make every filter with a top-level `_id` a primary-key look-up (before/after, see
// patchIdPushdown: a conditional findOneAndUpdate {_id, status} at 30,000 orders 5.8 s → 3.6 ms);
// a third pushes a top-level `merchantId` equality down to its indexes (ferretdb-merchant-pushdown.ts).
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { chmod, cp, mkdir, mkdtemp, readFile, rename, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { HELPER_FILE, withMerchantPushdown } from './ferretdb-merchant-pushdown.ts';

const run = promisify(execFile);

/**
 * Tried in order. v1.24.1 is the release we want; the module proxy here refuses it
 * ("module version is not available"), so v1.24.0 (same SQLite backend) is the fallback.
 */
export const FERRETDB_VERSIONS = ['v1.24.1', 'v1.24.0', 'v1.23.1'] as const;

/**
 * Our build of FerretDB carries three patches (patchIdLookups, patchIdPushdown,
 * patchMerchantPushdown); the suffix keeps binaries built without them (or with an older patch
 * set) out of use. pm1: _id look-ups use the _id index; pm2: and so does any filter with a
 * top-level _id equality; pm3: a top-level merchantId equality or $in uses an index on merchantId.
 */
export const PATCH_LEVEL = 'pm3';

/**
 * `go mod download` of `module@version`, copied to `<work>/src` and made writable (the module
 * cache is read-only; a build may write go.sum entries into the copy). Returns the copy's path.
 */
export async function goModuleSource(module: string, version: string, work: string): Promise<string> {
  const { stdout } = await run('go', ['mod', 'download', '-json', `${module}@${version}`], {
    maxBuffer: 16 * 1024 * 1024,
  }).catch((e: { stdout?: string }) => ({ stdout: e.stdout ?? '' }));
  const info = JSON.parse(stdout || '{}') as { Dir?: string; Error?: string };
  if (!info.Dir) throw new Error(info.Error?.split('\n')[0] ?? 'go mod download failed');
  const src = path.join(work, 'src');
  await cp(info.Dir, src, { recursive: true });
  await run('chmod', ['-R', 'u+w', src]);
  return src;
}

/**
 * A static build (`CGO_ENABLED=0`) of `pkg` in `src`, put in place at `target` by a rename, which
 * is atomic: a concurrent build never leaves a half-written binary under the cached name.
 */
export async function goBuildInto(src: string, pkg: string, target: string, extraArgs: string[] = []): Promise<string> {
  const out = path.join(path.dirname(src), path.basename(target));
  await run('go', ['build', ...extraArgs, '-o', out, pkg], {
    cwd: src,
    env: { ...process.env, CGO_ENABLED: '0', GOFLAGS: '-buildvcs=false' },
    maxBuffer: 64 * 1024 * 1024,
  });
  await chmod(out, 0o755);
  await mkdir(path.dirname(target), { recursive: true });
  await rename(out, target).catch(async () => {
    // Another file system: copy beside the target, then rename.
    await cp(out, `${target}.tmp`);
    await chmod(`${target}.tmp`, 0o755);
    await rename(`${target}.tmp`, target);
  });
  return target;
}

export function cacheDir(): string {
  const base = process.env.XDG_CACHE_HOME || path.join(os.homedir(), '.cache');
  return path.join(base, 'paymail');
}

/** The cached binary, if one was built before. */
export function findCachedFerretdb(): string | undefined {
  for (const v of FERRETDB_VERSIONS) {
    const p = path.join(cacheDir(), `ferretdb-${v}-${PATCH_LEVEL}`);
    if (existsSync(p)) return p;
  }
  return undefined;
}

export class FerretdbBuildError extends Error {
  override name = 'FerretdbBuildError';
}

async function hasGo(): Promise<boolean> {
  try {
    await run('go', ['version']);
    return true;
  } catch {
    return false;
  }
}

/**
 * FerretDB v1's SQLite backend looks documents up by `_id` with the SQL expression
 * `_ferretdb_sjson->'$._id'`, but creates the unique `_id` index on `_ferretdb_sjson->"_id"`.
 * SQLite uses an expression index only for the identical expression, so every "primary-key"
 * find, update and delete scanned the whole table (measured: find by _id 6 ms at 1,000 documents,
 * 14.5 ms at 3,000; findAndModify 17 → 39 ms). Writing the lookup exactly as the index is written
 * lets SQLite use it (1.0 ms and 2.0 ms at 3,000, flat). Same results: both expressions extract
 * the `_id` label of the stored JSON. Returns a line for the build log; throws FerretdbBuildError
 * when the upstream line is not there.
 */
export async function patchIdLookups(src: string): Promise<string> {
  const file = path.join(src, 'internal', 'backends', 'sqlite', 'metadata', 'metadata.go');
  const before = `IDColumn = DefaultColumn + "->'$._id'"`;
  const after = `IDColumn = DefaultColumn + "->\\"_id\\""`;
  const text = await readFile(file, 'utf8').catch(() => '');
  // Without the patch every primary-key read scans its collection (mail floods slow to a crawl):
  // no binary rather than a silently slow one.
  if (!text.includes(before)) {
    throw new FerretdbBuildError(
      `the _id index patch does not apply: ${path.relative(src, file)} ${text ? 'no longer contains' : 'is missing, expected'} ${before}; update patchIdLookups for this FerretDB release`,
    );
  }
  await writeFile(file, text.replace(before, after));
  return 'FerretDB patched: _id look-ups use the _id index';
}

/** Upstream's `_id` push-down in the SQLite collection (Query and Explain): only for a filter of one key. */
const PUSHDOWN_BEFORE = `if params.Filter.Len() == 1 {\n\t\tv, _ := params.Filter.Get("_id")\n`;
const PUSHDOWN_AFTER = `if v, ok := paymailIDEquality(params.Filter); ok {\n`;
/** Added to the SQLite backend: the value of a filter's single top-level `_id` key. */
const PUSHDOWN_HELPER = `// Added by paymail's build (src/db/ferretdb-build.ts, patchIdPushdown).

package sqlite

import "github.com/FerretDB/FerretDB/internal/types"

// paymailIDEquality returns the value of the filter's top-level _id key when there is exactly one.
// The top-level keys of a filter are ANDed, so a query may look the document up by that _id alone
// (primary-key index) and leave the rest of the filter to the handler, which applies the whole
// filter to every document the backend returns (backends.Collection.Query: "Filter may be
// ignored, or safely applied partially"). Two _id keys would panic in Document.Get: no push-down.
func paymailIDEquality(filter *types.Document) (any, bool) {
\tif filter == nil {
\t\treturn nil, false
\t}

\tn := 0

\tfor _, k := range filter.Keys() {
\t\tif k == "_id" {
\t\t\tn++
\t\t}
\t}

\tif n != 1 {
\t\treturn nil, false
\t}

\tv, err := filter.Get("_id")
\tif err != nil {
\t\treturn nil, false
\t}

\treturn v, true
}
`;

/** How many times upstream's one-key `_id` push-down appears in collection.go (Query and Explain: 2). */
const pushdowns = (text: string) => text.split(PUSHDOWN_BEFORE).length - 1;

/**
 * Upstream turns a filter into SQL only when it is exactly `{_id: X}`; `{_id: X, status: 'pending'}`
 * (every conditional state transition) scanned the whole table and filtered in Go. This patch
 * pushes the `_id` equality (string or ObjectId) of any filter down as the primary-key look-up
 * (`WHERE <_id index expression> = ?`) in find, count, update, findAndModify, delete and
 * aggregate's leading $match, and their explain; the handler still applies the whole filter to
 * the row it gets back, so results are the same, no-match included. Measured (findOneAndUpdate
 * `{_id, status: 'pending'}`, see test/integration/ferretdb-id-index.test.ts and bench/results.md):
 * median findOneAndUpdate 266 ms → 4.4 ms at 3,000 orders and 5.8 s → 3.6 ms at 30,000; findOne
 * 250 ms → 2.1 ms and 8.0 s → 1.8 ms (bench/ferretdb-id-pushdown.ts, 2 shared cores, so the
 * scans are inflated by load; the look-ups stay flat as the collection grows). Throws FerretdbBuildError when the upstream code is not there.
 */
export async function patchIdPushdown(src: string): Promise<string> {
  return patchSqliteCollection(src, {
    // Query and Explain: both, or the explain plans would not show what the queries do.
    apply: (text) => (pushdowns(text) === 2 ? text.split(PUSHDOWN_BEFORE).join(PUSHDOWN_AFTER) : undefined),
    helper: { name: 'paymail_id_pushdown.go', content: PUSHDOWN_HELPER },
    refusal: (text, file) =>
      `the _id push-down patch does not apply: ${file} ${text ? `contains the one-key _id push-down ${pushdowns(text)} times, expected 2` : 'is missing'}; update patchIdPushdown for this FerretDB release`,
    done: 'FerretDB patched: filters with a top-level _id look the document up by the _id index',
  });
}

/**
 * The third patch (ferretdb-merchant-pushdown.ts): a top-level `merchantId` equality or `$in` is
 * looked up by an index on `merchantId`. Throws FerretdbBuildError when upstream's code is not
 * where the patch expects it (after patchIdPushdown).
 */
export async function patchMerchantPushdown(src: string): Promise<string> {
  return patchSqliteCollection(src, {
    apply: withMerchantPushdown,
    helper: HELPER_FILE,
    refusal: (text, file) =>
      `the merchantId push-down patch does not apply: ${file} ${text ? "does not use Query's and Explain's WHERE clause once each" : 'is missing'}; update patchMerchantPushdown for this FerretDB release`,
    done: 'FerretDB patched: filters on merchantId look the rows up by an index on merchantId',
  });
}

/**
 * One patch of the SQLite backend's collection.go: `apply` rewrites upstream's text (undefined when
 * upstream's code is not where the patch expects it: FerretdbBuildError with `refusal`, no binary
 * rather than a silently slow one) and `helper` is the Go file it adds beside it.
 */
async function patchSqliteCollection(
  src: string,
  patch: { apply: (text: string) => string | undefined; helper: { name: string; content: string }; refusal: (text: string, file: string) => string; done: string },
): Promise<string> {
  const dir = path.join(src, 'internal', 'backends', 'sqlite');
  const file = path.join(dir, 'collection.go');
  const text = await readFile(file, 'utf8').catch(() => '');
  const patched = text ? patch.apply(text) : undefined;
  if (!patched) throw new FerretdbBuildError(patch.refusal(text, path.relative(src, file)));
  await writeFile(file, patched);
  await writeFile(path.join(dir, patch.helper.name), patch.helper.content);
  return patch.done;
}

/**
 * Builds FerretDB `version` with our patches into `target` (work files in a temporary directory).
 * Exported so a new patch level can be built and tested under a temporary path before it is put
 * into the cache under its final name.
 */
export async function buildFerretdb(version: string, target: string, log: (line: string) => void = () => {}): Promise<string> {
  const work = await mkdtemp(path.join(os.tmpdir(), 'paymail-ferretdb-'));
  try {
    log(`Building the embedded database: FerretDB ${version} from the Go module proxy (once; about two minutes)...`);
    const src = await goModuleSource('github.com/FerretDB/FerretDB', version, work);
    // Upstream generates this file in its release pipeline; without it the binary panics at start.
    await writeFile(path.join(src, 'build', 'version', 'version.txt'), `${version}\n`);
    log(await patchIdLookups(src));
    log(await patchIdPushdown(src));
    log(await patchMerchantPushdown(src));
    await goBuildInto(src, './cmd/ferretdb', target);
    log(`FerretDB ${version} built: ${target}`);
    return target;
  } finally {
    await rm(work, { recursive: true, force: true });
  }
}

/** Returns the path of a runnable FerretDB binary, building it first when needed. */
export async function ensureFerretdb(log: (line: string) => void = () => {}): Promise<string> {
  const cached = findCachedFerretdb();
  if (cached) return cached;
  if (!(await hasGo())) {
    throw new FerretdbBuildError(
      'the embedded database (FerretDB) is not built and Go is not installed: install Go, or set MONGODB_URI to a MongoDB 6+ server',
    );
  }
  await mkdir(cacheDir(), { recursive: true });
  const failures: string[] = [];
  for (const version of FERRETDB_VERSIONS) {
    try {
      return await buildFerretdb(version, path.join(cacheDir(), `ferretdb-${version}-${PATCH_LEVEL}`), log);
    } catch (e) {
      failures.push(`${version}: ${(e as Error).message.split('\n')[0]}`);
      log(`FerretDB ${version} could not be built (${failures.at(-1)}); trying the next release`);
    }
  }
  throw new FerretdbBuildError(`could not build FerretDB (${failures.join('; ')}); set MONGODB_URI to a MongoDB 6+ server`);
}
