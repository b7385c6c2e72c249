// Saved cards (issue 12 part 3) over real HTTP and a real database: the "Save my card" consent
// (ticked, unticked, the merchant's setting off), the customer code on the order and in the
// webhook, one-click payments (security code, expired card not offered, a saved 9995 declining,
// a saved 3220 asking for 3-D Secure), merchant-initiated charges (approved, declined, repeated,
// a crash at each step), and the removal link (GET removes nothing, POST removes it here and in
// the sandbox's vault). No card number or security code in the database or the logs.
import assert from 'node:assert/strict';
import http from 'node:http';
import { type AddressInfo } from 'node:net';
import path from 'node:path';
import mongoose from 'mongoose';
import { Merchant, type MerchantDoc } from '../../src/db/models/merchant.model.ts';
import { Order, type OrderDoc } from '../../src/db/models/order.model.ts';
import { Outbox } from '../../src/db/models/outbox.model.ts';
import { WebhookDelivery } from '../../src/db/models/webhook.model.ts';
import { Customer, type CustomerDoc } from '../../src/db/models/customer.model.ts';
import { CardVaultEntry } from '../../src/db/models/card-vault.model.ts';
import { Claim } from '../../src/db/claims.ts';
import { type LinkKey } from '../../src/domain/pay-link.ts';
import { cardRemovalUrl } from '../../src/domain/card-removal.ts';
import { createHttpApp } from '../../src/http/app.ts';
import { CSRF_COOKIE, deriveCsrfKey } from '../../src/http/middleware/csrf.ts';
import { createCardRemovalRouter } from '../../src/http/checkout/card-removal.routes.ts';
import { createViews } from '../../src/http/views.ts';
import { createLogger } from '../../src/logger.ts';
import { createSandboxAcquirer } from '../../src/services/acquirer/sandbox-acquirer.ts';
import { createCheckoutService, type CheckoutService } from '../../src/services/checkout.service.ts';
import { createEventsService } from '../../src/services/events.service.ts';
import { createMerchantService } from '../../src/services/merchant.service.ts';
import { createOrderService, type OrderService } from '../../src/services/order.service.ts';
import { type FaultHook } from '../../src/services/order-transitions.ts';
import { CHARGE_FAULT_POINTS, createSavedCardChargeService } from '../../src/services/saved-card-charge.service.ts';
import { createSavedCardRemoval } from '../../src/services/saved-card-removal.service.ts';
import { isAppError } from '../../src/domain/errors.ts';
import { useTestDatabase, repos } from '../helpers/db.ts';

const KEYS: LinkKey[] = [{ kid: 'saved1', secret: 'saved-cards-test-secret-saved-cards-test' }];
const MAIL_DOMAIN = 'paymail.test';
const EXPIRY = `09/${String((new Date().getUTCFullYear() + 2) % 100).padStart(2, '0')}`;
const COOKIE = `${CSRF_COOKIE}=saved-cards-test-browser-cookie-01`;
const NO_LIMITS = { failuresPerOrder: 1000, failuresPerClient: 1000 };
const CVC = '913';

class Crash extends Error {
  override name = 'Crash';
}

