// The signed payment proof: sign/verify round trip, the published JWK, and every kind of
// tampering a forger could try (changed field, changed signature, unknown or swapped key id).
import assert from 'node:assert/strict';
import { createPublicKey, generateKeyPairSync, sign } from 'node:crypto';
import {
  extractReceiptToken,
  publicJwk,
  receiptKeyId,
  signReceipt,
  verifyReceiptToken,
  type ReceiptClaims,
} from '../../src/domain/receipt-proof.ts';
import { mkdtemp, readFile, rm, stat } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { isAppError } from '../../src/domain/errors.ts';
import { createReceiptKeyRing, DEV_KEY_FILE, loadReceiptKeys, publicKeysFromJwks, type ReceiptKeyConfig } from '../../src/services/signing-keys.ts';

const CLAIMS: ReceiptClaims = {
  v: 1,
  receiptNumber: 'RCPT-7K3MQ2XW9P',
  merchant: { id: 'mer_ABCDEFGH23', name: 'Hotel Bellavista' },
  reference: 'BK-1042',
  amountMinor: 12990,
  currency: 'EUR',
  card: { brand: 'visa', last4: '4242' },
  authCode: 'A1B2C3',
  paidAt: '2031-02-10T09:15:00.000Z',
  orderPublicId: 'V1StGXR8_Z5jdHi6B-myT',
};

const ring = createReceiptKeyRing(generateKeyPairSync('ed25519').privateKey);
const other = createReceiptKeyRing(generateKeyPairSync('ed25519').privateKey);
const token = signReceipt(CLAIMS, ring.signing!);
const [payload, signature, kid] = token.split('.') as [string, string, string];

const reencode = (mutate: (c: Record<string, unknown>) => void): string => {
  const c = JSON.parse(Buffer.from(payload, 'base64url').toString('utf8')) as Record<string, unknown>;
  mutate(c);
  return Buffer.from(JSON.stringify(c)).toString('base64url');
};
const flip = (s: string, i: number): string => s.slice(0, i) + (s[i] === 'A' ? 'B' : 'A') + s.slice(i + 1);

describe('receipt proof', () => {
  it('signs to payload.signature.kid and verifies back to the same claims', () => {
    assert.match(token, /^eyJ[\w-]+\.[\w-]{86}\.[\w-]{16}$/);
    const v = verifyReceiptToken(token, ring.lookup);
    assert.ok(v.ok);
    assert.deepEqual(v.claims, CLAIMS);
    assert.equal(v.kid, ring.signing!.kid);
  });

  it('is deterministic (the mail and the page show the same token) and carries no card number', () => {
    assert.equal(signReceipt(CLAIMS, ring.signing!), token);
    assert.doesNotMatch(Buffer.from(payload, 'base64url').toString(), /4242424242424242|\d{12,}/);
  });

  it('publishes an OKP/Ed25519 JWK whose kid is its thumbprint, and verifies from it', () => {
    const { keys } = ring.jwks();
    assert.equal(keys.length, 1);
    assert.deepEqual(Object.keys(keys[0]!).sort(), ['alg', 'crv', 'kid', 'kty', 'use', 'x']);
    assert.equal(keys[0]!.kty, 'OKP');
    assert.equal(keys[0]!.crv, 'Ed25519');
    assert.equal(keys[0]!.kid, receiptKeyId(createPublicKey(ring.signing!.privateKey)));
    assert.ok(!('d' in keys[0]!), 'no private part');
    const fromJwks = createReceiptKeyRing(undefined, publicKeysFromJwks(ring.jwks()));
    assert.ok(verifyReceiptToken(token, fromJwks.lookup).ok);
    assert.deepEqual(publicJwk(kid, ring.signing!.privateKey), keys[0]);
  });

  const tampered: Array<[string, string, string]> = [
    ['changed amount', `${reencode((c) => (c.amountMinor = 1299))}.${signature}.${kid}`, 'invalid-signature'],
    ['changed currency', `${reencode((c) => (c.currency = 'USD'))}.${signature}.${kid}`, 'invalid-signature'],
    ['changed merchant name', `${reencode((c) => ((c.merchant as { name: string }).name = 'Hotel Evil'))}.${signature}.${kid}`, 'invalid-signature'],
    ['re-serialised payload (same fields, other spacing)', `${Buffer.from(JSON.stringify(CLAIMS, null, 1)).toString('base64url')}.${signature}.${kid}`, 'invalid-signature'],
    ['changed signature', `${payload}.${flip(signature, 10)}.${kid}`, 'invalid-signature'],
    ['signature of another key under our kid', `${signReceipt(CLAIMS, { kid, privateKey: other.signing!.privateKey })}`, 'invalid-signature'],
    ['unknown kid', `${payload}.${signature}.zzzzzzzzzzzzzzzz`, 'unknown-key'],
    ['genuine token of another service', signReceipt(CLAIMS, other.signing!), 'unknown-key'],
    ['truncated signature', `${payload}.${signature.slice(0, 40)}.${kid}`, 'malformed'],
    ['two parts', `${payload}.${signature}`, 'malformed'],
    ['not base64url', `${payload}.${signature}!.${kid}`, 'malformed'],
    ['empty', '', 'malformed'],
    ['oversized', `${'A'.repeat(5000)}.${signature}.${kid}`, 'malformed'],
  ];
  for (const [name, forged, reason] of tampered) {
    it(`rejects ${name}: ${reason}`, () => {
      const v = verifyReceiptToken(forged, ring.lookup);
      assert.equal(v.ok, false);
      assert.equal(!v.ok && v.reason, reason);
    });
  }

  it('rejects a well-signed payload that is not a receipt (malformed)', () => {
    const junk = Buffer.from(JSON.stringify({ v: 1, hello: 'world' }), 'utf8');
    const forged = `${junk.toString('base64url')}.${sign(null, junk, ring.signing!.privateKey).toString('base64url')}.${kid}`;
    const v = verifyReceiptToken(forged, ring.lookup);
    assert.equal(!v.ok && v.reason, 'malformed');
  });

  const texts: Array<[string, string]> = [
    ['the bare token', token],
    ['a text receipt line', `Signed payment proof\n${token}\nVerify: https://pay.example/receipts/verify?token=${token}`],
    ['a quoted-printable body with soft breaks', `${token.slice(0, 70)}=\r\n${token.slice(70, 140)}=\r\n${token.slice(140)}`],
    ['an HTML attribute', `<a href="/receipts/verify?token&#x3D;${token}">verify</a>`],
  ];
  for (const [name, text] of texts) {
    it(`finds the token in ${name}`, () => assert.equal(extractReceiptToken(text), token));
  }
  it('finds nothing in text without a token', () => assert.equal(extractReceiptToken('Receipt RCPT-1 paid'), undefined));
});

