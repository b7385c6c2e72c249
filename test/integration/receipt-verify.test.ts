// The signed payment proof as people meet it: on the receipt page and in the receipt mails, at
// the well-known key URL, on the verify page, and with `paymail receipt verify` on a saved .eml
// or a token, over real HTTP and a real CLI process. Tampering is caught everywhere.
import assert from 'node:assert/strict';
import { generateKeyPairSync, sign, type KeyObject } from 'node:crypto';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import { compactVerify, createRemoteJWKSet } from 'jose';
import http from 'node:http';
import { type AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import nodemailer from 'nodemailer';
import { Merchant, type MerchantDoc } from '../../src/db/models/merchant.model.ts';
import { type OrderDoc } from '../../src/db/models/order.model.ts';
import { Outbox, type OutboxDoc } from '../../src/db/models/outbox.model.ts';
import { type LinkKey } from '../../src/domain/pay-link.ts';
import { createHttpApp } from '../../src/http/app.ts';
import { deriveCsrfKey } from '../../src/http/middleware/csrf.ts';
import { createProofRouter } from '../../src/http/proof/proof.routes.ts';
import { createViews } from '../../src/http/views.ts';
import { createLogger } from '../../src/logger.ts';
import { createMailRenderer, formatDateTime } from '../../src/mail/renderer.ts';
import { TEMPLATES_DIR } from '../../src/server.ts';
import { createSandboxAcquirer } from '../../src/services/acquirer/sandbox-acquirer.ts';
import { createCheckoutService } from '../../src/services/checkout.service.ts';
import { createMerchantService } from '../../src/services/merchant.service.ts';
import { createOrderService } from '../../src/services/order.service.ts';
import { createReceiptProofs, JWKS_PATH } from '../../src/services/receipt-proof.service.ts';
import { createReceiptKeyRing } from '../../src/services/signing-keys.ts';
import { useTestDatabase } from '../helpers/db.ts';
import { runCli } from '../helpers/paymail-process.ts';
import { repos } from '../helpers/db.ts';

const KEYS: LinkKey[] = [{ kid: 'rv1', secret: 'receipt-verify-secret-receipt-verify-secret' }];
const nextYear = String((new Date().getUTCFullYear() + 2) % 100).padStart(2, '0');
const unescape = (s: string) => s.replace(/&#x3D;/g, '=').replace(/&amp;/g, '&');

/** The token with its payload re-encoded after `mutate`: what a forger editing a receipt makes. */
function tamper(token: string, mutate: (c: Record<string, unknown>) => void): string {
  const [h, p, s] = token.split('.') as [string, string, string];
  const claims = JSON.parse(Buffer.from(p, 'base64url').toString('utf8')) as Record<string, unknown>;
  mutate(claims);
  return `${h}.${Buffer.from(JSON.stringify(claims)).toString('base64url')}.${s}`;
}
const b64 = (v: unknown) => Buffer.from(JSON.stringify(v)).toString('base64url');
const headerOf = (token: string) => JSON.parse(Buffer.from(token.split('.')[0]!, 'base64url').toString()) as { alg: string; kid: string };

/** A proof in the layout issued before the JWS one (payload.signature.<16-character kid>), same key. */
function legacyProof(token: string, key: KeyObject, kid: string): string {
  const payload = Buffer.from(token.split('.')[1]!, 'base64url');
  return `${payload.toString('base64url')}.${sign(null, payload, key).toString('base64url')}.${kid.slice(0, 16)}`;
}
const FIXTURE = fileURLToPath(new URL('../fixtures/receipt-v1/', import.meta.url));

describe('signed receipts: page, mail, keys and verification', function () {
  this.timeout(60_000);
  useTestDatabase();
  const { privateKey } = generateKeyPairSync('ed25519');
  const ring = createReceiptKeyRing(privateKey);
  let server: http.Server;
  let base: string;
  let tmp: string;
  let keyFile: string;
  let order: OrderDoc;
  let link: string;
  let token: string;
  let renderer: ReturnType<typeof createMailRenderer> | undefined;
  const rendererOnce = () => (renderer ??= createMailRenderer({ templatesDir: TEMPLATES_DIR, publicUrl: base }));

  before(async () => {
    tmp = await mkdtemp(path.join(os.tmpdir(), 'paymail-receipt-'));
    keyFile = path.join(tmp, 'receipt.pem');
    await writeFile(keyFile, privateKey.export({ format: 'pem', type: 'pkcs8' }).toString(), { mode: 0o600 });
    server = http.createServer();
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    const proofs = createReceiptProofs({ keys: ring, publicUrl: base });
    const orders = createOrderService({ repos, publicUrl: base, mailDomain: 'paymail.test', maxLinkLifetimeDays: 60, linkKeys: KEYS });
    const checkout = createCheckoutService({ repos,
      acquirer: createSandboxAcquirer({ latencyMs: 0 }),
      linkKeys: KEYS,
      mailDomain: 'paymail.test',
      linkFor: orders.linkFor,
      proofs,
    });
    const app = createHttpApp({
      logger: createLogger('silent'),
      views: createViews({ templatesDir: TEMPLATES_DIR, namespaces: ['checkout', 'proof'] }),
      checkout: { service: checkout, csrfKey: deriveCsrfKey(KEYS[0]!.secret) },
      extraRouters: [createProofRouter({ keys: ring, proofs, templatesDir: TEMPLATES_DIR })],
      production: false,
    });
    server.on('request', app.callback());

    const created = await createMerchantService({ repos, mailDomain: 'paymail.test' }).create({ name: 'Bottega Rossi & Figli', email: 'shop@rossi.example' });
    const merchant = (await Merchant.findById(created.id).lean<MerchantDoc>())!;
    const r = await orders.create(merchant, { amountMinor: 12990, currency: 'EUR', reference: 'A-1001', customerEmail: 'anna@example.org' }, { key: 'rv:1' });
    const paid = await checkout.pay({ order: r.order, merchant }, { number: '4242 4242 4242 4242', expiry: `09/${nextYear}`, cvc: '123', holder: 'Anna Rossi' }, '127.0.0.1');
    assert.equal(paid.kind, 'paid');
    order = paid.kind === 'paid' ? paid.order : r.order;
    link = r.link;
  });

  after(async () => {
    server.closeAllConnections();
    await new Promise((r) => server.close(r));
    await rm(tmp, { recursive: true, force: true });
  });

  it('shows the proof and a verify link on the receipt page', async () => {
    const res = await fetch(link);
    assert.equal(res.status, 200);
    const html = unescape(await res.text());
    token = /<input class="proof-token"[^>]* value="([^"]+)"/.exec(html)?.[1] ?? '';
    assert.match(token, /^eyJ[\w-]+\.eyJ[\w-]+\.[\w-]{86}$/, 'a compact JWS');
    assert.match(html, /Signed payment proof/);
    const verifyHref = /href="([^"]*\/receipts\/verify\?token=[^"]+)"/.exec(html)?.[1];
    // The merchant's zone rides along as an unsigned display hint; the token is the proof.
    assert.equal(verifyHref, `${base}/receipts/verify?token=${token}&tz=Europe%2FRome`);
  });

  it('puts the same proof in both receipt mails, and the rendered mail carries it', async () => {
    const queued = await Outbox.find({ orderId: order._id, template: /^receipt-/ }).lean<OutboxDoc[]>();
    assert.equal(queued.length, 2);
    const renderer = await rendererOnce();
    for (const m of queued) {
      const data = m.data as { proof: string; verifyUrl: string };
      assert.equal(data.proof, token, `${m.template}: the page and the mail show one token`);
      const mail = await renderer.render({ template: m.template, locale: m.locale, data: m.data as Record<string, unknown> });
      assert.ok(mail.text.includes(token) && mail.text.includes(data.verifyUrl), `${m.template} text`);
      assert.ok(mail.html.includes(token), `${m.template} html`);
    }
  });

  it('serves the public key as a JWK Set at the well-known URL', async () => {
    const res = await fetch(`${base}${JWKS_PATH}`);
    assert.equal(res.status, 200);
    assert.match(res.headers.get('content-type') ?? '', /application\/jwk-set\+json/);
    assert.equal(res.headers.get('access-control-allow-origin'), '*');
    const jwks = (await res.json()) as { keys: Array<Record<string, string>> };
    assert.equal(jwks.keys.length, 1);
    assert.equal(jwks.keys[0]!.kty, 'OKP');
    assert.equal(jwks.keys[0]!.crv, 'Ed25519');
    assert.equal(jwks.keys[0]!.kid, headerOf(token).kid);
    assert.match(jwks.keys[0]!.kid!, /^[\w-]{43}$/, 'the full SHA-256 thumbprint');
    assert.ok(!('d' in jwks.keys[0]!));
  });

  it('a proof verifies with jose and the published JWK Set, fetched as is', async () => {
    const { payload, protectedHeader } = await compactVerify(token, createRemoteJWKSet(new URL(`${base}${JWKS_PATH}`)), { algorithms: ['EdDSA'] });
    assert.equal(protectedHeader.alg, 'EdDSA');
    const claims = JSON.parse(new TextDecoder().decode(payload)) as { receiptNumber: string; amountMinor: number };
    assert.equal(claims.receiptNumber, order.payment!.receiptNumber);
    assert.equal(claims.amountMinor, 12990);
  });

  const pages: Array<[string, () => string, number, RegExp]> = [
    ['the genuine proof', () => token, 200, /Genuine receipt[\s\S]*RCPT-[\s\S]*Bottega Rossi &amp; Figli[\s\S]*A-1001[\s\S]*€129\.90[\s\S]*Visa •+ 4242/],
    ['a changed amount', () => tamper(token, (c) => (c.amountMinor = 1299)), 422, /data-reason="invalid-signature"/],
    ['a changed signature', () => token.replace(/\.(.)/, (_, ch: string) => `.${ch === 'A' ? 'B' : 'A'}`), 422, /data-reason="invalid-signature"/],
    ['an unknown key id', () => `${b64({ alg: 'EdDSA', kid: 'unknownkid123456' })}.${token.split('.').slice(1).join('.')}`, 422, /data-reason="unknown-key"/],
    ['a proof issued before the JWS layout (same key)', () => legacyProof(token, privateKey, ring.signing!.kid), 200, /Genuine receipt[\s\S]*RCPT-[\s\S]*A-1001[\s\S]*€129\.90/],
    ['an old proof with a changed amount', () => { const l = legacyProof(token, privateKey, ring.signing!.kid).split('.'); return [b64({ ...JSON.parse(Buffer.from(l[0]!, 'base64url').toString()), amountMinor: 1 }), l[1], l[2]].join('.'); }, 422, /data-reason="invalid-signature"/],
    ['a truncated proof', () => token.slice(0, 60), 422, /data-reason="malformed"/],
  ];
  for (const [name, make, status, re] of pages) {
    it(`verify page: ${name} → ${status}`, async () => {
      const res = await fetch(`${base}/receipts/verify?token=${encodeURIComponent(make())}`);
      assert.equal(res.status, status);
      assert.match(await res.text(), re);
    });
  }

  // The receipt (page and mails) shows the paid time in the merchant's zone; the verify page too,
  // naming the zone, while the signed claims stay as they are (paidAt in UTC, no zone).
  const paidTimes: Array<[string, string, string]> = [
    ['the merchant’s zone from the receipt’s verify link', '&tz=Europe%2FRome', 'Europe/Rome'],
    ['another valid zone', '&tz=America%2FNew_York', 'America/New_York'],
    ['a zone spelled in another case, named canonically', '&tz=asia%2Ftokyo', 'Asia/Tokyo'],
    ['an unknown zone: UTC, named', '&tz=Mars%2FOlympus', 'UTC'],
    ['a link without a zone (older mails): UTC, named', '', 'UTC'],
  ];
  for (const [name, query, zone] of paidTimes) {
    it(`verify page: paid time in ${name}`, async () => {
      const res = await fetch(`${base}/receipts/verify?lang=en&token=${encodeURIComponent(token)}${query}`);
      assert.equal(res.status, 200);
      const html = unescape(await res.text());
      const paidAt = order.payment!.paidAt!;
      const time = /<time datetime="([^"]+)">([^<]+)<\/time>/.exec(html);
      assert.equal(time?.[1], new Date(paidAt).toISOString());
      const text = formatDateTime(new Date(paidAt), 'en', zone);
      assert.equal(time?.[2], zone === 'UTC' ? text : `${text} (${zone})`);
    });
  }

  it('verify page: the receipt mails link to it with the merchant’s zone and the signed claims carry none', async () => {
    const queued = await Outbox.find({ orderId: order._id, template: /^receipt-/ }).lean<OutboxDoc[]>();
    for (const m of queued) assert.equal((m.data as { verifyUrl: string }).verifyUrl, `${base}/receipts/verify?token=${token}&tz=Europe%2FRome`);
    const claims = JSON.parse(Buffer.from(token.split('.')[1]!, 'base64url').toString()) as Record<string, unknown>;
    assert.deepEqual(Object.keys(claims).sort(), ['amountMinor', 'authCode', 'card', 'currency', 'merchant', 'orderPublicId', 'paidAt', 'receiptNumber', 'reference', 'v']);
  });

  it('verify page: shows the form in the reader’s language when no token is given', async () => {
    const res = await fetch(`${base}/receipts/verify`, { headers: { 'accept-language': 'it-IT,it;q=0.9' } });
    assert.equal(res.status, 200);
    const html = await res.text();
    assert.match(html, /<html lang="it">/);
    assert.match(html, /Verifica una ricevuta di pagamento/);
    assert.match(html, /<label for="token">Prova di pagamento<\/label>/);
  });

  it('CLI: verifies a saved receipt .eml (exit 0, the signed fields) and catches a tampered copy (exit 1)', async () => {
    const m = (await Outbox.findOne({ orderId: order._id, template: 'receipt-customer' }).lean<OutboxDoc>())!;
    const renderer = await rendererOnce();
    const mail = await renderer.render({ template: m.template, locale: m.locale, data: m.data as Record<string, unknown> });
    // Exactly what a mail client saves: MIME with quoted-printable parts (long lines wrapped).
    const built = await nodemailer
      .createTransport({ streamTransport: true, buffer: true, newline: 'unix' })
      .sendMail({ from: 'no-reply@paymail.test', to: m.to, subject: mail.subject, text: mail.text, html: mail.html });
    const eml = path.join(tmp, 'receipt.eml');
    await writeFile(eml, built.message as Buffer);
    const env = { RECEIPT_SIGNING_KEY_FILE: keyFile, DATA_DIR: tmp };

    const forged = path.join(tmp, 'forged.eml');
    await writeFile(forged, `Subject: receipt\n\nProof: ${tamper(token, (c) => (c.amountMinor = 99))}\n`);
    const [ok, bad] = await Promise.all([runCli(['receipt', 'verify', eml], env), runCli(['receipt', 'verify', forged], env)]);
    assert.equal(ok.code, 0, ok.stderr);
    assert.match(ok.stdout, /^valid signature \(key [\w-]{43}\)/);
    for (const field of [order.payment!.receiptNumber!, 'Bottega Rossi & Figli', 'A-1001', '€129.90', '12990 EUR', 'Visa', '4242', order.payment!.authCode!, order.publicId]) {
      assert.ok(ok.stdout.includes(field), `prints ${field}`);
    }

    assert.equal(bad.code, 1);
    assert.equal(bad.stderr.trim(), 'paymail: invalid signature');
  });

  it('CLI: verifies a token against the published keys (--keys URL), rejects malformed input and unknown keys', async () => {
    // The last one: this DATA_DIR has no key, so the token names a key the installation does not know.
    const [viaUrl, malformed, unknown] = await Promise.all([
      runCli(['receipt', 'verify', token, '--keys', `${base}${JWKS_PATH}`, '--json'], { DATA_DIR: tmp }),
      runCli(['receipt', 'verify', 'not-a-receipt'], { DATA_DIR: tmp }),
      runCli(['receipt', 'verify', token], { DATA_DIR: path.join(tmp, 'empty') }),
    ]);
    assert.equal(viaUrl.code, 0, viaUrl.stderr);
    const out = JSON.parse(viaUrl.stdout) as { valid: boolean; amountMinor: number; card: { last4: string } };
    assert.equal(out.valid, true);
    assert.equal(out.amountMinor, 12990);
    assert.equal(out.card.last4, '4242');

    assert.equal(malformed.code, 1);
    assert.match(malformed.stderr, /^paymail: malformed/);

    assert.equal(unknown.code, 1);
    assert.match(unknown.stderr, /^paymail: unknown signing key/);
  });

  it('CLI: still verifies a proof issued before the JWS layout, with the key file or the JWK Set published then', async () => {
    const old = (await readFile(path.join(FIXTURE, 'token.txt'), 'utf8')).trim();
    const [withKey, withOldJwks, forged] = await Promise.all([
      runCli(['receipt', 'verify', old], { RECEIPT_SIGNING_KEY_FILE: path.join(FIXTURE, 'receipt-ed25519.pem'), DATA_DIR: tmp }),
      runCli(['receipt', 'verify', `Proof: ${old}`, '--keys', path.join(FIXTURE, 'jwks.json'), '--json'], { DATA_DIR: tmp }),
      runCli(['receipt', 'verify', old.replace(/\.[\w-]/, '.A'), '--keys', path.join(FIXTURE, 'jwks.json')], { DATA_DIR: tmp }),
    ]);
    assert.equal(withKey.code, 0, withKey.stderr);
    assert.match(withKey.stdout, /^valid signature \(key [\w-]{16}\)\n {2}receipt: {3}RCPT-LEGACY7Q2W/);
    assert.equal(withOldJwks.code, 0, withOldJwks.stderr);
    assert.equal((JSON.parse(withOldJwks.stdout) as { amountMinor: number }).amountMinor, 25800);
    assert.equal(forged.code, 1);
    assert.match(forged.stderr, /^paymail: (invalid signature|malformed)/);
  });
});
