// Back-office log-in over real HTTP against the real database: the CLI-created admin, wrong
// passwords, CSRF, lock-out with back-off (per account and per address), sliding session expiry,
// log-out, password change, and one session shared by two app instances.
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { LoginFailure } from '../../src/db/models/login-attempt.model.ts';
import { Merchant } from '../../src/db/models/merchant.model.ts';
import { MerchantUser, type Role } from '../../src/db/models/merchant-user.model.ts';
import { Session } from '../../src/db/models/session.model.ts';
import { hashPassword } from '../../src/domain/password.ts';
import { createMerchantService, type CreatedMerchant } from '../../src/services/merchant.service.ts';
import { useTestDatabase } from '../helpers/db.ts';
import { BoClient, MAIL_DOMAIN, startBackofficeApp, textOf, type BackofficeApp } from './backoffice-client.ts';
import { repos } from '../helpers/db.ts';

const MIN = 60_000;
const HOUR = 3_600_000;

describe('back office: log-in and sessions', function () {
  this.timeout(30_000);
  useTestDatabase();
  let clock = Date.parse('2026-03-02T09:00:00Z');
  const now = () => new Date(clock);
  let a: BackofficeApp;
  let b: BackofficeApp;
  let merchant: CreatedMerchant;
  let userSeq = 0;

  before(async () => {
    const auth = { lockout: { ipThreshold: 8 } };
    a = await startBackofficeApp({ now, auth });
    b = await startBackofficeApp({ now, auth });
    merchant = await createMerchantService({ repos, mailDomain: MAIL_DOMAIN }).create({ name: 'Hotel Bellavista', email: 'desk@bellavista.example' });
  });
  after(async () => {
    await a?.close();
    await b?.close();
  });
  beforeEach(async () => {
    clock += 48 * HOUR; // every test starts outside the previous one's lock-out window
  });

  async function newUser(role: Role = 'viewer', password = 'correct horse battery') {
    const email = `user${++userSeq}@bellavista.example`;
    await MerchantUser.create({ merchantId: merchant.id, email, passwordHash: await hashPassword(password), role });
    return { email, password };
  }

  it('logs the admin created by `paymail merchant create` in with the printed password', async () => {
    const c = new BoClient(a.base);
    const r = await c.login(merchant.adminEmail, merchant.adminPassword);
    assert.equal(r.status, 303);
    assert.equal(r.location, '/backoffice/orders');
    const cookie = r.setCookies.find((s) => s.startsWith('pm_bo_session='))!;
    assert.match(cookie, /; HttpOnly/);
    assert.match(cookie, /; SameSite=Lax/);
    assert.match(cookie, /; Path=\/backoffice/);
    assert.doesNotMatch(cookie, /Secure/, 'plain HTTP in development');
    const page = await c.get('/backoffice/orders');
    assert.equal(page.status, 200);
    assert.match(page.html, /desk@bellavista\.example/);
    assert.equal(page.headers.get('cache-control'), 'no-store');
    assert.doesNotMatch(page.html, /<script|style=/, 'no inline script or style (CSP)');
    // Only a hash of the token is stored.
    const token = c.cookies.get('pm_bo_session')!;
    assert.equal(await Session.exists({ _id: token }), null);
    assert.ok(await Session.exists({ _id: createHash('sha256').update(token).digest('hex') }));
  });

  it('answers a wrong password and an unknown e-mail with the same generic message', async () => {
    const u = await newUser();
    for (const [email, password] of [[u.email, 'wrong password!'], ['nobody@example.org', u.password], [u.email.toUpperCase(), 'nope']]) {
      const c = new BoClient(a.base);
      const r = await c.login(email!, password!);
      assert.equal(r.status, 401, email);
      assert.match(textOf(r.html), /Wrong e-mail or password\./);
      assert.ok(!c.cookies.has('pm_bo_session'));
    }
    assert.equal((await new BoClient(a.base).login(u.email.toUpperCase(), u.password)).status, 303, 'e-mail is case-insensitive');
  });

  it('refuses a log-in form without its CSRF token (403)', async () => {
    const u = await newUser();
    for (const token of ['', 'forged-token-forged-token-forged-token-xxxx']) {
      const c = new BoClient(a.base);
      await c.get('/backoffice/login');
      const r = await c.post('/backoffice/login', { email: u.email, password: u.password, _csrf: token });
      assert.equal(r.status, 403);
      assert.ok(!c.cookies.has('pm_bo_session'));
    }
    const noCookie = await new BoClient(a.base).post('/backoffice/login', { email: u.email, password: u.password, _csrf: 'x' });
    assert.equal(noCookie.status, 403);
  });

  it('refuses a log-in whose CSRF cookie was planted with a known value (the token is keyed, not a copy of the cookie)', async () => {
    const u = await newUser();
    // A sibling site can set cookies for the domain: a plain double-submit (field = cookie) would pass.
    const known = 'planted-by-a-sibling-subdomain-0001';
    const c = new BoClient(a.base, new Map([['pm_csrf', known], ['pm_bo_login', known]]));
    const r = await c.post('/backoffice/login', { email: u.email, password: u.password, _csrf: known });
    assert.equal(r.status, 403);
    assert.ok(!c.cookies.has('pm_bo_session'));
  });

  it('takes a form token only in the session it was issued for', async () => {
    const u = await newUser();
    const first = new BoClient(a.base);
    assert.equal((await first.login(u.email, u.password)).status, 303);
    const second = new BoClient(a.base, new Map(first.cookies));
    second.cookies.delete('pm_bo_session');
    assert.equal((await second.login(u.email, u.password)).status, 303);
    // Same browser cookie, another session: the first session's token is refused there.
    const r = await second.post('/backoffice/password', { _csrf: first.csrf, current: u.password, next: 'a new long password', confirm: 'a new long password' });
    assert.equal(r.status, 403);
  });

  it('sends anonymous visitors to the log-in page and back, never off-site', async () => {
    const u = await newUser();
    const c = new BoClient(a.base);
    const r = await c.get('/backoffice/orders?status=paid');
    assert.equal(r.status, 303);
    assert.equal(r.location, '/backoffice/login?next=%2Fbackoffice%2Forders%3Fstatus%3Dpaid');
    await c.get(r.location);
    const done = await c.post('/backoffice/login', { email: u.email, password: u.password, next: '/backoffice/orders?status=paid' });
    assert.equal(done.location, '/backoffice/orders?status=paid');
    for (const next of ['//evil.example/x', 'https://evil.example/', '/backoffice/../dev/mail', '/other']) {
      const d = new BoClient(a.base);
      await d.get('/backoffice/login');
      const res = await d.post('/backoffice/login', { email: u.email, password: u.password, next });
      assert.equal(res.location, '/backoffice/orders', next);
    }
  });

  it('locks an account after 5 failures for 1 minute, then 2, doubling; the right password waits too', async () => {
    const u = await newUser();
    const c = new BoClient(a.base);
    for (let i = 0; i < 5; i++) assert.equal((await c.login(u.email, `wrong ${i}`)).status, 401);
    const locked = await c.login(u.email, u.password);
    assert.equal(locked.status, 429);
    assert.equal(locked.headers.get('retry-after'), '60');
    assert.match(textOf(locked.html), /Too many failed attempts/);
    assert.equal(await LoginFailure.countDocuments({ email: u.email }), 5, 'attempts while locked are not counted');
    clock += MIN + 1000;
    assert.equal((await c.login(u.email, 'wrong again')).status, 401, 'lock over: the password is checked again');
    const twice = await c.login(u.email, u.password);
    assert.equal(twice.status, 429);
    assert.equal(twice.headers.get('retry-after'), '120', 'the 6th failure locks for 2 minutes');
    clock += 2 * MIN + 1000;
    assert.equal((await c.login(u.email, u.password)).status, 303);
    assert.equal(await LoginFailure.countDocuments({ email: u.email }), 0, 'a success forgives the account');
  });

  it('locks a client address that tries many accounts', async () => {
    const victim = await newUser();
    const c = new BoClient(a.base);
    for (let i = 0; i < 8; i++) assert.equal((await c.login(`guess${i}@bellavista.example`, 'password123')).status, 401);
    const r = await c.login(victim.email, victim.password);
    assert.equal(r.status, 429, 'the 8 failures from this address lock it (test threshold)');
  });

  it('counts concurrent failures without losing any (inserted documents, not $inc)', async () => {
    const u = await newUser();
    const results = await Promise.all(Array.from({ length: 6 }, () => new BoClient(a.base).login(u.email, 'wrong')));
    assert.ok(results.every((r) => r.status === 401 || r.status === 429));
    assert.equal(await LoginFailure.countDocuments({ email: u.email }), results.filter((r) => r.status === 401).length);
    assert.equal((await new BoClient(a.base).login(u.email, u.password)).status, 429);
  });

  it('shares one session between two instances, and log-out on one ends it on both', async () => {
    const u = await newUser();
    const onA = new BoClient(a.base);
    assert.equal((await onA.login(u.email, u.password)).status, 303);
    const token = onA.cookies.get('pm_bo_session')!;
    const onB = onA.on(b.base);
    assert.equal((await onB.get('/backoffice/orders')).status, 200);
    const noToken = await onB.post('/backoffice/logout', { _csrf: '' });
    assert.equal(noToken.status, 403, 'log-out needs the CSRF token too');
    const out = await onB.post('/backoffice/logout');
    assert.equal(out.status, 303);
    assert.equal(out.location, '/backoffice/login');
    // The same cookie replayed on instance A (as a browser that kept it would) no longer works.
    const replay = await new BoClient(a.base, new Map([['pm_bo_session', token]])).get('/backoffice/orders');
    assert.equal(replay.status, 303);
    assert.match(replay.location, /^\/backoffice\/login/);
  });

  it('refuses every POST without the session CSRF token', async () => {
    const u = await newUser('admin');
    const c = new BoClient(a.base);
    await c.login(u.email, u.password);
    for (const token of ['', 'x'.repeat(43)]) {
      const r = await c.post('/backoffice/password', { _csrf: token, current: u.password, next: 'a new long password', confirm: 'a new long password' });
      assert.equal(r.status, 403);
      assert.match(textOf(r.html), /This form has expired/);
    }
    assert.equal((await new BoClient(a.base).login(u.email, u.password)).status, 303, 'password unchanged');
  });

  it('slides the session expiry with use, up to the 12-hour maximum', async () => {
    const u = await newUser();
    const c = new BoClient(a.base);
    await c.login(u.email, u.password);
    clock += 1.5 * HOUR;
    assert.equal((await c.get('/backoffice/orders')).status, 200);
    clock += 1.5 * HOUR; // 3 h after log-in, 1.5 h after last use
    assert.equal((await c.get('/backoffice/orders')).status, 200);
    clock += 2 * HOUR + MIN; // idle longer than 2 h
    assert.equal((await c.get('/backoffice/orders')).status, 303);

    const busy = new BoClient(b.base);
    await busy.login(u.email, u.password);
    for (let h = 1; h <= 11; h++) {
      clock += HOUR;
      assert.equal((await busy.get('/backoffice/orders')).status, 200, `hour ${h}`);
    }
    clock += HOUR + MIN;
    assert.equal((await busy.get('/backoffice/orders')).status, 303, 'no session outlives 12 hours');
  });

  it('changes the password: current one required, minimum length, other sessions end', async () => {
    const u = await newUser('operator');
    const c = new BoClient(a.base);
    await c.login(u.email, u.password);
    const other = new BoClient(b.base);
    await other.login(u.email, u.password);
    const fresh = 'a much longer passphrase';
    const cases: Array<[Record<string, string>, RegExp]> = [
      [{ current: u.password, next: 'short', confirm: 'short' }, /at least 12 characters/],
      [{ current: u.password, next: fresh, confirm: `${fresh}!` }, /differ/],
      [{ current: 'not my password', next: fresh, confirm: fresh }, /current password is wrong/],
    ];
    for (const [form, message] of cases) {
      await c.get('/backoffice/password');
      const r = await c.post('/backoffice/password', form);
      assert.equal(r.status, 422);
      assert.match(textOf(r.html), message);
    }
    await c.get('/backoffice/password');
    const ok = await c.post('/backoffice/password', { current: u.password, next: fresh, confirm: fresh });
    assert.equal(ok.status, 303);
    assert.match(textOf((await c.get(ok.location)).html), /Your password was changed/);
    assert.equal((await other.get('/backoffice/orders')).status, 303, 'the other session ended');
    assert.equal((await new BoClient(a.base).login(u.email, u.password)).status, 401);
    assert.equal((await new BoClient(a.base).login(u.email, fresh)).status, 303);
  });

  // Issue 10 item 9 changed this on purpose: a suspended merchant's users keep the back office,
  // which says the account is suspended (test/integration/merchant-suspension.test.ts).
  it('keeps users of a suspended merchant logged in and lets them log in', async () => {
    const u = await newUser('admin');
    const c = new BoClient(a.base);
    await c.login(u.email, u.password);
    await Merchant.updateOne({ _id: merchant.id }, { $set: { status: 'suspended' } });
    try {
      const page = await c.get('/backoffice/orders');
      assert.equal(page.status, 200, 'existing session goes on');
      assert.match(page.html, /This account is suspended/);
      assert.equal((await new BoClient(a.base).login(u.email, u.password)).status, 303);
    } finally {
      await Merchant.updateOne({ _id: merchant.id }, { $set: { status: 'active' } });
    }
  });
});
