// The FerretDB build patch (src/db/ferretdb-build.ts, patchIdLookups) on a copy of the one source
// file it changes: applied when the upstream line is there, and a build error (not a warning and
// a binary whose _id look-ups scan) when it is not.
import assert from 'node:assert/strict';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { FerretdbBuildError, patchIdLookups } from '../../src/db/ferretdb-build.ts';

const UPSTREAM = `package metadata\n\nconst (\n\tDefaultColumn = "_ferretdb_sjson"\n\tIDColumn = DefaultColumn + "->'$._id'"\n)\n`;

describe('FerretDB build patch (patchIdLookups)', () => {
  let src = '';
  const file = () => path.join(src, 'internal', 'backends', 'sqlite', 'metadata', 'metadata.go');
  beforeEach(async () => {
    src = await mkdtemp(path.join(os.tmpdir(), 'paymail-patch-'));
    await mkdir(path.dirname(file()), { recursive: true });
  });
  afterEach(() => rm(src, { recursive: true, force: true }));

  it('rewrites the _id look-up to the indexed expression', async () => {
    await writeFile(file(), UPSTREAM);
    assert.match(await patchIdLookups(src), /patched/);
    const text = await readFile(file(), 'utf8');
    assert.ok(text.includes(`IDColumn = DefaultColumn + "->\\"_id\\""`), text);
    assert.ok(!text.includes(`'$._id'`));
  });

  const misses: Array<[string, string | undefined]> = [
    ['the line changed upstream', UPSTREAM.replace(`"->'$._id'"`, `"->'$.id'"`)],
    ['the file is missing', undefined],
  ];
  for (const [name, content] of misses) {
    it(`fails the build with a clear message when ${name}`, async () => {
      if (content !== undefined) await writeFile(file(), content);
      await assert.rejects(patchIdLookups(src), (e: unknown) => {
        assert.ok(e instanceof FerretdbBuildError, String(e));
        assert.match(e.message, /patch/);
        assert.match(e.message, /metadata\.go/);
        return true;
      });
    });
  }
});
