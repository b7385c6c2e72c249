// The Stripe adapter (src/services/acquirer/stripe-acquirer.ts) with the official `stripe` package:
// (a) against stripe-mock, Stripe's mock server that rejects any request not matching Stripe's API
//     specification: every call the adapter makes must be accepted (no 4xx/5xx);
// (b) the outcome mapping against a stand-in serving Stripe's documented response objects
//     (approved, each decline code, 3-D Secure with a redirect, network error and timeout).
import assert from 'node:assert/strict';
import { type Acquirer, type AuthorizeRequest } from '../../src/domain/acquirer.ts';
import { createStripeAcquirer, type StripeExchange } from '../../src/services/acquirer/stripe-acquirer.ts';
import { startStripeMock, stripeMockBinary, type StripeMock } from '../helpers/stripe-mock.ts';
import { startStripeStandIn, type StripeStandIn } from '../helpers/stripe-stand-in.ts';
import { randomBytes } from 'node:crypto';
import { sealSecret } from '../../src/domain/secret-box.ts';
import { type MerchantDoc } from '../../src/db/merchants.repository.ts';
import { createAcquirerSettings } from '../../src/services/acquirer/acquirer-settings.ts';
import { createMerchantAcquirers } from '../../src/services/acquirer/merchant-acquirers.ts';
import { createSandboxAcquirer } from '../../src/services/acquirer/sandbox-acquirer.ts';

const request = (number: string, extra: Partial<AuthorizeRequest> = {}): AuthorizeRequest => ({
  orderId: 'ord_test1',
  amountMinor: 1250,
  currency: 'EUR',
  card: { number, cvc: '123', expMonth: 12, expYear: 2034, holder: 'Ada Lovelace' },
  returnUrl: 'http://127.0.0.1:9/pay/abc/3ds-return?e=1&k=k&s=s',
  ...extra,
});

describe('Stripe adapter against stripe-mock (requests valid for the Stripe API)', function () {
  this.timeout(60_000);
  let mock: StripeMock | undefined;
  const exchanges: StripeExchange[] = [];
  let stripe: Acquirer;

  before(async function () {
    const bin = await stripeMockBinary();
    if (!bin) return this.skip(); // no Go here (CI builds it and fails when it cannot)
    mock = await startStripeMock(bin);
    stripe = createStripeAcquirer({ secretKey: 'sk_test_123', apiBase: mock.url, maxNetworkRetries: 0, timeoutMs: 10_000, onResponse: (e) => exchanges.push(e) });
  });
  after(async () => mock?.stop());
  beforeEach(() => {
    exchanges.length = 0;
  });
  afterEach(() => {
    // The point of stripe-mock: it answers 4xx to any request that is not valid for the API.
    const refused = exchanges.filter((e) => e.status >= 300);
    assert.deepEqual(refused, [], `stripe-mock refused: ${JSON.stringify(refused)}`);
  });

  it('authorize: a PaymentMethod from the raw card, then a confirmed PaymentIntent', async () => {
    const r = await stripe.authorize(request('4242424242424242'));
    assert.deepEqual(exchanges.map((e) => `${e.method} ${e.path}`), ['POST /v1/payment_methods', 'POST /v1/payment_intents']);
    // stripe-mock's fixture is a PaymentIntent in requires_payment_method without an error: a plain decline.
    assert.equal(r.outcome, 'declined');
  });

  it('authorize saving the card: a Customer too, and the PaymentIntent for it', async () => {
    await stripe.authorize(request('4242424242424242', { saveCard: { customerCode: 'cus_paymail1', email: 'ada@example.com' } }));
    assert.deepEqual(exchanges.map((e) => `${e.method} ${e.path}`), ['POST /v1/payment_methods', 'POST /v1/customers', 'POST /v1/payment_intents']);
  });

  it('completeChallenge reads the PaymentIntent (and cancels one left waiting)', async () => {
    const r = await stripe.completeChallenge({ challengeId: 'pi_123', orderId: 'ord_test1', amountMinor: 1250, currency: 'EUR', authenticated: true });
    assert.equal(exchanges[0]!.path, '/v1/payment_intents/pi_123');
    assert.equal(r.outcome, 'declined');
  });

  it('refund: a Refund of the PaymentIntent', async () => {
    const r = await stripe.refund!({ authCode: 'pi_123', amountMinor: 500, currency: 'EUR', idempotencyKey: 'refund:ord_test1:1' });
    assert.equal(r.ok, true);
    assert.match((r as { refundId: string }).refundId, /^re_/);
    assert.deepEqual(exchanges.map((e) => `${e.method} ${e.path}`), ['POST /v1/refunds']);
  });

  it('void: reads the PaymentIntent, then cancels it', async () => {
    await stripe.void('pi_123');
    assert.deepEqual(exchanges.map((e) => `${e.method} ${e.path}`), ['GET /v1/payment_intents/pi_123', 'POST /v1/payment_intents/pi_123/cancel']);
  });

  it('saved cards: a charge with customer and payment method (off-session for the merchant), and detach', async () => {
    const vault = stripe.savedCards!;
    assert.equal(vault.cvcRequired, false);
    for (const initiator of ['customer', 'merchant'] as const) {
      const r = await vault.charge({ orderId: 'ord_test2', amountMinor: 990, currency: 'EUR', token: 'cus_abc/pm_def', initiator, idempotencyKey: `charge:${initiator}` });
      assert.ok(['approved', 'declined'].includes(r.outcome));
    }
    await vault.remove('cus_abc/pm_def');
    assert.deepEqual(exchanges.map((e) => `${e.method} ${e.path}`), ['POST /v1/payment_intents', 'POST /v1/payment_intents', 'POST /v1/payment_methods/pm_def/detach']);
  });
});

