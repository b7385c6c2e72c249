// Checkout security over real HTTP and the real database: CSRF tokens on every form, the helmet
// headers and CSP, rate limits on failed attempts per order and per client address (429), the
// pay-link signature checked before any database work, and complete message catalogues.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import http from 'node:http';
import { type AddressInfo } from 'node:net';
import path from 'node:path';
import mongoose from 'mongoose';
import { Merchant, type MerchantDoc } from '../../src/db/models/merchant.model.ts';
import { Order, type OrderDoc } from '../../src/db/models/order.model.ts';
import { PaymentFailure } from '../../src/db/models/rate-limit.model.ts';
import { DECLINE_CODES } from '../../src/domain/acquirer.ts';
import { type LinkKey } from '../../src/domain/pay-link.ts';
import { createHttpApp } from '../../src/http/app.ts';
import { CSRF_COOKIE, deriveCsrfKey } from '../../src/http/middleware/csrf.ts';
import { acceptedLanguages, createViews, PAGE_LOCALES } from '../../src/http/views.ts';
import { createLogger } from '../../src/logger.ts';
import { createSandboxAcquirer } from '../../src/services/acquirer/sandbox-acquirer.ts';
import { createCheckoutService, type CheckoutService } from '../../src/services/checkout.service.ts';
import { createMerchantService } from '../../src/services/merchant.service.ts';
import { createOrderService, type OrderService } from '../../src/services/order.service.ts';
import { useTestDatabase } from '../helpers/db.ts';
import { repos } from '../helpers/db.ts';

const KEYS: LinkKey[] = [{ kid: 'sec1', secret: 'security-test-secret-security-test-secret' }];
const MAIL_DOMAIN = 'paymail.test';
const EXPIRY = `11/${String((new Date().getUTCFullYear() + 3) % 100).padStart(2, '0')}`;
const DECLINE = '4000000000009995';

