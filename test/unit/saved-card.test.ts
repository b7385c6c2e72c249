// Saved cards' pure rules (issue 12 part 3): when a saved card counts as expired (it is valid
// through the last day of its expiry month), its label, and the removal link's signature (any key
// of the ring verifies it, a changed customer, card or signature does not).
import assert from 'node:assert/strict';
import { cardRemovalPath, cardRemovalUrl, verifyCardRemoval } from '../../src/domain/card-removal.ts';
import { type LinkKey } from '../../src/domain/pay-link.ts';
import { cardExpired, newSavedCardId, SAVED_CARD_ID, savedCardLabel } from '../../src/domain/saved-card.ts';

const KEYS: LinkKey[] = [{ kid: 'k2', secret: 'second-secret-second-secret-second' }, { kid: 'k1', secret: 'first-secret-first-secret-first-se' }];

describe('saved cards: expiry, label, removal link', () => {
  it('a card is valid through the last day of its expiry month', () => {
    const card = { expMonth: 2, expYear: 2028 };
    assert.equal(cardExpired(card, new Date('2028-02-29T23:59:59Z')), false);
    assert.equal(cardExpired(card, new Date('2028-03-01T00:00:00Z')), true);
    assert.equal(cardExpired({ expMonth: 12, expYear: 2027 }, new Date('2027-12-31T12:00:00Z')), false);
    assert.equal(cardExpired({ expMonth: 12, expYear: 2027 }, new Date('2028-01-01T00:00:00Z')), true);
  });

  it('labels a card as the checkout shows it, and mints card ids', () => {
    assert.equal(savedCardLabel({ brand: 'Visa', last4: '4242' }), 'Visa •••• 4242');
    assert.equal(savedCardLabel({ brand: 'mastercard', last4: '4444' }), 'Mastercard •••• 4444');
    assert.match(newSavedCardId(), SAVED_CARD_ID);
  });

  it('signs the removal link with the current key; every key of the ring verifies; anything changed does not', () => {
    const code = `cus_${'A'.repeat(21)}`;
    const card = `card_${'B'.repeat(21)}`;
    const link = new URL(cardRemovalPath(KEYS, code, card), 'https://pay.example');
    assert.equal(link.pathname, `/cards/${code}/${card}/remove`);
    assert.equal(link.searchParams.get('k'), 'k2');
    const s = link.searchParams.get('s');
    assert.equal(verifyCardRemoval(KEYS, code, card, 'k2', s), true);
    // Signed before a rotation: the older key still verifies.
    const old = new URL(cardRemovalPath([KEYS[1]!], code, card), 'https://pay.example');
    assert.equal(verifyCardRemoval(KEYS, code, card, 'k1', old.searchParams.get('s')), true);
    assert.equal(verifyCardRemoval(KEYS, `cus_${'C'.repeat(21)}`, card, 'k2', s), false);
    assert.equal(verifyCardRemoval(KEYS, code, `card_${'C'.repeat(21)}`, 'k2', s), false);
    assert.equal(verifyCardRemoval(KEYS, code, card, 'k1', s), false);
    assert.equal(verifyCardRemoval(KEYS, code, card, 'k9', s), false);
    assert.equal(verifyCardRemoval(KEYS, code, card, 'k2', 'short'), false);
    assert.equal(verifyCardRemoval(KEYS, code, card, undefined, s), false);
  });

  it('gives a removal URL only for an order paid with, or saving, a card', () => {
    const code = `cus_${'A'.repeat(21)}`;
    assert.equal(cardRemovalUrl('https://pay.example/', KEYS, { customerCode: code, payment: {} }), undefined);
    assert.equal(cardRemovalUrl('https://pay.example/', KEYS, { payment: { savedCardId: 'card_x' } }), undefined);
    assert.match(cardRemovalUrl('https://pay.example/', KEYS, { customerCode: code, payment: { savedCardId: 'card_x' } })!, /^https:\/\/pay\.example\/cards\/cus_A+\/card_x\/remove\?k=k2&s=[\w-]{43}$/);
  });
});