describe('Stripe adapter: outcome mapping (stand-in with Stripe\'s documented objects)', function () {
  this.timeout(30_000);
  let api: StripeStandIn;
  let stripe: Acquirer;

  before(async () => {
    api = await startStripeStandIn();
    stripe = createStripeAcquirer({ secretKey: 'sk_test_standin', apiBase: api.url, maxNetworkRetries: 0, timeoutMs: 1_000 });
  });
  after(async () => api.stop());
  beforeEach(() => {
    api.requests.length = 0;
    api.fault = undefined;
  });

  it('approved: the PaymentIntent id is the authorisation code; the raw card goes only to the PaymentMethod', async () => {
    const r = await stripe.authorize(request('4242424242424242'));
    assert.equal(r.outcome, 'approved');
    const pi = [...api.intents.values()].at(-1)!;
    assert.equal((r as { authCode: string }).authCode, pi.id);
    assert.equal(pi.amount, 1250);
    assert.equal(pi.currency, 'eur');
    assert.equal(pi.metadata['paymail_order'], 'ord_test1');
    const [pmReq, piReq] = api.requests;
    assert.equal(pmReq!.params['card[number]'], '4242424242424242');
    assert.equal(piReq!.params['confirm'], 'true');
    assert.equal(piReq!.params['capture_method'], 'automatic');
    assert.ok(!JSON.stringify(piReq!.params).includes('4242424242424242'));
    // Every POST carries an idempotency key, distinct per request.
    const keys = api.requests.map((q) => q.idempotencyKey);
    assert.ok(keys.every((k) => typeof k === 'string' && k.startsWith('paymail:ord_test1:')), JSON.stringify(keys));
    assert.equal(new Set(keys).size, keys.length);
  });

  const declines: Array<[string, string, string]> = [
    ['4000000000000002', 'generic_decline', 'DECLINED'],
    ['4000000000009995', 'insufficient_funds', 'INSUFFICIENT_FUNDS'],
    ['4000000000009987', 'lost_card', 'LOST_OR_STOLEN'],
    ['4000000000009979', 'stolen_card', 'LOST_OR_STOLEN'],
    ['4000000000006975', 'card_velocity_exceeded', 'OVER_LIMIT'],
  ];
  for (const [card, stripeCode, ours] of declines) {
    it(`card_error ${stripeCode} → declined ${ours}`, async () => {
      const r = await stripe.authorize(request(card));
      assert.deepEqual({ outcome: r.outcome, code: (r as { code: string }).code }, { outcome: 'declined', code: ours });
    });
  }

  it('card_error processing_error → error ACQUIRER_UNAVAILABLE (the customer may retry)', async () => {
    const r = await stripe.authorize(request('4000000000000119'));
    assert.deepEqual({ outcome: r.outcome, code: (r as { code: string }).code }, { outcome: 'error', code: 'ACQUIRER_UNAVAILABLE' });
  });

  it('3-D Secure: requires_action with redirect_to_url → a challenge to Stripe\'s page, then the PaymentIntent decides', async () => {
    const r = await stripe.authorize(request('4000000000003220'));
    assert.equal(r.outcome, 'challenge');
    const c = r as { challengeId: string; redirectUrl: string };
    assert.match(c.challengeId, /^pi_/);
    assert.equal(c.redirectUrl, `${api.url}/3ds/${c.challengeId}`);
    assert.equal(api.requests.at(-1)!.params['return_url'], request('x').returnUrl);
    // The buyer passes on Stripe's page, which sends them to return_url with the PaymentIntent id.
    const back = await fetch(c.redirectUrl, { redirect: 'manual' });
    assert.equal(back.status, 302);
    assert.equal(new URL(back.headers.get('location')!).searchParams.get('payment_intent'), c.challengeId);
    const done = await stripe.completeChallenge({ challengeId: c.challengeId, orderId: 'ord_test1', amountMinor: 1250, currency: 'EUR', authenticated: true });
    assert.deepEqual(done, { outcome: 'approved', authCode: c.challengeId });
  });

  it('3-D Secure failed on Stripe\'s page → declined THREE_DS_FAILED', async () => {
    const c = (await stripe.authorize(request('4000000000003220'))) as { challengeId: string; redirectUrl: string };
    await fetch(`${c.redirectUrl}?result=fail`, { redirect: 'manual' });
    const done = await stripe.completeChallenge({ challengeId: c.challengeId, orderId: 'ord_test1', amountMinor: 1250, currency: 'EUR', authenticated: true });
    assert.deepEqual({ outcome: done.outcome, code: (done as { code: string }).code }, { outcome: 'declined', code: 'THREE_DS_FAILED' });
  });

  it('3-D Secure left unfinished (the buyer came back without authenticating) → cancelled, declined', async () => {
    const c = (await stripe.authorize(request('4000000000003220'))) as { challengeId: string };
    const done = await stripe.completeChallenge({ challengeId: c.challengeId, orderId: 'ord_test1', amountMinor: 1250, currency: 'EUR', authenticated: true });
    assert.equal((done as { code: string }).code, 'THREE_DS_FAILED');
    assert.equal(api.intents.get(c.challengeId)!.status, 'canceled');
    assert.ok(api.requests.at(-1)!.idempotencyKey);
  });

  it('network error (connection cut) → error ACQUIRER_UNAVAILABLE', async () => {
    api.fault = 'drop';
    const r = await stripe.authorize(request('4242424242424242'));
    assert.deepEqual({ outcome: r.outcome, code: (r as { code: string }).code }, { outcome: 'error', code: 'ACQUIRER_UNAVAILABLE' });
  });

  it('timeout (no answer within the timeout) → error ACQUIRER_UNAVAILABLE', async () => {
    api.fault = 'slow';
    const started = Date.now();
    const r = await stripe.authorize(request('4242424242424242'));
    assert.deepEqual({ outcome: r.outcome, code: (r as { code: string }).code }, { outcome: 'error', code: 'ACQUIRER_UNAVAILABLE' });
    assert.ok(Date.now() - started < 2_500, 'gave up at the timeout');
  });

  it('nothing listening at the API base → error', async () => {
    const dead = createStripeAcquirer({ secretKey: 'sk_test_x', apiBase: 'http://127.0.0.1:9', maxNetworkRetries: 0, timeoutMs: 1_000 });
    const r = await dead.authorize(request('4242424242424242'));
    assert.equal(r.outcome, 'error');
  });

  it('saved card: the token is customer/payment method; a merchant-initiated charge is off-session', async () => {
    const r = await stripe.authorize(request('4242424242424242', { saveCard: { customerCode: 'cus_paymail9', email: 'ada@example.com' } }));
    assert.equal(r.outcome, 'approved');
    const token = (r as { savedCard?: { token: string } }).savedCard?.token;
    assert.match(token ?? '', /^cus_standin\d+\/pm_standin\d+$/);
    const piReq = api.requests.find((q) => q.path === '/v1/payment_intents')!;
    assert.equal(piReq.params['setup_future_usage'], 'off_session');
    api.requests.length = 0;
    const charged = await stripe.savedCards!.charge({ orderId: 'ord_test3', amountMinor: 700, currency: 'EUR', token: token!, initiator: 'merchant', idempotencyKey: 'mit:ord_test3' });
    assert.equal(charged.outcome, 'approved');
    assert.equal(api.requests[0]!.params['off_session'], 'true');
    assert.equal(api.requests[0]!.idempotencyKey, 'mit:ord_test3');
  });

  it('a merchant-initiated charge of a card whose issuer wants authentication → declined AUTHENTICATION_REQUIRED', async () => {
    const saved = (await stripe.authorize(request('4000002760003184', { saveCard: { customerCode: 'cus_paymail8', email: 'ada@example.com' } }))) as { outcome: string; challengeId: string };
    // Saving a 3-D Secure card asks for the challenge first; the buyer passes it.
    assert.equal(saved.outcome, 'challenge');
    await fetch(`${api.url}/3ds/${saved.challengeId}`, { redirect: 'manual' });
    const done = await stripe.completeChallenge({ challengeId: saved.challengeId, orderId: 'ord_test1', amountMinor: 1250, currency: 'EUR', authenticated: true });
    const token = (done as { savedCard?: { token: string } }).savedCard?.token;
    assert.match(token ?? '', /^cus_standin\d+\/pm_standin\d+$/, 'the token comes with the approval after the challenge');
    const r = await stripe.savedCards!.charge({ orderId: 'ord_test4', amountMinor: 700, currency: 'EUR', token: token!, initiator: 'merchant', idempotencyKey: 'mit:ord_test4' });
    assert.deepEqual({ outcome: r.outcome, code: (r as { code: string }).code }, { outcome: 'declined', code: 'AUTHENTICATION_REQUIRED' });
  });

  it('refund of a payment, and a refusal (not refundable) → ok false', async () => {
    const paid = (await stripe.authorize(request('4242424242424242'))) as { authCode: string };
    const r = await stripe.refund!({ authCode: paid.authCode, amountMinor: 300, currency: 'EUR', idempotencyKey: 'refund:x:1' });
    assert.equal(r.ok, true);
    assert.equal(api.requests.at(-1)!.idempotencyKey, 'refund:x:1');
    const refused = await stripe.refund!({ authCode: 'pi_unknown', amountMinor: 300, currency: 'EUR', idempotencyKey: 'refund:y:1' });
    assert.equal(refused.ok, false);
  });

  it('void of a captured payment refunds it in full; of an unfinished one cancels it', async () => {
    const paid = (await stripe.authorize(request('4242424242424242'))) as { authCode: string };
    await stripe.void(paid.authCode);
    assert.equal(api.requests.at(-1)!.path, '/v1/refunds');
    const waiting = (await stripe.authorize(request('4000000000003220'))) as { challengeId: string };
    await stripe.void(waiting.challengeId);
    assert.equal(api.intents.get(waiting.challengeId)!.status, 'canceled');
  });
});