describe('saved cards: consent, one-click, merchant-initiated charges, removal', function () {
  this.timeout(30_000);
  useTestDatabase();
  const logLines: string[] = [];
  const acquirer = createSandboxAcquirer({ vault: repos.cardVault });
  let server: http.Server;
  let base: string;
  let merchant: MerchantDoc;
  let plain: MerchantDoc;
  let orders: OrderService;
  let checkout: CheckoutService;
  let seq = 0;

  function services(faults?: FaultHook) {
    const events = createEventsService({ repos });
    const f = faults ? { faults } : {};
    const co = createCheckoutService({
      repos,
      acquirer,
      linkKeys: KEYS,
      mailDomain: MAIL_DOMAIN,
      linkFor: orders.linkFor,
      events,
      limits: NO_LIMITS,
      cardRemovalUrl: (o) => cardRemovalUrl(base, KEYS, o),
      ...f,
    });
    return { checkout: co, charges: createSavedCardChargeService({ repos, orders, checkout: co, ...f }) };
  }

  before(async () => {
    server = http.createServer();
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    orders = createOrderService({ repos, publicUrl: base, mailDomain: MAIL_DOMAIN, maxLinkLifetimeDays: 60, linkKeys: KEYS });
    checkout = services().checkout;
    const logger = createLogger('debug', { write: (line: string) => void logLines.push(line) });
    const csrfKey = deriveCsrfKey(KEYS[0]!.secret);
    const app = createHttpApp({
      logger,
      views: createViews({ templatesDir: path.resolve('templates') }),
      checkout: { service: checkout, csrfKey },
      extraRouters: [createCardRemovalRouter({ removal: createSavedCardRemoval({ repos, linkKeys: KEYS, vaultOf: checkout.savedCardVault }), csrfKey, templatesDir: path.resolve('templates') })],
      production: false,
    });
    server.on('request', app.callback());
    const merchants = createMerchantService({ repos, mailDomain: MAIL_DOMAIN });
    const created = await merchants.create({ name: 'Hotel Bellavista', email: 'desk@bellavista.example', timezone: 'Europe/Rome' });
    await Merchant.updateOne({ _id: created.id }, { $set: { savedCardsEnabled: true, webhookUrl: 'https://hooks.bellavista.example/paymail' } });
    merchant = (await Merchant.findById(created.id).lean<MerchantDoc>())!;
    const other = await merchants.create({ name: 'Bar Centrale', email: 'cassa@centrale.example', timezone: 'Europe/Rome' });
    plain = (await Merchant.findById(other.id).lean<MerchantDoc>())!;
  });

  after(async () => {
    server.closeAllConnections();
    await new Promise((r) => server.close(r));
  });

  async function newOrder(email: string, m: MerchantDoc = merchant, amountMinor = 12990) {
    seq += 1;
    const r = await orders.create(m, { amountMinor, currency: 'EUR', reference: `SC-${seq}`, description: 'Room', customerEmail: email }, { key: `test:${seq}` });
    return { order: r.order, link: r.link };
  }

  async function page(link: string): Promise<string> {
    return (await fetch(link, { headers: { cookie: COOKIE } })).text();
  }
  const tokenOf = (html: string) => /name="_csrf" value="([^"]+)"/.exec(html)?.[1] ?? '';
  const unescape = (s: string) => s.replace(/&#x3D;/g, '=').replace(/&amp;/g, '&');

  async function postForm(url: string, form: Record<string, string>): Promise<Response> {
    return fetch(url, {
      method: 'POST',
      redirect: 'manual',
      headers: { 'content-type': 'application/x-www-form-urlencoded', cookie: COOKIE },
      body: new URLSearchParams(form).toString(),
    });
  }

  /** Pays `link` with the card form (the token read from the page, as a browser does). */
  async function payWithCard(link: string, number: string, extra: Record<string, string> = {}) {
    const html = await page(link);
    return postForm(link, { _csrf: tokenOf(html), number, expiry: EXPIRY, cvc: CVC, holder: 'Anna Rossi', ...extra });
  }

  /** Pays `link` with the one-click form of the page. */
  async function payOneClick(link: string, cvc?: string) {
    const html = await page(link);
    const form = /<form method="post" action="([^"]+)" class="card-form one-click-form">[\s\S]*?name="cardId" value="([^"]+)"/.exec(html);
    assert.ok(form, 'the page offers one-click');
    return postForm(new URL(unescape(form[1]!), base).toString(), { _csrf: tokenOf(html), cardId: form[2]!, ...(cvc !== undefined ? { cvc } : {}) });
  }

  async function passChallenge(res: Response) {
    assert.equal(res.status, 303);
    const url = new URL(res.headers.get('location')!, base).toString();
    assert.match(url, /\/3ds\/3ds_/);
    const html = await page(url);
    return postForm(url, { _csrf: tokenOf(html), result: 'pass' });
  }

  const reload = async (id: string) => (await Order.findById(id).lean<OrderDoc>())!;
  const customerOf = async (email: string, m: MerchantDoc = merchant) => Customer.findOne({ merchantId: m._id, email }).lean<CustomerDoc>();

  /** A customer with a card saved by paying with `number` (ticked). */
  async function saveCard(email: string, number = '4242424242424242') {
    const { order, link } = await newOrder(email);
    let res = await payWithCard(link, number, { saveCard: 'yes' });
    if (number === '4000000000003220') res = await passChallenge(res);
    assert.equal(res.status, 303);
    const paid = await reload(order._id);
    assert.equal(paid.status, 'paid');
    return { order: paid, customer: (await customerOf(email))! };
  }

  describe('the consent to save', () => {
    it('shows the unticked checkbox only when the merchant enabled saved cards', async () => {
      const on = await page((await newOrder('show@example.org')).link);
      assert.match(on, /<input id="saveCard" name="saveCard" type="checkbox" value="yes" aria-describedby="saveCard-hint">/, 'unticked');
      assert.match(on, /<label for="saveCard">Save my card for future payments to Hotel Bellavista<\/label>/);
      const off = await page((await newOrder('show@example.org', plain)).link);
      assert.doesNotMatch(off, /saveCard/);
    });

    it('unticked: paid, nothing saved', async () => {
      const { order, link } = await newOrder('unticked@example.org');
      assert.equal((await payWithCard(link, '4242424242424242')).status, 303);
      const paid = await reload(order._id);
      assert.equal(paid.status, 'paid');
      assert.equal(paid.customerCode, undefined);
      assert.equal(paid.payment?.savedCardId, undefined);
      assert.equal(await customerOf('unticked@example.org'), null);
    });

    it('setting off: a posted tick saves nothing', async () => {
      const { order, link } = await newOrder('off@example.org', plain);
      assert.equal((await payWithCard(link, '4242424242424242', { saveCard: 'yes' })).status, 303);
      const paid = await reload(order._id);
      assert.equal(paid.status, 'paid');
      assert.equal(paid.customerCode, undefined);
      assert.equal(await customerOf('off@example.org', plain), null);
    });

    it('ticked: the card is saved (token, brand, last four, expiry, acquirer), the order gets the customer code, the webhook and the receipt carry it', async () => {
      const { order, customer } = await saveCard('anna@example.org');
      assert.match(order.customerCode!, /^cus_[A-Za-z0-9_-]{21}$/);
      assert.equal(customer._id, order.customerCode);
      assert.equal(customer.cards.length, 1);
      const card = customer.cards[0]!;
      assert.deepEqual(Object.keys(card).sort(), ['acquirer', 'brand', 'expMonth', 'expYear', 'id', 'last4', 'savedAt', 'token']);
      assert.equal(card.acquirer, 'sandbox');
      assert.equal(card.last4, '4242');
      assert.equal(card.brand, 'Visa');
      assert.equal(order.payment?.savedCardId, card.id);
      // The sandbox's vault has the token, with what it will answer: never the number.
      const vault = await CardVaultEntry.findById(card.token).lean();
      assert.equal(vault?.outcome, 'approved');
      assert.equal(vault?.last4, '4242');
      const event = await WebhookDelivery.findOne({ orderId: order._id, type: 'payment.succeeded' }).lean<{ body: string }>();
      assert.equal(JSON.parse(event!.body).data.order.customerCode, order.customerCode);
      const receipt = await Outbox.findOne({ orderId: order._id, template: 'receipt-customer' }).lean<{ data: Record<string, unknown> }>();
      assert.equal(receipt!.data['removeCardUrl'], cardRemovalUrl(base, KEYS, order));
      const merchantReceipt = await Outbox.findOne({ orderId: order._id, template: 'receipt-merchant' }).lean<{ data: Record<string, unknown> }>();
      assert.equal(merchantReceipt!.data['removeCardUrl'], undefined, 'only the customer gets the removal link');
      // The receipt page (the pay-link once paid) links to it too.
      const receiptPage = await page(orders.linkFor(order));
      assert.match(receiptPage, /Your card Visa •••• 4242 is saved for future payments to Hotel Bellavista\./);
      assert.ok(receiptPage.includes(`href="${cardRemovalUrl(base, KEYS, order)!.replace(/&/g, '&amp;').replace(/=/g, '&#x3D;')}"`), 'removal link on the receipt page');
    });

    it('ticked with a 3-D Secure card: the consent rides on the challenge, the card is saved once it passes', async () => {
      const { order, customer } = await saveCard('tre@example.org', '4000000000003220');
      assert.equal(customer.cards.length, 1);
      assert.equal(order.customerCode, customer._id);
      assert.equal((await CardVaultEntry.findById(customer.cards[0]!.token).lean())?.status, 'active');
    });
  });

  describe('one-click', () => {
    it('offers "Pay with Visa •••• 4242" with the security code beside the full form, and pays with it', async () => {
      const { customer } = await saveCard('oneclick@example.org');
      const { order, link } = await newOrder('oneclick@example.org', merchant, 4500);
      const html = await page(link);
      assert.match(html, /<button type="submit" class="button-pay">Pay with Visa •••• 4242<\/button>/);
      assert.match(html, /<label for="saved-cvc-0">Security code of Visa •••• 4242<\/label>/);
      assert.match(html, /name="number"/, 'the full form stays');
      // Without the security code: nothing is charged.
      const missing = await payOneClick(link);
      assert.equal(missing.status, 422);
      assert.match(await missing.text(), /Enter the security code of the card/);
      assert.deepEqual((await reload(order._id)).attempts, []);
      assert.equal((await payOneClick(link, '123')).status, 303);
      const paid = await reload(order._id);
      assert.equal(paid.status, 'paid');
      assert.equal(paid.customerCode, customer._id);
      assert.equal(paid.payment?.savedCardId, customer.cards[0]!.id);
      assert.equal(paid.payment?.initiator, 'customer');
      assert.equal(paid.attempts[0]?.initiator, 'customer');
      const receipt = await Outbox.findOne({ orderId: order._id, template: 'receipt-customer' }).lean<{ data: Record<string, unknown> }>();
      assert.match(String(receipt!.data['removeCardUrl']), /\/cards\/cus_[\w-]+\/card_[\w-]+\/remove\?k=saved1&s=/);
    });

    it('is not offered to another address, another merchant, or when the card has expired', async () => {
      await saveCard('owner@example.org');
      assert.doesNotMatch(await page((await newOrder('stranger@example.org')).link), /Pay with Visa/);
      assert.doesNotMatch(await page((await newOrder('owner@example.org', plain)).link), /Pay with Visa/);
      const expired = await Customer.create({
        _id: `cus_${'e'.repeat(21)}`,
        merchantId: merchant._id,
        email: 'expired@example.org',
        createdAt: new Date(),
        cards: [{ id: `card_${'e'.repeat(21)}`, token: 'tok_expired', brand: 'visa', last4: '1111', expMonth: 1, expYear: 2020, acquirer: 'sandbox', savedAt: new Date() }],
      });
      assert.ok(expired);
      const html = await page((await newOrder('expired@example.org')).link);
      assert.doesNotMatch(html, /Pay with Visa •••• 1111/);
      assert.doesNotMatch(html, /one-click/);
    });

    it('a saved 4000 0000 0000 9995 declines later with insufficient funds', async () => {
      const { customer } = await saveCard('funds@example.org', '4000000000009995');
      assert.equal((await CardVaultEntry.findById(customer.cards[0]!.token).lean())?.declineCode, 'INSUFFICIENT_FUNDS');
      const { order, link } = await newOrder('funds@example.org');
      const res = await payOneClick(link, CVC);
      assert.equal(res.status, 402);
      assert.match(await res.text(), /insufficient funds/);
      const after = await reload(order._id);
      assert.equal(after.status, 'pending');
      assert.deepEqual(after.attempts.map((a) => [a.outcome, a.declineCode, a.initiator]), [['declined', 'INSUFFICIENT_FUNDS', 'customer']]);
    });

    it('a saved 4000 0000 0000 3220 asks for 3-D Secure again in one click', async () => {
      const { customer } = await saveCard('secure@example.org', '4000000000003220');
      const { order, link } = await newOrder('secure@example.org');
      const done = await passChallenge(await payOneClick(link, CVC));
      assert.equal(done.status, 303);
      const paid = await reload(order._id);
      assert.equal(paid.status, 'paid');
      assert.equal(paid.payment?.savedCardId, customer.cards[0]!.id);
      assert.equal(paid.customerCode, customer._id);
      assert.deepEqual(paid.attempts.map((a) => a.outcome), ['challenge', 'approved']);
    });
  });

  describe('merchant-initiated charges', () => {
    it('approved: a new order paid without the customer, marked merchant-initiated, with receipts and webhook', async () => {
      const { customer } = await saveCard('mit@example.org');
      const r = await services().charges.chargeSavedCard(merchant, customer._id, { amountMinor: 2500, currency: 'EUR', reference: 'SUB-2026-01', description: 'January' });
      assert.equal(r.outcome, 'approved');
      const paid = await reload(r.order._id);
      assert.equal(paid.status, 'paid');
      assert.equal(paid.amountMinor, 2500);
      assert.equal(paid.customer?.email, 'mit@example.org');
      assert.equal(paid.customerCode, customer._id);
      assert.equal(paid.payment?.initiator, 'merchant');
      assert.deepEqual(paid.attempts.map((a) => [a.outcome, a.initiator]), [['approved', 'merchant']]);
      const mails = (await Outbox.find({ orderId: paid._id }).lean<Array<{ template: string }>>()).map((m) => m.template).sort();
      assert.deepEqual(mails, ['receipt-customer', 'receipt-merchant'], 'receipts, no pay-link mail');
      assert.equal(await WebhookDelivery.countDocuments({ orderId: paid._id, type: 'payment.succeeded' }), 1);
      // The same reference again: the same order, not charged twice.
      const again = await services().charges.chargeSavedCard(merchant, customer._id, { amountMinor: 2500, currency: 'EUR', reference: 'SUB-2026-01' });
      assert.equal(again.outcome, 'approved');
      assert.equal(again.order._id, paid._id);
      assert.equal((await reload(paid._id)).attempts.length, 1);
      await assert.rejects(
        services().charges.chargeSavedCard(merchant, customer._id, { amountMinor: 9900, currency: 'EUR', reference: 'SUB-2026-01' }),
        (e: unknown) => isAppError(e, 'CHARGE_CONFLICT'),
      );
    });

    it('declined: answers the decline code and records the attempt; a repeat answers the same, once', async () => {
      const { customer } = await saveCard('mit-funds@example.org', '4000000000009995');
      const r = await services().charges.chargeSavedCard(merchant, customer._id, { amountMinor: 2500, currency: 'EUR', reference: 'SUB-F-1' });
      assert.equal(r.outcome, 'declined');
      assert.equal(r.outcome === 'declined' && r.code, 'INSUFFICIENT_FUNDS');
      const again = await services().charges.chargeSavedCard(merchant, customer._id, { amountMinor: 2500, currency: 'EUR', reference: 'SUB-F-1' });
      assert.equal(again.outcome === 'declined' && again.code, 'INSUFFICIENT_FUNDS');
      const order = await reload(r.order._id);
      assert.deepEqual(order.attempts.map((a) => [a.outcome, a.declineCode, a.initiator]), [['declined', 'INSUFFICIENT_FUNDS', 'merchant']]);
      assert.equal(await WebhookDelivery.countDocuments({ orderId: order._id, type: 'payment.failed' }), 1);
    });

    it('a card that wants 3-D Secure cannot be charged without the customer: AUTHENTICATION_REQUIRED', async () => {
      const { customer } = await saveCard('mit-3ds@example.org', '4000000000003220');
      const r = await services().charges.chargeSavedCard(merchant, customer._id, { amountMinor: 2500, currency: 'EUR', reference: 'SUB-3DS-1' });
      assert.equal(r.outcome === 'declined' && r.code, 'AUTHENTICATION_REQUIRED');
    });

    it('refuses an unknown customer and another merchant\'s customer', async () => {
      const { customer } = await saveCard('mit-tenant@example.org');
      for (const [m, code] of [[merchant, `cus_${'x'.repeat(21)}`], [plain, customer._id]] as const) {
        await assert.rejects(services().charges.chargeSavedCard(m, code, { amountMinor: 100, currency: 'EUR', reference: `T-${code.slice(-3)}` }), (e: unknown) => isAppError(e, 'CUSTOMER_NOT_FOUND'));
      }
      await assert.rejects(services().charges.chargeSavedCard(merchant, customer._id, { amountMinor: 0, currency: 'EUR', reference: 'T-0' }), (e: unknown) => isAppError(e, 'CHARGE_INVALID'));
    });

    describe('a crash at each step: the repair (or the repeat) finishes it, charged once, each side effect once', () => {
      for (const point of [...CHARGE_FAULT_POINTS, 'pay:authorized', 'pay:claimed', 'pay:applied', 'pay:receipt-customer', 'pay:event']) {
        it(point, async () => {
          const { customer } = await saveCard(`crash-${point.replace(/\W/g, '')}@example.org`);
          const input = { amountMinor: 1500, currency: 'EUR', reference: `CR-${point}` };
          await assert.rejects(
            services((p) => {
              if (p === point) throw new Crash(p);
            }).charges.chargeSavedCard(merchant, customer._id, input),
            Crash,
          );
          // The restart: the repair finishes whatever the crash left (claims older than 0 ms).
          const fresh = services();
          await fresh.checkout.repairInterrupted(0);
          await fresh.charges.repairInterrupted(0);
          const r = await fresh.charges.chargeSavedCard(merchant, customer._id, input);
          assert.equal(r.outcome, 'approved');
          const order = await reload(r.order._id);
          assert.equal(order.status, 'paid');
          assert.equal(order.attempts.filter((a) => a.outcome === 'approved').length, 1);
          const mails = (await Outbox.find({ orderId: order._id }).lean<Array<{ template: string }>>()).map((m) => m.template).sort();
          assert.deepEqual(mails, ['receipt-customer', 'receipt-merchant']);
          assert.equal(await WebhookDelivery.countDocuments({ orderId: order._id, type: 'payment.succeeded' }), 1);
          assert.equal(await Claim.countDocuments({ _id: { $in: [`charge:${order._id}`, `order:${order._id}:close`] }, applied: false }), 0);
        });
      }
    });
  });

  describe('removal link', () => {
    it('GET only confirms; POST removes the card here and in the vault; the link then says it is gone', async () => {
      const { order, customer } = await saveCard('remove@example.org');
      const token = customer.cards[0]!.token;
      const url = cardRemovalUrl(base, KEYS, order)!;
      const confirm = await fetch(url, { headers: { cookie: COOKIE } });
      assert.equal(confirm.status, 200);
      const html = await confirm.text();
      assert.match(html, /Remove your saved card\?/);
      assert.match(html, /Visa •••• 4242 is saved for payments to Hotel Bellavista/);
      assert.equal((await customerOf('remove@example.org'))!.cards.length, 1, 'GET removes nothing');
      assert.ok(await CardVaultEntry.findById(token).lean());
      assert.equal((await postForm(url, { _csrf: 'forged' })).status, 403);
      assert.equal((await customerOf('remove@example.org'))!.cards.length, 1);
      const done = await postForm(url, { _csrf: tokenOf(html) });
      assert.equal(done.status, 200);
      assert.match(await done.text(), /Your card has been removed/);
      assert.equal((await customerOf('remove@example.org'))!.cards.length, 0);
      assert.equal(await CardVaultEntry.findById(token).lean(), null, 'the vault forgot it too');
      assert.match(await (await fetch(url)).text(), /This card is no longer saved/);
      // No longer offered, nor chargeable.
      assert.doesNotMatch(await page((await newOrder('remove@example.org')).link), /Pay with Visa/);
      await assert.rejects(services().charges.chargeSavedCard(merchant, customer._id, { amountMinor: 100, currency: 'EUR', reference: 'RM-1' }), (e: unknown) => isAppError(e, 'SAVED_CARD_NOT_FOUND'));
    });

    it('a link with a wrong signature is not found', async () => {
      const { order } = await saveCard('tamper@example.org');
      const url = new URL(cardRemovalUrl(base, KEYS, order)!);
      url.searchParams.set('s', 'A'.repeat(43));
      assert.equal((await fetch(url)).status, 404);
      assert.equal((await postForm(url.toString(), {})).status, 404);
      assert.equal((await customerOf('tamper@example.org'))!.cards.length, 1);
    });
  });

  // Last (mocha runs a suite's own tests before its nested suites): after every payment above.
  describe('afterwards', () => {
    it('keeps no card number or security code in the database or the logs', async () => {
      const numbers = ['4242424242424242', '4000000000009995', '4000000000003220'];
      const collections = await mongoose.connection.db!.listCollections().toArray();
      for (const c of collections) {
        const docs = JSON.stringify(await mongoose.connection.db!.collection(c.name).find({}).toArray());
        for (const n of numbers) assert.ok(!docs.includes(n), `${c.name} holds a card number`);
        assert.ok(!/"cvc"/.test(docs), `${c.name} holds a security code`);
      }
      const logs = logLines.join('\n');
      for (const n of numbers) assert.ok(!logs.includes(n), 'a card number was logged');
      assert.doesNotMatch(logs, /"cvc"/);
    });
  });
});
