// The back office's acquirer page (admin): choose the sandbox or Stripe, enter Stripe's secret key
// and webhook signing secret (never shown back: only sk_test_…last4), refusals by code, other roles
// refused; the keys reach the database encrypted only.
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import mongoose from 'mongoose';
import { MerchantUser } from '../../src/db/models/merchant-user.model.ts';
import { hashPassword } from '../../src/domain/password.ts';
import { createAcquirerSettings } from '../../src/services/acquirer/acquirer-settings.ts';
import { createMerchantService } from '../../src/services/merchant.service.ts';
import { repos, useTestDatabase } from '../helpers/db.ts';
import { BoClient, MAIL_DOMAIN, startBackofficeApp, textOf, type BackofficeApp } from './backoffice-client.ts';

const SECRET_KEY = 'sk_test_51BackOfficeEnteredKey4321';

describe('back office: the acquirer page', function () {
  this.timeout(30_000);
  useTestDatabase();
  let app: BackofficeApp;
  let admin: BoClient;
  let merchantId = '';
  const settings = createAcquirerSettings({ repos, secretsKey: randomBytes(32) });

  before(async () => {
    app = await startBackofficeApp({ acquirerSettings: settings });
    const m = await createMerchantService({ repos, mailDomain: MAIL_DOMAIN }).create({ name: 'Libreria Stripe', email: 'books@stripe-books.example', locale: 'it' });
    merchantId = m.id;
    admin = new BoClient(app.base);
    assert.equal((await admin.login(m.adminEmail, m.adminPassword)).status, 303);
  });
  after(() => app?.close());

  it('shows the sandbox by default, linked from the settings, in the merchant\'s language', async () => {
    const s = await admin.get('/backoffice/settings');
    assert.match(s.html, /href="\/backoffice\/settings\/acquirer"/);
    const r = await admin.get('/backoffice/settings/acquirer');
    assert.equal(r.status, 200);
    assert.match(textOf(r.html), /Acquirer attuale: Sandbox/);
    assert.match(r.html, /id="acquirer-sandbox"[^>]* checked/);
    assert.ok(r.html.includes(`/webhooks/stripe/${merchantId}`));
  });

  it('refuses Stripe without a key, and a key that is not a secret key, changing nothing', async () => {
    for (const [form, text] of [
      [{ acquirer: 'stripe' }, /Stripe richiede la chiave segreta/],
      [{ acquirer: 'stripe', secretKey: 'pk_test_publishable123' }, /Non è una chiave segreta Stripe/],
      [{ acquirer: 'stripe', secretKey: SECRET_KEY, apiBase: 'ftp://example.com' }, /indirizzo http:\/\/ o https:\/\//],
    ] as const) {
      const r = await admin.post('/backoffice/settings/acquirer', form);
      assert.equal(r.status, 422);
      assert.match(textOf(r.html), text);
      assert.ok(!r.html.includes('pk_test_publishable123'), 'a typed secret is never echoed');
    }
    assert.equal((await repos.merchants.findById(merchantId))?.acquirer ?? 'sandbox', 'sandbox');
  });

  it('saves Stripe with its secrets encrypted; the page shows only hints and never fills the secrets in', async () => {
    const r = await admin.post('/backoffice/settings/acquirer', { acquirer: 'stripe', secretKey: SECRET_KEY, webhookSecret: 'whsec_backofficeSecret9999', apiBase: 'http://127.0.0.1:12111' });
    assert.equal(r.status, 200);
    assert.match(textOf(r.html), /Salvato: i pagamenti ora vanno a Stripe/);
    assert.ok(r.html.includes('sk_test_…4321') && r.html.includes('whsec_…9999'));
    assert.ok(!r.html.includes(SECRET_KEY) && !r.html.includes('whsec_backofficeSecret9999'));
    const raw = JSON.stringify(await mongoose.connection.collection('merchants').findOne({ _id: merchantId as never }));
    assert.doesNotMatch(raw, /sk_|backofficeSecret/);
    const m = (await repos.merchants.findById(merchantId))!;
    assert.deepEqual(settings.stripeCredentials(m), { secretKey: SECRET_KEY, webhookSecret: 'whsec_backofficeSecret9999', apiBase: 'http://127.0.0.1:12111' });

    // Saved again with empty secret fields (as the page is always shown): the stored ones stay.
    const again = await admin.post('/backoffice/settings/acquirer', { acquirer: 'stripe', secretKey: '', webhookSecret: '', apiBase: '' });
    assert.equal(again.status, 200);
    const kept = settings.stripeCredentials((await repos.merchants.findById(merchantId))!);
    assert.deepEqual(kept, { secretKey: SECRET_KEY, webhookSecret: 'whsec_backofficeSecret9999' });
  });

  it('other roles may not see or change it', async () => {
    const hash = await hashPassword('operator test password');
    await MerchantUser.create({ merchantId, email: 'op@stripe-books.example', passwordHash: hash, role: 'operator' });
    const op = new BoClient(app.base);
    assert.equal((await op.login('op@stripe-books.example', 'operator test password')).status, 303);
    assert.equal((await op.get('/backoffice/settings/acquirer')).status, 403);
    assert.equal((await op.post('/backoffice/settings/acquirer', { acquirer: 'sandbox' })).status, 403);
    assert.equal((await repos.merchants.findById(merchantId))?.acquirer, 'stripe');
  });
});
