// The seal of sealed payment requests and of the buyer's return: paymail's implementation against
// the README's merchant-side snippets (Python with hmac/hashlib, Node with node:crypto), which
// share no code with paymail. Table-driven: ASCII, UTF-8, empty values, '=' and newlines in values.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { computeSeal, sealedString, sealMatches } from '../../src/domain/seal.ts';
import { readmeSnippet } from '../helpers/readme-snippet.ts';
const KEY = 'seal_Zx8-kP_3mQ9vL2rT7wY4nB6cD1fG5hJ0';

const CASES: Array<[string, Record<string, string>]> = [
  ['a full request', {
    merchant: 'mer_abc123', reference: 'WEB-1001', amount: '12990', currency: 'EUR', description: 'Double room, 2 nights',
    email: 'anna@example.org', lang: 'it', success_url: 'https://shop.example/ok?x=1&y=2', cancel_url: 'https://shop.example/ko',
    ts: '1767225600', nonce: 'n-0001',
  }],
  ['UTF-8 text', { merchant: 'mer_x', description: 'Caffè & crème brûlée — 2×', reference: 'Ü-€-日本', ts: '1', nonce: 'ñ' }],
  ['an empty value, = and a newline inside values', { b: '', a: 'x=y', c: 'line1\nline2' }],
  ['a return', { reference: 'WEB-1001', status: 'paid', amount: '12990', currency: 'EUR', ts: '1767225999' }],
];

describe('seal canonicalisation', () => {
  it('is name=value lines sorted by name, joined with \\n, without the seal field', () => {
    assert.equal(sealedString({ seal: 'ignored', b: '2', a: '1', ts: '9' }), 'a=1\nb=2\nts=9');
  });

  it('is lower-case hex HMAC-SHA256 keyed with the UTF-8 bytes of the key', () => {
    const s = computeSeal(KEY, { a: '1' });
    assert.match(s, /^[0-9a-f]{64}$/);
    assert.ok(sealMatches([KEY], { a: '1', seal: s }));
    assert.ok(!sealMatches([KEY], { a: '2', seal: s }), 'a changed value');
    assert.ok(!sealMatches([KEY], { a: '1', b: '', seal: s }), 'an added empty field');
    assert.ok(!sealMatches([KEY], { a: '1', seal: s.toUpperCase() }), 'upper-case hex');
    assert.ok(!sealMatches([KEY], { a: '1' }), 'no seal');
    assert.ok(sealMatches(['other', KEY], { a: '1', seal: s }), 'any of the keys');
  });
});

describe('seal against the README snippets (no paymail code)', function () {
  this.timeout(20_000);
  let dir: string;
  before(async () => {
    dir = await mkdtemp(path.join(os.tmpdir(), 'paymail-seal-'));
  });
  after(() => dir && rm(dir, { recursive: true, force: true }));

  function python(fields: Record<string, string>, key: string): string {
    const script = path.join(dir, 'seal.py');
    writeFileSync(script, `${readmeSnippet('python', 'def seal(')}\nimport json, sys\nprint(seal(json.loads(sys.argv[1]), sys.argv[2]))\n`);
    // ASCII-only JSON on the command line, whatever the locale of the test machine.
    const json = JSON.stringify(fields).replace(/[\u007f-\uffff]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`);
    const r = spawnSync('python3', [script, json, key], { encoding: 'utf8' });
    assert.equal(r.status, 0, r.stderr);
    return r.stdout.trim();
  }

  function node(fields: Record<string, string>, key: string): string {
    const script = path.join(dir, 'seal.mjs');
    writeFileSync(script, `${readmeSnippet('js', 'function seal(')}\nconsole.log(seal(JSON.parse(process.argv[2]), process.argv[3]));\n`);
    const r = spawnSync(process.execPath, [script, JSON.stringify(fields), key], { encoding: 'utf8' });
    assert.equal(r.status, 0, r.stderr);
    return r.stdout.trim();
  }

  for (const [name, fields] of CASES) {
    it(`Python and Node compute paymail's seal: ${name}`, () => {
      const expected = computeSeal(KEY, fields);
      assert.equal(python(fields, KEY), expected);
      assert.equal(node(fields, KEY), expected);
      // The seal field itself is never sealed.
      assert.equal(python({ ...fields, seal: 'x' }, KEY), expected);
      assert.equal(node({ ...fields, seal: 'x' }, KEY), expected);
    });
  }
});
