// "Opened by the customer" over real HTTP: opening a pay-link (GET, HEAD, a mail scanner) changes
// nothing; the first interaction — the page's same-origin beacon (pay-link query + CSRF token) or
// the form submitted without JavaScript — records `viewed` once: `viewedAt` on the order, one
// `order.viewed` webhook event, an entry in the back-office history. Never for a closed order.
import assert from 'node:assert/strict';
import http from 'node:http';
import { type AddressInfo } from 'node:net';
import path from 'node:path';
import { Claim } from '../../src/db/claims.ts';
import { Merchant, type MerchantDoc } from '../../src/db/models/merchant.model.ts';
import { Order, type OrderDoc } from '../../src/db/models/order.model.ts';
import { WebhookDelivery } from '../../src/db/models/webhook.model.ts';
import { type LinkKey } from '../../src/domain/pay-link.ts';
import { createHttpApp } from '../../src/http/app.ts';
import { createBackofficeViews } from '../../src/http/backoffice/backoffice.views.ts';
import { timeline } from '../../src/http/backoffice/backoffice.view-model.ts';
import { CSRF_COOKIE, deriveCsrfKey } from '../../src/http/middleware/csrf.ts';
import { createViews } from '../../src/http/views.ts';
import { createLogger } from '../../src/logger.ts';
import { createSandboxAcquirer } from '../../src/services/acquirer/sandbox-acquirer.ts';
import { createCheckoutService } from '../../src/services/checkout.service.ts';
import { createEventsService } from '../../src/services/events.service.ts';
import { createMerchantService } from '../../src/services/merchant.service.ts';
import { createOrderService, type OrderService } from '../../src/services/order.service.ts';
import { useTestDatabase } from '../helpers/db.ts';
import { repos } from '../helpers/db.ts';

const KEYS: LinkKey[] = [{ kid: 'test1', secret: 'viewed-test-secret-viewed-test-secret-00' }];
const MAIL_DOMAIN = 'paymail.test';
const COOKIE = `${CSRF_COOKIE}=viewed-test-browser-cookie-00001`;
const SCANNER_UA = 'Mozilla/5.0 (compatible; Barracuda Sentinel; +https://www.barracuda.com) SafeLinks/1.0';
const EXPIRY = `09/${String((new Date().getUTCFullYear() + 2) % 100).padStart(2, '0')}`;

