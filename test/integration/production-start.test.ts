// Production start: the compiled build (`npm run build` → `node dist/main.js`) and the refusal to
// start production without MONGODB_URI, each run as a real process.
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { useTestDatabase } from '../helpers/db.ts';
import { startPaymail } from '../helpers/paymail-process.ts';

const ROOT = path.resolve(import.meta.dirname, '../..');

/** Every production variable except MONGODB_URI, each valid on its own. */
const PRODUCTION_WITHOUT_DB = {
  NODE_ENV: 'production',
  LINK_SIGNING_KEYS: 'k1:0123456789abcdef0123456789abcdef',
  PUBLIC_URL: 'https://pay.example.com',
  OUTBOUND_SMTP_URL: 'smtp://relay.example.com:587',
  SMTP_TLS_KEY_FILE: '/etc/paymail/tls.key',
  SMTP_TLS_CERT_FILE: '/etc/paymail/tls.crt',
  RECEIPT_SIGNING_KEY_FILE: '/etc/paymail/receipt.pem',
};

function run(args: string[], env: Record<string, string>): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, args, { cwd: ROOT, env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '', ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    child.once('exit', (code) => resolve({ code, stdout, stderr }));
  });
}

describe('production start', function () {
  this.timeout(240_000);
  const db = useTestDatabase();
  let dist = '';

  before(function () {
    // Inside the package (under test-output/, git-ignored) so node_modules and templates/ are found
    // the way they are from dist/.
    dist = path.join(ROOT, 'test-output', `build-${process.pid}`);
    const tsc = spawnSync(process.execPath, [path.join(ROOT, 'node_modules/typescript/bin/tsc'), '-p', 'tsconfig.build.json', '--outDir', dist], { cwd: ROOT, encoding: 'utf8' });
    // Type errors do not stop the emit (another change may be half-way); a missing output does.
    assert.ok(existsSync(path.join(dist, 'main.js')), `no ${dist}/main.js:\n${tsc.stdout}${tsc.stderr}`);
  });
  after(async () => {
    if (dist) await rm(dist, { recursive: true, force: true });
  });

  it('NODE_ENV=production without MONGODB_URI refuses to start, naming the variable (tsx and compiled)', async () => {
    for (const args of [['--import', 'tsx', 'src/main.ts'], [path.join(dist, 'main.js')]]) {
      const r = await run(args, PRODUCTION_WITHOUT_DB);
      assert.equal(r.code, 1, `${args.join(' ')}: ${r.stderr}`);
      assert.match(r.stderr, /^paymail: invalid MONGODB_URI: required when NODE_ENV=production/m);
      assert.doesNotMatch(r.stdout + r.stderr, /ferretdb/i, 'no embedded database may start');
    }
  });

  it('lists every configuration problem at once', async () => {
    const r = await run(['--import', 'tsx', 'src/main.ts'], { NODE_ENV: 'production', HTTP_PORT: 'eighty' });
    assert.equal(r.code, 1);
    for (const v of ['HTTP_PORT', 'LINK_SIGNING_KEYS', 'PUBLIC_URL', 'OUTBOUND_SMTP_URL', 'RECEIPT_SIGNING_KEY_FILE', 'MONGODB_URI']) {
      assert.match(r.stderr, new RegExp(`invalid ${v}\\b`), v);
    }
    assert.equal(r.stderr.trim().split('\n').length, 1, 'one line');
  });

  it('node dist/cli/main.js --help prints the usage', async () => {
    const r = await run([path.join(dist, 'cli/main.js'), '--help'], {});
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /^usage:\n\s+paymail merchant create/);
  });

  it('node dist/main.js serves: /healthz, /readyz and the start page rendered from templates/', async () => {
    const dataDir = await mkdtemp(path.join(os.tmpdir(), 'paymail-dist-'));
    const app = await startPaymail(
      { MONGODB_URI: db.uri(), DATA_DIR: dataDir, HTTP_PORT: '0', SMTP_SUBMISSION_PORT: '0', SMTP_MX_PORT: '0', MAIL_DOMAIN: 'paymail.test' },
      60_000,
      path.join(dist, 'main.js'),
    );
    try {
      const base = `http://127.0.0.1:${app.ports.http}`;
      assert.equal((await fetch(`${base}/healthz`)).status, 200);
      const ready = await fetch(`${base}/readyz`);
      assert.equal(ready.status, 200, await ready.text());
      const home = await fetch(`${base}/?lang=en`);
      assert.equal(home.status, 200);
      assert.match(await home.text(), /<html[^>]*lang="en"/);
      const css = await fetch(`${base}/assets/checkout.css`);
      assert.equal(css.status, 200);
    } finally {
      assert.equal(await app.stop(), 0);
      await rm(dataDir, { recursive: true, force: true });
    }
  });
});
