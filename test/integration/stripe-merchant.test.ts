// A merchant on Stripe, end to end through the real processes: `paymail merchant set-acquirer`
// (secrets encrypted at rest under SECRETS_KEY, generated into DATA_DIR in development), paymail
// started as `npm start` does, the buyer paying through the checkout over HTTP (approved, declined,
// 3-D Secure on Stripe's page and back through the return endpoint, or finished by Stripe's
// signed webhook), a refund through the refund service, saved cards (saved at checkout, one click,
// a merchant charge through the server API, removal), the stand-in for Stripe's API on 127.0.0.1;
// and production refusing to start without SECRETS_KEY.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import mongoose from 'mongoose';
import Stripe from 'stripe';
import { freePort } from '../../src/db/embedded-ferretdb.ts';
import { CSRF_COOKIE } from '../../src/http/middleware/csrf.ts';
import { createSandboxAcquirer } from '../../src/services/acquirer/sandbox-acquirer.ts';
import { createAcquirerSettings } from '../../src/services/acquirer/acquirer-settings.ts';
import { createMerchantAcquirers } from '../../src/services/acquirer/merchant-acquirers.ts';
import { createOrderService } from '../../src/services/order.service.ts';
import { createRefundService } from '../../src/services/refund.service.ts';
import { loadSecretsKey } from '../../src/services/secrets-key.ts';
import { repos, useTestDatabase } from '../helpers/db.ts';
import { runCli, startPaymail, type PaymailProcess } from '../helpers/paymail-process.ts';
import { startStripeMock, stripeMockBinary } from '../helpers/stripe-mock.ts';
import { startStripeStandIn, type StripeStandIn } from '../helpers/stripe-stand-in.ts';

const ROOT = path.resolve(import.meta.dirname, '../..');
const KEYS = [{ kid: 'st1', secret: 'stripe-merchant-test-link-key-0123456789' }];
const SECRET_KEY = 'sk_test_51PaymailStripeAdapterKey9876';
const WEBHOOK_SECRET = 'whsec_paymailWebhookSecret1234';
const COOKIE = `${CSRF_COOKIE}=stripe-merchant-test-browser-0001`;

