// The hosted checkout over real HTTP, against a real database: the pages, every sandbox card
// (3-D Secure challenge both ways included), tampered/expired/cancelled/paid links, racing
// payments, and no card data left behind. CSRF and rate limits: checkout-security.test.ts.
import assert from 'node:assert/strict';
import http from 'node:http';
import { type AddressInfo } from 'node:net';
import path from 'node:path';
import mongoose from 'mongoose';
import { Merchant, type MerchantDoc } from '../../src/db/models/merchant.model.ts';
import { Order, type OrderDoc } from '../../src/db/models/order.model.ts';
import { Outbox, type OutboxDoc } from '../../src/db/models/outbox.model.ts';
import { payLinkUrl, type LinkKey } from '../../src/domain/pay-link.ts';
import { createHttpApp } from '../../src/http/app.ts';
import { CSRF_COOKIE, deriveCsrfKey } from '../../src/http/middleware/csrf.ts';
import { Challenge, type ChallengeDoc } from '../../src/db/models/challenge.model.ts';
import { createViews } from '../../src/http/views.ts';
import { Claim } from '../../src/db/claims.ts';
import { createLogger } from '../../src/logger.ts';
import { createSandboxAcquirer } from '../../src/services/acquirer/sandbox-acquirer.ts';
import { type Acquirer } from '../../src/domain/acquirer.ts';
import { closeClaimKey, createCheckoutService, type CheckoutForm, type CheckoutService } from '../../src/services/checkout.service.ts';
import { createMerchantService } from '../../src/services/merchant.service.ts';
import { createOrderService, type OrderDraft, type OrderService } from '../../src/services/order.service.ts';
import { useTestDatabase } from '../helpers/db.ts';
import { repos } from '../helpers/db.ts';

const KEYS: LinkKey[] = [{ kid: 'test1', secret: 'checkout-test-secret-checkout-test-secret' }];
const MAIL_DOMAIN = 'paymail.test';
const CVC = '913';
const AMEX_CVC = '4826';
const CARDS_USED = new Set<string>();
const nextYear = String((new Date().getUTCFullYear() + 2) % 100).padStart(2, '0');
const EXPIRY = `09/${nextYear}`;
/** This test client's CSRF cookie; tokens for it are read from each form. */
const COOKIE = `${CSRF_COOKIE}=checkout-test-browser-cookie-0001`;
// Many declines from 127.0.0.1 in this file: the rate limits get their own tests.
const NO_LIMITS = { failuresPerOrder: 1000, failuresPerClient: 1000 };

