// Acquirer secrets at rest (src/domain/secret-box.ts): AES-256-GCM bound to the merchant and field.
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { openSecret, parseSecretsKey, sealSecret, secretHint, SecretBoxError } from '../../src/domain/secret-box.ts';

describe('secret box', () => {
  const key = randomBytes(32);
  const at = { merchantId: 'm_1', field: 'stripe.secretKey' };

  it('seals and opens; every sealing differs and holds nothing of the secret', () => {
    const a = sealSecret(key, 'sk_test_abcdef123456', at);
    const b = sealSecret(key, 'sk_test_abcdef123456', at);
    assert.notEqual(a, b);
    assert.match(a, /^v1\.[\w-]{16}\.[\w-]+\.[\w-]{22}$/);
    assert.ok(!a.includes('sk_') && !a.includes('abcdef'));
    assert.equal(openSecret(key, a, at), 'sk_test_abcdef123456');
  });

  const refusals: Array<[string, (s: string) => [Buffer, string, typeof at]]> = [
    ['another key', (s) => [randomBytes(32), s, at]],
    ['another merchant', (s) => [key, s, { ...at, merchantId: 'm_2' }]],
    ['another field', (s) => [key, s, { ...at, field: 'stripe.webhookSecret' }]],
    ['an altered ciphertext', (s) => [key, s.replace(/\.([\w-])/, (_m, c: string) => `.${c === 'A' ? 'B' : 'A'}`), at]],
    ['not a sealed value', () => [key, 'sk_test_plain', at]],
  ];
  for (const [name, make] of refusals) {
    it(`refuses ${name}`, () => {
      const [k, s, c] = make(sealSecret(key, 'sk_test_abcdef123456', at));
      assert.throws(() => openSecret(k, s, c), SecretBoxError);
    });
  }

  it('parses SECRETS_KEY as hex or base64 of 32 bytes only', () => {
    assert.deepEqual(parseSecretsKey('ab'.repeat(32)), Buffer.alloc(32, 0xab));
    assert.deepEqual(parseSecretsKey(Buffer.alloc(32, 9).toString('base64')), Buffer.alloc(32, 9));
    assert.deepEqual(parseSecretsKey(Buffer.alloc(32, 9).toString('base64url')), Buffer.alloc(32, 9));
    assert.equal(parseSecretsKey('ab'.repeat(31)), undefined);
    assert.equal(parseSecretsKey('not a key'), undefined);
  });

  it('hints show the kind and the last four only', () => {
    assert.equal(secretHint('sk_test_51Abcdefghij4242'), 'sk_test_…4242');
    assert.equal(secretHint('rk_live_51Abcdefghij0001'), 'rk_live_…0001');
    assert.equal(secretHint('whsec_abcdefghijklmnop'), 'whsec_…mnop');
  });
});
