// Admin pages: settings (saved, or refused field by field with nothing changed), webhook secret
// rotation (a webhook sent during the grace period verifies with the new AND the old secret, after
// it only with the new one), users (add with a temporary password that logs in, change role,
// remove; never oneself, never the last admin), and the webhook log with replay (same event id
// and body delivered again).
import { WebhookDue } from '../../src/db/due-queue.ts';
import assert from 'node:assert/strict';
import { createHmac, timingSafeEqual } from 'node:crypto';
import http from 'node:http';
import { type AddressInfo } from 'node:net';
import { createWebhookWorker } from '../../src/jobs/webhook-worker.ts';
import { MerchantUser } from '../../src/db/models/merchant-user.model.ts';
import { Merchant, type MerchantDoc } from '../../src/db/models/merchant.model.ts';
import { Session } from '../../src/db/models/session.model.ts';
import { WebhookDelivery } from '../../src/db/models/webhook.model.ts';
import { isAppError } from '../../src/domain/errors.ts';
import { hashPassword } from '../../src/domain/password.ts';
import { createLogger } from '../../src/logger.ts';
import { createEventsService } from '../../src/services/events.service.ts';
import { createMerchantAdminService, WEBHOOK_SECRET_GRACE_MS } from '../../src/services/merchant-admin.service.ts';
import { createMerchantService } from '../../src/services/merchant.service.ts';
import { useTestDatabase } from '../helpers/db.ts';
import { BoClient, MAIL_DOMAIN, MAX_DAYS, startBackofficeApp, textOf, type BackofficeApp } from './backoffice-client.ts';
import { repos } from '../helpers/db.ts';

/** What a merchant's verifier does: any v1= in the header that matches HMAC(secret, "t.body"). */
function verifies(header: string, body: string, secret: string): boolean {
  const parts = header.split(',').map((p) => p.split('=', 2) as [string, string]);
  const t = parts.find(([k]) => k === 't')?.[1];
  if (!t) return false;
  const want = createHmac('sha256', secret).update(`${t}.${body}`).digest();
  return parts.filter(([k]) => k === 'v1').some(([, v]) => {
    const got = Buffer.from(v, 'hex');
    return got.length === want.length && timingSafeEqual(got, want);
  });
}

