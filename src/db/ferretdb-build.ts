// Builds the FerretDB binary (MongoDB wire protocol over SQLite) from the Go module proxy once and
// caches it. Used by `npm start` when the binary is missing, and by scripts/build-ferretdb.ts (CI).
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { chmod, cp, mkdir, mkdtemp, readFile, rename, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';

const run = promisify(execFile);

/**
 * Tried in order. v1.24.1 is the release we want; the module proxy here refuses it
 * ("module version is not available"), so v1.24.0 (same SQLite backend) is the fallback.
 */
export const FERRETDB_VERSIONS = ['v1.24.1', 'v1.24.0', 'v1.23.1'] as const;

/**
 * Our build of FerretDB carries one patch (see patchIdLookups); the suffix keeps binaries built
 * without it (or with an older patch set) out of use.
 */
export const PATCH_LEVEL = 'pm1';

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
    const work = await mkdtemp(path.join(os.tmpdir(), 'paymail-ferretdb-'));
    try {
      log(`Building the embedded database: FerretDB ${version} from the Go module proxy (once; about two minutes)...`);
      const { stdout } = await run('go', ['mod', 'download', '-json', `github.com/FerretDB/FerretDB@${version}`], {
        maxBuffer: 16 * 1024 * 1024,
      }).catch((e: { stdout?: string }) => ({ stdout: e.stdout ?? '' }));
      const info = JSON.parse(stdout || '{}') as { Dir?: string; Error?: string };
      if (!info.Dir) throw new Error(info.Error?.split('\n')[0] ?? 'go mod download failed');
      const src = path.join(work, 'src');
      await cp(info.Dir, src, { recursive: true });
      await run('chmod', ['-R', 'u+w', src]);
      // Upstream generates this file in its release pipeline; without it the binary panics at start.
      await writeFile(path.join(src, 'build', 'version', 'version.txt'), `${version}\n`);
      log(await patchIdLookups(src));
      const out = path.join(work, 'ferretdb');
      await run('go', ['build', '-o', out, './cmd/ferretdb'], {
        cwd: src,
        env: { ...process.env, CGO_ENABLED: '0', GOFLAGS: '-buildvcs=false' },
        maxBuffer: 64 * 1024 * 1024,
      });
      await chmod(out, 0o755);
      const target = path.join(cacheDir(), `ferretdb-${version}-${PATCH_LEVEL}`);
      await rename(out, target).catch(async () => {
        await cp(out, target);
        await chmod(target, 0o755);
      });
      log(`FerretDB ${version} built: ${target}`);
      return target;
    } catch (e) {
      failures.push(`${version}: ${(e as Error).message.split('\n')[0]}`);
      log(`FerretDB ${version} could not be built (${failures.at(-1)}); trying the next release`);
    } finally {
      await rm(work, { recursive: true, force: true });
    }
  }
  throw new FerretdbBuildError(`could not build FerretDB (${failures.join('; ')}); set MONGODB_URI to a MongoDB 6+ server`);
}
