// SMTP AUTH brute force on the submission door: after 5 failures in 15 minutes from one client
// address, or against one user from anywhere, AUTH answers 454 4.7.0 after a growing delay,
// without running scrypt; logged and counted in /metrics. The failures live in the database, so
// two instances (two doors here) count together. Client addresses are distinct loopback
// addresses (127.0.0.x), bound with nodemailer's localAddress.
import assert from 'node:assert/strict';
import { Writable } from 'node:stream';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import nodemailer from 'nodemailer';
import { type SMTPServer } from 'smtp-server';
import { close, createSubmissionServer, listen } from '../../src/inbound/submission-server.ts';
import { loadSmtpTls } from '../../src/inbound/tls.ts';
import { createLogger } from '../../src/logger.ts';
import { registry } from '../../src/metrics.ts';
import { createIntakeService } from '../../src/services/intake.service.ts';
import { createMerchantService, type CreatedMerchant } from '../../src/services/merchant.service.ts';
import { createOrderService } from '../../src/services/order.service.ts';
import { createSmtpAuthThrottle } from '../../src/services/smtp-auth-throttle.service.ts';
import { useTestDatabase } from '../helpers/db.ts';
import { repos } from '../helpers/db.ts';

const MAIL_DOMAIN = 'paymail.test';
const BASE_DELAY_MS = 100;

