// What the customer's pages say of an order paid in parts (issue 13 part 1,
// src/http/checkout/plan.view-model.ts), with the real locale files: the part's line on the
// checkout, the schedule's rows, and on the receipt page the part received and what follows, in
// the five languages; nothing for an order paid at once.
import assert from 'node:assert/strict';
import path from 'node:path';
import { type MerchantDoc } from '../../src/db/merchants.repository.ts';
import { type OrderDoc } from '../../src/db/orders.repository.ts';
import { checkoutPlanView, receiptPlanView } from '../../src/http/checkout/plan.view-model.ts';
import { createViews } from '../../src/http/views.ts';

const views = createViews({ templatesDir: path.resolve(import.meta.dirname, '../../templates'), namespaces: ['checkout'] });
const merchant = { name: 'B&B Le Rondini', timezone: 'Europe/Rome' } as MerchantDoc;
const paidAt = new Date('2031-02-10T09:15:00Z');
const pay = (receiptNumber: string) => ({ receiptNumber, paidAt, authCode: 'A1' });
const sp = (s: string) => s.replace(/\s+/g, ' ');

function order(parts: Array<{ kind: string; amountMinor: number; dueDate?: string; paid?: string }>, openSeq: number, status = 'pending'): OrderDoc {
  return {
    amountMinor: parts.reduce((s, p) => s + p.amountMinor, 0),
    currency: 'EUR',
    status,
    plan: { openSeq, parts: parts.map((p, i) => ({ seq: i + 1, kind: p.kind, amountMinor: p.amountMinor, dueDate: p.dueDate, ...(p.paid ? { payment: pay(p.paid) } : {}) })) },
  } as unknown as OrderDoc;
}

describe('the pages of an order paid in parts', () => {
  it('says nothing of parts for an order paid at once', () => {
    const plain = { amountMinor: 1000, currency: 'EUR', status: 'pending' } as unknown as OrderDoc;
    assert.equal(checkoutPlanView(views, plain, merchant, 'en'), undefined);
    assert.equal(receiptPlanView(views, { ...plain, status: 'paid' } as OrderDoc, merchant, 'en'), undefined);
  });

  const DEPOSIT: Array<{ locale: string; line: string; rows: string[]; follow: string }> = [
    { locale: 'en', line: 'Deposit (30%) of the total €1,000.00', rows: ['Deposit €300.00 Now To pay now', 'Balance €700.00 December 31, 2031 Later'], follow: 'The balance of €700.00 will follow: on December 31, 2031.' },
    { locale: 'it', line: 'Acconto (30%) sul totale di 1000,00 €', rows: ['Acconto 300,00 € Ora Da pagare ora', 'Saldo 700,00 € 31 dicembre 2031 Più avanti'], follow: 'Il saldo di 700,00 € seguirà: il 31 dicembre 2031.' },
    { locale: 'fr', line: 'Acompte (30 %) sur le total de 1 000,00 €', rows: ['Acompte 300,00 € Maintenant À payer maintenant', 'Solde 700,00 € 31 décembre 2031 Plus tard'], follow: 'Le solde de 700,00 € suivra : le 31 décembre 2031.' },
    { locale: 'de', line: 'Anzahlung (30 %) vom Gesamtbetrag 1.000,00 €', rows: ['Anzahlung 300,00 € Jetzt Jetzt zu zahlen', 'Restzahlung 700,00 € 31. Dezember 2031 Später'], follow: 'Die Restzahlung von 700,00 € folgt: am 31. Dezember 2031.' },
    { locale: 'es', line: 'Depósito (30 %) del total de 1000,00 €', rows: ['Depósito 300,00 € Ahora A pagar ahora', 'Saldo 700,00 € 31 de diciembre de 2031 Más adelante'], follow: 'El saldo de 700,00 € llegará: el 31 de diciembre de 2031.' },
  ];
  for (const c of DEPOSIT) {
    it(`a deposit with its balance date, in ${c.locale}: the part's line, the schedule, then what follows`, () => {
      const due = order([{ kind: 'deposit', amountMinor: 30_000 }, { kind: 'balance', amountMinor: 70_000, dueDate: '2031-12-31' }], 1);
      const view = checkoutPlanView(views, due, merchant, c.locale)!;
      assert.equal(sp(view.line), sp(c.line));
      assert.deepEqual(view.rows.map((r) => sp(`${r.name} ${r.amountText} ${r.dueText} ${r.statusText}`)), c.rows.map(sp));
      const paid = order([{ kind: 'deposit', amountMinor: 30_000, paid: 'R-1' }, { kind: 'balance', amountMinor: 70_000, dueDate: '2031-12-31' }], 0, 'partially_paid');
      const receipt = receiptPlanView(views, paid, merchant, c.locale, (seq) => `/pdf?part=${seq}`)!;
      assert.equal(receipt.paidInFull, false);
      assert.equal(sp(receipt.follow!), sp(c.follow));
      assert.equal(receipt.lastSeq, 1);
    });
  }

  it('an instalment: its number of how many, the next one when the merchant sends it, and paid in full with each receipt', () => {
    const second = order([{ kind: 'instalment', amountMinor: 33_334, paid: 'R-1' }, { kind: 'instalment', amountMinor: 33_333 }, { kind: 'instalment', amountMinor: 33_333 }], 2, 'partially_paid');
    const view = checkoutPlanView(views, second, merchant, 'en')!;
    assert.equal(view.line, 'Instalment 2 of 3 of the total €1,000.00');
    assert.deepEqual(view.rows.map((r) => [r.name, r.statusText, r.paid, r.current]), [
      ['Instalment 1', 'Paid', true, false], ['Instalment 2', 'To pay now', false, true], ['Instalment 3', 'Later', false, false],
    ]);
    assert.equal(view.rows[2]!.dueText, 'When B&B Le Rondini sends the link');
    const waiting = order([{ kind: 'instalment', amountMinor: 33_334, paid: 'R-1' }, { kind: 'instalment', amountMinor: 33_333 }, { kind: 'instalment', amountMinor: 33_333 }], 0, 'partially_paid');
    const r = receiptPlanView(views, waiting, merchant, 'en')!;
    assert.equal(r.heading, 'Instalment 1 of 3 received');
    assert.equal(r.follow, 'Instalment 2 of €333.33 will follow: when B&B Le Rondini sends its link.');
    assert.equal(r.totalText, 'Paid so far: €333.34 of the total €1,000.00.');
    const full = order([{ kind: 'instalment', amountMinor: 33_334, paid: 'R-1' }, { kind: 'instalment', amountMinor: 33_333, paid: 'R-2' }, { kind: 'instalment', amountMinor: 33_333, paid: 'R-3' }], 0, 'paid');
    const done = receiptPlanView(views, full, merchant, 'de', (seq) => `/pdf?part=${seq}`)!;
    assert.equal(done.paidInFull, true);
    assert.equal(done.heading, 'Vollständig bezahlt');
    assert.equal(done.follow, undefined);
    assert.equal(sp(done.totalText), sp('Der Gesamtbetrag von 1.000,00 € ist bezahlt, in 3 Zahlungen.'));
    assert.deepEqual(done.parts.map((p) => [p.name, p.receiptNumber, p.pdf, p.pdfLabel]), [
      ['Rate 1', 'R-1', '/pdf?part=1', 'Beleg R-1 (PDF)'], ['Rate 2', 'R-2', '/pdf?part=2', 'Beleg R-2 (PDF)'], ['Rate 3', 'R-3', '/pdf?part=3', 'Beleg R-3 (PDF)'],
    ]);
  });
});