describe('receipt signing keys', () => {
  let dir: string;
  before(async () => {
    dir = await mkdtemp(path.join(os.tmpdir(), 'paymail-keys-'));
  });
  after(() => rm(dir, { recursive: true, force: true }));
  const base: Omit<ReceiptKeyConfig, 'dataDir'> = {
    production: false,
    receiptSigningKey: undefined,
    receiptSigningKeyFile: undefined,
    receiptPublicKeysFile: undefined,
  };

  it('generates a development key once into DATA_DIR/keys (0600) and reloads the same key', async () => {
    const verifyOnly = await loadReceiptKeys({ ...base, dataDir: dir }, { create: false });
    assert.equal(verifyOnly.signing, undefined, 'verifying must not invent a key');
    const first = await loadReceiptKeys({ ...base, dataDir: dir });
    const again = await loadReceiptKeys({ ...base, dataDir: dir });
    assert.ok(first.signing);
    assert.equal(again.signing!.kid, first.signing.kid);
    const file = path.join(dir, 'keys', DEV_KEY_FILE);
    assert.equal((await stat(file)).mode & 0o777, 0o600);
    const fromEnv = await loadReceiptKeys({ ...base, dataDir: '/nonexistent', receiptSigningKey: (await readFile(file, 'utf8')).replace(/\n/g, '\\n') });
    assert.equal(fromEnv.signing!.kid, first.signing.kid, 'a PEM with literal \\n from an env var');
  });

  const refused: Array<[string, Partial<typeof base>, string]> = [
    ['production without a key', { production: true }, 'RECEIPT_KEY_MISSING'],
    ['a key that is not PEM', { receiptSigningKey: 'not a key' }, 'RECEIPT_KEY_INVALID'],
    ['an RSA key', { receiptSigningKey: generateKeyPairSync('rsa', { modulusLength: 1024 }).privateKey.export({ format: 'pem', type: 'pkcs8' }).toString() }, 'RECEIPT_KEY_INVALID'],
  ];
  for (const [name, over, code] of refused) {
    it(`refuses ${name}: ${code}`, async () => {
      await assert.rejects(loadReceiptKeys({ ...base, dataDir: dir, ...over }), (e: unknown) => isAppError(e, code));
    });
  }
});
