import assert from 'node:assert/strict';
import { payLinkPath, payLinkUrl, signLink, verifyLink, type LinkClaims, type LinkKey, type LinkParams } from '../../src/domain/pay-link.ts';

const OLD: LinkKey = { kid: 'k2024', secret: 'old-secret-old-secret-old-secret-0001' };
const NEW: LinkKey = { kid: 'k2025', secret: 'new-secret-new-secret-new-secret-0002' };
const claims: LinkClaims = { publicId: 'V1StGXR8_Z5jdHi6B-myT', amountMinor: 12990, currency: 'EUR', expiresAt: 1_900_000_000 };

function params(keys: LinkKey[] = [NEW], c: LinkClaims = claims): LinkParams {
  return signLink(keys, c);
}

describe('pay-link signing', () => {
  it('round-trips: a signed link verifies to its claims', () => {
    const r = verifyLink([NEW], claims.publicId, params());
    assert.deepEqual(r, { ok: true, claims });
  });

  it('builds a URL whose query verifies', () => {
    const url = new URL(payLinkUrl('https://pay.example/', [NEW], claims));
    assert.equal(url.pathname, `/pay/${claims.publicId}`);
    const q = Object.fromEntries(url.searchParams) as Partial<LinkParams>;
    assert.equal(verifyLink([NEW], claims.publicId, q).ok, true);
    assert.ok(payLinkPath([NEW], claims).startsWith('/pay/'));
  });

  const tampered: Array<[string, (p: LinkParams) => [string, Partial<LinkParams>], string]> = [
    ['amount', (p) => [claims.publicId, { ...p, a: '1' }], 'bad-signature'],
    ['currency', (p) => [claims.publicId, { ...p, c: 'USD' }], 'bad-signature'],
    ['expiry', (p) => [claims.publicId, { ...p, e: String(claims.expiresAt + 86_400) }], 'bad-signature'],
    ['id', () => ['V1StGXR8_Z5jdHi6B-myU', params()], 'bad-signature'],
    ['signature', (p) => [claims.publicId, { ...p, s: (p.s[0] === 'A' ? 'B' : 'A') + p.s.slice(1) }], 'bad-signature'],
    ['key id (unknown)', (p) => [claims.publicId, { ...p, k: 'nope' }], 'unknown-key'],
    ['signature (truncated)', (p) => [claims.publicId, { ...p, s: p.s.slice(0, 20) }], 'malformed'],
    ['amount (not a number)', (p) => [claims.publicId, { ...p, a: '12.99' }], 'malformed'],
    ['currency (lower case)', (p) => [claims.publicId, { ...p, c: 'eur' }], 'malformed'],
    ['id (bad characters)', (p) => ['../../etc/passwd', p], 'malformed'],
  ];
  for (const [what, mutate, reason] of tampered) {
    it(`rejects a tampered ${what} as ${reason}`, () => {
      const [id, q] = mutate(params());
      assert.deepEqual(verifyLink([NEW], id, q), { ok: false, reason });
    });
  }

  it('accepts exactly one spelling of a signature (no malleable low bits in the last character)', () => {
    const p = params();
    // 32 bytes take 43 base64url characters: the last one carries 4 bits and 2 unused low bits,
    // so four characters decode to the same bytes. Only the canonical one may verify.
    const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_';
    const last = alphabet.indexOf(p.s.at(-1)!);
    const base = last & ~3;
    const spellings = [0, 1, 2, 3].map((i) => p.s.slice(0, -1) + alphabet[base + i]);
    assert.deepEqual(new Set(spellings.map((s) => Buffer.from(s, 'base64url').toString('hex'))).size, 1);
    const accepted = spellings.filter((s) => verifyLink([NEW], claims.publicId, { ...p, s }).ok);
    assert.deepEqual(accepted, [p.s]);
    for (const s of spellings.filter((x) => x !== p.s)) {
      assert.deepEqual(verifyLink([NEW], claims.publicId, { ...p, s }), { ok: false, reason: 'bad-signature' });
    }
  });

  it('rejects missing or repeated parameters as malformed', () => {
    const p = params();
    const { s: _s, ...noSig } = p;
    assert.deepEqual(verifyLink([NEW], claims.publicId, noSig), { ok: false, reason: 'malformed' });
    assert.deepEqual(verifyLink([NEW], claims.publicId, { ...p, a: [p.a, p.a] }), { ok: false, reason: 'malformed' });
  });

  it('rotates keys: the first key signs, an old key id still verifies', () => {
    const rotated = [NEW, OLD];
    const oldLink = params([OLD]);
    assert.equal(oldLink.k, OLD.kid);
    assert.equal(verifyLink(rotated, claims.publicId, oldLink).ok, true);
    const newLink = params(rotated);
    assert.equal(newLink.k, NEW.kid);
    assert.equal(verifyLink(rotated, claims.publicId, newLink).ok, true);
    // Once the old key is retired, its links stop verifying.
    assert.deepEqual(verifyLink([NEW], claims.publicId, oldLink), { ok: false, reason: 'unknown-key' });
  });

  it('does not accept a signature made with another key under a known kid', () => {
    const forged = signLink([{ kid: NEW.kid, secret: 'attacker-attacker-attacker-attacker-1' }], claims);
    assert.deepEqual(verifyLink([NEW], claims.publicId, forged), { ok: false, reason: 'bad-signature' });
  });

  it('refuses to sign without a key', () => {
    assert.throws(() => signLink([], claims));
  });
});