describe('checkout over HTTP', function () {
  this.timeout(20_000);
  useTestDatabase();
  const logLines: string[] = [];
  const acquirer = createSandboxAcquirer({ latencyMs: 15 });
  let server: http.Server;
  let base: string;
  let merchant: MerchantDoc;
  let orders: OrderService;
  let checkout: CheckoutService;
  let seq = 0;

  before(async () => {
    server = http.createServer();
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    orders = createOrderService({ repos, publicUrl: base, mailDomain: MAIL_DOMAIN, maxLinkLifetimeDays: 60, linkKeys: KEYS });
    checkout = createCheckoutService({ repos, acquirer, linkKeys: KEYS, mailDomain: MAIL_DOMAIN, linkFor: orders.linkFor, limits: NO_LIMITS });
    const logger = createLogger('debug', { write: (line: string) => void logLines.push(line) });
    const app = createHttpApp({
      logger,
      views: createViews({ templatesDir: path.resolve('templates') }),
      checkout: { service: checkout, csrfKey: deriveCsrfKey(KEYS[0]!.secret) },
      production: false,
    });
    server.on('request', app.callback());
    const created = await createMerchantService({ repos, mailDomain: MAIL_DOMAIN }).create({
      name: 'Hotel Bellavista',
      email: 'desk@bellavista.example',
      timezone: 'Europe/Rome',
    });
    merchant = (await Merchant.findById(created.id).lean<MerchantDoc>())!;
  });

  after(async () => {
    server.closeAllConnections();
    await new Promise((r) => server.close(r));
  });

  async function newOrder(draft: Partial<OrderDraft> = {}, service: OrderService = orders) {
    seq += 1;
    const r = await service.create(
      merchant,
      { amountMinor: 12990, currency: 'EUR', reference: `BK-${seq}`, description: 'Double room, 2 nights', ...draft },
      { key: `test:${seq}` },
    );
    return { order: r.order, link: r.link };
  }

  function card(number: string, extra: Record<string, string> = {}): CheckoutForm & Record<string, string> {
    CARDS_USED.add(number.replace(/\D/g, ''));
    const amex = number.replace(/\D/g, '').length === 15;
    return { number, expiry: EXPIRY, cvc: amex ? AMEX_CVC : CVC, holder: 'Anna Rossi', email: 'anna@example.org', ...extra };
  }

  const tokens = new Map<string, string>();
  /** The CSRF token of the form at `url` (read once per URL, as a browser reads it from the page). */
  async function tokenFor(url: string): Promise<string> {
    // Tokens are per order (public id), so the challenge page reuses the form's token.
    const pathAndQuery = new URL(url).pathname.split('/')[2]!;
    const cached = tokens.get(pathAndQuery);
    if (cached) return cached;
    const html = await (await fetch(url, { headers: { cookie: COOKIE } })).text();
    const token = /name="_csrf" value="([^"]+)"/.exec(html)?.[1] ?? '';
    if (token) tokens.set(pathAndQuery, token);
    return token;
  }

  async function post(link: string, form: Record<string, string>): Promise<Response> {
    return fetch(link, {
      method: 'POST',
      redirect: 'manual',
      headers: { 'content-type': 'application/x-www-form-urlencoded', cookie: COOKIE },
      body: new URLSearchParams({ _csrf: await tokenFor(link), ...form }).toString(),
    });
  }

  const reload = async (id: string) => (await Order.findById(id).lean<OrderDoc>())!;

  it('answers /healthz', async () => {
    const res = await fetch(`${base}/healthz`);
    assert.equal(res.status, 200);
    assert.deepEqual(await res.json(), { status: 'ok' });
  });

  it('shows the order and the card form with the exact labels', async () => {
    const { link } = await newOrder();
    const res = await fetch(link);
    assert.equal(res.status, 200);
    const html = await res.text();
    for (const label of ['Card number', 'Expiry (MM/YY)', 'Security code', 'Name on card', 'Email']) {
      assert.match(html, new RegExp(`<label for="\\w+">${label.replace(/[()/]/g, '\\$&')}</label>`), label);
    }
    for (const [name, ac] of [['number', 'cc-number'], ['expiry', 'cc-exp'], ['cvc', 'cc-csc'], ['holder', 'cc-name'], ['email', 'email']]) {
      assert.match(html, new RegExp(`name="${name}" type="\\w+" autocomplete="${ac}"`), name);
    }
    assert.match(html, /<button type="submit" class="button-pay">Pay €129\.90<\/button>/);
    assert.match(html, /Hotel Bellavista/);
    assert.match(html, /Double room, 2 nights/);
    assert.match(html, /BK-\d+/);
    const action = /<form method="post" action="([^"]+)"/.exec(html)?.[1]?.replace(/&#x3D;/g, '=').replace(/&amp;/g, '&');
    assert.equal(new URL(action!, base).toString(), link, 'the form posts back to the link itself');
    assert.doesNotMatch(html, /<script(?![^>]*\ssrc="\/assets\/)|style=|\son\w+=/, 'no inline script, style or handler');
    assert.match(html, /<script src="\/assets\/checkout\.js" defer><\/script>/);
    assert.match(html, /<input type="hidden" name="_csrf" value="[\w-]{43}">/);
    assert.match(html, /id="number-brand" aria-live="polite"/);
    const csp = res.headers.get('content-security-policy') ?? '';
    assert.match(csp, /frame-ancestors 'none'/);
    assert.match(csp, /default-src 'self'/);
    assert.match(csp, /script-src 'self'(;|$)/);
    assert.match(csp, /form-action 'self'/);
    assert.doesNotMatch(csp, /unsafe-inline|unsafe-eval/);
    assert.equal(res.headers.get('x-frame-options'), 'DENY');
    assert.equal(res.headers.get('x-content-type-options'), 'nosniff');
    assert.equal(res.headers.get('referrer-policy'), 'no-referrer');
    assert.equal(res.headers.get('cache-control'), 'no-store');
    assert.ok(res.headers.get('x-request-id'));
  });

  it('omits the email field when the order knows the customer', async () => {
    const { link } = await newOrder({ customerEmail: 'known@example.org' });
    const html = await (await fetch(link)).text();
    assert.doesNotMatch(html, /name="email"/);
  });

  it('switches language with ?lang= and defaults to the order locale', async () => {
    const { link } = await newOrder({ locale: 'it' });
    const it = await (await fetch(link)).text();
    assert.match(it, /<html lang="it">/);
    assert.match(it, /Numero della carta/);
    assert.match(it, /Paga 129,90\s€/);
    assert.match(it, /hreflang="en" lang="en">English<\/a>/);
    const en = await (await fetch(`${link}&lang=en`)).text();
    assert.match(en, /<html lang="en">/);
    assert.match(en, /Pay €129\.90/);
    const de = await (await fetch(`${link}&lang=de`)).text();
    assert.match(de, /Kartennummer/);
  });

  describe('language of an order that names none: ?lang=, else the browser, else the merchant', () => {
    let french: MerchantDoc;
    before(async () => {
      const created = await createMerchantService({ repos, mailDomain: MAIL_DOMAIN }).create({ name: 'Maison Dupont', email: 'caisse@dupont.example', locale: 'fr' });
      french = (await Merchant.findById(created.id).lean<MerchantDoc>())!;
    });
    const lang = async (link: string, acceptLanguage?: string) => {
      const html = await (await fetch(link, acceptLanguage ? { headers: { 'accept-language': acceptLanguage } } : {})).text();
      return /<html lang="(\w+)">/.exec(html)?.[1];
    };
    const create = async (draft: Partial<OrderDraft> = {}) => {
      seq += 1;
      return orders.create(french, { amountMinor: 5000, currency: 'EUR', reference: `LG-${seq}`, customerEmail: 'client@example.org', delivery: 'customer', ...draft }, { key: `test:${seq}` });
    };
    const cases: Array<[string, string | undefined, string, string]> = [
      ['no Accept-Language: the merchant\'s locale', undefined, '', 'fr'],
      ['an Italian browser', 'it-IT,it;q=0.9,en;q=0.8', '', 'it'],
      ['q-values decide, not the order in the header', 'en;q=0.2, de-CH, fr;q=0.5', '', 'de'],
      ['only languages paymail does not speak: the merchant\'s', 'ja, zh-CN;q=0.8', '', 'fr'],
      ['?lang= wins over the browser', 'it-IT', '&lang=es', 'es'],
    ];
    for (const [name, header, query, expected] of cases) {
      it(name, async () => {
        const { link, order } = await create();
        assert.equal(await lang(`${link}${query}`, header), expected);
        // Mails to the customer (and the order's stored locale) keep the merchant's language.
        assert.equal(order.locale, 'fr');
        assert.equal(order.localeGiven, false);
      });
    }
    it('a language the merchant chose on the order wins over the browser', async () => {
      const { link, order } = await create({ locale: 'it' });
      assert.equal(order.localeGiven, true);
      assert.equal(await lang(link, 'de-DE,de'), 'it');
      assert.equal(await lang(`${link}&lang=en`, 'de-DE,de'), 'en');
    });
    it('an order stored before the distinction keeps its locale as chosen', async () => {
      const { link, order } = await create();
      await Order.collection.updateOne({ _id: order._id as never }, { $set: { locale: 'es' }, $unset: { localeGiven: '' } });
      assert.equal(await lang(link, 'de-DE,de'), 'es');
    });
  });

  it('serves the stylesheet and the script that the CSP allows', async () => {
    const res = await fetch(`${base}/assets/checkout.css`);
    assert.equal(res.status, 200);
    assert.match(res.headers.get('content-type') ?? '', /text\/css/);
    const js = await fetch(`${base}/assets/checkout.js`);
    assert.equal(js.status, 200);
    assert.match(js.headers.get('content-type') ?? '', /text\/javascript/);
    assert.match(await js.text(), /American Express/);
    assert.equal((await fetch(`${base}/assets/../package.json`)).status, 404);
  });

  it('re-renders the form with each field error (422), never re-filling number or CVC', async () => {
    const { order, link } = await newOrder();
    const res = await post(link, { ...card('4242424242424241'), cvc: '12', expiry: '13/40', holder: 'Anna Rossi', email: 'not-an-email' });
    assert.equal(res.status, 422);
    const html = await res.text();
    for (const field of ['number', 'expiry', 'cvc', 'email']) {
      assert.match(html, new RegExp(`id="${field}" name="${field}"[^>]*aria-describedby="${field}-error[^"]*" aria-invalid="true"`), field);
      assert.match(html, new RegExp(`<li><a href="#${field}">`), `summary links to ${field}`);
    }
    assert.match(html, /role="alert"/);
    assert.match(html, /aria-live="assertive"/);
    assert.match(html, /name="holder"[^>]*value="Anna Rossi"/);
    assert.match(html, /name="expiry"[^>]*value="13\/40"/);
    assert.match(html, /name="number"[^>]*value=""/);
    assert.match(html, /name="cvc"[^>]*value=""/);
    assert.doesNotMatch(html, /4242424242424241/);
    const after = await reload(order._id);
    assert.equal(after.status, 'pending');
    assert.equal(after.attempts.length, 0, 'no authorisation was attempted');
  });

  it('requires the email when the order has none', async () => {
    const { link } = await newOrder();
    const res = await post(link, card('4242424242424242', { email: '' }));
    assert.equal(res.status, 422);
    assert.match(await res.text(), /Enter your email address for the receipt/);
  });

  it('pays with 4242…: 303 to the link, receipt page, order paid, two receipts queued', async () => {
    const { order, link } = await newOrder({ customerName: 'Anna Rossi' });
    const res = await post(link, card('4242 4242 4242 4242'));
    assert.equal(res.status, 303);
    assert.equal(new URL(res.headers.get('location')!, base).toString(), link);

    const page = await fetch(link);
    assert.equal(page.status, 200);
    const html = await page.text();
    const paid = await reload(order._id);
    assert.equal(paid.status, 'paid');
    assert.equal(paid.openReference, order._id);
    assert.equal(paid.customer?.email, 'anna@example.org');
    assert.deepEqual(
      { ...paid.payment!.card },
      { brand: 'Visa', bin: '424242', last4: '4242', expMonth: 9, expYear: 2000 + Number(nextYear), country: 'US' },
    );
    assert.match(paid.payment!.receiptNumber!, /^RCPT-/);
    assert.match(paid.payment!.authCode!, /^[0-9A-Z]{6}$/);
    // Kept so that its refunds and voids go to the acquirer that took it, whatever the merchant uses later.
    assert.equal(paid.payment!.acquirer, 'sandbox');
    assert.deepEqual(paid.attempts.map((a) => a.outcome), ['approved']);
    assert.ok(html.includes(paid.payment!.receiptNumber!));
    assert.ok(html.includes(paid.payment!.authCode!));
    assert.match(html, /Visa •••• 4242/);
    assert.match(html, /<dt>Issuing country<\/dt><dd>United States<\/dd>/);
    assert.match(html, /€129\.90/);
    assert.match(html, /Payment received/);

    const receipts = await Outbox.find({ orderId: order._id, template: /^receipt-/ }).sort({ template: 1 }).lean<OutboxDoc[]>();
    assert.deepEqual(
      receipts.map((r) => [r.template, r.dedupeKey, r.to, r.locale]),
      [
        ['receipt-customer', `receipt:${order._id}:customer`, ['anna@example.org'], 'en'],
        ['receipt-merchant', `receipt:${order._id}:merchant`, ['desk@bellavista.example'], 'en'],
      ],
    );
    const data = receipts[0]!.data as Record<string, unknown>;
    assert.deepEqual(data, {
      receiptNumber: paid.payment!.receiptNumber,
      merchantName: 'Hotel Bellavista',
      reference: order.reference,
      amountMinor: 12990,
      currency: 'EUR',
      description: 'Double room, 2 nights',
      card: { brand: 'Visa', last4: '4242', expMonth: 9, expYear: 2000 + Number(nextYear), country: 'US' },
      authCode: paid.payment!.authCode,
      paidAt: paid.payment!.paidAt!.toISOString(),
      customerEmail: 'anna@example.org',
      customerName: 'Anna Rossi',
      // The merchant's contact on the PDF receipt.
      merchantEmail: 'desk@bellavista.example',
      link,
      timeZone: 'Europe/Rome',
    });
  });

  it('shows the receipt for a paid link, on GET and on POST, without charging again', async () => {
    const { order, link } = await newOrder({ customerEmail: 'paid@example.org' });
    assert.equal((await post(link, card('378282246310005'))).status, 303);
    const again = await post(link, card('5555555555554444'));
    assert.equal(again.status, 200);
    assert.match(await again.text(), /American Express •••• 0005/);
    const after = await reload(order._id);
    assert.equal(after.payment?.card?.last4, '0005');
    assert.equal(after.attempts.length, 1);
  });

  it('declines, keeps the order payable, then approves', async () => {
    const { order, link } = await newOrder();
    const declined = await post(link, card('4000000000000002'));
    assert.equal(declined.status, 402);
    const html = await declined.text();
    assert.match(html, /Your card was declined by the bank\./);
    assert.match(html, /name="holder"[^>]*value="Anna Rossi"/);
    assert.match(html, /name="number"[^>]*value=""/);
    let now = await reload(order._id);
    assert.equal(now.status, 'pending');
    assert.deepEqual(
      now.attempts.map((a) => [a.outcome, a.declineCode, a.card?.last4, a.card?.bin]),
      [['declined', 'DECLINED', '0002', '400000']],
    );
    assert.equal((await post(link, card('5555555555554444'))).status, 303);
    now = await reload(order._id);
    assert.equal(now.status, 'paid');
    assert.deepEqual(now.attempts.map((a) => a.outcome), ['declined', 'approved']);
    assert.equal(now.payment?.card?.brand, 'Mastercard');
  });

  const refusals: Array<[string, number, string, string, RegExp]> = [
    ['4000000000000002', 402, 'declined', 'DECLINED', /Your card was declined by the bank\./],
    ['4000000000009995', 402, 'declined', 'INSUFFICIENT_FUNDS', /insufficient funds/],
    ['4000000000009987', 402, 'declined', 'LOST_OR_STOLEN', /declined by the bank\. Please contact your bank/],
    ['4000000000009979', 402, 'declined', 'OVER_LIMIT', /over the card&#x27;s limit/],
    ['4000000000000119', 402, 'error', 'ACQUIRER_UNAVAILABLE', /could not reach the card network/],
  ];
  it('gives each refused sandbox card its reason and keeps the order payable', async () => {
    const { order, link } = await newOrder();
    for (const [number, status, outcome, code, reason] of refusals) {
      const res = await post(link, card(number));
      assert.equal(res.status, status, number);
      assert.match(await res.text(), reason, number);
      const last = (await reload(order._id)).attempts.at(-1)!;
      assert.equal(last.outcome, outcome, number);
      assert.equal(last.declineCode ?? '', code, number);
    }
    const after = await reload(order._id);
    assert.equal(after.status, 'pending');
    assert.equal(after.attempts.length, refusals.length);
    assert.equal((await Outbox.countDocuments({ orderId: order._id, template: /^receipt-/ })), 0);
  });

  /** Pays with the 3-D Secure card; returns the challenge page's absolute URL. */
  async function startChallenge(link: string): Promise<string> {
    const res = await post(link, card('4000 0000 0000 3220'));
    assert.equal(res.status, 303);
    const at = new URL(res.headers.get('location')!, base);
    const linkUrl = new URL(link);
    assert.match(at.pathname, new RegExp(`^${linkUrl.pathname}/3ds/3ds_[\\w-]{16}$`));
    assert.equal(at.search, linkUrl.search, 'the challenge URL carries the signed pay-link query');
    return at.toString();
  }

  const pass = (url: string, result: 'pass' | 'fail' = 'pass') => post(url, { result });

  it('3-D Secure: challenge page, then "Complete authentication" pays the order once', async () => {
    const { order, link } = await newOrder({ customerName: 'Anna Rossi' });
    const url = await startChallenge(link);
    let now = await reload(order._id);
    assert.equal(now.status, 'pending');
    const started = now.attempts.at(-1)!;
    assert.equal(started.outcome, 'challenge');
    const challengeId = url.split('/3ds/')[1]!.split('?')[0]!;
    assert.equal(started.challengeId, challengeId);
    const stored = (await Challenge.findById(challengeId).lean<ChallengeDoc>())!;
    assert.equal(stored.status, 'pending');
    assert.deepEqual({ ...stored.card }, { brand: 'Visa', bin: '400000', last4: '3220', expMonth: 9, expYear: 2000 + Number(nextYear), country: 'US' });
    assert.ok(stored.expiresAt.getTime() > Date.now() + 5 * 60_000);

    const pageRes = await fetch(url, { headers: { cookie: COOKIE } });
    assert.equal(pageRes.status, 200);
    const html = await pageRes.text();
    assert.match(html, /<button type="submit" name="result" value="pass" class="button-pay">Complete authentication<\/button>/);
    assert.match(html, /<button type="submit" name="result" value="fail"[^>]*>Fail authentication<\/button>/);
    assert.match(html, /€129\.90/);
    assert.match(html, /Visa •••• 3220/);
    assert.match(pageRes.headers.get('content-security-policy') ?? '', /frame-ancestors 'none'/);

    const done = await pass(url);
    assert.equal(done.status, 303);
    assert.equal(new URL(done.headers.get('location')!, base).toString(), link);
    now = await reload(order._id);
    assert.equal(now.status, 'paid');
    assert.deepEqual(now.attempts.map((a) => [a.outcome, a.challengeId]), [['challenge', challengeId], ['approved', challengeId]]);
    assert.equal(now.payment?.card?.last4, '3220');
    assert.equal(now.customer?.email, 'anna@example.org', 'the email typed before the challenge is kept');
    assert.equal(await Outbox.countDocuments({ orderId: order._id, template: /^receipt-/ }), 2);
    assert.equal((await Challenge.findById(challengeId).lean<ChallengeDoc>())!.status, 'passed');

    // Used once: clicking again, or opening the challenge again, leads to the receipt.
    const again = await pass(url, 'fail');
    assert.equal(again.status, 200, 'the paid link shows the receipt');
    assert.match(await again.text(), /Payment received/);
    assert.equal((await reload(order._id)).attempts.length, 2);
  });

  it('3-D Secure: "Fail authentication" declines (THREE_DS_FAILED) and the order stays payable', async () => {
    const { order, link } = await newOrder({ locale: 'it' });
    const url = await startChallenge(link);
    const failed = await pass(url, 'fail');
    assert.equal(failed.status, 402);
    const html = await failed.text();
    assert.match(html, /autenticazione 3-D Secure non riuscita/);
    const action = /<form method="post" action="([^"]+)"/.exec(html)?.[1]?.replace(/&#x3D;/g, '=').replace(/&amp;/g, '&');
    assert.equal(new URL(action!, base).toString(), link, 'back on the form, posting to the pay-link');
    let now = await reload(order._id);
    assert.equal(now.status, 'pending');
    assert.deepEqual(now.attempts.map((a) => [a.outcome, a.declineCode ?? '']), [['challenge', ''], ['declined', 'THREE_DS_FAILED']]);
    // The same challenge cannot be passed afterwards.
    const late = await pass(url);
    assert.equal(late.status, 303);
    assert.equal((await reload(order._id)).status, 'pending');
    // Two customers clicking at once on a fresh challenge: one outcome only.
    const url2 = await startChallenge(link);
    const both = await Promise.all([pass(url2), pass(url2)]);
    assert.deepEqual(both.map((r) => r.status), [303, 303]);
    now = await reload(order._id);
    assert.equal(now.status, 'paid');
    assert.equal(now.attempts.filter((a) => a.outcome === 'approved').length, 1);
  });

  it('3-D Secure: an expired, unknown or foreign challenge cannot be completed', async () => {
    const { order, link } = await newOrder();
    const url = await startChallenge(link);
    const challengeId = url.split('/3ds/')[1]!.split('?')[0]!;
    await Challenge.updateOne({ _id: challengeId }, { $set: { expiresAt: new Date(Date.now() - 1000) } });
    const expired = await fetch(url, { headers: { cookie: COOKIE } });
    assert.equal(expired.status, 410);
    assert.match(await expired.text(), /This verification has expired/);
    assert.equal((await pass(url)).status, 410);
    const unknown = url.replace(challengeId, '3ds_AAAAAAAAAAAAAAAA');
    assert.equal((await fetch(unknown)).status, 404);
    assert.equal((await pass(unknown)).status, 404);
    // Another order's challenge id under this order's link.
    const other = await newOrder();
    const otherUrl = await startChallenge(other.link);
    const foreign = url.replace(challengeId, otherUrl.split('/3ds/')[1]!.split('?')[0]!);
    assert.equal((await pass(foreign)).status, 404);
    // A challenge URL with a tampered pay-link signature is refused before anything else.
    const tampered = new URL(otherUrl);
    tampered.searchParams.set('a', '1');
    assert.equal((await fetch(tampered)).status, 404);
    const after = await reload(order._id);
    assert.deepEqual(after.attempts.map((a) => a.outcome), ['challenge']);
    assert.equal((await reload(other.order._id)).status, 'pending');
  });

  it('answers tampered and unknown links with the 404 page', async () => {
    const { order, link } = await newOrder();
    const variants: string[] = [];
    for (const [k, v] of [['a', '1'], ['c', 'USD'], ['e', '9999999999'], ['k', 'other'], ['s', 'A'.repeat(43)]] as const) {
      const u = new URL(link);
      u.searchParams.set(k, v);
      variants.push(u.toString());
    }
    variants.push(link.replace(order.publicId, `${order.publicId.slice(0, -1)}${order.publicId.endsWith('A') ? 'B' : 'A'}`));
    variants.push(link.split('?')[0]!);
    // Correctly signed, but for an order that does not exist, and for another amount than the order's.
    variants.push(payLinkUrl(base, KEYS, { publicId: 'NoSuchOrder1234567890', amountMinor: 12990, currency: 'EUR', expiresAt: order.linkExpiresAt }));
    variants.push(payLinkUrl(base, KEYS, { publicId: order.publicId, amountMinor: 1, currency: 'EUR', expiresAt: order.linkExpiresAt }));
    for (const v of variants) {
      const res = await fetch(v);
      assert.equal(res.status, 404, v);
      assert.match(await res.text(), /We cannot find this payment link/);
      assert.equal((await post(v, card('4242424242424242'))).status, 404, `POST ${v}`);
    }
    assert.equal((await reload(order._id)).status, 'pending');
  });

  it('shows the expired page naming the merchant (GET and POST), charging nothing', async () => {
    const past = createOrderService({ repos,
      publicUrl: base,
      mailDomain: MAIL_DOMAIN,
      maxLinkLifetimeDays: 60,
      linkKeys: KEYS,
      now: () => new Date(Date.now() - 30 * 86_400_000),
    });
    const { order, link } = await newOrder({}, past);
    const res = await fetch(link);
    assert.equal(res.status, 410);
    const html = await res.text();
    assert.match(html, /This payment link has expired/);
    assert.match(html, /Hotel Bellavista/);
    const posted = await post(link, card('4242424242424242'));
    assert.equal(posted.status, 410);
    assert.match(await posted.text(), /Hotel Bellavista/);
    const after = await reload(order._id);
    assert.equal(after.attempts.length, 0);
    assert.equal(after.payment?.receiptNumber, undefined);
  });

  it('shows the cancelled page', async () => {
    const { order, link } = await newOrder();
    await Order.updateOne({ _id: order._id }, { $set: { status: 'cancelled', cancelledAt: new Date() } });
    const res = await fetch(link);
    assert.equal(res.status, 410);
    assert.match(await res.text(), /Hotel Bellavista has cancelled the payment request/);
  });

  it('lets exactly one of two concurrent payments win (HTTP)', async () => {
    const { order, link } = await newOrder();
    const results = await Promise.all([post(link, card('4242424242424242')), post(link, card('4242424242424242'))]);
    for (const r of results) assert.ok([303, 200].includes(r.status), String(r.status));
    const after = await reload(order._id);
    assert.equal(after.status, 'paid');
    assert.deepEqual(after.attempts.map((a) => a.outcome), ['approved'], 'the card was authorised once');
    assert.equal(await Outbox.countDocuments({ orderId: order._id, template: /^receipt-/ }), 2);
  });

  it('authorises a double-submitted form once (service, same stale snapshot)', async () => {
    const { order, link } = await newOrder();
    const state = await checkout.open(order.publicId, Object.fromEntries(new URL(link).searchParams));
    assert.equal(state.kind, 'payable');
    if (state.kind !== 'payable') return;
    const form = card('5555555555554444');
    const results = await Promise.all([checkout.pay(state, form, '127.0.0.1'), checkout.pay(state, form, '127.0.0.2')]);
    assert.deepEqual(results.map((r) => r.kind).sort(), ['closed', 'paid']);
    const after = await reload(order._id);
    assert.deepEqual(after.attempts.map((a) => a.outcome), ['approved']);
    assert.equal(await Outbox.countDocuments({ orderId: order._id, template: /^receipt-/ }), 2);
  });

  it('lets exactly one payment win when two instances race (no shared in-process queue)', async () => {
    for (let round = 0; round < 5; round++) {
      const instances = [1, 2, 3].map(() =>
        createCheckoutService({ repos, acquirer, linkKeys: KEYS, mailDomain: MAIL_DOMAIN, linkFor: orders.linkFor, limits: NO_LIMITS }),
      );
      const { order, link } = await newOrder();
      const query = Object.fromEntries(new URL(link).searchParams);
      const states = await Promise.all(instances.map((svc) => svc.open(order.publicId, query)));
      const results = await Promise.all(
        instances.map((svc, i) => {
          const st = states[i]!;
          assert.equal(st.kind, 'payable');
          return st.kind === 'payable' ? svc.pay(st, card('4242424242424242'), `127.0.0.${i + 1}`) : null;
        }),
      );
      assert.deepEqual(results.map((r) => r?.kind).filter((k) => k === 'paid'), ['paid'], `round ${round}`);
      const after = await reload(order._id);
      assert.equal(after.status, 'paid');
      assert.equal(after.attempts.filter((a) => a.outcome === 'approved').length, 1);
      assert.equal(await Outbox.countDocuments({ orderId: order._id, template: /^receipt-/ }), 2);
    }
  });

  it('finishes a payment whose process died between its claim and the order update', async () => {
    const { order } = await newOrder({ customerEmail: 'late@example.org' });
    const paidAt = new Date(Date.now() - 5 * 60_000);
    await Claim.create({
      _id: closeClaimKey(order._id),
      at: paidAt,
      kind: 'order-close',
      subject: order._id,
      applied: false,
      payload: {
        payment: { receiptNumber: 'RCPT-REPAIRED1', authCode: 'A1B2C3', paidAt, card: { brand: 'Visa', bin: '424242', last4: '4242', expMonth: 9, expYear: 2031 } },
        attempt: { at: paidAt, outcome: 'approved', authCode: 'A1B2C3', card: { brand: 'Visa', last4: '4242' } },
        holder: 'Late Payer',
      },
    });
    assert.equal(await checkout.repairInterrupted(), 1);
    const after = await reload(order._id);
    assert.equal(after.status, 'paid');
    assert.equal(after.payment?.receiptNumber, 'RCPT-REPAIRED1');
    assert.equal(await Outbox.countDocuments({ orderId: order._id, template: /^receipt-/ }), 2);
    assert.equal(await checkout.repairInterrupted(), 0, 'applied once');
  });

  it('voids an authorisation when the order closed while the acquirer was deciding', async () => {
    // The Acquirer port, with the back office cancelling the order during the authorisation.
    const cancelling: Acquirer = {
      name: 'sandbox-with-cancel',
      async authorize(req) {
        const r = await acquirer.authorize(req);
        await Order.updateOne({ _id: req.orderId }, { $set: { status: 'cancelled' } });
        return r;
      },
      completeChallenge: (req) => acquirer.completeChallenge(req),
      void: (code) => acquirer.void(code),
    };
    const svc = createCheckoutService({ repos, acquirer: cancelling, linkKeys: KEYS, mailDomain: MAIL_DOMAIN, linkFor: orders.linkFor, limits: NO_LIMITS });
    const { order, link } = await newOrder();
    const state = await svc.open(order.publicId, Object.fromEntries(new URL(link).searchParams));
    assert.equal(state.kind, 'payable');
    if (state.kind !== 'payable') return;
    const r = await svc.pay(state, card('4242424242424242'), '127.0.0.1');
    assert.equal(r.kind, 'lost-race');
    const after = await reload(order._id);
    assert.equal(after.status, 'cancelled');
    assert.equal(after.payment?.receiptNumber, undefined);
    const lost = after.attempts.find((a) => a.outcome === 'lost-race')!;
    assert.ok(acquirer.voided.has(lost.authCode!), 'the authorisation is voided');
    assert.equal(await Outbox.countDocuments({ orderId: order._id, template: /^receipt-/ }), 0);
  });

  it('answers unknown pages with a 404 error page and JSON clients with JSON', async () => {
    const html = await fetch(`${base}/nope`);
    assert.equal(html.status, 404);
    assert.match(await html.text(), /Something went wrong/);
    const json = await fetch(`${base}/nope`, { headers: { accept: 'application/json' } });
    assert.equal(json.status, 404);
    assert.deepEqual(await json.json(), { error: { code: 'NOT_FOUND', message: 'Not Found' } });
  });

  it('refuses an oversized form body (413)', async () => {
    const { link } = await newOrder();
    const res = await post(link, { ...card('4242424242424242'), holder: 'x'.repeat(40_000) });
    assert.equal(res.status, 413);
  });

  it('left no full card number or CVC in any collection or log line', async () => {
    assert.ok(CARDS_USED.size >= 9);
    const cvcs = [CVC, AMEX_CVC].map((c) => new RegExp(`(?<![\\w-])${c}(?![\\w-])`));
    const collections = await mongoose.connection.db!.collections();
    assert.ok(collections.length >= 3);
    for (const c of collections) {
      const dump = JSON.stringify(await c.find({}).toArray());
      for (const pan of CARDS_USED) assert.ok(!dump.includes(pan), `${c.collectionName} holds ${pan}`);
      for (const re of cvcs) assert.doesNotMatch(dump, re, `${c.collectionName} holds a CVC`);
    }
    const logs = logLines.join('');
    assert.ok(logs.includes('"msg":"payment approved"'));
    for (const pan of CARDS_USED) assert.ok(!logs.includes(pan), `logs hold ${pan}`);
    for (const c of [CVC, AMEX_CVC]) assert.ok(!logs.includes(`"${c}"`), 'logs hold a CVC');
  });
});
