import assert from 'node:assert/strict';
import { BIN_TABLE, createBinTable, issuingCountry } from '../../src/domain/bin-table.ts';
import { BIN_ROWS } from '../../src/domain/data/bin-ranges.ts';
import { SANDBOX_CARDS } from '../../src/services/acquirer/sandbox-acquirer.ts';

describe('BIN table (issuing country)', () => {
  const cases: Array<[string, string, string | undefined]> = [
    ['sandbox Visa', '4242 4242 4242 4242', 'US'],
    ['sandbox Mastercard', '5555555555554444', 'US'],
    ['sandbox Amex', '378282246310005', 'US'],
    ['sandbox decline card', '4000000000009995', 'US'],
    ['sandbox 3-D Secure card', '4000000000003220', 'US'],
    ['sandbox country card: Italy', '4000003800000008', 'IT'],
    ['sandbox country card: France', '4000002500000003', 'FR'],
    ['sandbox country card: Germany', '4000002760000016', 'DE'],
    ['sandbox country card: Spain', '4000007240000007', 'ES'],
    ['sandbox country card: United Kingdom', '4000008260000000', 'GB'],
    ['Mir (range 2200–2204)', '2202000000000000', 'RU'],
    ['Elo range', '6504870000000000', 'BR'],
    ['Hiper 8-digit prefix', '6373742300000000', 'BR'],
    ['Dankort', '5019717010103742', 'DK'],
    ['JCB fallback', '3530111333300000', 'JP'],
    ['UnionPay fallback', '6212345678901232', 'CN'],
    ['an ordinary Visa with no curated row', '4111222233334444', undefined],
    ['an ordinary Mastercard with no curated row', '5100000000000008', undefined],
    ['too short to look up', '42424', undefined],
    ['not digits', 'abcdefabcdef', undefined],
  ];
  for (const [name, number, country] of cases) {
    it(`${name} → ${country ?? 'unknown'}`, () => assert.equal(issuingCountry(number), country));
  }

  it('knows every sandbox test card of the spec', () => {
    for (const number of Object.keys(SANDBOX_CARDS)) assert.equal(issuingCountry(number), 'US', number);
  });

  it('gives the issuer when the row names one', () => {
    assert.deepEqual(BIN_TABLE.lookup('2200123412341234'), { country: 'RU', issuer: 'Mir' });
  });

  it('prefers the longest matching prefix', () => {
    const t = createBinTable([['4', 'US'], ['4000', 'CA'], ['400038', 'IT', 'Banca']]);
    assert.equal(t.lookup('4111111111111111')?.country, 'US');
    assert.equal(t.lookup('4000111111111111')?.country, 'CA');
    assert.deepEqual(t.lookup('4000381111111111'), { country: 'IT', issuer: 'Banca' });
  });

  const bad: Array<[string, [string, string]]> = [
    ['a lower-case country', ['424242', 'us']],
    ['a range of unequal lengths', ['4000-40001', 'US']],
    ['a reversed range', ['5-4', 'US']],
    ['letters in the prefix', ['42x', 'US']],
  ];
  for (const [name, row] of bad) {
    it(`refuses ${name}`, () => assert.throws(() => createBinTable([row]), /bad BIN row/));
  }

  it('ships a well-formed table', () => {
    assert.equal(BIN_TABLE.size, BIN_ROWS.length);
    assert.ok(BIN_ROWS.length >= 80);
  });
});
