import assert from 'node:assert/strict';
import { checkCard, maskCard, type CardInput } from '../../src/domain/card.ts';

const yy = (offset: number) => String((new Date().getUTCFullYear() + offset) % 100).padStart(2, '0');
const FUTURE = `12/${yy(3)}`;
const base: CardInput = { number: '4242 4242 4242 4242', expiry: FUTURE, cvc: '123', holder: 'Anna Rossi' };

describe('card checks', () => {
  const valid: Array<[string, Partial<CardInput>, string, string, string]> = [
    ['Visa with spaces', { number: '4242 4242 4242 4242' }, 'Visa', '424242', '4242'],
    ['Visa with dashes', { number: '4242-4242-4242-4242' }, 'Visa', '424242', '4242'],
    ['Mastercard', { number: '5555555555554444' }, 'Mastercard', '555555', '4444'],
    ['American Express, 4-digit CVC', { number: '378282246310005', cvc: '1234' }, 'American Express', '378282', '0005'],
    ['Diners Club', { number: '30569309025904' }, 'Diners Club', '305693', '5904'],
    ['Discover', { number: '6011111111111117' }, 'Discover', '601111', '1117'],
    ['JCB', { number: '3530111333300000' }, 'JCB', '353011', '0000'],
    ['brand chosen and matching', { number: '5555555555554444', brand: 'mastercard' }, 'Mastercard', '555555', '4444'],
    ['expiry with a four-digit year', { expiry: `12/20${yy(3)}` }, 'Visa', '424242', '4242'],
  ];
  for (const [name, input, brand, bin, last4] of valid) {
    it(`accepts ${name}`, () => {
      const r = checkCard({ ...base, ...input });
      assert.ok(r.ok, JSON.stringify(!r.ok && r.problems));
      assert.equal(r.card.brand, brand);
      assert.equal(r.card.bin, bin);
      assert.equal(r.card.last4, last4);
      assert.equal(r.card.expMonth, 12);
      assert.equal(r.card.expYear, 2000 + Number(yy(3)));
    });
  }

  const invalid: Array<[string, Partial<CardInput>, string, string]> = [
    ['a Luhn failure', { number: '4242424242424241' }, 'number', 'CARD_NUMBER_INVALID'],
    ['too few digits', { number: '4242 4242' }, 'number', 'CARD_NUMBER_INVALID'],
    ['letters in the number', { number: '4242 4242 4242 42AB' }, 'number', 'CARD_NUMBER_INVALID'],
    ['an empty number', { number: '' }, 'number', 'CARD_NUMBER_INVALID'],
    ['a brand mismatch', { number: '4242424242424242', brand: 'mastercard' }, 'number', 'CARD_BRAND_MISMATCH'],
    ['an expired card', { expiry: `01/${yy(-2)}` }, 'expiry', 'CARD_EXPIRED'],
    ['month 13', { expiry: `13/${yy(3)}` }, 'expiry', 'CARD_EXPIRY_INVALID'],
    ['a garbled expiry', { expiry: 'soon' }, 'expiry', 'CARD_EXPIRY_INVALID'],
    ['a 4-digit CVC on Visa', { cvc: '1234' }, 'cvc', 'CARD_CVC_INVALID'],
    ['a 3-digit CVC on Amex', { number: '378282246310005', cvc: '123' }, 'cvc', 'CARD_CVC_INVALID'],
    ['a 2-digit CVC', { cvc: '12' }, 'cvc', 'CARD_CVC_INVALID'],
    ['a missing holder', { holder: ' ' }, 'holder', 'CARD_HOLDER_INVALID'],
    ['a card number typed as the holder', { holder: '4242 4242 4242 4242' }, 'holder', 'CARD_HOLDER_INVALID'],
  ];
  for (const [name, input, field, code] of invalid) {
    it(`refuses ${name} with ${code}`, () => {
      const r = checkCard({ ...base, ...input });
      assert.equal(r.ok, false);
      if (!r.ok) assert.deepEqual(r.problems.map((p) => [p.field, p.code]), [[field, code]]);
    });
  }

  it('reports every problem at once', () => {
    const r = checkCard({ number: '1234', expiry: 'x', cvc: '', holder: '' });
    assert.equal(r.ok, false);
    if (!r.ok) assert.deepEqual(r.problems.map((p) => p.field).sort(), ['cvc', 'expiry', 'holder', 'number']);
  });

  it('expires at the end of the expiry month, not its start', () => {
    const now = new Date();
    const mm = String(now.getUTCMonth() + 1).padStart(2, '0');
    assert.ok(checkCard({ ...base, expiry: `${mm}/${yy(0)}` }, now).ok);
  });

  it('judges expiry against the given clock', () => {
    const lastDay = new Date(Date.UTC(2026, 4, 31, 23, 59));
    const nextMonth = new Date(Date.UTC(2026, 5, 1, 0, 0));
    assert.ok(checkCard({ ...base, expiry: '05/26' }, lastDay).ok);
    const r = checkCard({ ...base, expiry: '0526' }, nextMonth);
    assert.equal(r.ok, false);
    if (!r.ok) assert.equal(r.problems[0]?.code, 'CARD_EXPIRED');
    assert.ok(checkCard({ ...base, expiry: '0527' }, nextMonth).ok, 'MMYY without a separator');
  });

  it('never puts the full number or CVC in a problem message', () => {
    const r = checkCard({ ...base, number: '4242424242424241', cvc: '98765' });
    assert.equal(r.ok, false);
    assert.doesNotMatch(JSON.stringify(r), /4242424242424241|98765/);
  });

  const countries: Array<[string, string, string | undefined]> = [
    ['4242424242424242', '123', 'US'],
    ['4000003800000008', '123', 'IT'],
    ['378282246310005', '1234', 'US'],
    ['4912345678901230', '123', undefined],
  ];
  for (const [number, cvc, country] of countries) {
    it(`finds the issuing country of ${number.slice(0, 6)}… from the BIN table: ${country ?? 'unknown'}`, () => {
      const r = checkCard({ ...base, number, cvc });
      assert.ok(r.ok, JSON.stringify(!r.ok && r.problems));
      assert.equal(r.card.country, country);
      assert.equal('country' in r.card, country !== undefined, 'no empty country key');
    });
  }

  it('masks a card for display', () => {
    assert.equal(maskCard('Visa', '4242'), 'Visa •••• 4242');
  });
});
