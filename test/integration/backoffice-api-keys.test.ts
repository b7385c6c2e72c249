// Back office: the server API's keys (admin). The list shows the keys' first characters, never a
// key; a new key is shown once, on the answer to its creation, and works against /api/v1 (a
// read-only one only reads); revoking one ends it at once; another merchant's key cannot be
// revoked; other roles get 403; a POST without the session's CSRF token changes nothing.
import assert from 'node:assert/strict';
import { MerchantUser } from '../../src/db/models/merchant-user.model.ts';
import { hashPassword } from '../../src/domain/password.ts';
import { createApiKeyService } from '../../src/services/api-key.service.ts';
import { createMerchantService } from '../../src/services/merchant.service.ts';
import { repos, useTestDatabase } from '../helpers/db.ts';
import { BoClient, MAIL_DOMAIN, startBackofficeApp, textOf, type BackofficeApp } from './backoffice-client.ts';

const KEY = /pm_[0-9A-Za-z]{16}_[0-9A-Za-z]{32}/g;

describe('back office: API keys', function () {
  this.timeout(60_000);
  useTestDatabase();
  let app: BackofficeApp;
  let admin: BoClient;
  let merchantId: string;
  let otherMerchantId: string;
  const keys = createApiKeyService({ repos });

  before(async () => {
    app = await startBackofficeApp();
    const merchants = createMerchantService({ repos, mailDomain: MAIL_DOMAIN });
    const m = await merchants.create({ name: 'Teatro Verdi', email: 'box@verdi.example' });
    merchantId = m.id;
    otherMerchantId = (await merchants.create({ name: 'Other Shop', email: 'shop@other.example' })).id;
    admin = new BoClient(app.base);
    assert.equal((await admin.login(m.adminEmail, m.adminPassword)).status, 303);
    await MerchantUser.create({ merchantId, email: 'op@verdi.example', passwordHash: await hashPassword('operator password 1'), role: 'operator' });
  });
  after(() => app?.close());

  it('creates a key shown once, lists it without the key, and revokes it', async () => {
    const empty = await admin.get('/backoffice/api-keys');
    assert.equal(empty.status, 200);
    assert.match(textOf(empty.html), /No API keys yet/);
    assert.match(empty.html, /href="\/backoffice\/api-keys"/, 'in the navigation');

    const made = await admin.post('/backoffice/api-keys', { label: 'web shop', readOnly: '1' });
    assert.equal(made.status, 201);
    const shown = [...new Set(made.html.match(KEY))];
    assert.equal(shown.length, 1, 'the new key is on the page once');
    const key = shown[0]!;
    const caller = await keys.authenticate(`Bearer ${key}`);
    assert.equal(caller.merchant._id, merchantId);
    assert.equal(caller.key.readOnly, true);
    assert.equal(caller.key.label, 'web shop');
    assert.equal(caller.key.createdBy, 'box@verdi.example');

    const list = await admin.get('/backoffice/api-keys');
    assert.equal(list.html.match(KEY), null, 'never the key again');
    assert.match(list.html, new RegExp(`data-key="${caller.key.id}"`));
    assert.match(textOf(list.html), /web shop.*read-only.*active/);

    const revoked = await admin.post(`/backoffice/api-keys/${caller.key.id}/revoke`);
    assert.equal(revoked.status, 200);
    assert.match(textOf(revoked.html), new RegExp(`API key ${caller.key.id} was revoked`));
    await assert.rejects(keys.authenticate(`Bearer ${key}`), { code: 'API_KEY_INVALID' });
    assert.match(textOf(revoked.html), /revoked/);
  });

  it("cannot revoke another merchant's key (404) and refuses a POST without the CSRF token", async () => {
    const foreign = await keys.create(otherMerchantId);
    const r = await admin.post(`/backoffice/api-keys/${foreign.id}/revoke`);
    assert.equal(r.status, 404);
    assert.match(textOf(r.html), /There is no such API key/);
    assert.equal((await repos.apiKeys.byId(foreign.id))!.revoked, false);

    const before = (await keys.list(merchantId)).length;
    const noCsrf = await admin.request('POST', '/backoffice/api-keys', { label: 'x' });
    assert.equal(noCsrf.status, 403);
    assert.equal((await keys.list(merchantId)).length, before);
  });

  it('is for admins only', async () => {
    const op = new BoClient(app.base);
    assert.equal((await op.login('op@verdi.example', 'operator password 1')).status, 303);
    const orders = await op.get('/backoffice/orders');
    assert.doesNotMatch(orders.html, /href="\/backoffice\/api-keys"/);
    assert.equal((await op.get('/backoffice/api-keys')).status, 403);
    const before = (await keys.list(merchantId)).length;
    assert.equal((await op.post('/backoffice/api-keys', { label: 'x' })).status, 403);
    assert.equal((await keys.list(merchantId)).length, before);
  });

});