describe('checkout security', function () {
  this.timeout(30_000);
  // Command monitoring: the signature test below watches every command the driver sends.
  useTestDatabase({ monitorCommands: true });
  let server: http.Server;
  let base: string;
  let merchant: MerchantDoc;
  let orders: OrderService;
  let checkout: CheckoutService;
  /** The checkout's clock runs this far ahead of the real one (to step through rate-limit windows). */
  let clockOffsetMs = 0;
  let seq = 0;
  let ipSeq = 0;

  before(async () => {
    server = http.createServer();
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    orders = createOrderService({ repos, publicUrl: base, mailDomain: MAIL_DOMAIN, maxLinkLifetimeDays: 60, linkKeys: KEYS });
    checkout = createCheckoutService({ repos,
      acquirer: createSandboxAcquirer(),
      linkKeys: KEYS,
      mailDomain: MAIL_DOMAIN,
      linkFor: orders.linkFor,
      now: () => new Date(Date.now() + clockOffsetMs),
    });
    // proxy: true, so each test can be its own client address (X-Forwarded-For).
    const app = createHttpApp({
      logger: createLogger('silent'),
      views: createViews({ templatesDir: path.resolve('templates') }),
      checkout: { service: checkout, csrfKey: deriveCsrfKey(KEYS[0]!.secret) },
      production: false,
      proxy: true,
    });
    server.on('request', app.callback());
    const created = await createMerchantService({ repos, mailDomain: MAIL_DOMAIN }).create({
      name: 'Pensione Aurora',
      email: 'desk@aurora.example',
      timezone: 'Europe/Rome',
    });
    merchant = (await Merchant.findById(created.id).lean<MerchantDoc>())!;
  });

  after(async () => {
    server.closeAllConnections();
    await new Promise((r) => server.close(r));
  });

  beforeEach(() => {
    clockOffsetMs = 0;
  });

  async function newOrder(draft: { locale?: string } = {}) {
    seq += 1;
    const r = await orders.create(
      merchant,
      { amountMinor: 4500, currency: 'EUR', reference: `SEC-${seq}`, customerEmail: 'guest@example.org', ...draft },
      { key: `sec:${seq}` },
    );
    return { order: r.order, link: r.link };
  }

  /** A browser: its own address and cookie jar (the CSRF cookie). */
  function client(ip = `203.0.113.${++ipSeq}`) {
    let cookie = '';
    const headers = (extra: Record<string, string> = {}) => ({ 'x-forwarded-for': ip, ...(cookie ? { cookie } : {}), ...extra });
    const keep = (res: Response) => {
      const set = res.headers.get('set-cookie');
      const m = set && new RegExp(`${CSRF_COOKIE}=([^;]+)`).exec(set);
      if (m) cookie = `${CSRF_COOKIE}=${m[1]}`;
      return res;
    };
    return {
      ip,
      get: async (url: string, extra: Record<string, string> = {}) => keep(await fetch(url, { headers: headers(extra), redirect: 'manual' })),
      /** GETs the form, then posts it with the token the page carries (as a browser does). */
      async submit(url: string, form: Record<string, string>, opts: { token?: string; formUrl?: string } = {}) {
        const token = opts.token ?? (await tokenOf(await this.get(opts.formUrl ?? url)));
        return keep(
          await fetch(url, {
            method: 'POST',
            redirect: 'manual',
            headers: headers({ 'content-type': 'application/x-www-form-urlencoded' }),
            body: new URLSearchParams({ _csrf: token, ...form }).toString(),
          }),
        );
      },
      setCookie: (value: string) => void (cookie = `${CSRF_COOKIE}=${value}`),
    };
  }

  async function tokenOf(res: Response): Promise<string> {
    return /name="_csrf" value="([^"]+)"/.exec(await res.text())?.[1] ?? '';
  }

  const cardForm = (number: string) => ({ number, expiry: EXPIRY, cvc: '321', holder: 'Marta Bianchi' });
  const reload = async (id: string) => (await Order.findById(id).lean<OrderDoc>())!;

  describe('CSRF', () => {
    it('sets an HttpOnly, SameSite=Lax cookie with the form', async () => {
      const { link } = await newOrder();
      const res = await client().get(link);
      assert.equal(res.status, 200);
      const set = res.headers.get('set-cookie') ?? '';
      assert.match(set, new RegExp(`^${CSRF_COOKIE}=[\\w-]{24};`));
      assert.match(set, /httponly/i);
      assert.match(set, /samesite=lax/i);
    });

    const forged: Array<[string, (link: string, other: string) => Promise<Response>]> = [
      ['no token and no cookie', (link) => fetch(link, { method: 'POST', redirect: 'manual', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: new URLSearchParams(cardForm('4242424242424242')).toString() })],
      ['a cookie but no token', async (link) => { const c = client(); await c.get(link); return c.submit(link, cardForm('4242424242424242'), { token: '' }); }],
      ['a token of another order', async (link, other) => { const c = client(); return c.submit(link, cardForm('4242424242424242'), { formUrl: other }); }],
      ['a token made for another browser', async (link) => { const a = client(); const token = await tokenOf(await a.get(link)); const b = client(); await b.get(link); return b.submit(link, cardForm('4242424242424242'), { token }); }],
      ['a token with a forged cookie', async (link) => { const c = client(); const token = await tokenOf(await c.get(link)); c.setCookie('A'.repeat(24)); return c.submit(link, cardForm('4242424242424242'), { token }); }],
    ];
    for (const [name, send] of forged) {
      it(`refuses a payment POST with ${name} (403 page, nothing attempted)`, async () => {
        const { order, link } = await newOrder();
        const other = await newOrder();
        const res = await send(link, other.link);
        assert.equal(res.status, 403);
        const html = await res.text();
        assert.match(html, /Please reload the payment form/);
        assert.match(html, /Back to the payment form/);
        assert.doesNotMatch(html, /4242424242424242/);
        assert.equal((await reload(order._id)).attempts.length, 0);
      });
    }

    it('accepts the genuine form and pays', async () => {
      const { order, link } = await newOrder();
      const res = await client().submit(link, cardForm('4242424242424242'));
      assert.equal(res.status, 303);
      assert.equal((await reload(order._id)).status, 'paid');
    });

    it('shows the 403 page in the page language', async () => {
      const { link } = await newOrder();
      const res = await client().submit(`${link}&lang=fr`, cardForm('4242424242424242'), { token: 'x' });
      assert.equal(res.status, 403);
      assert.match(await res.text(), /Veuillez recharger le formulaire de paiement/);
    });

    it('guards the 3-D Secure form too', async () => {
      const { order, link } = await newOrder();
      const c = client();
      const started = await c.submit(link, cardForm('4000000000003220'));
      assert.equal(started.status, 303);
      const challenge = new URL(started.headers.get('location')!, base).toString();
      const forgedPass = await client().submit(challenge, { result: 'pass' }, { token: 'nope' });
      assert.equal(forgedPass.status, 403);
      assert.equal((await reload(order._id)).status, 'pending');
      const genuine = await c.submit(challenge, { result: 'pass' });
      assert.equal(genuine.status, 303);
      assert.equal((await reload(order._id)).status, 'paid');
    });
  });

  describe('headers', () => {
    const expectedCsp = [
      "default-src 'self'",
      "script-src 'self'",
      "style-src 'self'",
      "img-src 'self' data:",
      "font-src 'self'",
      "connect-src 'self'",
      "object-src 'none'",
      "form-action 'self'",
      "frame-ancestors 'none'",
      "base-uri 'none'",
    ];
    const pages: Array<[string, () => Promise<string>]> = [
      ['the checkout form', async () => (await newOrder()).link],
      ['an error page', async () => `${base}/no-such-page`],
      ['a static asset', async () => `${base}/assets/checkout.js`],
    ];
    for (const [name, url] of pages) {
      it(`sends the strict CSP and helmet headers on ${name}`, async () => {
        const res = await fetch(await url());
        const csp = (res.headers.get('content-security-policy') ?? '').split(';').map((d) => d.trim()).sort();
        assert.deepEqual(csp, [...expectedCsp].sort());
        assert.equal(res.headers.get('x-frame-options'), 'DENY');
        assert.equal(res.headers.get('x-content-type-options'), 'nosniff');
        assert.equal(res.headers.get('referrer-policy'), 'no-referrer');
        assert.equal(res.headers.get('cross-origin-opener-policy'), 'same-origin');
        assert.match(res.headers.get('permissions-policy') ?? '', /payment=\(\)/);
        assert.equal(res.headers.get('strict-transport-security'), null, 'no HSTS on a development http host');
        assert.equal(res.headers.get('x-powered-by'), null);
      });
    }
  });

  describe('rate limits on failed attempts', () => {
    it('answers the 6th attempt on an order after 5 declines with 429, until the hour has passed', async () => {
      const { order, link } = await newOrder();
      const c = client();
      for (let i = 1; i <= 5; i++) {
        const res = await c.submit(link, cardForm(DECLINE));
        assert.equal(res.status, 402, `decline ${i}`);
      }
      const limited = await c.submit(link, cardForm('4242424242424242'));
      assert.equal(limited.status, 429);
      const retryAfter = Number(limited.headers.get('retry-after'));
      assert.ok(retryAfter > 3500 && retryAfter <= 3600, String(retryAfter));
      const html = await limited.text();
      assert.match(html, /Too many unsuccessful attempts/);
      assert.match(html, /try again in about 60 minutes/);
      let now = await reload(order._id);
      assert.equal(now.attempts.length, 5, 'the limited attempt never reached the acquirer');
      assert.equal(now.status, 'pending');
      // Another address is limited too: the order itself is.
      assert.equal((await client().submit(link, cardForm('4242424242424242'))).status, 429);
      // An hour later the window has moved on.
      clockOffsetMs = 3_601_000;
      assert.equal((await c.submit(link, cardForm('4242424242424242'))).status, 303);
      now = await reload(order._id);
      assert.equal(now.status, 'paid');
    });

    it('counts a failed 3-D Secure challenge as a failure', async () => {
      const { link } = await newOrder();
      const c = client();
      for (let i = 0; i < 4; i++) assert.equal((await c.submit(link, cardForm(DECLINE))).status, 402);
      const started = await c.submit(link, cardForm('4000000000003220'));
      assert.equal(started.status, 303);
      const failed = await c.submit(new URL(started.headers.get('location')!, base).toString(), { result: 'fail' });
      assert.equal(failed.status, 402);
      assert.equal((await c.submit(link, cardForm('4242424242424242'))).status, 429);
    });

    it('does not count form mistakes or acquirer outages', async () => {
      const { order, link } = await newOrder();
      const c = client();
      for (let i = 0; i < 6; i++) {
        assert.equal((await c.submit(link, { ...cardForm('4242424242424241') })).status, 422);
        assert.equal((await c.submit(link, cardForm('4000000000000119'))).status, 402);
      }
      assert.equal(await PaymentFailure.countDocuments({ orderId: order._id }), 0);
      assert.equal((await c.submit(link, cardForm('4242424242424242'))).status, 303);
    });

    it('limits one client address across orders (card testing), localised', async () => {
      const c = client();
      for (let i = 0; i < 5; i++) {
        const { link } = await newOrder();
        assert.equal((await c.submit(link, cardForm(DECLINE))).status, 402);
      }
      const { order, link } = await newOrder();
      const limited = await c.submit(`${link}&lang=de`, cardForm('4242424242424242'));
      assert.equal(limited.status, 429);
      assert.match(await limited.text(), /Zu viele erfolglose Versuche/);
      // The order itself is fine for everybody else.
      assert.equal((await client().submit(link, cardForm('4242424242424242'))).status, 303);
      assert.equal((await reload(order._id)).status, 'paid');
    });

    it('counts concurrent failures exactly (inserted documents, not $inc)', async () => {
      const c = client();
      const links = await Promise.all(Array.from({ length: 8 }, () => newOrder()));
      await c.get(links[0]!.link); // the browser's cookie first, as a real one would have it
      const tokens = await Promise.all(links.map(async ({ link }) => tokenOf(await c.get(link))));
      const results = await Promise.all(links.map(({ link }, i) => c.submit(link, cardForm(DECLINE), { token: tokens[i]! })));
      // Racing requests may all pass the check before any failure is stored; none is lost after.
      for (const r of results) assert.ok([402, 429].includes(r.status), String(r.status));
      const declined = results.filter((r) => r.status === 402).length;
      assert.equal(await PaymentFailure.countDocuments({ clientIp: c.ip }), declined);
      assert.ok(declined >= 5);
      const { link } = await newOrder();
      assert.equal((await c.submit(link, cardForm('4242424242424242'))).status, 429);
    });

    it('forgets failures older than the window (sweep by query, no TTL index)', async () => {
      const c = client();
      const { link } = await newOrder();
      await c.submit(link, cardForm(DECLINE));
      assert.ok((await PaymentFailure.countDocuments({ clientIp: c.ip })) === 1);
      clockOffsetMs = 2 * 3_600_000;
      const swept = await checkout.sweep();
      assert.ok(swept.failures >= 1);
      assert.equal(await PaymentFailure.countDocuments({ clientIp: c.ip }), 0);
      const indexes = await PaymentFailure.collection.indexes();
      assert.ok(indexes.every((i) => i.expireAfterSeconds === undefined), 'no TTL index');
    });
  });

  it('checks the pay-link signature before any database work', async () => {
    const { link } = await newOrder();
    const tampered = new URL(link);
    tampered.searchParams.set('a', '1');
    const challenge = `${link.split('?')[0]}/3ds/3ds_AAAAAAAAAAAAAAAA?${tampered.searchParams.toString()}`;
    // Every command the driver sends (mongoose's or the repositories' own), as "<collection>.<command>".
    const ops: string[] = [];
    const client_ = mongoose.connection.getClient();
    const probe = (e: { commandName: string; command: Record<string, unknown> }) => void ops.push(`${String(e.command[e.commandName])}.${e.commandName}`);
    client_.on('commandStarted', probe);
    try {
      assert.equal((await fetch(tampered)).status, 404);
      assert.equal((await client().submit(tampered.toString(), cardForm('4242424242424242'), { token: 'x' })).status, 404);
      assert.equal((await fetch(challenge)).status, 404);
      assert.equal(ops.length, 0, `database work for a forged link: ${ops.join(', ')}`);
      assert.equal((await fetch(link)).status, 200);
      assert.ok(ops.includes('orders.find'), `the probe sees database work: ${ops.join(', ')}`);
    } finally {
      client_.off('commandStarted', probe);
    }
  });

  describe('languages', () => {
    const flat = (o: unknown, p = '', out: Record<string, string> = {}) => {
      for (const [k, v] of Object.entries(o as Record<string, unknown>)) {
        if (typeof v === 'string') out[p + k] = v;
        else flat(v, `${p}${k}.`, out);
      }
      return out;
    };
    const catalog = (lc: string) => flat(JSON.parse(readFileSync(path.resolve('templates/locales', lc, 'checkout.json'), 'utf8')));

    it('has the same page keys in every language, none empty', () => {
      const en = Object.keys(catalog('en')).sort();
      for (const lc of PAGE_LOCALES) {
        const c = catalog(lc);
        assert.deepEqual(Object.keys(c).sort(), en, lc);
        for (const [k, v] of Object.entries(c)) assert.ok(v.trim(), `${lc}: ${k} is empty`);
      }
    });

    it('explains every decline code and card error in every language', () => {
      const codes = [
        ...DECLINE_CODES.map((c) => `decline.${c}`),
        ...['CARD_NUMBER_INVALID', 'CARD_BRAND_UNKNOWN', 'CARD_BRAND_MISMATCH', 'CARD_EXPIRED', 'CARD_EXPIRY_INVALID',
          'CARD_CVC_INVALID', 'CARD_HOLDER_INVALID', 'EMAIL_REQUIRED', 'EMAIL_INVALID'].map((c) => `errors.${c}`),
      ];
      for (const lc of PAGE_LOCALES) for (const key of codes) assert.ok(catalog(lc)[key], `${lc}: ${key}`);
    });

    const accept: Array<[string, string[]]> = [
      ['it-IT,it;q=0.9,en;q=0.5', ['it-IT', 'it', 'en']],
      ['en;q=0.2, de', ['de', 'en']],
      ['fr;q=0, es', ['es']],
      ['*', []],
      ['', []],
    ];
    for (const [header, want] of accept) {
      it(`reads Accept-Language "${header}"`, () => assert.deepEqual(acceptedLanguages(header), want));
    }

    it('uses Accept-Language when there is no order language to go by', async () => {
      const res = await fetch(`${base}/pay/NoSuchOrder1234567890?a=1&c=EUR&e=1&k=sec1&s=x`, { headers: { 'accept-language': 'de-CH,de;q=0.9' } });
      assert.equal(res.status, 404);
      assert.match(await res.text(), /<html lang="de">/);
      // The merchant named the order's language (issue 10 item 17: else the browser's would be used).
      const { link } = await newOrder({ locale: 'en' });
      const page = await fetch(link, { headers: { 'accept-language': 'es' } });
      assert.match(await page.text(), /<html lang="en">/, "the order's language wins over the browser's");
      const chosen = await fetch(`${link}&lang=it`, { headers: { 'accept-language': 'es' } });
      assert.match(await chosen.text(), /<html lang="it">/, 'the visible switch wins over both');
    });
  });
});
