// The hosted checkout over real HTTP, against a real database: the pages, every sandbox card,
// tampered/expired/cancelled/paid links, racing payments, and no card data left behind.
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
import { createViews } from '../../src/http/views.ts';
import { Claim } from '../../src/db/claims.ts';
import { createLogger } from '../../src/logger.ts';
import { createSandboxAcquirer } from '../../src/services/acquirer/sandbox-acquirer.ts';
import { type Acquirer } from '../../src/domain/acquirer.ts';
import { closeClaimKey, createCheckoutService, type CheckoutForm, type CheckoutService } from '../../src/services/checkout.service.ts';
import { createMerchantService } from '../../src/services/merchant.service.ts';
import { createOrderService, type OrderDraft, type OrderService } from '../../src/services/order.service.ts';
import { useTestDatabase } from '../helpers/db.ts';

const KEYS: LinkKey[] = [{ kid: 'test1', secret: 'checkout-test-secret-checkout-test-secret' }];
const MAIL_DOMAIN = 'paymail.test';
const CVC = '913';
const AMEX_CVC = '4826';
const CARDS_USED = new Set<string>();
const nextYear = String((new Date().getUTCFullYear() + 2) % 100).padStart(2, '0');
const EXPIRY = `09/${nextYear}`;

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
    orders = createOrderService({ publicUrl: base, mailDomain: MAIL_DOMAIN, maxLinkLifetimeDays: 60, linkKeys: KEYS });
    checkout = createCheckoutService({ acquirer, linkKeys: KEYS, mailDomain: MAIL_DOMAIN, linkFor: orders.linkFor });
    const logger = createLogger('debug', { write: (line: string) => void logLines.push(line) });
    const app = createHttpApp({
      logger,
      views: createViews({ templatesDir: path.resolve('templates') }),
      checkout: { service: checkout },
      production: false,
    });
    server.on('request', app.callback());
    const created = await createMerchantService({ mailDomain: MAIL_DOMAIN }).create({
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

  function post(link: string, form: Record<string, string>): Promise<Response> {
    return fetch(link, {
      method: 'POST',
      redirect: 'manual',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams(form).toString(),
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
    assert.doesNotMatch(html, /<script|style=/, 'no inline script or style');
    const csp = res.headers.get('content-security-policy') ?? '';
    assert.match(csp, /frame-ancestors 'none'/);
    assert.match(csp, /default-src 'none'/);
    assert.doesNotMatch(csp, /unsafe-inline/);
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

  it('serves the stylesheet that the CSP allows', async () => {
    const res = await fetch(`${base}/assets/checkout.css`);
    assert.equal(res.status, 200);
    assert.match(res.headers.get('content-type') ?? '', /text\/css/);
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
      { brand: 'Visa', bin: '424242', last4: '4242', expMonth: 9, expYear: 2000 + Number(nextYear) },
    );
    assert.match(paid.payment!.receiptNumber!, /^RCPT-/);
    assert.match(paid.payment!.authCode!, /^[0-9A-Z]{6}$/);
    assert.deepEqual(paid.attempts.map((a) => a.outcome), ['approved']);
    assert.ok(html.includes(paid.payment!.receiptNumber!));
    assert.ok(html.includes(paid.payment!.authCode!));
    assert.match(html, /Visa •••• 4242/);
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
      card: { brand: 'Visa', last4: '4242', expMonth: 9, expYear: 2000 + Number(nextYear) },
      authCode: paid.payment!.authCode,
      paidAt: paid.payment!.paidAt!.toISOString(),
      customerEmail: 'anna@example.org',
      customerName: 'Anna Rossi',
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
    ['4000000000003220', 402, 'challenge', '', /3-D Secure/],
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
    const past = createOrderService({
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
        createCheckoutService({ acquirer, linkKeys: KEYS, mailDomain: MAIL_DOMAIN, linkFor: orders.linkFor }),
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
      void: (code) => acquirer.void(code),
    };
    const svc = createCheckoutService({ acquirer: cancelling, linkKeys: KEYS, mailDomain: MAIL_DOMAIN, linkFor: orders.linkFor });
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