describe('back office: settings, users, webhooks', function () {
  this.timeout(30_000);
  useTestDatabase();
  let app: BackofficeApp;
  let merchant: MerchantDoc;
  let admin: BoClient;
  let adminPassword: string;
  let receiverUrl: string;
  const received: Array<{ headers: http.IncomingHttpHeaders; body: string }> = [];
  const receiver = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      received.push({ headers: req.headers, body: Buffer.concat(chunks).toString('utf8') });
      res.end('ok');
    });
  });
  // The receiver listens on 127.0.0.1: this app and worker run as with WEBHOOK_ALLOW_PRIVATE=true.
  const worker = () => createWebhookWorker({ repos, logger: createLogger('silent'), timeoutMs: 2_000, backoff: () => 10_000, allowPrivateTargets: true });
  const reload = async () => (await Merchant.findById(merchant._id).lean<MerchantDoc>())!;

  before(async () => {
    await new Promise<void>((r) => receiver.listen(0, '127.0.0.1', r));
    receiverUrl = `http://127.0.0.1:${(receiver.address() as AddressInfo).port}/hooks`;
    app = await startBackofficeApp({ webhookAllowPrivate: true });
    const m = await createMerchantService({ repos, mailDomain: MAIL_DOMAIN }).create({ name: 'Teatro Verdi', email: 'box@verdi.example' });
    merchant = (await Merchant.findById(m.id).lean<MerchantDoc>())!;
    adminPassword = m.adminPassword;
    admin = new BoClient(app.base);
    assert.equal((await admin.login(m.adminEmail, adminPassword)).status, 303);
  });
  after(async () => {
    await app?.close();
    receiver.closeAllConnections();
    await new Promise((r) => receiver.close(r));
  });

  describe('settings', () => {
    it('saves every setting', async () => {
      const page = await admin.get('/backoffice/settings');
      assert.match(page.html, /name="recapHour"[^>]*value="7"/, 'recap hour defaults to 7');
      const r = await admin.post('/backoffice/settings', {
        delivery: 'customer',
        linkLifetimeDays: '14',
        locale: 'it',
        timezone: 'America/New_York',
        recapHour: '9',
        senderDomains: 'Verdi.example\nbox.teatro.example, verdi.example',
        webhookUrl: receiverUrl,
      });
      assert.equal(r.status, 303);
      assert.match(r.location, /\?done=settingsSaved$/);
      const m = await reload();
      assert.deepEqual(
        { delivery: m.delivery, days: m.linkLifetimeDays, locale: m.locale, tz: m.timezone, hour: m.recapHour, domains: m.senderDomains, url: m.webhookUrl },
        { delivery: 'customer', days: 14, locale: 'it', tz: 'America/New_York', hour: 9, domains: ['verdi.example', 'box.teatro.example'], url: receiverUrl },
      );
      // The back office now speaks the merchant's new language; back to English for the tests below.
      assert.match(textOf((await admin.get(r.location)).html), /Le impostazioni sono state salvate/);
      await Merchant.updateOne({ _id: merchant._id }, { $set: { locale: 'en' } });
    });

    const bad: Array<[string, Record<string, string>, RegExp]> = [
      ['lifetime 0', { linkLifetimeDays: '0' }, /link lifetime must be 1 to 60 days/],
      ['lifetime over the maximum', { linkLifetimeDays: String(MAX_DAYS + 1) }, /link lifetime must be 1 to 60 days/],
      ['unknown time zone', { timezone: 'Mars/Olympus' }, /Unknown time zone/],
      ['recap hour 24', { recapHour: '24' }, /recap hour must be 0 to 23/],
      ['recap hour text', { recapHour: 'seven' }, /recap hour must be 0 to 23/],
      ['locale', { locale: 'xx' }, /Choose a language/],
      ['delivery', { delivery: 'pigeon' }, /Choose where pay-links go/],
      ['domain', { senderDomains: 'not a domain!' }, /not a domain name/],
      ['webhook URL', { webhookUrl: 'ftp://example.org/x' }, /must start with https/],
    ];
    for (const [name, change, message] of bad) {
      it(`refuses ${name} (422) and changes nothing`, async () => {
        const before = await reload();
        const r = await admin.post('/backoffice/settings', {
          delivery: 'merchant', linkLifetimeDays: '7', locale: 'en', timezone: 'Europe/Rome', recapHour: '6', senderDomains: '', webhookUrl: '', ...change,
        });
        assert.equal(r.status, 422);
        assert.match(textOf(r.html), message);
        assert.deepEqual(await reload(), before);
      });
    }
  });

  describe('webhook URL targets (server-side request forgery)', () => {
    let strict: BackofficeApp;
    let client: BoClient;
    before(async () => {
      strict = await startBackofficeApp(); // WEBHOOK_ALLOW_PRIVATE unset
      client = new BoClient(strict.base);
      assert.equal((await client.login('box@verdi.example', adminPassword)).status, 303);
    });
    after(async () => strict?.close());

    const refused: Array<[string, string, RegExp]> = [
      ['loopback', 'http://127.0.0.1:8080/hooks', /refused: 127\.0\.0\.1 is a loopback address/],
      ['IPv6 loopback', 'http://[::1]/hooks', /refused: ::1 is a loopback address/],
      ['cloud metadata', 'http://169.254.169.254/latest/meta-data/', /refused: 169\.254\.169\.254 is a link-local address/],
      ['RFC 1918', 'https://192.168.0.10/hooks', /refused: 192\.168\.0\.10 is a private network address/],
      ['IPv6 unique-local', 'https://[fd00::1]/hooks', /refused: fd00::1 is a unique-local IPv6 address/],
      ['multicast', 'http://224.0.0.1/hooks', /refused: 224\.0\.0\.1 is a multicast address/],
      ['unspecified', 'http://0.0.0.0:3000/hooks', /refused: 0\.0\.0\.0 is the unspecified address/],
      ['a decimal spelling of loopback', 'http://2130706433/hooks', /refused: 127\.0\.0\.1 is a loopback address/],
      ['a name resolving to loopback', 'http://localhost:3000/hooks', /refused: localhost resolves to (127\.0\.0\.1|::1), which is a loopback address/],
    ];
    for (const [name, webhookUrl, message] of refused) {
      it(`refuses ${name} (422), says why and changes nothing`, async () => {
        const before = await reload();
        const r = await client.post('/backoffice/settings', {
          delivery: 'merchant', linkLifetimeDays: '7', locale: 'en', timezone: 'Europe/Rome', recapHour: '6', senderDomains: '', webhookUrl,
        });
        assert.equal(r.status, 422);
        assert.match(textOf(r.html), message);
        assert.match(textOf(r.html), /webhooks go only to public Internet addresses/);
        assert.deepEqual(await reload(), before);
      });
    }

    it('accepts a public address', async () => {
      const before = await reload();
      try {
        const r = await client.post('/backoffice/settings', {
          delivery: 'merchant', linkLifetimeDays: '7', locale: 'en', timezone: 'Europe/Rome', recapHour: '7', senderDomains: '', webhookUrl: 'https://93.184.215.14/hooks',
        });
        assert.equal(r.status, 303);
        assert.equal((await reload()).webhookUrl, 'https://93.184.215.14/hooks');
      } finally {
        await Merchant.replaceOne({ _id: merchant._id }, before); // the tests below deliver to the receiver
      }
    });
  });

  describe('webhook secret rotation', () => {
    it('shows the new secret once; during the grace period both secrets verify, after it only the new one', async () => {
      const oldSecret = (await reload()).webhookSecret;
      const r = await admin.post('/backoffice/settings/webhook-secret');
      assert.equal(r.status, 200);
      const shown = /<code>(whsec_[\w-]+)<\/code>/.exec(r.html)?.[1];
      assert.ok(shown, 'new secret shown');
      const m = await reload();
      assert.equal(m.webhookSecret, shown);
      assert.equal(m.previousWebhookSecret, oldSecret);
      assert.ok(Math.abs(m.previousSecretUntil!.getTime() - (Date.now() + WEBHOOK_SECRET_GRACE_MS)) < 60_000);
      assert.doesNotMatch((await admin.get('/backoffice/settings')).html, new RegExp(shown), 'shown only once');
      assert.match(textOf((await admin.get('/backoffice/settings')).html), /previous secret is still valid until/);

      const events = createEventsService({ repos });
      const order = (await app.orders.create(m, { amountMinor: 500, currency: 'EUR', reference: 'ROT-1' }, { key: 'rot:1' })).order;
      received.length = 0;
      await events.orderCancelled(order, m);
      assert.equal(await worker().runOnce(), 1);
      const during = received[0]!;
      const header = String(during.headers['paymail-signature']);
      assert.equal(header.match(/v1=/g)?.length, 2);
      assert.ok(verifies(header, during.body, shown), 'new secret verifies');
      assert.ok(verifies(header, during.body, oldSecret), 'old secret verifies during the grace period');
      assert.ok(!verifies(header, during.body, 'whsec_someone-else'), 'a wrong secret does not');

      // Grace period over.
      await Merchant.updateOne({ _id: m._id }, { $set: { previousSecretUntil: new Date(Date.now() - 1000) } });
      received.length = 0;
      await events.orderExpired(order, m);
      assert.equal(await worker().runOnce(), 1);
      const afterGrace = received[0]!;
      const header2 = String(afterGrace.headers['paymail-signature']);
      assert.equal(header2.match(/v1=/g)?.length, 1);
      assert.ok(verifies(header2, afterGrace.body, shown));
      assert.ok(!verifies(header2, afterGrace.body, oldSecret), 'old secret no longer verifies');
    });
  });

  describe('webhook log', () => {
    it('lists deliveries with status and attempts, and replays one with the same event id and body', async () => {
      const m = await reload();
      const order = (await app.orders.create(m, { amountMinor: 700, currency: 'EUR', reference: 'LOG-1' }, { key: 'log:1' })).order;
      const ev = (await createEventsService({ repos }).orderCancelled(order, m))!;
      received.length = 0;
      assert.equal(await worker().runOnce(), 1);
      const page = await admin.get('/backoffice/webhooks');
      assert.equal(page.status, 200);
      const row = new RegExp(`data-event="${ev.id}"[\\s\\S]*?</tr>`).exec(page.html)?.[0] ?? '';
      assert.match(textOf(row), /order\.cancelled/);
      assert.match(textOf(row), /delivered/);
      assert.match(textOf(row), /HTTP 200/);
      const first = received[0]!;

      const r = await admin.post(`/backoffice/webhooks/${ev.id}/replay`);
      assert.equal(r.status, 303);
      assert.match(r.location, /\?done=replayed$/);
      assert.equal((await WebhookDelivery.findById(ev.id).lean())!.status, 'pending');
      // Back in the worker's due queue: a long-running worker finds it without a full scan.
      assert.equal(await WebhookDue.countDocuments({ _id: ev.id }), 1);
      received.length = 0;
      assert.equal(await worker().runOnce(), 1);
      assert.equal(received.length, 1);
      assert.equal(received[0]!.headers['paymail-event-id'], ev.id);
      assert.equal(received[0]!.body, first.body);
      const d = (await WebhookDelivery.findById(ev.id).lean())!;
      assert.equal(d.status, 'delivered');
      assert.equal(d.attempts, 2);
      assert.equal(await WebhookDue.countDocuments({ _id: ev.id }), 0, 'delivered: out of the due queue');
      assert.equal((await admin.post('/backoffice/webhooks/evt_unknown/replay')).status, 404);
    });
  });

  describe('users', () => {
    it('adds a user whose temporary password logs in, changes the role, removes the user (and ends their sessions)', async () => {
      const r = await admin.post('/backoffice/users', { email: 'Cashier@Verdi.example', role: 'operator' });
      assert.equal(r.status, 201);
      const temp = /class="temp-password">([^<]+)</.exec(r.html)?.[1];
      assert.ok(temp && temp.length >= 12, 'temporary password shown');
      assert.doesNotMatch((await admin.get('/backoffice/users')).html, new RegExp(temp!), 'shown only once');
      const stored = (await MerchantUser.findOne({ email: 'cashier@verdi.example' }).lean())!;
      assert.equal(stored.role, 'operator');
      assert.ok(!stored.passwordHash.includes(temp!));

      const cashier = new BoClient(app.base);
      assert.equal((await cashier.login('cashier@verdi.example', temp!)).status, 303);
      assert.equal((await cashier.get('/backoffice/orders/new')).status, 200, 'operator may create links');

      const role = await admin.post(`/backoffice/users/${stored._id}/role`, { role: 'viewer' });
      assert.equal(role.status, 303);
      assert.equal((await cashier.get('/backoffice/orders/new')).status, 403, 'viewer may not, at once');

      assert.equal((await admin.post('/backoffice/users', { email: 'cashier@verdi.example', role: 'viewer' })).status, 409);
      assert.equal((await admin.post('/backoffice/users', { email: 'nobody', role: 'viewer' })).status, 422);
      assert.equal((await admin.post('/backoffice/users', { email: 'x@verdi.example', role: 'root' })).status, 422);

      const rm = await admin.post(`/backoffice/users/${stored._id}/remove`);
      assert.equal(rm.status, 303);
      assert.equal(await MerchantUser.countDocuments({ _id: stored._id }), 0);
      assert.equal(await Session.countDocuments({ userId: String(stored._id) }), 0);
      assert.equal((await cashier.get('/backoffice/orders')).status, 303, 'their session ended');
    });

    it('never changes or removes oneself; never leaves the merchant without an admin', async () => {
      const me = (await MerchantUser.findOne({ merchantId: merchant._id, role: 'admin' }).lean())!;
      for (const action of ['role', 'remove']) {
        const r = await admin.post(`/backoffice/users/${me._id}/${action}`, { role: 'viewer' });
        assert.equal(r.status, 409, action);
        assert.match(textOf(r.html), /cannot change or remove your own account/);
      }
      assert.equal((await MerchantUser.findById(me._id).lean())!.role, 'admin');

      // The last-admin rule, with another user as actor (the page never offers it for oneself).
      const svc = createMerchantAdminService({ repos, maxLinkLifetimeDays: MAX_DAYS });
      const other = await MerchantUser.create({ merchantId: merchant._id, email: 'second@verdi.example', passwordHash: await hashPassword('second admin pw'), role: 'viewer' });
      for (const attempt of [() => svc.changeRole(merchant, String(other._id), String(me._id), 'viewer'), () => svc.removeUser(merchant, String(other._id), String(me._id))]) {
        await assert.rejects(attempt(), (e: unknown) => isAppError(e, 'USER_LAST_ADMIN'));
      }
      // With a second admin, the first may go.
      await svc.changeRole(merchant, String(me._id), String(other._id), 'admin');
      await svc.changeRole(merchant, String(other._id), String(me._id), 'operator');
      assert.equal((await MerchantUser.findById(me._id).lean())!.role, 'operator');
      await svc.changeRole(merchant, String(other._id), String(me._id), 'admin');
    });

    it("never touches another merchant's users", async () => {
      const o = await createMerchantService({ repos, mailDomain: MAIL_DOMAIN }).create({ name: 'Other', email: 'o@other.example' });
      const theirs = (await MerchantUser.findOne({ merchantId: o.id }).lean())!;
      assert.equal((await admin.post(`/backoffice/users/${theirs._id}/remove`)).status, 404);
      assert.equal((await admin.post(`/backoffice/users/${theirs._id}/role`, { role: 'viewer' })).status, 404);
      assert.equal((await MerchantUser.findById(theirs._id).lean())!.role, 'admin');
      assert.doesNotMatch((await admin.get('/backoffice/users')).html, /o@other\.example/);
    });
  });
});
