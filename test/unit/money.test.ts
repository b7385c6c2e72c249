import assert from 'node:assert/strict';
import { formatMoney, parseAmount, toMajorString } from '../../src/domain/money.ts';

describe('money', () => {
  const ok: Array<[string, string, number, string]> = [
    ['129.90', 'EUR', 12990, 'EUR'],
    ['129,90 €', 'USD', 12990, 'EUR'],
    ['EUR 1.234,56', 'USD', 123456, 'EUR'],
    ['€1,234.56', 'USD', 123456, 'EUR'],
    ['1 234,56 EUR', 'USD', 123456, 'EUR'],
    ['1\u00a0234,56 €', 'USD', 123456, 'EUR'],
    ['1.234.567,89', 'EUR', 123456789, 'EUR'],
    ['50', 'EUR', 5000, 'EUR'],
    ['5,5', 'EUR', 550, 'EUR'],
    ['JPY 1,234', 'EUR', 1234, 'JPY'],
    ['¥ 1.234', 'EUR', 1234, 'JPY'],
    ['KWD 1,234.500', 'EUR', 1234500, 'KWD'],
    ['0.5 KWD', 'EUR', 500, 'KWD'],
    ['£ 9.99', 'EUR', 999, 'GBP'],
    ['chf 20', 'EUR', 2000, 'CHF'],
  ];
  for (const [input, def, minor, cur] of ok) {
    it(`reads "${input}" as ${minor} ${cur}`, () => {
      const r = parseAmount(input, def);
      assert.ok(r.ok, JSON.stringify(r));
      assert.deepEqual(r.money, { amountMinor: minor, currency: cur });
    });
  }
  const bad: Array<[string, string, string]> = [
    ['1.234', 'EUR', 'AMOUNT_AMBIGUOUS'],
    ['1,234', 'EUR', 'AMOUNT_AMBIGUOUS'],
    ['-5', 'EUR', 'AMOUNT_NEGATIVE'],
    ['-5,00 €', 'EUR', 'AMOUNT_NEGATIVE'],
    ['0', 'EUR', 'AMOUNT_NOT_POSITIVE'],
    ['abc', 'EUR', 'AMOUNT_INVALID'],
    ['KWD 1.234', 'EUR', 'AMOUNT_AMBIGUOUS'],
    ['1.5', 'JPY', 'AMOUNT_TOO_MANY_DECIMALS'],
    ['1,2345 KWD', 'EUR', 'AMOUNT_TOO_MANY_DECIMALS'],
    ['10 XYZ', 'EUR', 'AMOUNT_CURRENCY_UNKNOWN'],
    ['12 34,5', 'EUR', 'AMOUNT_INVALID'],
    ['99999999999', 'EUR', 'AMOUNT_TOO_LARGE'],
  ];
  for (const [input, def, code] of bad) {
    it(`refuses "${input}" with ${code}`, () => {
      const r = parseAmount(input, def);
      assert.equal(r.ok, false);
      if (!r.ok) {
        assert.equal(r.problem.code, code);
        assert.equal(r.problem.value, input);
      }
    });
  }
  it('refuses a currency that contradicts the currency line', () => {
    const r = parseAmount('10 USD', 'EUR', 'EUR');
    assert.equal(r.ok, false);
    if (!r.ok) assert.equal(r.problem.code, 'AMOUNT_CURRENCY_CONFLICT');
  });
  it('formats per locale and to major units', () => {
    assert.equal(formatMoney(12990, 'EUR', 'en'), '€129.90');
    assert.match(formatMoney(1234567, 'EUR', 'it'), /^12\.345,67\s€$/);
    assert.equal(formatMoney(1234, 'JPY', 'en'), '¥1,234');
    assert.equal(toMajorString(5, 'EUR'), '0.05');
    assert.equal(toMajorString(1234, 'KWD'), '1.234');
    assert.equal(toMajorString(1234, 'JPY'), '1234');
  });
});
