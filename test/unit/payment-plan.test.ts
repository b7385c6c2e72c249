// Payment plans (issue 13 part 1): deposits, balances and instalments as merchants write them in
// five languages, and their split into whole minor units that always add up to the total.
import assert from 'node:assert/strict';
import { addMonths, parseBalanceDue, parseDeposit, parseInstalments, planParts, type PlanSpec } from '../../src/domain/payment-plan.ts';

describe('payment plan', () => {
  describe('deposit values', () => {
    const ok: Array<[string, unknown]> = [
      ['30%', { percent: 30 }],
      ['30 %', { percent: 30 }],
      ['12,5 %', { percent: 12.5 }],
      ['12.5%', { percent: 12.5 }],
      ['200', { amountMinor: 20000, currency: 'EUR' }],
      ['200 EUR', { amountMinor: 20000, currency: 'EUR' }],
      ['€ 200,50', { amountMinor: 20050, currency: 'EUR' }],
      ['1.250,00 €', { amountMinor: 125000, currency: 'EUR' }],
    ];
    for (const [input, spec] of ok) {
      it(`reads "${input}"`, () => assert.deepEqual(parseDeposit(input, 'EUR'), { ok: true, value: spec }));
    }
    const bad: Array<[string, string]> = [
      ['0%', 'DEPOSIT_INVALID'],
      ['100%', 'DEPOSIT_INVALID'],
      ['150 %', 'DEPOSIT_INVALID'],
      ['thirty percent', 'DEPOSIT_INVALID'],
      ['200 USD', 'DEPOSIT_CURRENCY_MISMATCH'],
    ];
    for (const [input, code] of bad) {
      it(`refuses "${input}" (${code}), naming the field and the value`, () => {
        const r = parseDeposit(input, 'EUR');
        assert.equal(r.ok, false);
        if (!r.ok) {
          assert.equal(r.problem.code, code);
          assert.equal(r.problem.field, 'deposit');
          assert.equal(r.problem.value, input);
        }
      });
    }
  });

  describe('instalment values', () => {
    const ok: Array<[string, unknown]> = [
      ['3 monthly', { count: 3, every: 'month' }],
      ['3 x monthly', { count: 3, every: 'month' }],
      ['3 × monthly', { count: 3, every: 'month' }],
      ['4 weekly instalments', { count: 4, every: 'week' }],
      ['3 rate mensili', { count: 3, every: 'month' }],
      ['6 settimanali', { count: 6, every: 'week' }],
      ['3 mensualités', { count: 3, every: 'month' }],
      ['3 versements mensuels', { count: 3, every: 'month' }],
      ['4 hebdomadaires', { count: 4, every: 'week' }],
      ['3 monatlich', { count: 3, every: 'month' }],
      ['3 Raten wöchentlich', { count: 3, every: 'week' }],
      ['3 cuotas mensuales', { count: 3, every: 'month' }],
      ['2 semanales', { count: 2, every: 'week' }],
      ['12', { count: 12, every: 'month' }],
    ];
    for (const [input, spec] of ok) {
      it(`reads "${input}"`, () => assert.deepEqual(parseInstalments(input), { ok: true, value: spec }));
    }
    const bad: Array<[string, string]> = [
      ['1 monthly', 'INSTALMENTS_COUNT'],
      ['13 monthly', 'INSTALMENTS_COUNT'],
      ['monthly', 'INSTALMENTS_INVALID'],
      ['3 yearly', 'INSTALMENTS_INVALID'],
      ['3 monthly weekly', 'INSTALMENTS_INVALID'],
    ];
    for (const [input, code] of bad) {
      it(`refuses "${input}" (${code})`, () => {
        const r = parseInstalments(input);
        assert.equal(r.ok, false);
        if (!r.ok) assert.equal(r.problem.code, code);
      });
    }
  });

  describe('balance dates', () => {
    it('reads ISO and day-first dates from today on', () => {
      assert.deepEqual(parseBalanceDue('2026-12-31', '2026-11-30'), { ok: true, value: '2026-12-31' });
      assert.deepEqual(parseBalanceDue('31/12/2026', '2026-11-30'), { ok: true, value: '2026-12-31' });
      assert.deepEqual(parseBalanceDue('1.2.2027', '2026-11-30'), { ok: true, value: '2027-02-01' });
      assert.deepEqual(parseBalanceDue('2026-11-30', '2026-11-30'), { ok: true, value: '2026-11-30' });
    });
    for (const [input, code] of [['2026-11-29', 'BALANCE_DUE_PAST'], ['2026-02-30', 'BALANCE_DUE_INVALID'], ['next week', 'BALANCE_DUE_INVALID']] as const) {
      it(`refuses "${input}" (${code})`, () => {
        const r = parseBalanceDue(input, '2026-11-30');
        assert.equal(r.ok, false);
        if (!r.ok) assert.equal(r.problem.code, code);
      });
    }
  });

  describe('calendar months', () => {
    const cases: Array<[string, number, string]> = [
      ['2026-01-31', 1, '2026-02-28'],
      ['2028-01-31', 1, '2028-02-29'],
      ['2026-01-31', 2, '2026-03-31'],
      ['2026-11-30', 3, '2027-02-28'],
      ['2026-12-15', 1, '2027-01-15'],
      ['2026-08-31', 1, '2026-09-30'],
    ];
    for (const [from, n, to] of cases) it(`${from} + ${n} month(s) = ${to}`, () => assert.equal(addMonths(from, n), to));
  });

  describe('parts', () => {
    const today = '2026-11-30';
    const split = (total: number, spec: PlanSpec) => {
      const r = planParts(total, spec, today);
      assert.ok(r.ok, JSON.stringify(r));
      return r.value;
    };

    it('no plan: no parts (the order is paid at once, as today)', () => assert.deepEqual(split(12990, {}), []));

    it('30% of 129.90 is 38.97 (rounded half up), the balance 90.93 when the merchant asks', () => {
      assert.deepEqual(split(12990, { deposit: { percent: 30 } }), [
        { seq: 1, kind: 'deposit', amountMinor: 3897 },
        { seq: 2, kind: 'balance', amountMinor: 9093 },
      ]);
    });

    it('a deposit of 200 EUR with the balance due on a date', () => {
      assert.deepEqual(split(64000, { deposit: { amountMinor: 20000, currency: 'EUR' }, balanceDue: '2027-01-10' }), [
        { seq: 1, kind: 'deposit', amountMinor: 20000 },
        { seq: 2, kind: 'balance', amountMinor: 44000, dueDate: '2027-01-10' },
      ]);
    });

    it('three monthly instalments of 100.00: 33.34 + 33.33 + 33.33, a calendar month apart', () => {
      assert.deepEqual(split(10000, { instalments: { count: 3, every: 'month' } }), [
        { seq: 1, kind: 'instalment', amountMinor: 3334, dueDate: '2026-11-30' },
        { seq: 2, kind: 'instalment', amountMinor: 3333, dueDate: '2026-12-30' },
        { seq: 3, kind: 'instalment', amountMinor: 3333, dueDate: '2027-01-30' },
      ]);
    });

    it('weekly instalments are seven days apart', () => {
      assert.deepEqual(split(500, { instalments: { count: 4, every: 'week' } }).map((p) => p.dueDate), ['2026-11-30', '2026-12-07', '2026-12-14', '2026-12-21']);
    });

    it('the parts always add up to the total, each at least one minor unit', () => {
      for (let total = 1; total <= 2000; total += 7) {
        for (const spec of [{ deposit: { percent: 30 } }, { deposit: { percent: 12.5 } }, { instalments: { count: 7, every: 'month' as const } }, { instalments: { count: 12, every: 'week' as const } }]) {
          const r = planParts(total, spec, today);
          if (!r.ok) continue; // too small for the plan: refused, checked below
          assert.equal(r.value.reduce((s, p) => s + p.amountMinor, 0), total, `${total} ${JSON.stringify(spec)}`);
          assert.ok(r.value.every((p) => p.amountMinor >= 1));
        }
      }
    });

    const refused: Array<[string, number, PlanSpec, string]> = [
      ['a deposit as large as the total', 20000, { deposit: { amountMinor: 20000, currency: 'EUR' } }, 'DEPOSIT_NOT_LESS_THAN_TOTAL'],
      ['a 1% deposit that rounds to nothing', 10, { deposit: { percent: 1 } }, 'DEPOSIT_NOT_LESS_THAN_TOTAL'],
      ['a deposit and instalments', 10000, { deposit: { percent: 30 }, instalments: { count: 3, every: 'month' } }, 'PLAN_CONFLICT'],
      ['a balance date without a deposit', 10000, { balanceDue: '2027-01-01' }, 'BALANCE_WITHOUT_DEPOSIT'],
      ['more instalments than minor units', 5, { instalments: { count: 6, every: 'month' } }, 'INSTALMENTS_TOO_SMALL'],
    ];
    for (const [name, total, spec, code] of refused) {
      it(`refuses ${name} (${code})`, () => {
        const r = planParts(total, spec, today);
        assert.equal(r.ok, false);
        if (!r.ok) assert.equal(r.problem.code, code);
      });
    }
  });
});
