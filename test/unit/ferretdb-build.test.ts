// The FerretDB build patch (src/db/ferretdb-build.ts, patchIdLookups) on a copy of the one source
// file it changes: applied when the upstream line is there, and a build error (not a warning and
// a binary whose _id look-ups scan) when it is not.
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { FerretdbBuildError, patchIdLookups, patchIdPushdown, patchMerchantPushdown } from '../../src/db/ferretdb-build.ts';

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

// The second patch (patchIdPushdown): the one-key `_id` push-down of the SQLite collection's Query
// and Explain becomes "any filter with one top-level _id", through a helper file it adds.
const ONE_KEY = `\tif params.Filter.Len() == 1 {\n\t\tv, _ := params.Filter.Get("_id")\n\t\tswitch v.(type) {\n`;
const COLLECTION = `package sqlite\n\nfunc (c *collection) Query() {\n${ONE_KEY}\t\t}\n\t}\n}\n\nfunc (c *collection) Explain() {\n${ONE_KEY}\t\t}\n\t}\n}\n`;

/** A fresh FerretDB source tree for each test: its root and its SQLite backend's directory. */
function useSqliteSource(): { src: () => string; dir: () => string } {
  let src = '';
  const dir = () => path.join(src, 'internal', 'backends', 'sqlite');
  beforeEach(async () => {
    src = await mkdtemp(path.join(os.tmpdir(), 'paymail-patch-'));
    await mkdir(dir(), { recursive: true });
  });
  afterEach(() => rm(src, { recursive: true, force: true }));
  return { src: () => src, dir };
}

/**
 * One refusal test per case: the patch throws FerretdbBuildError naming itself (`named`) and
 * collection.go, and adds no helper file.
 */
function itRefuses(patch: (src: string) => Promise<string>, named: RegExp, helperFile: string, misses: Array<[string, string | undefined]>, at: { src: () => string; dir: () => string }): void {
  for (const [name, content] of misses) {
    it(`fails the build with a clear message when ${name}`, async () => {
      if (content !== undefined) await writeFile(path.join(at.dir(), 'collection.go'), content);
      await assert.rejects(patch(at.src()), (e: unknown) => {
        assert.ok(e instanceof FerretdbBuildError, String(e));
        assert.match(e.message, named);
        assert.match(e.message, /collection\.go/);
        return true;
      });
      assert.ok(!existsSync(path.join(at.dir(), helperFile)));
    });
  }
}

describe('FerretDB build patch (patchIdPushdown)', () => {
  const tree = useSqliteSource();
  const { src: source, dir } = tree;

  it('pushes the _id of any filter down in Query and Explain, through the added helper', async () => {
    await writeFile(path.join(dir(), 'collection.go'), COLLECTION);
    assert.match(await patchIdPushdown(source()), /patched/);
    const text = await readFile(path.join(dir(), 'collection.go'), 'utf8');
    assert.equal(text.split('if v, ok := paymailIDEquality(params.Filter); ok {').length - 1, 2, text);
    assert.ok(!text.includes('params.Filter.Len() == 1'), text);
    const helper = await readFile(path.join(dir(), 'paymail_id_pushdown.go'), 'utf8');
    assert.match(helper, /^package sqlite$/m);
    assert.match(helper, /func paymailIDEquality\(filter \*types\.Document\) \(any, bool\)/);
  });

  itRefuses(patchIdPushdown, /push-down patch/, 'paymail_id_pushdown.go', [
    ['the push-down changed upstream', COLLECTION.replaceAll('params.Filter.Len() == 1', 'params.Filter.Len() > 0')],
    ['only one of the two push-downs is there', COLLECTION.replace(ONE_KEY, '')],
    ['the file is missing', undefined],
  ], tree);
});

// The third patch (patchMerchantPushdown): Query and Explain try the merchantId push-down when no
// _id was pushed down, through a helper file it adds; the real build and its query plans are in
// test/integration/ferretdb-merchant-pushdown.test.ts.
const PATCHED = `package sqlite\n\nfunc (c *collection) Query() {\n\tvar whereClause string\n\n\tq += whereClause\n\tq += prepareOrderByClause(params.Sort)\n}\n\nfunc (c *collection) Explain() {\n\tvar whereClause string\n\n\torderByClause := prepareOrderByClause(params.Sort)\n\tsortPushdown := orderByClause != ""\n}\n`;

describe('FerretDB build patch (patchMerchantPushdown)', () => {
  const tree = useSqliteSource();
  const { src: source, dir } = tree;

  it('adds the merchantId push-down to Query and Explain, after the _id one', async () => {
    await writeFile(path.join(dir(), 'collection.go'), PATCHED);
    assert.match(await patchMerchantPushdown(source()), /patched/);
    const text = await readFile(path.join(dir(), 'collection.go'), 'utf8');
    assert.equal(text.split('whereClause, args = paymailScalarPushdown(params.Filter)').length - 1, 2, text);
    assert.match(text, /paymailScalarPushdown\(params\.Filter\)\n\t}\n\n\tq \+= whereClause/);
    assert.match(text, /filterPushdown = whereClause != ""\n\t}\n\n\torderByClause :=/);
    const helper = await readFile(path.join(dir(), 'paymail_scalar_pushdown.go'), 'utf8');
    assert.match(helper, /^package sqlite$/m);
    assert.match(helper, /var paymailScalarFields = \[\]string\{"merchantId"\}/);
    assert.match(helper, /func paymailScalarPushdown\(filter \*types\.Document\) \(string, \[\]any\)/);
  });

  itRefuses(patchMerchantPushdown, /merchantId push-down patch/, 'paymail_scalar_pushdown.go', [
    ['Query no longer adds its WHERE clause that way', PATCHED.replace('\tq += whereClause\n', '\tq = q + whereClause\n')],
    ['Explain changed upstream', PATCHED.replace('\torderByClause := prepareOrderByClause', '\torderBy := prepareOrderByClause')],
    ['the file is missing', undefined],
  ], tree);
});
