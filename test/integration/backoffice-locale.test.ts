// The back office speaks the merchant’s language unless a user chose their own: an Italian merchant's pages after log-in (orders,
// an order with its history, settings, card by phone) are in Italian, with Italian dates and amounts, and no
// translation key reaches the page. The log-in page, before anyone is known, follows the browser.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { Merchant, type MerchantDoc } from '../../src/db/models/merchant.model.ts';
import { createMerchantAdminService } from '../../src/services/merchant-admin.service.ts';
import { createMerchantService } from '../../src/services/merchant.service.ts';
import { useTestDatabase } from '../helpers/db.ts';
import { BoClient, MAIL_DOMAIN, startBackofficeApp, textOf, type BackofficeApp } from './backoffice-client.ts';
import { repos } from '../helpers/db.ts';

const CARD = { number: '4242424242424242', expiry: '12/39', cvc: '123', holder: 'Anna Rossi', email: 'anna@example.org' };

function keys(obj: unknown, prefix = ''): string[] {
  if (!obj || typeof obj !== 'object') return [prefix];
  return Object.entries(obj).flatMap(([k, v]) => keys(v, prefix ? `${prefix}.${k}` : k));
}
const LOCALE_KEYS = new Set(keys(JSON.parse(readFileSync(path.resolve('templates/locales/en/backoffice.json'), 'utf8'))));

/** Keys of the back-office locale file that appear as such in the page (text or attributes). */
const rawKeys = (html: string) => [...html.matchAll(/\b[A-Za-z]+(\.[\w-]+)+\b/g)].map((m) => m[0]).filter((k) => LOCALE_KEYS.has(k));