describe('the acquirer directory (src/services/acquirer/merchant-acquirers.ts)', function () {
  this.timeout(30_000);
  const key = randomBytes(32);
  const sandbox = createSandboxAcquirer();
  const unusable: string[] = [];
  const directory = createMerchantAcquirers({ sandbox, settings: createAcquirerSettings({ repos: { merchants: {} as never }, secretsKey: key }), onUnusable: (id, why) => unusable.push(`${id}: ${why}`) });
  const merchant = (id: string, acquirer: string | undefined, secret?: { key: Buffer; value: string }) =>
    ({
      _id: id,
      ...(acquirer ? { acquirer } : {}),
      ...(secret ? { stripe: { secretKeyEnc: sealSecret(secret.key, secret.value, { merchantId: id, field: 'stripe.secretKey' }), secretKeyHint: 'test_…0000', apiBase: 'http://127.0.0.1:9' } } : {}),
    }) as unknown as MerchantDoc;

  it('the sandbox by default and by name; Stripe per merchant, one client per stored key', async () => {
    assert.equal(await directory.forMerchant(merchant('m1', undefined)), sandbox);
    const m2 = merchant('m2', 'stripe', { key, value: 'sk_test_directoryKey0000' });
    const a = await directory.forMerchant(m2);
    assert.equal(a.name, 'stripe');
    assert.equal(await directory.forMerchant(m2), a, 'cached');
    assert.notEqual(await directory.forMerchant(merchant('m2', 'stripe', { key, value: 'sk_test_directoryKey0001' })), a, 'a new key, a new client');
    // A payment taken by the sandbox is refunded there, whatever the merchant uses now.
    assert.equal(await directory.forMerchant(m2, 'sandbox'), sandbox);
  });

  it('a key that does not decrypt (SECRETS_KEY changed) or is missing: the buyer is told the acquirer is unavailable, refunds wait', async () => {
    const broken = await directory.forMerchant(merchant('m3', 'stripe', { key: randomBytes(32), value: 'sk_test_otherSecretsKey00' }));
    const r = await broken.authorize({ orderId: 'o', amountMinor: 100, currency: 'EUR', card: { number: '4242424242424242', cvc: '123', expMonth: 1, expYear: 2040, holder: 'x' } });
    assert.deepEqual({ outcome: r.outcome, code: (r as { code: string }).code }, { outcome: 'error', code: 'ACQUIRER_UNAVAILABLE' });
    await assert.rejects(broken.refund!({ authCode: 'pi_1', amountMinor: 1, currency: 'EUR', idempotencyKey: 'k' }), /SECRETS_KEY/);
    const none = await directory.forMerchant(merchant('m4', 'stripe'));
    assert.equal((await none.completeChallenge({ challengeId: 'pi_1', orderId: 'o', amountMinor: 1, currency: 'EUR', authenticated: true })).outcome, 'error');
    assert.deepEqual(unusable.map((u) => u.split(':')[0]), ['m3', 'm4']);
  });
});