describe('checkout: viewed by the customer, never by a link scanner', function () {
  this.timeout(20_000);
  useTestDatabase();
  let server: http.Server;
  let base: string;
  let merchant: MerchantDoc;
  let orders: OrderService;
  let seq = 0;

  before(async () => {
    server = http.createServer();
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    orders = createOrderService({ repos, publicUrl: base, mailDomain: MAIL_DOMAIN, maxLinkLifetimeDays: 60, linkKeys: KEYS });
    const checkout = createCheckoutService({ repos,
      acquirer: createSandboxAcquirer({ latencyMs: 5 }),
      linkKeys: KEYS,
      mailDomain: MAIL_DOMAIN,
      linkFor: orders.linkFor,
      events: createEventsService({ repos }),
      limits: { failuresPerOrder: 1000, failuresPerClient: 1000 },
    });
    const app = createHttpApp({
      logger: createLogger('silent'),
      views: createViews({ templatesDir: path.resolve('templates') }),
      checkout: { service: checkout, csrfKey: deriveCsrfKey(KEYS[0]!.secret) },
      production: false,
    });
    server.on('request', app.callback());
    const created = await createMerchantService({ repos, mailDomain: MAIL_DOMAIN }).create({
      name: 'Libreria Dante',
      email: 'cassa@dante.example',
      timezone: 'Europe/Rome',
      webhookUrl: 'https://hooks.dante.example/paymail',
    });
    merchant = (await Merchant.findById(created.id).lean<MerchantDoc>())!;
  });

  after(async () => {
    server.closeAllConnections();
    await new Promise((r) => server.close(r));
  });

  async function newOrder() {
    seq += 1;
    const r = await orders.create(merchant, { amountMinor: 2500, currency: 'EUR', reference: `LD-${seq}`, customerEmail: 'pia@example.org' }, { key: `viewed:${seq}` });
    return { order: r.order, link: r.link };
  }

  const reload = async (id: string) => (await Order.findById(id).lean<OrderDoc>())!;
  const viewedEvents = (orderId: string) => WebhookDelivery.find({ orderId, type: 'order.viewed' }).lean();
  /** The beacon URL of a pay-link: the same signed query under /viewed. */
  const beaconUrl = (link: string) => {
    const u = new URL(link);
    return `${u.origin}${u.pathname}/viewed${u.search}`;
  };

  async function pageToken(link: string): Promise<{ token: string; html: string }> {
    const html = await (await fetch(link, { headers: { cookie: COOKIE } })).text();
    return { token: /name="_csrf" value="([^"]+)"/.exec(html)?.[1] ?? '', html };
  }

  function beacon(url: string, token: string | undefined, cookie = COOKIE): Promise<Response> {
    return fetch(url, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded', cookie },
      body: new URLSearchParams(token === undefined ? {} : { _csrf: token }).toString(),
    });
  }

  async function assertNotViewed(orderId: string): Promise<void> {
    assert.equal((await reload(orderId)).viewedAt ?? null, null, 'no viewedAt');
    assert.equal((await viewedEvents(orderId)).length, 0, 'no order.viewed event');
    assert.equal(await Claim.countDocuments({ _id: `order:${orderId}:viewed` }), 0, 'no viewed claim');
  }

  it('a plain GET, a HEAD and a scanner GET record nothing and fire no webhook', async () => {
    const { order, link } = await newOrder();
    const requests: RequestInit[] = [
      { method: 'GET' },
      { method: 'HEAD' },
      { method: 'GET', headers: { 'user-agent': SCANNER_UA } },
      { method: 'GET', headers: { cookie: COOKIE } },
    ];
    for (const init of requests) {
      const res = await fetch(link, init);
      assert.equal(res.status, 200, `${init.method} answers`);
      await res.arrayBuffer();
    }
    await assertNotViewed(order._id);
  });

  it('the page carries the beacon URL under the pay-link, with its signed query', async () => {
    const { link } = await newOrder();
    const { html } = await pageToken(link);
    const url = /data-viewed="([^"]+)"/.exec(html)?.[1]?.replace(/&#x3D;/g, '=').replace(/&amp;/g, '&');
    assert.ok(url, 'the form names its beacon');
    assert.equal(`${base}${url}`, beaconUrl(link));
  });

  it('refuses a beacon without a CSRF token, with a wrong one, or with a forged link, recording nothing', async () => {
    const { order, link } = await newOrder();
    const { token } = await pageToken(link);
    const other = await newOrder();
    const { token: otherToken } = await pageToken(other.link);
    const forged = beaconUrl(link).replace(/([?&]s=)([^&]+)/, (_m, k: string, s: string) => `${k}${s.slice(0, -2)}${s.endsWith('AA') ? 'BB' : 'AA'}`);
    const cases: Array<[string, Promise<Response>, number]> = [
      ['no token', beacon(beaconUrl(link), undefined), 403],
      ['a wrong token', beacon(beaconUrl(link), 'x'.repeat(43)), 403],
      ["another order's token", beacon(beaconUrl(link), otherToken), 403],
      ['no cookie', beacon(beaconUrl(link), token, ''), 403],
      ['a forged signature', beacon(forged, token), 404],
      ['a changed amount', beacon(beaconUrl(link).replace(/([?&]a=)\d+/, '$19900'), token), 404],
      ['no signed query', beacon(beaconUrl(link).split('?')[0]!, token), 404],
      // Only a POST records: a GET of the beacon URL is no page at all.
      ['a GET', fetch(beaconUrl(link), { headers: { cookie: COOKIE } }), 404],
    ];
    for (const [name, res, status] of cases) assert.equal((await res).status, status, name);
    assert.notEqual(forged, beaconUrl(link));
    await assertNotViewed(order._id);
    await assertNotViewed(other.order._id);
  });

  it('a valid beacon records viewed once: twice (or racing) is still one event', async () => {
    const { order, link } = await newOrder();
    const { token } = await pageToken(link);
    const before = Date.now();
    const answers = await Promise.all([beacon(beaconUrl(link), token), beacon(beaconUrl(link), token), beacon(beaconUrl(link), token)]);
    assert.deepEqual(answers.map((r) => r.status), [204, 204, 204]);
    const again = await beacon(beaconUrl(link), token);
    assert.equal(again.status, 204);
    const o = await reload(order._id);
    assert.ok(o.viewedAt && o.viewedAt.getTime() >= before - 1000, 'viewedAt set');
    assert.equal(o.status, 'pending', 'viewing changes nothing else');
    const events = await viewedEvents(order._id);
    assert.equal(events.length, 1, 'one order.viewed event');
    assert.equal(events[0]!.dedupeKey, `order.viewed:${order._id}`);
    const body = JSON.parse(events[0]!.body) as { type: string; data: { order: { reference: string; viewedAt: string } } };
    assert.equal(body.type, 'order.viewed');
    assert.equal(body.data.order.reference, order.reference);
    assert.equal(body.data.order.viewedAt, o.viewedAt!.toISOString());
    const firstAt = o.viewedAt!.getTime();
    assert.equal((await reload(order._id)).viewedAt!.getTime(), firstAt, 'the first time stays');
  });

  it('the form submitted without JavaScript records viewed, even when the card is declined', async () => {
    const { order, link } = await newOrder();
    const { token } = await pageToken(link);
    const res = await fetch(link, {
      method: 'POST',
      redirect: 'manual',
      headers: { 'content-type': 'application/x-www-form-urlencoded', cookie: COOKIE },
      // Sandbox: insufficient funds.
      body: new URLSearchParams({ _csrf: token, number: '4000 0000 0000 9995', expiry: EXPIRY, cvc: '123', holder: 'Pia Alighieri' }).toString(),
    });
    assert.equal(res.status, 402);
    const o = await reload(order._id);
    assert.equal(o.status, 'pending');
    assert.ok(o.viewedAt, 'viewedAt set');
    assert.equal((await viewedEvents(order._id)).length, 1);
  });

  it('a form POST without a valid CSRF token records nothing', async () => {
    const { order, link } = await newOrder();
    const res = await fetch(link, {
      method: 'POST',
      redirect: 'manual',
      headers: { 'content-type': 'application/x-www-form-urlencoded', cookie: COOKIE },
      body: new URLSearchParams({ number: '4242 4242 4242 4242', expiry: EXPIRY, cvc: '123', holder: 'X' }).toString(),
    });
    assert.equal(res.status, 403);
    await assertNotViewed(order._id);
  });

  it('paid and cancelled orders never get viewed', async () => {
    const paid = await newOrder();
    const cancelled = await newOrder();
    const tokens = [(await pageToken(paid.link)).token, (await pageToken(cancelled.link)).token];
    await Order.updateOne({ _id: paid.order._id }, { $set: { status: 'paid', openReference: paid.order._id, payment: { paidAt: new Date(), receiptNumber: 'R-1', authCode: 'A1' } } });
    await Order.updateOne({ _id: cancelled.order._id }, { $set: { status: 'cancelled', openReference: cancelled.order._id, cancelledAt: new Date() } });
    for (const [i, x] of [paid, cancelled].entries()) {
      const res = await beacon(beaconUrl(x.link), tokens[i]);
      assert.equal(res.status, 404);
      await (await fetch(x.link, { headers: { cookie: COOKIE } })).text();
      await assertNotViewed(x.order._id);
    }
  });

  it('shows "opened" in the back-office history, in English and Italian', async () => {
    const { order, link } = await newOrder();
    const { token } = await pageToken(link);
    assert.equal((await beacon(beaconUrl(link), token)).status, 204);
    const views = createBackofficeViews(path.resolve('templates'));
    const o = await reload(order._id);
    const en = timeline(views, o, [], 'en', 'Europe/Rome');
    const it = timeline(views, o, [], 'it', 'Europe/Rome');
    assert.ok(en.some((e) => e.text === 'Opened by the customer'), JSON.stringify(en));
    assert.ok(it.some((e) => e.text === 'Aperto dal cliente'), JSON.stringify(it));
    const fresh = await newOrder();
    assert.ok(!timeline(views, await reload(fresh.order._id), [], 'en', 'Europe/Rome').some((e) => e.text === 'Opened by the customer'));
  });
});