describe('back office: the merchant’s language', function () {
  this.timeout(30_000);
  useTestDatabase();
  let app: BackofficeApp;
  let merchant: MerchantDoc;
  let client: BoClient;
  let orderId = '';
  let openId = '';

  before(async () => {
    app = await startBackofficeApp();
    const m = await createMerchantService({ repos, mailDomain: MAIL_DOMAIN }).create({
      name: 'Albergo Bellavista',
      email: 'reception@bellavista.example',
      locale: 'it',
      timezone: 'Europe/Rome',
    });
    merchant = (await Merchant.findById(m.id).lean<MerchantDoc>())!;
    const { order } = await app.orders.create(merchant, { amountMinor: 1_234_500, currency: 'EUR', reference: 'BV-1', description: 'Suite, una settimana' }, { key: 'lc:1' });
    assert.equal((await app.checkout.pay({ order, merchant }, CARD, '127.0.0.2')).kind, 'paid');
    openId = (await app.orders.create(merchant, { amountMinor: 9_900, currency: 'EUR', reference: 'BV-2' }, { key: 'lc:2' })).order._id;
    orderId = order._id;
    client = new BoClient(app.base);
    assert.equal((await client.login(m.adminEmail, m.adminPassword)).status, 303);
  });
  after(() => app?.close());

  const pages: Array<{ name: string; path: () => string; italian: string[]; english: string[] }> = [
    {
      name: 'orders list',
      path: () => '/backoffice/orders',
      italian: ['Ordini', 'Cerca ordini', 'Riferimento', 'Importo', 'Stato', 'Pagato', 'Aperto', 'Impostazioni', 'Esci', '12.345,00 €'],
      english: ['Orders', 'Search orders', 'Reference', 'Amount', 'Paid', 'Settings', 'Log out'],
    },
    {
      name: 'order detail',
      path: () => `/backoffice/orders/${orderId}`,
      italian: ['Ordine BV-1', 'Dettagli', 'Cronologia', 'Pagamento approvato', 'Rimborsa', 'Link di pagamento', '12.345,00 €'],
      english: ['Order BV-1', 'Details', 'History', 'Payment approved', 'Refund', 'Pay-link'],
    },
    {
      name: 'settings',
      path: () => '/backoffice/settings',
      italian: ['Impostazioni', 'Fuso orario', 'Salva le impostazioni', 'Webhook'],
      english: ['Settings', 'Time zone', 'Save settings'],
    },
    {
      name: 'card by phone',
      path: () => `/backoffice/orders/${openId}/moto`,
      italian: ['Incassa con carta per telefono', 'Numero della carta', 'Scadenza (MM/AA)', 'MM/AA', 'Addebita 99,00 €'],
      english: ['Card number', 'Charge'],
    },
  ];

  for (const p of pages) {
    it(`${p.name}: Italian words, Italian numbers, no raw keys`, async () => {
      const r = await client.get(p.path());
      assert.equal(r.status, 200);
      assert.match(r.html, /<html lang="it">/);
      const text = textOf(r.html);
      for (const word of p.italian) assert.ok(text.includes(word) || r.html.includes(`"${word}"`), `"${word}" missing on ${p.name}: ${text}`);
      for (const word of p.english) assert.ok(!new RegExp(`\\b${word}\\b`).test(text), `English "${word}" on ${p.name}`);
      assert.deepEqual(rawKeys(r.html), [], `raw keys on ${p.name}`);
    });
  }

  it('dates are written the Italian way in the merchant’s time zone', async () => {
    const text = textOf((await client.get(`/backoffice/orders/${orderId}`)).html);
    const month = new Intl.DateTimeFormat('it', { month: 'short', timeZone: 'Europe/Rome' }).format(new Date());
    assert.ok(text.includes(month), `Italian month "${month}" missing`);
  });

  it('each user may choose their own language; the others keep the merchant’s', async () => {
    const created = await createMerchantAdminService({ repos, maxLinkLifetimeDays: 60 }).addUser(merchant, 'night-desk@bellavista.example', 'operator');
    const night = new BoClient(app.base);
    assert.equal((await night.login(created.user.email, created.password)).status, 303);
    let account = await night.get('/backoffice/password');
    assert.match(account.html, /<html lang="it">/);
    // The picker offers the merchant's default (named in the page's language) and each language in its own words.
    assert.match(account.html, /<option value="" selected>Quella predefinita dell(?:&#x27;|')attività \(Italiano\)<\/option>/);
    assert.match(account.html, /<option value="de" lang="de">Deutsch<\/option>/);

    const saved = await night.post('/backoffice/account/language', { language: 'de' });
    assert.equal(saved.status, 303);
    assert.equal(saved.location, '/backoffice/password?done=languageSaved');
    account = await night.get(saved.location);
    assert.match(account.html, /<html lang="de">/);
    assert.ok(textOf(account.html).includes('Ihre Sprache wurde gespeichert.'));
    assert.match(account.html, /<option value="de" lang="de" selected>Deutsch<\/option>/);
    const orders = await night.get('/backoffice/orders');
    assert.match(orders.html, /<html lang="de">/);
    assert.ok(textOf(orders.html).includes('Bestellungen'));
    // German numbers on the German page: 12.345,00 € (the merchant's currency, the user's language).
    assert.ok(textOf(orders.html).includes('12.345,00 €'));
    assert.deepEqual(rawKeys(orders.html), []);

    // The admin (no choice of their own) still sees Italian.
    assert.match((await client.get('/backoffice/orders')).html, /<html lang="it">/);

    // Not a language on offer: refused, nothing changed; '' goes back to the merchant's.
    assert.equal((await night.post('/backoffice/account/language', { language: 'xx' })).status, 422);
    assert.match((await night.get('/backoffice/orders')).html, /<html lang="de">/);
    assert.equal((await night.post('/backoffice/account/language', { language: '' })).status, 303);
    assert.match((await night.get('/backoffice/orders')).html, /<html lang="it">/);
    // Without the form's CSRF token nothing changes.
    assert.equal((await night.post('/backoffice/account/language', { language: 'fr', _csrf: 'forged' })).status, 403);
    assert.match((await night.get('/backoffice/orders')).html, /<html lang="it">/);
  });

  it('the log-in page follows the browser’s language, else English', async () => {
    const page = async (lang?: string) => {
      const res = await fetch(`${app.base}/backoffice/login`, { headers: lang ? { 'accept-language': lang } : {} });
      return res.text();
    };
    const it = await page('it-IT,it;q=0.9,en;q=0.5');
    assert.match(it, /<html lang="it">/);
    assert.ok(textOf(it).includes('Accedi'));
    assert.match(await page('ja,zh;q=0.8'), /<html lang="en">/);
    assert.match(await page(), /<html lang="en">/);
  });
});
