// Batches with payment plans (issue 13 part 1): the columns deposit, balance_due and instalments
// (or their labels in the five languages) read like the mail lines, per row.
import assert from 'node:assert/strict';
import { parseBatch } from '../../src/domain/batch.ts';

const ctx = { defaultCurrency: 'EUR', now: new Date('2026-03-02T10:00:00Z'), maxLifetimeDays: 60, timeZone: 'Europe/Rome' };
const csv = (text: string) => parseBatch({ filename: 'orders.csv', contentType: 'text/csv', content: new TextEncoder().encode(text) }, ctx);

describe('batch payment plans (issue 13 part 1)', () => {
  it('reads deposit, balance_due and instalments columns, per row, and names each bad value with its row', () => {
    const r = csv(
      [
        'amount,reference,deposit,balance_due,instalments',
        '1000,P-1,30%,2026-04-15,',
        '600,P-2,,,3 monthly',
        '500,P-3,,,',
        '100,P-4,120%,,',
        '100,P-5,20%,,2 weekly',
        '100,P-6,,2026-04-01,',
        '100,P-7,10%,2026-03-01,',
      ].join('\n'),
    );
    assert.ok(r.ok);
    assert.deepEqual(r.notices, []);
    assert.deepEqual(r.rows[0]!.draft?.plan, { deposit: { percent: 30 }, balanceDue: '2026-04-15' });
    assert.deepEqual(r.rows[1]!.draft?.plan, { instalments: { count: 3, every: 'month' } });
    assert.equal(r.rows[2]!.draft?.plan, undefined);
    assert.ok(r.rows[2]!.draft);
    assert.deepEqual(
      r.rows.slice(3).map((row) => [row.draft, row.problems.map((p) => [p.field, p.code, p.value, p.row])]),
      [
        [undefined, [['deposit', 'DEPOSIT_INVALID', '120%', 4]]],
        [undefined, [['instalments', 'PLAN_CONFLICT', '2 weekly', 5]]],
        [undefined, [['balanceDue', 'BALANCE_WITHOUT_DEPOSIT', '2026-04-01', 6]]],
        [undefined, [['balanceDue', 'BALANCE_DUE_PAST', '2026-03-01', 7]]],
      ],
    );
  });

  it('takes the columns under their Italian names, and JSON keys', () => {
    const it = csv('Importo;Rif;Acconto;Saldo entro\n1.200,00;IT-1;200 €;31/05/2026\n');
    assert.ok(it.ok);
    assert.deepEqual(it.rows[0]!.draft?.plan, { deposit: { amountMinor: 20000, currency: 'EUR' }, balanceDue: '2026-05-31' });
    const json = parseBatch(
      { filename: 'orders.json', contentType: 'application/json', content: new TextEncoder().encode(JSON.stringify([{ amount: 90, reference: 'J-1', instalments: '3 Raten monatlich' }])) },
      ctx,
    );
    assert.ok(json.ok);
    assert.deepEqual(json.rows[0]!.draft?.plan, { instalments: { count: 3, every: 'month' } });
  });
});