describe('SMTP AUTH throttle (submission door)', function () {
  this.timeout(30_000);
  useTestDatabase();
  const lines: Array<Record<string, unknown>> = [];
  const logger = createLogger('info', new Writable({ write(chunk, _enc, cb) { lines.push(JSON.parse(String(chunk))); cb(); } }));
  let dataDir: string;
  const servers: SMTPServer[] = [];
  const ports: number[] = [];
  let shop: CreatedMerchant;
  /** Attacked by user name in its own test (the first test's refusals count against the shop's user). */
  let target: CreatedMerchant;
  /** The throttles' clock runs `offset` ms ahead, so a test can let the window pass. */
  let offset = 0;
  const orders = createOrderService({ repos, publicUrl: 'http://localhost:3000', mailDomain: MAIL_DOMAIN, maxLinkLifetimeDays: 60, linkKeys: [{ kid: 't1', secret: 's'.repeat(32) }] });
  const intake = createIntakeService({ repos, orders, mailDomain: MAIL_DOMAIN, maxLinkLifetimeDays: 60, logger: createLogger('silent') });

  before(async () => {
    dataDir = await mkdtemp(path.join(os.tmpdir(), 'paymail-auth-throttle-'));
    const merchants = createMerchantService({ repos, mailDomain: MAIL_DOMAIN });
    shop = await merchants.create({ name: 'Shop', email: 'owner@shop.example' });
    target = await merchants.create({ name: 'Target', email: 'owner@target.example' });
    const tls = await loadSmtpTls({ smtpTls: undefined, dataDir, production: false, hostname: MAIL_DOMAIN });
    // Two doors, each with its own throttle object: two instances on one database.
    for (let i = 0; i < 2; i++) {
      const authThrottle = createSmtpAuthThrottle({ repos, baseDelayMs: BASE_DELAY_MS, maxDelayMs: 4 * BASE_DELAY_MS, now: () => new Date(Date.now() + offset) });
      const server = createSubmissionServer({ repos, merchants, intake, mailDomain: MAIL_DOMAIN, maxMessageBytes: 64 * 1024, tls, production: false, logger, authThrottle });
      servers.push(server);
      ports.push(await listen(server, 0));
    }
  });
  after(async () => {
    for (const s of servers) await close(s);
    await intake.close();
    await rm(dataDir, { recursive: true, force: true });
  });

  /** One AUTH attempt from `from` (a loopback address); resolves with the reply code and time taken. */
  async function attempt(from: string, user: string, pass: string, door = 0): Promise<{ code: number; ms: number; text: string }> {
    const t = nodemailer.createTransport({ host: '127.0.0.1', port: ports[door], secure: false, ignoreTLS: true, localAddress: from, auth: { user, pass } });
    const started = performance.now();
    try {
      await t.verify();
      return { code: 235, ms: performance.now() - started, text: '' };
    } catch (e) {
      const err = e as { responseCode?: number; response?: string; message: string };
      return { code: err.responseCode ?? 0, ms: performance.now() - started, text: err.response ?? err.message };
    } finally {
      t.close();
    }
  }
  async function throttledCount(scope: string): Promise<number> {
    const m = await registry.getSingleMetric('paymail_smtp_auth_throttled_total')?.get();
    return (m?.values ?? []).filter((v) => v.labels.scope === scope).reduce((s, v) => s + v.value, 0);
  }

  it('answers 454 4.7.0 after 5 failures from one address, with a growing delay, logged and counted; other addresses are unaffected', async () => {
    const before = await throttledCount('address');
    // Five wrong guesses for five different users (unknown users count too), across both instances.
    for (let i = 0; i < 5; i++) assert.equal((await attempt('127.0.0.2', `guess${i}@x`, 'wrong', i % 2)).code, 535);
    const sixth = await attempt('127.0.0.2', shop.smtpUser, shop.smtpPassword);
    assert.equal(sixth.code, 454, 'even the right password waits: nothing is checked while throttled');
    assert.match(sixth.text, /4\.7\.0/);
    assert.ok(sixth.ms >= BASE_DELAY_MS, `delayed (${sixth.ms.toFixed(0)} ms)`);
    const seventh = await attempt('127.0.0.2', 'guess9@x', 'wrong', 1);
    assert.equal(seventh.code, 454);
    assert.ok(seventh.ms >= 2 * BASE_DELAY_MS, `the delay grows (${seventh.ms.toFixed(0)} ms)`);
    assert.equal(await throttledCount('address') - before, 2);
    assert.ok(lines.some((l) => l.msg === 'SMTP authentication throttled' && l.remoteAddress === '127.0.0.2' && l.scope === 'address'), 'logged');
    // Another client address is not held back.
    assert.equal((await attempt('127.0.0.3', shop.smtpUser, shop.smtpPassword)).code, 235);
  });

  it('answers 454 to attempts on one user after 5 failures from anywhere, except from an address that logged in as it before', async () => {
    // 127.0.0.1 has logged in as the shop before the attack.
    assert.equal((await attempt('127.0.0.1', target.smtpUser, target.smtpPassword)).code, 235);
    for (let i = 0; i < 5; i++) assert.equal((await attempt(`127.0.1.${10 + i}`, target.smtpUser, `wrong-${i}`)).code, 535);
    const fresh = await attempt('127.0.1.20', target.smtpUser, target.smtpPassword);
    assert.equal(fresh.code, 454, 'a new address is throttled for this user');
    assert.equal((await attempt('127.0.0.1', target.smtpUser, target.smtpPassword, 1)).code, 235, 'the merchant’s own address still gets in');
    assert.ok((await throttledCount('user')) >= 1);
  });

  it('lets the address try again once 15 minutes have passed since the failures', async () => {
    for (let i = 0; i < 5; i++) await attempt('127.0.2.1', `late${i}@x`, 'wrong');
    assert.equal((await attempt('127.0.2.1', shop.smtpUser, shop.smtpPassword)).code, 454);
    offset = 16 * 60_000;
    try {
      assert.equal((await attempt('127.0.2.1', shop.smtpUser, shop.smtpPassword)).code, 235);
    } finally {
      offset = 0;
    }
  });

  // Seen in the hostile-mail flood: connections of one merchant logging in at the same moment made
  // concurrent upserts of the same "known address" record, one failed with a duplicate key, and the
  // door answered 454 to a correct password.
  it('lets many connections of one merchant log in at the same moment (all 235)', async () => {
    const codes = await Promise.all(Array.from({ length: 12 }, (_, i) => attempt('127.0.0.1', shop.smtpUser, shop.smtpPassword, i % 2)));
    assert.deepEqual(codes.map((c) => c.code), Array(12).fill(235));
    // The same fact recorded by many at once (the scrypt bound spaces the logins above out).
    const throttle = createSmtpAuthThrottle({ repos });
    for (let round = 0; round < 5; round++) {
      await Promise.all(Array.from({ length: 8 }, () => throttle.recordSuccess(`racer${round}`, '127.0.0.9')));
    }
  });
});

