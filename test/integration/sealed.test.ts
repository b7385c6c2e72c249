// Merchant websites over real HTTP, against a real database: a sealed form POST to /pay/sealed opens
// the checkout (303 to the pay page), the buyer pays, and the receipt's "Return to <merchant>" link
// carries a seal that the README's merchant-side Python and Node code verifies. Refusals (bad seal,
// stale ts, replayed nonce, invalid fields, the previous key after its 24 hours) create no order.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { createHmac } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { writeFileSync } from 'node:fs';
import http from 'node:http';
import { type AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { Merchant, type MerchantDoc } from '../../src/db/models/merchant.model.ts';
import { Order, type OrderDoc } from '../../src/db/models/order.model.ts';
import { SealNonce } from '../../src/db/models/seal-nonce.model.ts';
import { type LinkKey } from '../../src/domain/pay-link.ts';
import { createHttpApp } from '../../src/http/app.ts';
import { CSRF_COOKIE, deriveCsrfKey } from '../../src/http/middleware/csrf.ts';
import { createViews } from '../../src/http/views.ts';
import { createLogger } from '../../src/logger.ts';
import { createSandboxAcquirer } from '../../src/services/acquirer/sandbox-acquirer.ts';
import { createCheckoutService } from '../../src/services/checkout.service.ts';
import { createMerchantService } from '../../src/services/merchant.service.ts';
import { createOrderService } from '../../src/services/order.service.ts';
import { createSealedRequestService, type SealedRequestService } from '../../src/services/sealed-request.service.ts';
import { useTestDatabase } from '../helpers/db.ts';
import { readmeSnippet } from '../helpers/readme-snippet.ts';
import { repos } from '../helpers/db.ts';

const KEYS: LinkKey[] = [{ kid: 'test1', secret: 'sealed-test-secret-sealed-test-secret' }];
const MAIL_DOMAIN = 'paymail.test';
const COOKIE = `${CSRF_COOKIE}=sealed-test-browser-cookie-00001`;
const nextYear = String((new Date().getUTCFullYear() + 2) % 100).padStart(2, '0');
const HOUR = 3600_000;

/** The merchant's side, written here without paymail code (as the README's snippets are). */
function merchantSeal(fields: Record<string, string>, key: string): string {
  const text = Object.keys(fields).filter((k) => k !== 'seal').sort().map((k) => `${k}=${fields[k]}`).join('\n');
  return createHmac('sha256', key).update(text, 'utf8').digest('hex');
}

const unescapeHtml = (s: string) => s.replace(/&amp;/g, '&').replace(/&#x3D;/g, '=').replace(/&#x27;/g, "'").replace(/&quot;/g, '"');

describe('sealed payment requests from merchant websites', function () {
  this.timeout(30_000);
  useTestDatabase();
  let server: http.Server;
  let base: string;
  let clock = new Date();
  const now = () => clock;
  let merchant: MerchantDoc;
  let sealKey: string;
  let sealed: SealedRequestService;
  const merchants = createMerchantService({ repos, mailDomain: MAIL_DOMAIN, now });
  let seq = 0;
  let dir: string;

  before(async () => {
    dir = await mkdtemp(path.join(os.tmpdir(), 'paymail-sealed-'));
    server = http.createServer();
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    const orders = createOrderService({ repos, publicUrl: base, mailDomain: MAIL_DOMAIN, maxLinkLifetimeDays: 60, linkKeys: KEYS });
    const checkout = createCheckoutService({ repos, acquirer: createSandboxAcquirer({ latencyMs: 5 }), linkKeys: KEYS, mailDomain: MAIL_DOMAIN, linkFor: orders.linkFor });
    sealed = createSealedRequestService({ repos, orders, now });
    const app = createHttpApp({
      logger: createLogger('warn', { write: () => {} }),
      views: createViews({ templatesDir: path.resolve('templates') }),
      checkout: { service: checkout, csrfKey: deriveCsrfKey(KEYS[0]!.secret), sealed },
      production: false,
    });
    server.on('request', app.callback());
    const created = await merchants.create({ name: 'Bottega Rossi', email: 'shop@rossi.example', locale: 'it' });
    assert.match(created.sealKey, /^seal_[A-Za-z0-9_-]{32}$/);
    sealKey = created.sealKey;
    merchant = (await Merchant.findById(created.id).lean<MerchantDoc>())!;
  });

  after(async () => {
    server.closeAllConnections();
    await new Promise((r) => server.close(r));
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  beforeEach(() => {
    clock = new Date();
  });

  function request(extra: Record<string, string> = {}, key = sealKey): Record<string, string> {
    seq += 1;
    const fields: Record<string, string> = {
      merchant: merchant._id,
      reference: `WEB-${seq}`,
      amount: '4590',
      currency: 'EUR',
      description: 'Tè verde, 3 scatole',
      success_url: 'https://shop.rossi.example/paymail/ok?cart=77',
      cancel_url: 'https://shop.rossi.example/paymail/ko',
      ts: String(Math.floor(clock.getTime() / 1000)),
      nonce: `nonce-${seq}-${Math.random().toString(36).slice(2)}`,
      ...extra,
    };
    return { ...fields, seal: merchantSeal(fields, key) };
  }

  const postSealed = (fields: Record<string, string>, url = `${base}/pay/sealed`) =>
    fetch(url, {
      method: 'POST',
      redirect: 'manual',
      // A cross-site form POST: another origin, and no CSRF cookie or token.
      headers: { 'content-type': 'application/x-www-form-urlencoded', origin: 'https://shop.rossi.example', 'accept-language': 'en' },
      body: new URLSearchParams(fields).toString(),
    });

  async function payAt(location: string): Promise<string> {
    const link = new URL(location, base).toString();
    const form = await (await fetch(link, { headers: { cookie: COOKIE } })).text();
    const csrf = /name="_csrf" value="([^"]+)"/.exec(form)?.[1];
    assert.ok(csrf, 'the pay page shows the card form');
    const paid = await fetch(link, {
      method: 'POST',
      redirect: 'manual',
      headers: { 'content-type': 'application/x-www-form-urlencoded', cookie: COOKIE },
      body: new URLSearchParams({ _csrf: csrf, number: '4242 4242 4242 4242', expiry: `09/${nextYear}`, cvc: '123', holder: 'Anna Rossi', email: 'anna@example.org' }).toString(),
    });
    assert.equal(paid.status, 303);
    return (await fetch(link, { headers: { 'accept-language': 'en' } })).text();
  }

  function returnLink(html: string): string {
    const m = /<a class="button-return" href="([^"]+)">([^<]+)<\/a>/.exec(html);
    assert.ok(m, 'the page has a return button');
    return unescapeHtml(m[1]!);
  }

  function pythonVerify(url: string, key: string): string {
    const script = path.join(dir, 'verify.py');
    writeFileSync(script, `${readmeSnippet('python', 'def verify_return(')}\nimport sys\nprint(verify_return(sys.argv[1], sys.argv[2]))\n`);
    const r = spawnSync('python3', [script, url, key], { encoding: 'utf8' });
    assert.equal(r.status, 0, r.stderr);
    return r.stdout.trim();
  }

  function nodeVerify(url: string, key: string): string {
    const script = path.join(dir, 'verify.mjs');
    writeFileSync(script, `${readmeSnippet('js', 'function verifyReturn(')}\nconsole.log(verifyReturn(process.argv[2], process.argv[3]));\n`);
    const r = spawnSync(process.execPath, [script, url, key], { encoding: 'utf8' });
    assert.equal(r.status, 0, r.stderr);
    return r.stdout.trim();
  }

  const orderCount = () => Order.countDocuments({ merchantId: merchant._id });

  it('a sealed POST opens the checkout, the buyer pays and returns with a seal the merchant verifies', async () => {
    const fields = request({ email: 'anna@example.org', lang: 'en' });
    const res = await postSealed(fields);
    assert.equal(res.status, 303);
    const location = res.headers.get('location')!;
    assert.match(location, /\/pay\/[\w-]{21}\?/);
    const order = (await Order.findOne({ merchantId: merchant._id, reference: fields.reference }).lean<OrderDoc>())!;
    assert.equal(order.amountMinor, 4590);
    assert.equal(order.currency, 'EUR');
    assert.equal(order.customer?.email, 'anna@example.org');
    assert.deepEqual({ ...order.returnUrls }, { success: fields.success_url, cancel: fields.cancel_url });

    const receipt = await payAt(location);
    assert.match(receipt, /Payment received/);
    assert.match(receipt, /Return to Bottega Rossi/);
    const back = returnLink(receipt);
    const url = new URL(back);
    assert.equal(`${url.origin}${url.pathname}`, 'https://shop.rossi.example/paymail/ok');
    assert.equal(url.searchParams.get('cart'), '77', "the merchant's own query is kept");
    assert.equal(url.searchParams.get('reference'), fields.reference);
    assert.equal(url.searchParams.get('status'), 'paid');
    assert.equal(url.searchParams.get('amount'), '4590');
    assert.equal(url.searchParams.get('currency'), 'EUR');
    assert.ok(Math.abs(Number(url.searchParams.get('ts')) - Date.now() / 1000) < 60);
    assert.equal(pythonVerify(back, sealKey), 'True');
    assert.equal(nodeVerify(back, sealKey), 'true');
    const forged = back.replace('amount=4590', 'amount=1');
    assert.equal(pythonVerify(forged, sealKey), 'False');
    assert.equal(nodeVerify(forged, sealKey), 'false');
  });

  it('a second sealed request for an open reference lands on the same order', async () => {
    const first = request();
    const a = await postSealed(first);
    const b = await postSealed(request({ reference: first.reference! }));
    assert.equal(a.status, 303);
    assert.equal(b.status, 303);
    assert.equal(a.headers.get('location'), b.headers.get('location'));
    assert.equal(await Order.countDocuments({ merchantId: merchant._id, reference: first.reference }), 1);
  });

  const refusals: Array<[string, () => Record<string, string>, number, string]> = [
    ['a bad seal', () => ({ ...request(), amount: '1' }), 403, 'SEAL_INVALID'],
    ['a seal made with another key', () => request({}, 'seal_not-the-merchants-key'), 403, 'SEAL_INVALID'],
    ['an unknown merchant', () => request({ merchant: 'mer_nobody' }), 403, 'SEAL_INVALID'],
    ['no seal', () => { const f = request(); delete f.seal; return f; }, 403, 'SEAL_INVALID'],
    ['a ts 16 minutes old', () => request({ ts: String(Math.floor(clock.getTime() / 1000) - 16 * 60) }), 400, 'SEAL_STALE'],
    ['a ts 16 minutes ahead', () => request({ ts: String(Math.floor(clock.getTime() / 1000) + 16 * 60) }), 400, 'SEAL_STALE'],
    ['an amount that is not an integer', () => request({ amount: '45.90' }), 400, 'SEALED_REQUEST_INVALID'],
    ['a zero amount', () => request({ amount: '0' }), 400, 'SEALED_REQUEST_INVALID'],
    ['an unknown currency', () => request({ currency: 'EURO' }), 400, 'SEALED_REQUEST_INVALID'],
    ['a javascript: success_url', () => request({ success_url: 'javascript:alert(1)' }), 400, 'SEALED_REQUEST_INVALID'],
    ['a cancel_url that is not a URL', () => request({ cancel_url: 'shop' }), 400, 'SEALED_REQUEST_INVALID'],
    ['a success_url whose query holds a returned name', () => request({ success_url: 'https://shop.example/ok?status=paid' }), 400, 'SEALED_REQUEST_INVALID'],
    ['a reference too long', () => request({ reference: 'R'.repeat(101) }), 400, 'SEALED_REQUEST_INVALID'],
    ['an unknown field', () => request({ amout: '12' }), 400, 'SEALED_REQUEST_INVALID'],
  ];
  for (const [name, make, status, code] of refusals) {
    it(`refuses ${name}: ${status} ${code}, a page naming the problem, no order`, async () => {
      const before = await orderCount();
      const res = await postSealed(make());
      assert.equal(res.status, status);
      assert.match(res.headers.get('content-type') ?? '', /text\/html/);
      const html = await res.text();
      assert.match(html, new RegExp(`<code>${code}</code>`));
      assert.match(html, /<h1 id="sealed-heading">/);
      assert.match(html, /role="alert"/);
      assert.equal(await orderCount(), before);
    });
  }

  it('names each invalid field', async () => {
    const html = await (await postSealed(request({ amount: '-3', currency: 'XYZ', success_url: 'ftp://x' }))).text();
    for (const field of ['amount', 'currency', 'success_url']) assert.match(html, new RegExp(`<code>${field}</code>`));
  });

  it('refuses a replayed nonce: 403 SEAL_REPLAYED, one order', async () => {
    const fields = request();
    assert.equal((await postSealed(fields)).status, 303);
    const before = await orderCount();
    const again = await postSealed(fields);
    assert.equal(again.status, 403);
    assert.match(await again.text(), /<code>SEAL_REPLAYED<\/code>/);
    // The same nonce with another reference (a new seal) is a replay too.
    const other = await postSealed(request({ nonce: fields.nonce! }));
    assert.equal(other.status, 403);
    assert.equal(await orderCount(), before);
  });

  it('the refusal page is in the language asked for', async () => {
    const res = await postSealed({ ...request({ lang: 'it' }), amount: '2' });
    assert.equal(res.status, 403);
    const html = await res.text();
    assert.match(html, /<html lang="it"/);
    assert.match(html, /sigillo/i);
  });

  it('is exempt from the CSRF check at exactly /pay/sealed', async () => {
    for (const p of ['/pay/sealed/', '/pay/SEALED', '/pay/sealed/3ds/x', '/pay/sealed%2F']) {
      const before = await orderCount();
      const res = await postSealed(request(), `${base}${p}`);
      assert.notEqual(res.status, 303, p);
      assert.equal(await orderCount(), before, p);
    }
  });

  it('a cancelled order sends the buyer back to cancel_url with status=cancelled', async () => {
    const fields = request();
    const res = await postSealed(fields);
    const order = (await Order.findOne({ merchantId: merchant._id, reference: fields.reference }).lean<OrderDoc>())!;
    await Order.updateOne({ _id: order._id }, { $set: { status: 'cancelled', cancelledAt: new Date(), openReference: order._id } });
    const page = await fetch(new URL(res.headers.get('location')!, base), { headers: { 'accept-language': 'en' } });
    assert.equal(page.status, 410);
    const back = returnLink(await page.text());
    const url = new URL(back);
    assert.equal(`${url.origin}${url.pathname}`, 'https://shop.rossi.example/paymail/ko');
    assert.equal(url.searchParams.get('status'), 'cancelled');
    assert.equal(url.searchParams.get('reference'), fields.reference);
    assert.equal(pythonVerify(back, sealKey), 'True');
    assert.equal(nodeVerify(back, sealKey), 'true');
  });

  it('orders from mail have no return button', async () => {
    const orders = createOrderService({ repos, publicUrl: base, mailDomain: MAIL_DOMAIN, maxLinkLifetimeDays: 60, linkKeys: KEYS });
    const { order, link } = await orders.create(merchant, { amountMinor: 100, currency: 'EUR', reference: 'MAIL-1' }, { key: 'test:mail-1' });
    await Order.updateOne({ _id: order._id }, { $set: { status: 'cancelled', cancelledAt: new Date(), openReference: order._id } });
    assert.doesNotMatch(await (await fetch(link)).text(), /button-return/);
  });

  it('the sweep prunes nonces older than an hour', async () => {
    const fields = request();
    assert.equal((await postSealed(fields)).status, 303);
    const id = `${merchant._id}:${fields.nonce}`;
    assert.ok(await SealNonce.exists({ _id: id }));
    clock = new Date(clock.getTime() + 2 * HOUR);
    assert.ok((await sealed.sweep()) > 0);
    assert.equal(await SealNonce.exists({ _id: id }), null);
  });

  // Last: the checkout keeps merchants for a few seconds, so returns just after a rotation may
  // still be sealed with the previous key (which the merchant accepts for 24 hours).
  it('accepts the previous key for 24 hours after a rotation, then refuses it', async () => {
    const oldKey = sealKey;
    const rotated = await merchants.rotateSealKey(merchant._id);
    assert.notEqual(rotated.sealKey, oldKey);
    assert.equal(rotated.previousValidUntil.getTime(), clock.getTime() + 24 * HOUR);
    try {
      clock = new Date(clock.getTime() + 23 * HOUR);
      assert.equal((await postSealed(request({}, oldKey))).status, 303, 'old key within 24 h');
      assert.equal((await postSealed(request({}, rotated.sealKey))).status, 303, 'new key');
      clock = new Date(clock.getTime() + 2 * HOUR);
      const before = await orderCount();
      const late = await postSealed(request({}, oldKey));
      assert.equal(late.status, 403, 'old key after 24 h');
      assert.match(await late.text(), /<code>SEAL_INVALID<\/code>/);
      assert.equal(await orderCount(), before);
      assert.equal((await postSealed(request({}, rotated.sealKey))).status, 303);
    } finally {
      sealKey = rotated.sealKey;
    }
  });
});