describe('a merchant on Stripe (CLI, checkout over HTTP, webhooks, refunds)', function () {
  this.timeout(180_000);
  const db = useTestDatabase();
  let api: StripeStandIn;
  let app: PaymailProcess;
  let dataDir = '';
  let base = '';
  let env: Record<string, string> = {};
  let merchantId = '';
  let orders: ReturnType<typeof createOrderService>;

  before(async () => {
    api = await startStripeStandIn();
    dataDir = await mkdtemp(path.join(os.tmpdir(), 'paymail-stripe-'));
    const port = await freePort();
    base = `http://127.0.0.1:${port}`;
    env = {
      MONGODB_URI: db.uri(),
      DATA_DIR: dataDir,
      HTTP_PORT: String(port),
      PUBLIC_URL: base,
      SMTP_SUBMISSION_PORT: '0',
      SMTP_MX_PORT: '0',
      MAIL_DOMAIN: 'paymail.test',
      LINK_SIGNING_KEYS: KEYS.map((k) => `${k.kid}:${k.secret}`).join(','),
    };
    const created = await runCli(['merchant', 'create', '--name', 'Negozio Stripe', '--email', 'shop@stripe-shop.example', '--json'], env);
    assert.equal(created.code, 0, created.stderr);
    merchantId = (JSON.parse(created.stdout) as { id: string }).id;
    orders = createOrderService({ repos, publicUrl: base, mailDomain: 'paymail.test', maxLinkLifetimeDays: 60, linkKeys: KEYS });
  });
  after(async () => {
    if (app) assert.equal(await app.stop(), 0);
    await api?.stop();
    if (dataDir) await rm(dataDir, { recursive: true, force: true });
  });

  it('paymail merchant set-acquirer: refuses bad input, stores the keys encrypted, shows only a hint', async () => {
    const noKey = await runCli(['merchant', 'set-acquirer', merchantId, 'stripe'], env);
    assert.equal(noKey.code, 1);
    assert.match(noKey.stderr, /ACQUIRER_SECRET_KEY_REQUIRED/);
    const badKey = await runCli(['merchant', 'set-acquirer', merchantId, 'stripe', '--secret-key', 'pk_test_123456789'], env);
    assert.equal(badKey.code, 1);
    assert.match(badKey.stderr, /ACQUIRER_SECRET_KEY_INVALID/);
    const unknown = await runCli(['merchant', 'set-acquirer', merchantId, 'paypal'], env);
    assert.match(unknown.stderr, /ACQUIRER_INVALID/);
    const usage = await runCli(['merchant', 'set-acquirer', merchantId], env);
    assert.equal(usage.code, 2);

    const r = await runCli(['merchant', 'set-acquirer', merchantId, 'stripe', '--secret-key', SECRET_KEY, '--webhook-secret', WEBHOOK_SECRET, '--api-base', api.url, '--json'], env);
    assert.equal(r.code, 0, r.stderr);
    const shown = JSON.parse(r.stdout) as { acquirer: string; stripe: { secretKeyHint: string; webhookSecretHint: string; apiBase: string } };
    assert.deepEqual(shown, { id: merchantId, acquirer: 'stripe', stripe: { secretKeyHint: 'sk_test_…9876', webhookSecretHint: 'whsec_…1234', apiBase: api.url } });
    assert.ok(!r.stdout.includes(SECRET_KEY) && !r.stderr.includes(SECRET_KEY));

    // At rest: ciphertexts only; not even an sk_ prefix in clear.
    const raw = await mongoose.connection.collection('merchants').findOne({ _id: merchantId as never });
    const text = JSON.stringify(raw);
    assert.equal(raw?.['acquirer'], 'stripe');
    assert.doesNotMatch(text, /sk_/);
    assert.ok(!text.includes(WEBHOOK_SECRET.slice(6)));
    assert.match(String(raw?.['stripe']?.secretKeyEnc), /^v1\.[\w-]+\.[\w-]+\.[\w-]+$/);
  });

  it('the checkout takes the payment through Stripe (a PaymentMethod from the card, a PaymentIntent)', async () => {
    // debug: the 'stripe answered' lines (method, path, status of every Stripe request; never a body).
    app = await startPaymail({ ...env, LOG_LEVEL: 'debug' });
    const { order, link } = await createOrder('ST-1', 4200);
    const res = await payWith(link, '4242424242424242');
    assert.equal(res.status, 303);
    const paid = await repos.orders.byId(order._id);
    assert.equal(paid?.status, 'paid');
    assert.equal(paid?.payment?.acquirer, 'stripe');
    const pi = [...api.intents.values()].find((i) => i.metadata['paymail_order'] === order._id)!;
    assert.equal(paid?.payment?.authCode, pi.id);
    assert.equal(pi.amount, 4200);
    assert.equal(pi.status, 'succeeded');
    const receipt = await (await fetch(link, { headers: { cookie: COOKIE } })).text();
    assert.ok(receipt.includes(pi.id), 'the receipt shows the authorisation (the PaymentIntent id)');
    // Neither the card number nor the key reach the logs.
    assert.ok(!app.output.join('\n').includes('4242424242424242'));
    assert.ok(!app.output.join('\n').includes(SECRET_KEY));
  });

  it('a decline from Stripe is shown with its reason; the order stays payable', async () => {
    const { order, link } = await createOrder('ST-2', 1500);
    const res = await payWith(link, '4000000000009995');
    assert.equal(res.status, 402);
    assert.match(await res.text(), /insufficient/i);
    const o = await repos.orders.byId(order._id);
    assert.equal(o?.status, 'pending');
    assert.deepEqual(o?.attempts.map((a) => a.declineCode), ['INSUFFICIENT_FUNDS']);
  });

  it("3-D Secure: the buyer goes to Stripe's page, comes back to the return endpoint, and the order is paid", async () => {
    const { order, link } = await createOrder('ST-3', 9900);
    const res = await payWith(link, '4000000000003220');
    assert.equal(res.status, 303);
    const challengePage = new URL(res.headers.get('location')!, base).toString();
    const page = await (await fetch(challengePage, { headers: { cookie: COOKIE } })).text();
    const stripePage = /<a href="([^"]+)" class="button-pay"/.exec(page)?.[1]?.replace(/&amp;/g, '&');
    assert.ok(stripePage?.startsWith(`${api.url}/3ds/pi_`), page);
    // Stripe's page authenticates and sends the browser back with ?payment_intent=…
    const back = await fetch(stripePage!, { redirect: 'manual' });
    const returnUrl = back.headers.get('location')!;
    assert.ok(returnUrl.startsWith(`${base}/pay/${order.publicId}/3ds-return?`), returnUrl);
    const returned = await fetch(returnUrl, { redirect: 'manual', headers: { cookie: COOKIE } });
    assert.equal(returned.status, 303, (await returned.text()).slice(0, 3000));
    // The pay-link again, without Stripe's parameters.
    assert.doesNotMatch(returned.headers.get('location')!, /payment_intent/);
    const paid = await repos.orders.byId(order._id);
    assert.equal(paid?.status, 'paid');
    assert.match(paid?.payment?.authCode ?? '', /^pi_/);
    // Coming back again (reload) shows the receipt and changes nothing.
    const again = await fetch(returnUrl, { redirect: 'manual' });
    assert.equal(again.status, 200);
    assert.ok((await again.text()).includes(paid!.payment!.receiptNumber!));
    assert.equal((await repos.orders.byId(order._id))?.payment?.receiptNumber, paid?.payment?.receiptNumber);
  });

  it("Stripe's signed webhook finishes a 3-D Secure payment whose buyer never came back; a bad signature is refused", async () => {
    const { order, link } = await createOrder('ST-4', 2500);
    const res = await payWith(link, '4000000000003220');
    const piId = /\/3ds\/(pi_\w+)/.exec(res.headers.get('location')!)![1]!;
    await fetch(`${api.url}/3ds/${piId}`, { redirect: 'manual' }); // authenticated at Stripe, tab closed
    const event = JSON.stringify({
      id: 'evt_paymail_test_1',
      object: 'event',
      type: 'payment_intent.succeeded',
      data: { object: { id: piId, object: 'payment_intent', status: 'succeeded', metadata: { paymail_order: order._id } } },
    });
    const hook = (payload: string, secret: string) =>
      fetch(`${base}/webhooks/stripe/${merchantId}`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', 'stripe-signature': Stripe.webhooks.generateTestHeaderString({ payload, secret }) },
        body: payload,
      });
    const forged = await hook(event, 'whsec_notTheMerchantsSecret');
    assert.equal(forged.status, 400);
    assert.equal((await repos.orders.byId(order._id))?.status, 'pending');

    const ok = await hook(event, WEBHOOK_SECRET);
    assert.equal(ok.status, 200);
    assert.equal(((await ok.json()) as { outcome: string }).outcome, 'settled');
    const paid = await repos.orders.byId(order._id);
    assert.equal(paid?.status, 'paid');
    assert.equal(paid?.payment?.authCode, piId);
    // Delivered again (Stripe retries), then the buyer's late return: one payment, one receipt.
    assert.equal(((await (await hook(event, WEBHOOK_SECRET)).json()) as { outcome: string }).outcome, 'already-settled');
    const late = await fetch(`${base}/pay/${order.publicId}/3ds-return?${new URL(link).searchParams}&payment_intent=${piId}`, { redirect: 'manual' });
    assert.equal(late.status, 200);
    assert.ok((await late.text()).includes(paid!.payment!.receiptNumber!));
    assert.equal((await repos.orders.byId(order._id))?.payment?.receiptNumber, paid?.payment?.receiptNumber);
  });

  it("Stripe's payment_intent.payment_failed for an open challenge records the failed authentication once", async () => {
    const { order, link } = await createOrder('ST-4b', 2600);
    const res = await payWith(link, '4000000000003220');
    const piId = /\/3ds\/(pi_\w+)/.exec(res.headers.get('location')!)![1]!;
    await fetch(`${api.url}/3ds/${piId}?result=fail`, { redirect: 'manual' }); // failed at Stripe, tab closed
    const payload = JSON.stringify({
      id: 'evt_paymail_test_2',
      object: 'event',
      type: 'payment_intent.payment_failed',
      data: { object: { id: piId, object: 'payment_intent', status: 'requires_payment_method', metadata: { paymail_order: order._id } } },
    });
    const send = () =>
      fetch(`${base}/webhooks/stripe/${merchantId}`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', 'stripe-signature': Stripe.webhooks.generateTestHeaderString({ payload, secret: WEBHOOK_SECRET }) },
        body: payload,
      });
    assert.equal(((await (await send()).json()) as { outcome: string }).outcome, 'settled');
    assert.equal(((await (await send()).json()) as { outcome: string }).outcome, 'no-open-challenge');
    const o = await repos.orders.byId(order._id);
    assert.equal(o?.status, 'pending', 'still payable with another card');
    assert.deepEqual(o?.attempts.map((a) => [a.outcome, a.declineCode ?? null]), [['challenge', null], ['declined', 'THREE_DS_FAILED']]);
  });

  it('a payment that succeeds at Stripe after its challenge expired unused is refunded, not settled', async () => {
    const { order, link } = await createOrder('ST-4c', 2700);
    const res = await payWith(link, '4000000000003220');
    const piId = /\/3ds\/(pi_\w+)/.exec(res.headers.get('location')!)![1]!;
    // The buyer took longer than the challenge's 10 minutes on Stripe's page, then authenticated.
    await mongoose.connection.collection('threeds_challenges').updateOne({ _id: piId as never }, { $set: { expiresAt: new Date(Date.now() - 1000) } });
    await fetch(`${api.url}/3ds/${piId}`, { redirect: 'manual' });
    const payload = JSON.stringify({
      id: 'evt_paymail_test_3',
      object: 'event',
      type: 'payment_intent.succeeded',
      data: { object: { id: piId, object: 'payment_intent', status: 'succeeded', metadata: { paymail_order: order._id } } },
    });
    const before = api.requests.length;
    const r = await fetch(`${base}/webhooks/stripe/${merchantId}`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'stripe-signature': Stripe.webhooks.generateTestHeaderString({ payload, secret: WEBHOOK_SECRET }) },
      body: payload,
    });
    assert.equal(((await r.json()) as { outcome: string }).outcome, 'voided');
    const refund = api.requests.slice(before).find((q) => q.path === '/v1/refunds');
    assert.equal(refund?.params['payment_intent'], piId);
    assert.ok(refund?.idempotencyKey);
    assert.equal((await repos.orders.byId(order._id))?.status, 'pending');
  });

  it('a 3-D Secure payment abandoned, the order paid with another card, then authenticated late: refunded, one payment', async () => {
    const { order, link } = await createOrder('ST-4d', 2800);
    const res = await payWith(link, '4000000000003220');
    const piId = /\/3ds\/(pi_\w+)/.exec(res.headers.get('location')!)![1]!;
    assert.equal((await payWith(link, '4242424242424242')).status, 303);
    const paid = (await repos.orders.byId(order._id))!;
    assert.equal(paid.status, 'paid');
    await fetch(`${api.url}/3ds/${piId}`, { redirect: 'manual' }); // the first tab, authenticated after all
    const payload = JSON.stringify({
      id: 'evt_paymail_test_4',
      object: 'event',
      type: 'payment_intent.succeeded',
      data: { object: { id: piId, object: 'payment_intent', status: 'succeeded', metadata: { paymail_order: order._id } } },
    });
    const before = api.requests.length;
    const r = await fetch(`${base}/webhooks/stripe/${merchantId}`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'stripe-signature': Stripe.webhooks.generateTestHeaderString({ payload, secret: WEBHOOK_SECRET }) },
      body: payload,
    });
    assert.equal(((await r.json()) as { outcome: string }).outcome, 'voided');
    assert.equal(api.requests.slice(before).find((q) => q.path === '/v1/refunds')?.params['payment_intent'], piId);
    assert.equal((await repos.orders.byId(order._id))?.payment?.authCode, paid.payment?.authCode);
  });

  it('a refund goes to Stripe with the merchant key decrypted from the database', async () => {
    const paid = await createAndPay('ST-5', 3000);
    const merchant = (await repos.merchants.findById(merchantId))!;
    const settings = createAcquirerSettings({ repos, secretsKey: await loadSecretsKey({ dataDir, production: false, secretsKey: undefined }) });
    const refunds = createRefundService({ repos, acquirer: createSandboxAcquirer(), acquirers: createMerchantAcquirers({ sandbox: createSandboxAcquirer(), settings }) });
    const before = api.requests.length;
    const refund = await refunds.refund(merchant, paid._id, { amountMinor: 1000, by: 'admin@stripe-shop.example' });
    assert.match(refund.refundId ?? '', /^re_standin/);
    const asked = api.requests.slice(before).find((q) => q.path === '/v1/refunds')!;
    assert.equal(asked.params['payment_intent'], paid.payment!.authCode);
    assert.equal(asked.params['amount'], '1000');
    assert.ok(asked.idempotencyKey);
  });

  it('saved cards on Stripe: saved at checkout (Customer + PaymentMethod), one click, a merchant charge through the API, removal detaches it', async () => {
    await mongoose.connection.collection('merchants').updateOne({ _id: merchantId as never }, { $set: { savedCardsEnabled: true } });
    await new Promise((done) => setTimeout(done, 5_500)); // the checkout's merchant cache (5 s)
    const since = api.requests.length;

    // 1. The buyer ticks "save my card": Stripe gets a Customer, and the PaymentIntent saves the card for later.
    const first = await createOrder('ST-SC-1', 2500);
    let html = await (await fetch(first.link, { headers: { cookie: COOKIE } })).text();
    assert.match(html, /name="saveCard"/);
    const token = /name="_csrf" value="([^"]+)"/.exec(html)![1]!;
    const saved = await fetch(first.link, {
      method: 'POST',
      redirect: 'manual',
      headers: { 'content-type': 'application/x-www-form-urlencoded', cookie: COOKIE },
      body: new URLSearchParams({ _csrf: token, number: '4242424242424242', expiry: '12/34', cvc: '123', holder: 'Ada Lovelace', saveCard: 'yes' }).toString(),
    });
    assert.equal(saved.status, 303);
    const paid1 = (await repos.orders.byId(first.order._id))!;
    assert.equal(paid1.status, 'paid');
    assert.match(paid1.customerCode ?? '', /^cus_/);
    const customer = (await mongoose.connection.collection('customers').findOne({ _id: paid1.customerCode as never }))!;
    const card = (customer['cards'] as Array<{ id: string; token: string; acquirer: string; last4: string }>)[0]!;
    assert.equal(card.acquirer, 'stripe');
    assert.match(card.token, /^cus_standin\d+\/pm_standin\d+$/);
    assert.equal(card.last4, '4242');
    assert.ok(!JSON.stringify(customer).includes('4242424242424242'));
    const savingIntent = api.requests.slice(since).find((r) => r.method === 'POST' && r.path === '/v1/payment_intents')!;
    assert.equal(savingIntent.params['setup_future_usage'], 'off_session');
    assert.match(savingIntent.params['customer'] ?? '', /^cus_/);

    // 2. The next link of the same customer pays in one click (Stripe asks no security code again).
    const second = await createOrder('ST-SC-2', 1800);
    html = await (await fetch(second.link, { headers: { cookie: COOKIE } })).text();
    assert.match(html, /Pay with Visa •••• 4242/);
    assert.doesNotMatch(html, /name="cvc" type="text" autocomplete="off"/, 'no security code asked for a Stripe card');
    const action = /<form method="post" action="([^"]+)" class="card-form one-click-form">/.exec(html)![1]!.replace(/&#x3D;/g, '=').replace(/&amp;/g, '&');
    const cardId = /name="cardId" value="([^"]+)"/.exec(html)![1]!;
    const oneClick = await fetch(new URL(action, base), {
      method: 'POST',
      redirect: 'manual',
      headers: { 'content-type': 'application/x-www-form-urlencoded', cookie: COOKIE },
      body: new URLSearchParams({ _csrf: /name="_csrf" value="([^"]+)"/.exec(html)![1]!, cardId }).toString(),
    });
    assert.equal(oneClick.status, 303);
    const paid2 = (await repos.orders.byId(second.order._id))!;
    assert.equal(paid2.status, 'paid');
    assert.equal(paid2.payment?.acquirer, 'stripe');
    const oneClickIntent = api.intents.get(paid2.payment!.authCode!)!;
    assert.equal(`${oneClickIntent.customer}/${oneClickIntent.payment_method}`, card.token);

    // 3. The merchant charges the card without the buyer, through the server API: off-session at Stripe.
    const key = await runCli(['apikey', 'create', '--merchant', merchantId, '--json'], env);
    assert.equal(key.code, 0, key.stderr);
    const bearer = (JSON.parse(key.stdout) as { key: string }).key;
    const charged = await fetch(`${base}/api/v1/customers/${paid1.customerCode}/charges`, {
      method: 'POST',
      headers: { authorization: `Bearer ${bearer}`, 'content-type': 'application/json', 'idempotency-key': 'st-sc-3' },
      body: JSON.stringify({ amount: 9900, currency: 'EUR', reference: 'ST-SC-3', description: 'Second night' }),
    });
    assert.equal(charged.status, 201, await charged.clone().text());
    const charge = (await charged.json()) as { id: string; status: string };
    assert.equal(charge.status, 'paid');
    const mit = [...api.intents.values()].find((i) => i.metadata['paymail_order'] === charge.id)!;
    const mitRequest = api.requests.find((r) => r.method === 'POST' && r.path === '/v1/payment_intents' && r.params['metadata[paymail_order]'] === charge.id)!;
    assert.equal(mit.amount, 9900);
    assert.equal(mitRequest.params['off_session'], 'true');

    // 4. The link in the receipt removes the card: a GET only asks, the POST detaches it at Stripe.
    const receipt = (await mongoose.connection.collection('outbox').findOne({ orderId: first.order._id, template: 'receipt-customer' }))!;
    const removeUrl = String((receipt['data'] as { removeCardUrl?: string }).removeCardUrl);
    assert.ok(removeUrl.startsWith(base), removeUrl);
    const ask = await fetch(removeUrl, { headers: { cookie: COOKIE } });
    assert.equal(ask.status, 200);
    const detachesBefore = api.requests.filter((r) => r.path.endsWith('/detach')).length;
    assert.equal(detachesBefore, 0, 'a GET detaches nothing');
    const removed = await fetch(removeUrl, {
      method: 'POST',
      redirect: 'manual',
      headers: { 'content-type': 'application/x-www-form-urlencoded', cookie: COOKIE },
      body: new URLSearchParams({ _csrf: /name="_csrf" value="([^"]+)"/.exec(await ask.text())![1]! }).toString(),
    });
    assert.equal(removed.status, 200);
    const detach = api.requests.filter((r) => r.path.endsWith('/detach'));
    assert.deepEqual(detach.map((r) => r.path), [`/v1/payment_methods/${card.token.split('/')[1]}/detach`]);
    const after = (await mongoose.connection.collection('customers').findOne({ _id: paid1.customerCode as never }))!;
    assert.equal((after['cards'] as unknown[]).length, 0);
    assert.ok(!app.output.join('\n').includes('4242424242424242'));
  });

  it('back to the sandbox: new payments go there, the Stripe credentials stay for earlier payments', async () => {
    const r = await runCli(['merchant', 'set-acquirer', merchantId, 'sandbox'], env);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /now takes payments with sandbox/);
    await new Promise((done) => setTimeout(done, 5_500)); // the checkout's merchant cache (5 s)
    const intentsBefore = api.intents.size;
    const paid = await createAndPay('ST-6', 700);
    assert.equal(paid.payment?.acquirer, 'sandbox');
    assert.equal(api.intents.size, intentsBefore);
    const m = await repos.merchants.findById(merchantId);
    assert.ok(m?.stripe?.secretKeyEnc);
  });

  it('against stripe-mock: a checkout payment and a refund through paymail, no request refused by the API specification', async function () {
    const bin = await stripeMockBinary();
    if (!bin) return this.skip(); // no Go here (CI builds it and fails when it cannot)
    const mock = await startStripeMock(bin);
    try {
      const r = await runCli(['merchant', 'set-acquirer', merchantId, 'stripe', '--api-base', mock.url], env);
      assert.equal(r.code, 0, r.stderr);
      await new Promise((done) => setTimeout(done, 5_500)); // the checkout's merchant cache (5 s)
      const answered = () => app.output.flatMap((l) => (l.includes('"stripe answered"') ? [JSON.parse(l) as { stripe: { method: string; path: string; status: number } }] : [])).map((j) => j.stripe);
      const before = answered().length;
      const { order, link } = await createOrder('ST-7', 1100);
      const res = await payWith(link, '4242424242424242');
      // stripe-mock's fixture PaymentIntent is requires_payment_method: a decline, but a valid exchange.
      assert.equal(res.status, 402);
      assert.equal((await repos.orders.byId(order._id))?.attempts.at(-1)?.declineCode, 'DECLINED');
      const calls = answered().slice(before);
      assert.deepEqual(calls.map((c) => `${c.method} ${c.path} ${c.status}`), ['POST /v1/payment_methods 200', 'POST /v1/payment_intents 200']);

      // A refund of an earlier Stripe payment, through the refund service and the stored (encrypted) key.
      const earlier = await mongoose.connection.collection('orders').findOne({ merchantId, status: 'paid', 'payment.acquirer': 'stripe' });
      const statuses: number[] = [];
      const settings = createAcquirerSettings({ repos, secretsKey: await loadSecretsKey({ dataDir, production: false, secretsKey: undefined }) });
      const refunds = createRefundService({ repos, acquirer: createSandboxAcquirer(), acquirers: createMerchantAcquirers({ sandbox: createSandboxAcquirer(), settings, onStripeResponse: (_m, e) => statuses.push(e.status) }) });
      const refund = await refunds.refund((await repos.merchants.findById(merchantId))!, String(earlier!['_id']), { amountMinor: 100, by: 'admin@stripe-shop.example' });
      assert.match(refund.refundId ?? '', /^re_/);
      assert.deepEqual(statuses, [200]);
    } finally {
      await mock.stop();
    }
  });

  it('NODE_ENV=production without SECRETS_KEY refuses to start, naming the variable', async () => {
    const r = await new Promise<{ code: number | null; stderr: string }>((resolve) => {
      const child = spawn(process.execPath, ['--import', 'tsx', 'src/main.ts'], {
        cwd: ROOT,
        env: {
          PATH: process.env.PATH ?? '',
          HOME: process.env.HOME ?? '',
          NODE_ENV: 'production',
          MONGODB_URI: 'mongodb://127.0.0.1:9/none',
          LINK_SIGNING_KEYS: 'k1:0123456789abcdef0123456789abcdef',
          PUBLIC_URL: 'https://pay.example.com',
          OUTBOUND_SMTP_URL: 'smtp://relay.example.com:587',
          SMTP_TLS_KEY_FILE: '/etc/paymail/tls.key',
          SMTP_TLS_CERT_FILE: '/etc/paymail/tls.crt',
          RECEIPT_SIGNING_KEY_FILE: '/etc/paymail/receipt.pem',
        },
        stdio: ['ignore', 'ignore', 'pipe'],
      });
      let stderr = '';
      child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
      child.once('exit', (code) => resolve({ code, stderr }));
    });
    assert.equal(r.code, 1, r.stderr);
    assert.match(r.stderr, /invalid SECRETS_KEY: required when NODE_ENV=production/);
  });

  async function createOrder(reference: string, amountMinor: number) {
    const merchant = (await repos.merchants.findById(merchantId))!;
    return orders.create(merchant, { amountMinor, currency: 'EUR', reference, customerEmail: 'buyer@example.com' }, { key: `test:${reference}` }, { payLinkMail: 'none' });
  }

  async function payWith(link: string, number: string): Promise<Response> {
    const html = await (await fetch(link, { headers: { cookie: COOKIE } })).text();
    const token = /name="_csrf" value="([^"]+)"/.exec(html)?.[1] ?? '';
    return fetch(link, {
      method: 'POST',
      redirect: 'manual',
      headers: { 'content-type': 'application/x-www-form-urlencoded', cookie: COOKIE },
      body: new URLSearchParams({ _csrf: token, number, expiry: '12/34', cvc: '123', holder: 'Ada Lovelace' }).toString(),
    });
  }

  async function createAndPay(reference: string, amountMinor: number) {
    const { order, link } = await createOrder(reference, amountMinor);
    assert.equal((await payWith(link, '4242424242424242')).status, 303);
    const paid = (await repos.orders.byId(order._id))!;
    assert.equal(paid.status, 'paid');
    return paid;
  }
});
