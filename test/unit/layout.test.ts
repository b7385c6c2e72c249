// The layout the code keeps (issue 11, STYLE.md): only src/db/ talks to the database, domain/ is
// pure, and no source file grows past ~300 lines without saying why in its header.
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const SRC = fileURLToPath(new URL('../../src/', import.meta.url));
/** "~300 lines": a file a little over it is fine; beyond this it needs a reason. */
const MAX_LINES = 320;
/** The header sentence that gives the reason, e.g. "Over 300 lines: one table of …". */
const REASON = /^\/\/.*\bOver 300 lines:/m;

function sources(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) => {
    const p = path.join(dir, e.name);
    return e.isDirectory() ? sources(p) : e.name.endsWith('.ts') ? [p] : [];
  });
}

const rel = (f: string) => path.relative(SRC, f).split(path.sep).join('/');
const importsOf = (text: string) => [...text.matchAll(/^\s*(?:import|export)\b[^;]*?from\s+'([^']+)'/gms)].map((m) => m[1]!);

describe('source layout', () => {
  const files = sources(SRC);

  it('finds the sources', () => {
    assert.ok(files.length > 50, `only ${files.length} files under ${SRC}`);
  });

  it('nothing outside src/db/ imports mongoose, a model or a database helper', () => {
    const DB_ONLY = [/^mongoose$/, /^mongodb$/, /\/db\/models\//, /\/db\/(claims|due-queue|by-id|connection-internals)\.ts$/, /^\.\/models\//];
    const offenders = files
      .filter((f) => !rel(f).startsWith('db/'))
      .flatMap((f) => importsOf(readFileSync(f, 'utf8')).filter((spec) => DB_ONLY.some((re) => re.test(spec))).map((spec) => `${rel(f)} imports ${spec}`));
    assert.deepEqual(offenders, []);
  });

  it('domain/ is pure: no database, web framework or mail transport', () => {
    const IMPURE = [/^mongoose$/, /^koa$/, /^@koa\//, /^nodemailer/, /^smtp-server$/, /\/(db|http|services|jobs|inbound|mail)\//];
    const offenders = files
      .filter((f) => rel(f).startsWith('domain/'))
      .flatMap((f) => importsOf(readFileSync(f, 'utf8')).filter((spec) => IMPURE.some((re) => re.test(spec))).map((spec) => `${rel(f)} imports ${spec}`));
    assert.deepEqual(offenders, []);
  });

  it(`no file is over ${MAX_LINES} lines without a reason in its header`, () => {
    const offenders = files.flatMap((f) => {
      const text = readFileSync(f, 'utf8');
      const lines = text.split('\n').length;
      const header = text.split('\n').slice(0, 12).join('\n');
      return lines > MAX_LINES && !REASON.test(header) ? [`${rel(f)}: ${lines} lines`] : [];
    });
    assert.deepEqual(offenders, []);
  });
});
