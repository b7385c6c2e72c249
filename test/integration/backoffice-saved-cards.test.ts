// Saved cards in the back office (issue 12 part 3): the admin's setting (off by default), the
// customer code on the order page, and the operator's "Charge saved card" (merchant-initiated):
// approved → the new order, declined → the decline on the order page, roles as in permissions.ts.
import assert from 'node:assert/strict';
import { MerchantUser } from '../../src/db/models/merchant-user.model.ts';
import { Merchant, type MerchantDoc } from '../../src/db/models/merchant.model.ts';
import { Order, type OrderDoc } from '../../src/db/models/order.model.ts';
import { CSRF_COOKIE } from '../../src/http/middleware/csrf.ts';
import { hashPassword } from '../../src/domain/password.ts';
import { createMerchantService } from '../../src/services/merchant.service.ts';
import { useTestDatabase, repos } from '../helpers/db.ts';
import { BoClient, MAIL_DOMAIN, startBackofficeApp, textOf, type BackofficeApp } from './backoffice-client.ts';

const COOKIE = `${CSRF_COOKIE}=bo-saved-cards-test-cookie-000001`;
const EXPIRY = `09/${String((new Date().getUTCFullYear() + 2) % 100).padStart(2, '0')}`;

describe('back office: saved cards', function () {
  this.timeout(30_000);
  useTestDatabase();
  let app: BackofficeApp;
  let merchant: MerchantDoc;
  const clients: Record<string, BoClient> = {};
  let seq = 0;

  before(async () => {
    app = await startBackofficeApp();
    const m = await createMerchantService({ repos, mailDomain: MAIL_DOMAIN }).create({ name: 'Palestra Forte', email: 'desk@forte.example' });
    merchant = (await Merchant.findById(m.id).lean<MerchantDoc>())!;
    for (const role of ['admin', 'operator', 'viewer'] as const) {
      await MerchantUser.create({ merchantId: merchant._id, email: `${role}@forte.example`, passwordHash: await hashPassword(`${role} password here`), role });
      clients[role] = new BoClient(app.base);
      assert.equal((await clients[role]!.login(`${role}@forte.example`, `${role} password here`)).status, 303);
    }
  });
  after(() => app?.close());

  /** An order paid on the checkout with "Save my card" ticked. */
  async function paidSaving(email: string, number: string): Promise<OrderDoc> {
    seq += 1;
    const { order, link } = await app.orders.create(merchant, { amountMinor: 3000, currency: 'EUR', reference: `GYM-${seq}`, customerEmail: email }, { key: `t:${seq}` });
    const html = await (await fetch(link, { headers: { cookie: COOKIE } })).text();
    assert.match(html, /name="saveCard"/, 'the checkbox is offered');
    const token = /name="_csrf" value="([^"]+)"/.exec(html)![1]!;
    const res = await fetch(link, {
      method: 'POST',
      redirect: 'manual',
      headers: { 'content-type': 'application/x-www-form-urlencoded', cookie: COOKIE },
      body: new URLSearchParams({ _csrf: token, number, expiry: EXPIRY, cvc: '123', holder: 'Lia Conti', saveCard: 'yes' }).toString(),
    });
    assert.equal(res.status, 303);
    const paid = (await Order.findById(order._id).lean<OrderDoc>())!;
    assert.match(paid.customerCode ?? '', /^cus_/);
    return paid;
  }

  it('the setting is off by default; an admin turns it on (operators may not)', async () => {
    const page = await clients['admin']!.get('/backoffice/settings');
    assert.match(page.html, /<input id="savedCardsEnabled" name="enabled" type="checkbox" value="yes" aria-describedby="saved-cards-hint">/, 'unticked');
    assert.equal((await clients['operator']!.post('/backoffice/settings/saved-cards', { enabled: 'yes' })).status, 403);
    const r = await clients['admin']!.post('/backoffice/settings/saved-cards', { enabled: 'yes' });
    assert.equal(r.status, 303);
    assert.equal((await Merchant.findById(merchant._id).lean<MerchantDoc>())!.savedCardsEnabled, true);
    assert.match((await clients['admin']!.get('/backoffice/settings')).html, /id="savedCardsEnabled"[^>]* checked>/);
    // The checkout caches merchants for a few seconds.
    await new Promise((r) => setTimeout(r, 5_200));
  });

  it('shows the customer code on the order; an operator charges the saved card for a new order', async () => {
    const source = await paidSaving('lia@example.org', '4242424242424242');
    const page = await clients['operator']!.get(`/backoffice/orders/${source._id}`);
    assert.match(textOf(page.html), new RegExp(`Customer code ${source.customerCode}`));
    assert.match(page.html, /<h2 id="charge-heading">Charge saved card<\/h2>/);
    const viewerPage = await clients['viewer']!.get(`/backoffice/orders/${source._id}`);
    assert.match(textOf(viewerPage.html), /Customer code/);
    assert.doesNotMatch(viewerPage.html, /charge-heading/, 'no form for a viewer');
    assert.equal((await clients['viewer']!.post(`/backoffice/orders/${source._id}/charge-saved-card`, { amount: '30.00', currency: 'EUR', reference: 'GYM-FEB' })).status, 403);

    await clients['operator']!.get(`/backoffice/orders/${source._id}`);
    const r = await clients['operator']!.post(`/backoffice/orders/${source._id}/charge-saved-card`, { amount: '30.00', currency: 'EUR', reference: 'GYM-FEB', description: 'February' });
    assert.equal(r.status, 303);
    const newId = /\/backoffice\/orders\/([^?]+)\?done=charged$/.exec(r.location)?.[1];
    assert.ok(newId && newId !== source._id, r.location);
    const charged = (await Order.findById(decodeURIComponent(newId)).lean<OrderDoc>())!;
    assert.equal(charged.status, 'paid');
    assert.equal(charged.amountMinor, 3000);
    assert.equal(charged.payment?.initiator, 'merchant');
    assert.equal(charged.customerCode, source.customerCode);
    const shown = await clients['operator']!.get(r.location);
    assert.match(textOf(shown.html), /The saved card was charged/);
    assert.match(textOf(shown.html), /merchant \(customer not present\)/);
    // The same reference again: not charged twice, the same order.
    const again = await clients['operator']!.post(`/backoffice/orders/${source._id}/charge-saved-card`, { amount: '30.00', currency: 'EUR', reference: 'GYM-FEB' });
    assert.equal(again.location, r.location);
    assert.equal(await Order.countDocuments({ merchantId: merchant._id, reference: 'GYM-FEB' }), 1);
  });

  it('a decline is shown on the order page with its reason (402)', async () => {
    const source = await paidSaving('broke@example.org', '4000000000009995');
    await clients['operator']!.get(`/backoffice/orders/${source._id}`);
    const r = await clients['operator']!.post(`/backoffice/orders/${source._id}/charge-saved-card`, { amount: '30.00', currency: 'EUR', reference: 'GYM-MAR' });
    assert.equal(r.status, 402);
    assert.match(textOf(r.html), /The card was declined: insufficient funds\./);
    const bad = await clients['operator']!.post(`/backoffice/orders/${source._id}/charge-saved-card`, { amount: 'lots', currency: 'EUR', reference: 'GYM-APR' });
    assert.equal(bad.status, 422);
  });
});
