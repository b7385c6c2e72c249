import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { simpleParser } from 'mailparser';
import { parseExpiry } from '../../src/domain/duration.ts';
import { decodeEntities, htmlToText } from '../../src/domain/html-to-text.ts';
import { errorCodeSpec } from '../../src/domain/error-codes.ts';
import { ORDER_MAIL_CODES, parseOrderMail, stripSubjectPrefixes, type ParseOrderMailInput } from '../../src/domain/order-mail.ts';

const NOW = new Date('2026-03-02T10:00:00Z');
const DAY = 86_400_000;
const base = { defaultCurrency: 'EUR', now: NOW, maxLifetimeDays: 60 } as const;
const parse = (text: string, extra: Partial<ParseOrderMailInput> = {}) => parseOrderMail({ ...base, text, ...extra });

describe('order mail parser', () => {
  describe('labels in five languages', () => {
    const cases: Array<[string, string, Record<string, unknown>]> = [
      [
        'en',
        'Amount: 129.90\nCurrency: USD\nReference: A-1\nDescription: Table\nCustomer: Jane Doe\nCustomer email: jane@example.com\nLanguage: English\nDelivery: customer',
        { amountMinor: 12990, currency: 'USD', reference: 'A-1', description: 'Table', customerName: 'Jane Doe', customerEmail: 'jane@example.com', locale: 'en', delivery: 'customer' },
      ],
      [
        'it',
        'Importo: 129,90\nValuta: EUR\nRiferimento: B-2\nCausale: Divano\nNome: Mario Rossi\nEmail cliente: mario@example.it\nLingua: Italiano\nInvio: a me',
        { amountMinor: 12990, currency: 'EUR', reference: 'B-2', description: 'Divano', customerName: 'Mario Rossi', customerEmail: 'mario@example.it', locale: 'it', delivery: 'merchant' },
      ],
      [
        'fr',
        'Montant : 45,50\nDevise : CHF\nRéférence : C-3\nLibellé : Chaise\nNom : Jean Dupont\nCourriel : jean@example.fr\nLangue : français\nEnvoi : client',
        { amountMinor: 4550, currency: 'CHF', reference: 'C-3', description: 'Chaise', customerName: 'Jean Dupont', customerEmail: 'jean@example.fr', locale: 'fr', delivery: 'customer' },
      ],
      [
        'de',
        'Betrag: 1.000,00\nWährung: EUR\nBestellung: D-4\nBeschreibung: Schrank\nKunde: Max Muster\nE-Mail: max@example.de\nSprache: Deutsch\nZustellung: Kunde',
        { amountMinor: 100000, currency: 'EUR', reference: 'D-4', description: 'Schrank', customerName: 'Max Muster', customerEmail: 'max@example.de', locale: 'de', delivery: 'customer' },
      ],
      [
        'es',
        'Importe: 20\nMoneda: EUR\nPedido: E-5\nConcepto: Camiseta\nNombre: Ana García\nCorreo: ana@example.es\nIdioma: español\nEnvío: comerciante',
        { amountMinor: 2000, currency: 'EUR', reference: 'E-5', description: 'Camiseta', customerName: 'Ana García', customerEmail: 'ana@example.es', locale: 'es', delivery: 'merchant' },
      ],
      ['accents and case folded', 'IMPORTO : 10\nWAHRUNG: chf\ndescripcion: sin acento', { amountMinor: 1000, currency: 'CHF', description: 'sin acento' }],
      ['tab separator', 'Amount\t12.00\nReference\tT-1', { amountMinor: 1200, reference: 'T-1' }],
      ['two-space separator', 'Importo   7,50\nRif   R-9', { amountMinor: 750, reference: 'R-9' }],
      ['bullets and bold', '- *Amount:* 15.00\n* Ref: X-1', { amountMinor: 1500, reference: 'X-1' }],
      ['name and address in one line', 'Amount: 5\nCustomer email: "Jane Doe" <JANE@Example.com>', { customerEmail: 'jane@example.com', customerName: 'Jane Doe' }],
      ['Outlook mailto form', 'Amount: 5\nEmail: jane@example.com <mailto:jane@example.com>', { customerEmail: 'jane@example.com' }],
      ['language code with region', 'Amount: 5\nLanguage: en-GB', { locale: 'en' }],
      ['unknown labels are ignored', 'Hello: there\nNote: call me\nAmount: 3', { amountMinor: 300 }],
      ['same value twice is fine', 'Amount: 3\namount: 3', { amountMinor: 300 }],
    ];
    for (const [name, text, expected] of cases) {
      it(name, () => {
        const r = parse(text);
        assert.deepEqual(r.problems, []);
        assert.ok(r.draft);
        for (const [k, v] of Object.entries(expected)) assert.deepEqual(r.draft[k as keyof typeof r.draft], v, k);
      });
    }
  });

  describe('amounts', () => {
    const cases: Array<[string, number, string]> = [
      ['Amount: 1.234,56 €', 123456, 'EUR'],
      ['Amount: €1,234.56', 123456, 'EUR'],
      ['Amount: GBP 9.99', 999, 'GBP'],
      ['Amount: 500\nCurrency: JPY', 500, 'JPY'],
      ['Currency: usd\nAmount: 10', 1000, 'USD'],
      ['Total: 99', 9900, 'EUR'],
      // The examples, verbatim.
      ['Amount: 129.90', 12990, 'EUR'],
      ['Importo: 129,90 €', 12990, 'EUR'],
      ['Montant: EUR 1.234,56', 123456, 'EUR'],
      ['Amount: €1,234.56', 123456, 'EUR'],
      ['Betrag: 1 234,56 EUR', 123456, 'EUR'],
      ['Montant : 1\u202f234,56 €', 123456, 'EUR'],
      // ISO 4217 minor units: JPY 0, EUR 2, KWD 3.
      ['Amount: ¥1,500', 1500, 'JPY'],
      ['Amount: 1500\nCurrency: JPY', 1500, 'JPY'],
      ['Amount: 1,234.500 KWD', 1234500, 'KWD'],
      ['Importe: 1.234,567\nMoneda: KWD', 1234567, 'KWD'],
    ];
    for (const [text, minor, currency] of cases) {
      it(`${JSON.stringify(text)} → ${minor} ${currency}`, () => {
        const r = parse(text);
        assert.deepEqual(r.draft && { amountMinor: r.draft.amountMinor, currency: r.draft.currency }, { amountMinor: minor, currency });
      });
    }
  });

  describe('expiry', () => {
    const tz = 'Europe/Rome';
    const cases: Array<[string, Date]> = [
      ['48h', new Date(NOW.getTime() + 2 * DAY)],
      ['3 days', new Date(NOW.getTime() + 3 * DAY)],
      ['3 giorni', new Date(NOW.getTime() + 3 * DAY)],
      ['3 jours', new Date(NOW.getTime() + 3 * DAY)],
      ['3 Tage', new Date(NOW.getTime() + 3 * DAY)],
      ['3 días', new Date(NOW.getTime() + 3 * DAY)],
      ['2 weeks', new Date(NOW.getTime() + 14 * DAY)],
      ['1 settimana', new Date(NOW.getTime() + 7 * DAY)],
      // End of the day in the merchant's zone: 23:59:59 in Rome is 22:59:59 UTC in winter.
      ['2026-03-20', new Date('2026-03-20T22:59:59Z')],
      ['20/03/2026', new Date('2026-03-20T22:59:59Z')],
      ['20.03.2026', new Date('2026-03-20T22:59:59Z')],
      // Summer time: UTC+2.
      ['2026-04-10', new Date('2026-04-10T21:59:59Z')],
      ['90 days', new Date(NOW.getTime() + 60 * DAY)],
      ['2027-12-31', new Date(NOW.getTime() + 60 * DAY)],
    ];
    for (const [value, expected] of cases) {
      it(`"${value}"`, () => {
        const r = parse(`Amount: 10\nExpires: ${value}`, { timeZone: tz });
        assert.deepEqual(r.problems, []);
        assert.equal(r.draft?.expiresAt?.toISOString(), expected.toISOString());
      });
    }
    it('reports capping', () => {
      const r = parseExpiry('90 days', { now: NOW, maxLifetimeDays: 60 });
      assert.ok(r.ok && r.capped);
    });
    it('tells the merchant when the expiry was capped', () => {
      const r = parse('Amount: 10\nScadenza: 90 giorni');
      assert.equal(r.draft?.expiresAt?.toISOString(), new Date(NOW.getTime() + 60 * DAY).toISOString());
      assert.deepEqual(r.notices.map((p) => [p.field, p.code, p.value, p.line]), [['expiry', 'ORDER_EXPIRY_CAPPED', '90 giorni', 2]]);
      assert.deepEqual(parse('Amount: 10\nExpiry: 59 days').notices, []);
    });
    const bad: Array<[string, string]> = [
      ['2020-01-01', 'ORDER_EXPIRY_PAST'],
      ['01/03/2026', 'ORDER_EXPIRY_PAST'],
      ['0 days', 'ORDER_EXPIRY_INVALID'],
      ['3 fortnights', 'ORDER_EXPIRY_INVALID'],
      ['2026-02-30', 'ORDER_EXPIRY_INVALID'],
      ['soon', 'ORDER_EXPIRY_INVALID'],
    ];
    for (const [value, code] of bad) {
      it(`"${value}" → ${code}`, () => {
        const r = parse(`Amount: 10\nScadenza: ${value}`);
        assert.equal(r.draft, undefined);
        assert.deepEqual(
          r.problems.map((p) => [p.field, p.code, p.value, p.line]),
          [['expiry', code, value, 2]],
        );
      });
    }
  });

  describe('problems name field, code, value and line', () => {
    const cases: Array<[string, string, Array<[string, string, string | undefined, number | undefined]>]> = [
      ['missing amount', 'Reference: A-1\nDescription: x', [['amount', 'ORDER_AMOUNT_MISSING', undefined, undefined]]],
      ['empty amount', 'Hello\nAmount:\n', [['amount', 'ORDER_AMOUNT_MISSING', '', 2]]],
      ['bad amount', 'Hi\n\nImporto: dieci euro', [['amount', 'AMOUNT_INVALID', 'dieci euro', 3]]],
      ['ambiguous amount', 'Amount: 1.234', [['amount', 'AMOUNT_AMBIGUOUS', '1.234', 1]]],
      ['currency conflict', 'Amount: 10 USD\nCurrency: EUR', [['amount', 'AMOUNT_CURRENCY_CONFLICT', '10 USD', 1]]],
      ['unknown currency', 'Amount: 10\nCurrency: Dollari', [['currency', 'ORDER_CURRENCY_UNKNOWN', 'Dollari', 2]]],
      ['invalid email', 'Amount: 10\nEmail: mario at example', [['customerEmail', 'ORDER_EMAIL_INVALID', 'mario at example', 2]]],
      ['unknown language', 'Amount: 10\nLingua: klingon', [['language', 'ORDER_LANGUAGE_UNKNOWN', 'klingon', 2]]],
      ['unknown delivery', 'Amount: 10\nDelivery: pigeon', [['delivery', 'ORDER_DELIVERY_UNKNOWN', 'pigeon', 2]]],
      ['duplicate label', 'Amount: 10\nRef: A\nRiferimento: B', [['reference', 'ORDER_FIELD_DUPLICATE', 'B', 3]]],
      ['negative amount', 'Amount: -10.00', [['amount', 'AMOUNT_NEGATIVE', '-10.00', 1]]],
      ['negative in brackets', 'Importo: (10,00 €)', [['amount', 'AMOUNT_NEGATIVE', '(10,00 €)', 1]]],
      ['ambiguous comma', 'Betrag: 1,234 €', [['amount', 'AMOUNT_AMBIGUOUS', '1,234 €', 1]]],
      ['decimals JPY lacks', 'Amount: 10.5 JPY', [['amount', 'AMOUNT_TOO_MANY_DECIMALS', '10.5 JPY', 1]]],
      ['reference too long', `Amount: 10\nRef: ${'x'.repeat(65)}`, [['reference', 'ORDER_REFERENCE_INVALID', 'x'.repeat(65), 2]]],
      [
        'every problem, in line order',
        'Email: nope\nAmount: abc\nLanguage: xx',
        [
          ['customerEmail', 'ORDER_EMAIL_INVALID', 'nope', 1],
          ['amount', 'AMOUNT_INVALID', 'abc', 2],
          ['language', 'ORDER_LANGUAGE_UNKNOWN', 'xx', 3],
        ],
      ],
    ];
    for (const [name, text, expected] of cases) {
      it(name, () => {
        const r = parse(text);
        assert.equal(r.draft, undefined);
        assert.deepEqual(
          r.problems.map((p) => [p.field, p.code, p.value, p.line]),
          expected,
        );
        for (const p of r.problems) assert.ok(p.message.length > 0);
      });
    }
  });

  describe('payment plans (issue 13 part 1): deposit, balance due, instalments', () => {
    const cases: Array<[string, string, unknown]> = [
      ['en deposit share', 'Amount: 1000\nDeposit: 30%\nBalance due: 2026-04-15', { deposit: { percent: 30 }, balanceDue: '2026-04-15' }],
      ['en down payment amount', 'Amount: 1000 EUR\nDown payment: 200 EUR', { deposit: { amountMinor: 20000, currency: 'EUR' } }],
      ['en instalments', 'Amount: 300\nInstalments: 3 monthly', { instalments: { count: 3, every: 'month' } }],
      ['en installments (US spelling)', 'Amount: 300\nInstallments: 4 weekly', { instalments: { count: 4, every: 'week' } }],
      ['it acconto and saldo', 'Importo: 1.000,00\nAcconto: 200 €\nSaldo entro: 31/12/2026', { deposit: { amountMinor: 20000, currency: 'EUR' }, balanceDue: '2026-12-31' }],
      ['it caparra', 'Importo: 500\nCaparra: 10%\nScadenza saldo: 1.4.2026', { deposit: { percent: 10 }, balanceDue: '2026-04-01' }],
      ['it rateizzazione', 'Importo: 600\nRateizzazione: 3 mensili', { instalments: { count: 3, every: 'month' } }],
      ['it numero rate', 'Importo: 600\nNumero rate: 3 mensili', { instalments: { count: 3, every: 'month' } }],
      ['fr acompte and solde', 'Montant : 800\nAcompte : 25 %\nSolde le : 2026-05-01', { deposit: { percent: 25 }, balanceDue: '2026-05-01' }],
      ['fr arrhes', 'Montant : 800\nArrhes : 100 €\nDate du solde : 2026-05-01', { deposit: { amountMinor: 10000, currency: 'EUR' }, balanceDue: '2026-05-01' }],
      ['fr versements', 'Montant : 800\nVersements : 4 mensuels', { instalments: { count: 4, every: 'month' } }],
      ['fr échéances', 'Montant : 800\nÉchéances : 2 hebdomadaires', { instalments: { count: 2, every: 'week' } }],
      ['de Anzahlung and Restzahlung', 'Betrag: 900\nAnzahlung: 300 EUR\nRestzahlung am: 30.06.2026', { deposit: { amountMinor: 30000, currency: 'EUR' }, balanceDue: '2026-06-30' }],
      ['de Raten', 'Betrag: 900\nRaten: 3 monatlich', { instalments: { count: 3, every: 'month' } }],
      ['es depósito and saldo', 'Importe: 400\nDepósito: 50%\nFecha del saldo: 2026-07-01', { deposit: { percent: 50 }, balanceDue: '2026-07-01' }],
      ['es señal without accent', 'Importe: 400\nSenal: 40 €', { deposit: { amountMinor: 4000, currency: 'EUR' } }],
      ['es cuotas', 'Importe: 400\nCuotas: 6 mensuales', { instalments: { count: 6, every: 'month' } }],
      ['es plazos', 'Importe: 400\nPlazos: 2 semanales', { instalments: { count: 2, every: 'week' } }],
      ['deposit in the currency given apart', 'Amount: 500\nCurrency: CHF\nDeposit: 100 CHF', { deposit: { amountMinor: 10000, currency: 'CHF' } }],
    ];
    for (const [name, text, plan] of cases) {
      it(name, () => {
        const r = parse(text);
        assert.deepEqual(r.problems, []);
        assert.deepEqual(r.draft?.plan, plan);
      });
    }
    it('a room rate line ("Rate: 120 EUR per night") is no instalment plan', () => {
      const r = parse('Amount: 360 EUR\nRate: 120 EUR per night');
      assert.deepEqual(r.problems, []);
      assert.equal(r.draft?.plan, undefined);
    });
    it('no plan fields: no plan', () => assert.equal(parse('Amount: 10').draft?.plan, undefined));

    const bad: Array<[string, string, Array<[string, string, string, number]>]> = [
      ['a share of 100% or more', 'Amount: 100\nDeposit: 120%', [['deposit', 'DEPOSIT_INVALID', '120%', 2]]],
      ['a deposit not less than the total', 'Amount: 100\nAcconto: 100 €', [['deposit', 'DEPOSIT_NOT_LESS_THAN_TOTAL', '100 €', 2]]],
      ['a deposit in another currency', 'Amount: 100 EUR\nDeposit: 20 USD', [['deposit', 'DEPOSIT_CURRENCY_MISMATCH', '20 USD', 2]]],
      ['deposit and instalments together', 'Amount: 100\nDeposit: 30%\nInstalments: 3 monthly', [['instalments', 'PLAN_CONFLICT', '3 monthly', 3]]],
      ['a balance date without a deposit', 'Amount: 100\nBalance due: 2026-04-01', [['balanceDue', 'BALANCE_WITHOUT_DEPOSIT', '2026-04-01', 2]]],
      ['a past balance date', 'Amount: 100\nDeposit: 30%\nBalance due: 2026-03-01', [['balanceDue', 'BALANCE_DUE_PAST', '2026-03-01', 3]]],
      ['a balance date that is none', 'Amount: 100\nDeposit: 30%\nSaldo entro: domani', [['balanceDue', 'BALANCE_DUE_INVALID', 'domani', 3]]],
      ['too many instalments', 'Amount: 100\nRaten: 13 monatlich', [['instalments', 'INSTALMENTS_COUNT', '13 monatlich', 2]]],
      ['instalments that are none', 'Amount: 100\nCuotas: muchas', [['instalments', 'INSTALMENTS_INVALID', 'muchas', 2]]],
      ['more instalments than minor units', 'Amount: 0.03\nInstalments: 4', [['instalments', 'INSTALMENTS_TOO_SMALL', '4', 2]]],
      [
        'every problem, with the others',
        'Deposit: lots\nAmount: 100\nLanguage: xx\nInstalments: often',
        [
          ['deposit', 'DEPOSIT_INVALID', 'lots', 1],
          ['language', 'ORDER_LANGUAGE_UNKNOWN', 'xx', 3],
          ['instalments', 'INSTALMENTS_INVALID', 'often', 4],
        ],
      ],
    ];
    for (const [name, text, expected] of bad) {
      it(`refuses ${name}, naming field, code, value and line`, () => {
        const r = parse(text);
        assert.equal(r.draft, undefined);
        assert.deepEqual(
          r.problems.map((p) => [p.field, p.code, p.value, p.line]),
          expected,
        );
        for (const p of r.problems) assert.ok(p.message.length > 0);
      });
    }

    it('every plan problem code is a listed parser code and in the error registry (422)', () => {
      const codes = bad.flatMap(([, , e]) => e.map(([, code]) => code)).filter((c) => !c.startsWith('ORDER_'));
      assert.ok(codes.length >= 9);
      for (const code of codes) {
        assert.ok((ORDER_MAIL_CODES as readonly string[]).includes(code), code);
        assert.equal(errorCodeSpec(code)?.httpStatus, 422, code);
      }
    });

    it("reads 'today' as the merchant's local date", () => {
      // 02:00 UTC on 2 March is still 1 March in New York, already 2 March in UTC.
      const at = { now: new Date('2026-03-02T02:00:00Z') };
      const text = 'Amount: 100\nDeposit: 30%\nBalance due: 2026-03-01';
      assert.deepEqual(parse(text, { ...at, timeZone: 'America/New_York' }).draft?.plan, { deposit: { percent: 30 }, balanceDue: '2026-03-01' });
      assert.deepEqual(parse(text, { ...at, timeZone: 'UTC' }).problems.map((p) => p.code), ['BALANCE_DUE_PAST']);
      // The first instalment falls due on the merchant's today too: the plan is checked with it.
      assert.ok(parse('Amount: 100\nInstalments: 2 weekly', { ...at, timeZone: 'America/New_York' }).draft?.plan);
    });
  });

  describe('what is not part of the order', () => {
    const cases: Array<[string, string, number]> = [
      ['quoted lines', 'Amount: 10\n> Amount: 20\n>> Reference: OLD', 1000],
      ['signature', 'Amount: 10\n-- \nAmount: 20', 1000],
      ['signature without trailing space', 'Amount: 10\n--\nAmount: 20', 1000],
      ['English reply header', 'Amount: 10\nOn Mon, 2 Mar 2026, Jane <j@x.com> wrote:\nAmount: 20', 1000],
      ['wrapped reply header', 'Amount: 10\nOn Mon, 2 Mar 2026, Jane <j@x.com>\nwrote:\nAmount: 20', 1000],
      ['Italian reply header', 'Importo: 10\nIl giorno lun 2 mar 2026 alle ore 10:00 Mario <m@x.it> ha scritto:\nImporto: 20', 1000],
      ['French reply header', 'Montant: 10\nLe lun. 2 mars 2026 à 10:00, Jean <j@x.fr> a écrit :\nMontant: 20', 1000],
      ['German reply header', 'Betrag: 10\nAm Mo., 2. März 2026 um 10:00 Uhr schrieb Max <m@x.de>:\nBetrag: 20', 1000],
      ['Spanish reply header', 'Importe: 10\nEl lun, 2 mar 2026 a las 10:00, Ana <a@x.es> escribió:\nImporte: 20', 1000],
      ['Outlook original message', 'Amount: 10\n-----Original Message-----\nAmount: 20', 1000],
      ['Outlook separator', 'Amount: 10\n________________________________\nAmount: 20', 1000],
      ['sign-off after the order', 'Amount: 10\nKind regards,\nShop\nEmail: info@shop.example', 1000],
      ['German sign-off', 'Betrag: 10\nMit freundlichen Grüßen\nBetrag: 20', 1000],
      ['new text wins over a forward', 'Amount: 10\n---------- Forwarded message ---------\nAmount: 20', 1000],
    ];
    for (const [name, text, minor] of cases) {
      it(name, () => {
        const r = parse(text);
        assert.deepEqual(r.problems, []);
        assert.equal(r.draft?.amountMinor, minor);
      });
    }
  });

  describe('forwarded orders', () => {
    const cases: Array<[string, string, string, number | undefined, number]> = [
      ['Gmail marker', 'Fwd: x', 'FYI\n---------- Forwarded message ---------\nFrom: A <a@x>\nSubject: x\n\nAmount: 20', 2000, 6],
      ['Apple Mail marker', 'Fwd: x', 'Begin forwarded message:\n\nFrom: A <a@x>\nDate: today\n\nAmount: 21', 2100, 6],
      ['Italian marker', 'I: x', '---------- Messaggio inoltrato ---------\nDa: A\nImporto: 22', 2200, 3],
      ['Outlook separator in a forward', 'WG: x', '________________________________\nVon: A\nGesendet: heute\nBetreff: x\n\nBetrag: 23', 2300, 6],
      ['Outlook separator in a reply', 'AW: x', '________________________________\nVon: A\n\nBetrag: 23', undefined, 0],
      ['a greeting before the order is not a sign-off', 'x', 'Thanks\nAmount: 24', 2400, 2],
    ];
    for (const [name, subject, text, minor, line] of cases) {
      it(name, () => {
        const r = parse(text, { subject });
        assert.equal(r.draft?.amountMinor, minor);
        if (minor === undefined) assert.deepEqual(r.problems.map((p) => p.code), ['ORDER_AMOUNT_MISSING']);
        else assert.equal(r.fieldsFound, 1);
        // Problems in a forwarded part point at the line of the whole body.
        if (line > 0) {
          const bad = parse(text.replace(/\d+$/, 'x'), { subject });
          assert.deepEqual(bad.problems.map((p) => [p.code, p.line]), [['AMOUNT_INVALID', line]]);
        }
      });
    }
  });

  describe('description falls back to the subject', () => {
    const cases: Array<[string, string | undefined]> = [
      ['Re: Fwd: Blue chair', 'Blue chair'],
      ['R: I: Sedia blu', 'Sedia blu'],
      ['AW: WG: Stuhl', 'Stuhl'],
      ['RE[2]: Chair', 'Chair'],
      ['', undefined],
    ];
    for (const [subject, expected] of cases) {
      it(JSON.stringify(subject), () => {
        assert.equal(parse('Amount: 1', { subject }).draft?.description, expected);
      });
    }
    it('an explicit description wins', () => {
      assert.equal(parse('Amount: 1\nDescription: Lamp', { subject: 'Order' }).draft?.description, 'Lamp');
    });
    it('strips prefixes only', () => assert.equal(stripSubjectPrefixes('Report: Q1'), 'Report: Q1'));
  });

  describe('HTML', () => {
    it('reads an Outlook-style table, skipping styles, comments and reply history', () => {
      const html = `<html><head><style>td{} Amount: 1</style></head><body>
        <p class=MsoNormal>Hello<o:p></o:p></p>
        <table><tr><td><p><b>Importo</b></p></td><td><p>1.234,50&nbsp;&euro;</p></td></tr>
        <tr><th>Descrizione</th><td>Caff&egrave; &amp; brioche</td></tr>
        <tr><td>Rif.:</td><td>A&#45;1</td></tr>
        <tr><td>Quantity 2</td><td>ignored</td></tr></table>
        <!-- Amount: 2 -->
        <div class="gmail_quote">On Mon Jane wrote:<blockquote>Amount: 3</blockquote></div></body></html>`;
      const r = parseOrderMail({ ...base, html });
      assert.equal(r.body, 'html');
      assert.deepEqual(r.problems, []);
      assert.deepEqual(r.draft, { amountMinor: 123450, currency: 'EUR', description: 'Caffè & brioche', reference: 'A-1' });
    });
    it('uses HTML only when the text part is blank', () => {
      assert.equal(parseOrderMail({ ...base, text: 'Amount: 1', html: '<p>Amount: 2</p>' }).draft?.amountMinor, 100);
      assert.equal(parseOrderMail({ ...base, text: ' \n', html: '<p>Amount: 2</p>' }).draft?.amountMinor, 200);
    });
    it('reports line numbers of the converted text', () => {
      const r = parseOrderMail({ ...base, html: '<div>Hi</div><div>there</div><p>Amount: x</p>' });
      assert.deepEqual(r.problems.map((p) => [p.code, p.line]), [['AMOUNT_INVALID', 3]]);
    });
    const conversions: Array<[string, string]> = [
      ['a<br>b<br/><br>c', 'a\nb\n\nc'],
      ['<blockquote><p>x</p><p>y</p></blockquote>z', '> x\n> y\nz'],
      ['<pre>a\n  b</pre>', 'a\nb'],
      ['1 &lt; 2 &amp;&amp; &unknown; &#x20AC;&#8364; &Uuml;&ntilde;', '1 < 2 && &unknown; €€ Üñ'],
      ['<td>a</td><td>b</td>', 'a: b'],
      ['<table><tr><td>12</td><td>34</td></tr></table>', '12  34'],
      ['x < y and z > w', 'x < y and z > w'],
      ['<script>Amount: 1</script>ok', 'ok'],
    ];
    for (const [html, text] of conversions) {
      it(`converts ${JSON.stringify(html)}`, () => assert.equal(htmlToText(html), text));
    }
    it('decodes entities without touching plain text', () => {
      assert.equal(decodeEntities('no entities'), 'no entities');
      assert.equal(decodeEntities('&#0; &#xD800; &#1114112;'), '&#0; &#xD800; &#1114112;');
    });
    const hostile: Array<[string, string]> = [
      ['unclosed tags', '<a'.repeat(200_000)],
      ['lone ampersands', '&'.repeat(400_000)],
      ['unclosed comment', '<!--' + 'x'.repeat(400_000)],
      ['deep nesting', '<div><table><tr><td>'.repeat(50_000)],
      ['many spaces', `Amount:${' '.repeat(400_000)}1`],
    ];
    for (const [name, html] of hostile) {
      it(`stays linear on ${name}`, () => {
        const started = performance.now();
        parseOrderMail({ ...base, html });
        assert.ok(performance.now() - started < 1500, `took ${performance.now() - started} ms`);
      });
    }
  });

  describe('fixtures', () => {
    const cases: Array<[string, { draft?: Record<string, unknown>; problems?: Array<[string, string]> }]> = [
      [
        'plain-en.eml',
        {
          draft: {
            amountMinor: 12990, currency: 'EUR', reference: 'ORD-1001', description: 'Oak dining table', customerName: 'Jane Doe',
            customerEmail: 'jane.doe@example.com', locale: 'en', delivery: 'customer', expiresAt: new Date(NOW.getTime() + 5 * DAY),
          },
        },
      ],
      [
        'it-quoted-printable.eml',
        {
          draft: {
            amountMinor: 123450, currency: 'EUR', reference: 'ORD-2002', description: 'Macchina da caffè e accessori per la colazione del mattino',
            customerName: 'Mario Rossi', customerEmail: 'mario.rossi@example.it', locale: 'it', delivery: 'customer', expiresAt: new Date(NOW.getTime() + 3 * DAY),
          },
        },
      ],
      [
        'outlook-html.eml',
        { draft: { amountMinor: 8900, currency: 'EUR', reference: 'ORD-3003', description: 'Lampada "Arco" & paralume', expiresAt: new Date(NOW.getTime() + 14 * DAY) } },
      ],
      ['reply-quoted.eml', { draft: { amountMinor: 4500, currency: 'GBP', reference: 'ORD-4004', description: 'Order for the blue chair' } }],
      ['signature.eml', { draft: { amountMinor: 2000, currency: 'EUR', description: 'Camiseta', expiresAt: new Date('2026-03-31T23:59:59Z') } }],
    ];
    for (const [file, expected] of cases) {
      it(file, async () => {
        const mail = await simpleParser(await readFile(new URL(`../fixtures/order-mail/${file}`, import.meta.url)), { skipHtmlToText: true });
        const r = parseOrderMail({
          ...base,
          text: mail.text,
          html: typeof mail.html === 'string' ? mail.html : undefined,
          subject: mail.subject,
        });
        assert.deepEqual(r.problems, []);
        assert.deepEqual(r.draft, expected.draft);
      });
    }
  });
});
