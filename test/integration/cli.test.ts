// The operator's CLI, run as a real process against the test database.
import assert from 'node:assert/strict';
import { Merchant } from '../../src/db/models/merchant.model.ts';
import { MerchantUser } from '../../src/db/models/merchant-user.model.ts';
import { verifyPassword } from '../../src/domain/password.ts';
import { createApiKeyService } from '../../src/services/api-key.service.ts';
import { repos, useTestDatabase } from '../helpers/db.ts';
import { runCli } from '../helpers/paymail-process.ts';

describe('paymail CLI', function () {
  this.timeout(60_000);
  const db = useTestDatabase();
  const env = () => ({ MONGODB_URI: db.uri(), MAIL_DOMAIN: 'paymail.test' });

  it('merchant create --json prints the credentials once and stores only hashes', async () => {
    const r = await runCli(
      ['merchant', 'create', '--name', 'Teatro Verdi', '--email', 'Box@Verdi.example', '--sender-domain', 'verdi.example',
        '--sender-domain', 'mail.verdi.example', '--currency', 'eur', '--locale', 'it', '--timezone', 'Europe/Rome',
        '--delivery', 'customer', '--webhook-url', 'https://verdi.example/hooks', '--json'],
      env(),
    );
    assert.equal(r.code, 0, r.stderr);
    const out = JSON.parse(r.stdout) as Record<string, unknown>;
    for (const k of ['id', 'alias', 'inboundAddress', 'smtpUser', 'smtpPassword', 'adminEmail', 'adminPassword', 'webhookSecret', 'sealKey']) {
      assert.equal(typeof out[k], 'string', k);
    }
    assert.equal(out.inboundAddress, `orders+${out.alias as string}@paymail.test`);
    assert.equal(out.adminEmail, 'box@verdi.example');
    assert.equal(out.currency, 'EUR');
    const m = (await Merchant.findById(out.id).lean())!;
    assert.deepEqual(m.senderDomains, ['verdi.example', 'mail.verdi.example']);
    assert.equal(m.delivery, 'customer');
    const stored = JSON.stringify(m) + JSON.stringify(await MerchantUser.find({}).lean());
    assert.ok(!stored.includes(out.smtpPassword as string), 'SMTP password stored in clear');
    assert.ok(!stored.includes(out.adminPassword as string), 'admin password stored in clear');
    assert.ok(await verifyPassword(out.smtpPassword as string, m.smtpPasswordHash));
    const admin = (await MerchantUser.findOne({ merchantId: String(out.id) }).lean())!;
    assert.equal(admin.role, 'admin');
    assert.ok(await verifyPassword(out.adminPassword as string, admin.passwordHash));
  });

  it('merchant list --json lists merchants without secrets', async () => {
    const r = await runCli(['merchant', 'list', '--json'], env());
    assert.equal(r.code, 0, r.stderr);
    const list = JSON.parse(r.stdout) as Array<Record<string, unknown>>;
    assert.equal(list.length, 1);
    assert.equal(list[0]!.name, 'Teatro Verdi');
    assert.ok(!('smtpPassword' in list[0]!) && !('smtpPasswordHash' in list[0]!) && !('webhookSecret' in list[0]!));
    assert.ok(!('sealKey' in list[0]!) && !('previousSealKey' in list[0]!));
  });

  it('merchant rotate-seal-key prints the new key; the old one stays valid for 24 hours', async () => {
    const before = (await Merchant.findOne({}).lean())!;
    const r = await runCli(['merchant', 'rotate-seal-key', before._id], env());
    assert.equal(r.code, 0, r.stderr);
    const key = r.stdout.trim();
    assert.match(key, /^seal_[A-Za-z0-9_-]{32}$/);
    const after = (await Merchant.findById(before._id).lean())!;
    assert.equal(after.sealKey, key);
    assert.equal(after.previousSealKey, before.sealKey);
    const grace = after.previousSealKeyUntil!.getTime() - Date.now();
    assert.ok(grace > 23.9 * 3600_000 && grace <= 24 * 3600_000, `grace ${grace} ms`);
    const json = await runCli(['merchant', 'rotate-seal-key', before._id, '--json'], env());
    assert.equal(json.code, 0, json.stderr);
    const out = JSON.parse(json.stdout) as Record<string, unknown>;
    assert.equal(out.id, before._id);
    assert.match(out.sealKey as string, /^seal_/);
    assert.equal(typeof out.previousValidUntil, 'string');
  });

  it('apikey create --json prints { id, key } once and stores only its hash; list shows it; revoke ends it', async () => {
    const merchant = (await Merchant.findOne({}).lean())!;
    const r = await runCli(['apikey', 'create', '--merchant', merchant._id, '--read-only', '--json'], env());
    assert.equal(r.code, 0, r.stderr);
    const out = JSON.parse(r.stdout) as { id: string; key: string; readOnly: boolean };
    assert.match(out.id, /^ak_[0-9A-Za-z]{16}$/);
    assert.match(out.key, /^pm_[0-9A-Za-z]{16}_[0-9A-Za-z]{32}$/);
    assert.equal(out.readOnly, true);
    const keys = createApiKeyService({ repos });
    const caller = await keys.authenticate(`Bearer ${out.key}`);
    assert.equal(caller.merchant._id, merchant._id);
    assert.equal(caller.key.readOnly, true);
    const stored = JSON.stringify(await repos.apiKeys.listByMerchant(merchant._id));
    assert.ok(!stored.includes(out.key.slice(20)), 'the key is stored in clear');

    const list = await runCli(['apikey', 'list', '--merchant', merchant._id, '--json'], env());
    assert.equal(list.code, 0, list.stderr);
    const rows = JSON.parse(list.stdout) as Array<Record<string, unknown>>;
    assert.deepEqual(rows.map((k) => [k.id, k.readOnly, k.revoked]), [[out.id, true, false]]);
    assert.ok(!list.stdout.includes(out.key.slice(20)));

    const revoke = await runCli(['apikey', 'revoke', out.id], env());
    assert.equal(revoke.code, 0, revoke.stderr);
    await assert.rejects(keys.authenticate(`Bearer ${out.key}`), { code: 'API_KEY_INVALID' });

    const plain = await runCli(['apikey', 'create', '--merchant', merchant._id], env());
    assert.equal(plain.code, 0, plain.stderr);
    assert.match(plain.stdout.trim(), /^pm_[0-9A-Za-z]{16}_[0-9A-Za-z]{32}$/);
    assert.equal((await keys.authenticate(`Bearer ${plain.stdout.trim()}`)).key.readOnly, false);

    for (const [args, re, code] of [
      [['apikey', 'create', '--json'], /--merchant ID is required/, 2],
      [['apikey', 'create', '--merchant', 'mer_nobody', '--json'], /no merchant mer_nobody/, 1],
      [['apikey', 'revoke', 'ak_nothing'], /no API key ak_nothing/, 1],
    ] as Array<[string[], RegExp, number]>) {
      const bad = await runCli(args, env());
      assert.equal(bad.code, code, args.join(' '));
      assert.match(bad.stderr, re);
      assert.equal(bad.stdout, '');
    }
  });

  const failures: Array<[string[], RegExp, number]> = [
    [['merchant', 'create', '--email', 'a@b.example', '--json'], /--name is required/, 2],
    [['merchant', 'create', '--name', 'X', '--email', 'nope', '--json'], /email: expected an e-mail address/, 1],
    [['merchant', 'create', '--name', 'X', '--email', 'x@y.example', '--currency', 'EURO'], /currency/, 1],
    [['merchant', 'create', '--name', 'X', '--email', 'x@y.example', '--delivery', 'fax'], /delivery/, 1],
    [['merchant', 'create', '--name', 'X', '--email', 'box@verdi.example'], /already has a back-office log-in/, 1],
    [['merchant', 'create', '--name', 'X', '--bogus'], /bogus/, 2],
    // Server-side request forgery: the operator's command refuses what the back office refuses.
    [['merchant', 'create', '--name', 'X', '--email', 'x@ssrf.example', '--webhook-url', 'http://169.254.169.254/latest'], /169\.254\.169\.254 is a link-local address/, 1],
    [['merchant', 'create', '--name', 'X', '--email', 'x@ssrf.example', '--webhook-url', 'http://[::1]:8080/hook'], /::1 is a loopback address/, 1],
    [['merchant', 'delete'], /unknown command/, 2],
    [['merchant', 'rotate-seal-key'], /give one merchant id/, 2],
    [['merchant', 'rotate-seal-key', 'mer_nobody'], /no such merchant/, 1],
  ];
  for (const [args, re, code] of failures) {
    it(`exits ${code} with one line for: ${args.join(' ')}`, async () => {
      const r = await runCli(args, env());
      assert.equal(r.code, code);
      assert.match(r.stderr.trim(), re);
      assert.equal(r.stderr.trim().split('\n').length, 1);
      assert.equal(r.stdout, '');
    });
  }

  it('stops with a one-line message naming a wrong environment variable', async () => {
    const r = await runCli(['merchant', 'list'], { ...env(), HTTP_PORT: 'abc' });
    assert.equal(r.code, 1);
    assert.match(r.stderr, /^paymail: invalid HTTP_PORT/);
  });
});
