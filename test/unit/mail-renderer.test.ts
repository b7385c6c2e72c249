import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { formatMoney } from '../../src/domain/money.ts';
import { isAppError } from '../../src/domain/errors.ts';
import { createMailRenderer, MAIL_LOCALES, MAIL_TEMPLATES, type MailRenderer } from '../../src/mail/renderer.ts';

const TEMPLATES_DIR = path.resolve(import.meta.dirname, '../../templates');
const LINK = 'https://pay.example.test/pay/AbC123?e=1767225600&k=k1&s=deadbeef';

const paylink = (over: Record<string, unknown> = {}) => ({
  merchantName: 'Bottega Rossi',
  reference: 'A-1001',
  amountMinor: 12990,
  currency: 'EUR',
  description: 'Two chairs <script>alert("x")</script> & a table',
  customerName: 'Anna',
  expiresAt: '2031-03-01T17:30:00.000Z',
  link: LINK,
  toCustomer: true,
  ...over,
});

const receipt = (over: Record<string, unknown> = {}) => ({
  receiptNumber: 'R-000123',
  merchantName: 'Bottega Rossi',
  reference: 'A-1001',
  amountMinor: 12990,
  currency: 'EUR',
  description: 'Two chairs',
  card: { brand: 'visa', last4: '4242', expMonth: 12, expYear: 2031, country: 'IT' },
  authCode: 'AUTH42',
  paidAt: '2031-02-10T09:15:00.000Z',
  customerEmail: 'anna@example.test',
  customerName: 'Anna',
  link: LINK,
  ...over,
});

const intakeReply = (over: Record<string, unknown> = {}) => ({
  subject: 'Orders for today',
  created: [
    { reference: 'A-1', amountMinor: 1000, currency: 'EUR', link: `${LINK}1`, expiresAt: '2031-03-01T17:30:00.000Z' },
    { reference: 'A-2', amountMinor: 2500, currency: 'EUR', link: `${LINK}2`, expiresAt: '2031-03-01T17:30:00.000Z', duplicate: 'reference' },
  ],
  problems: [
    { field: 'amount', code: 'AMOUNT_AMBIGUOUS', message: 'write 1234 or 1.234,00', value: '1.234', line: 4 },
    { field: 'customerEmail', code: 'EMAIL_INVALID', message: 'expected an address like <name@example.com>', value: 'bob@', row: 3 },
  ],
  ...over,
});

const dailyRecap = () => ({
  merchantName: 'Bottega Rossi',
  date: '2031-02-10',
  timeZone: 'Europe/Rome',
  hours: 24,
  orders: [{ status: 'paid', currency: 'EUR', count: 1, totalMinor: 12990 }],
  payments: {
    totals: [{ currency: 'EUR', count: 1, totalMinor: 12990 }],
    count: 1,
    items: [{ at: '2031-02-10T09:15:00.000Z', reference: 'A-1001', orderId: 'ord_1', amountMinor: 12990, currency: 'EUR', card: { brand: 'visa', last4: '4242', country: 'IT' } }],
  },
  refunds: { totals: [], count: 0, items: [] },
  failed: { count: 0, items: [] },
  expired: { count: 0, items: [] },
  chart: { currency: 'EUR', days: [{ date: '2031-02-10', totalMinor: 12990, count: 1 }] },
  csv: { filename: 'paymail-recap-2031-02-10.csv', content: 'record,amount\r\npayment,129.90\r\n' },
});

const DATA: Record<string, () => Record<string, unknown>> = {
  'daily-recap': dailyRecap,
  paylink: () => paylink(),
  'receipt-customer': () => receipt(),
  'receipt-merchant': () => receipt(),
  'intake-reply': () => intakeReply(),
  reminder: () => paylink(),
  'order-expired': () => ({ ...paylink(), customerEmail: 'anna@example.test' }),
  'link-request': () => ({ ...paylink(), customerEmail: 'anna@example.test', backofficeLink: 'https://pay.example.test/backoffice/orders/ord_1' }),
  'link-renewed': () => paylink(),
  'mail-bounced': () => ({
    merchantName: 'Bottega Rossi', reference: 'A-1001', amountMinor: 12990, currency: 'EUR', description: 'Two chairs', customerName: 'Anna',
    mail: 'paylink', recipient: 'anna@example.test', status: '5.1.1', reason: '550 5.1.1 user unknown', bouncedAt: '2031-02-10T09:15:00.000Z', payable: true, timeZone: 'Europe/Rome',
  }),
  'command-reply': () => ({
    subject: 'STATUS A-1',
    command: 'STATUS',
    reference: 'A-1',
    code: 'COMMAND_STATUS',
    order: {
      reference: 'A-1', status: 'pending', amountMinor: 12990, currency: 'EUR', link: `${LINK}1`, expiresAt: '2031-03-01T17:30:00.000Z',
      attempts: { total: 2, declined: 1, lastOutcome: 'declined', lastAt: '2031-02-27T10:00:00.000Z' },
    },
  }),
};

/** A word of each locale's subject that English does not have. */
const SUBJECT_WORD: Record<string, Record<string, string>> = {
  'daily-recap': { en: 'Daily recap', it: 'Riepilogo giornaliero', fr: 'Récapitulatif', de: 'Tagesübersicht', es: 'Resumen diario' },
  paylink: { en: 'Payment request', it: 'Richiesta di pagamento', fr: 'Demande de paiement', de: 'Zahlungsaufforderung', es: 'Solicitud de pago' },
  'receipt-customer': { en: 'Receipt', it: 'Ricevuta', fr: 'Reçu', de: 'Beleg', es: 'Recibo' },
  'receipt-merchant': { en: 'Payment received', it: 'Pagamento ricevuto', fr: 'Paiement reçu', de: 'Zahlung erhalten', es: 'Pago recibido' },
  'intake-reply': { en: 'Re: Orders for today', it: 'Re: Orders for today', fr: 'Re: Orders for today', de: 'Re: Orders for today', es: 'Re: Orders for today' },
  reminder: { en: 'Reminder', it: 'Promemoria', fr: 'Rappel', de: 'Erinnerung', es: 'Recordatorio' },
  'command-reply': { en: 'Re: STATUS A-1', it: 'Re: STATUS A-1', fr: 'Re: STATUS A-1', de: 'Re: STATUS A-1', es: 'Re: STATUS A-1' },
  'mail-bounced': { en: 'Undeliverable', it: 'Non recapitabile', fr: 'Non distribuable', de: 'Unzustellbar', es: 'No entregable' },
  'link-request': { en: 'asks for a new pay-link', it: 'chiede un nuovo link', fr: 'demande un nouveau lien', de: 'bittet um einen neuen', es: 'pide un nuevo enlace' },
  'link-renewed': { en: 'new payment link', it: 'nuovo link di pagamento', fr: 'nouveau lien de paiement', de: 'neuer Zahlungslink', es: 'nuevo enlace de pago' },
  'order-expired': { en: 'expired unpaid', it: 'scaduto senza pagamento', fr: 'expiré sans paiement', de: 'unbezahlt abgelaufen', es: 'caducado sin pagar' },
};

describe('mail renderer', () => {
  let renderer: MailRenderer;
  before(async () => {
    renderer = await createMailRenderer({ templatesDir: TEMPLATES_DIR, publicUrl: 'https://pay.example.test' });
  });

  for (const template of MAIL_TEMPLATES) {
    for (const locale of MAIL_LOCALES) {
      it(`renders ${template} in ${locale}`, async () => {
        const mail = await renderer.render({ template, locale, data: DATA[template]!() });
        assert.ok(mail.subject.includes(SUBJECT_WORD[template]![locale]!), mail.subject);
        assert.ok(!/[\r\n]/.test(mail.subject));
        assert.match(mail.html, new RegExp(`<html[^>]*lang="${locale}"`));
        assert.ok(!mail.html.includes('{{') && !mail.text.includes('{{'), 'no Handlebars slot left');
        assert.ok(!/\{\w+\}/.test(mail.text), 'no string placeholder left');
        const amount = template === 'intake-reply' ? formatMoney(1000, 'EUR', locale) : formatMoney(12990, 'EUR', locale);
        assert.ok(mail.text.includes(amount), `text has ${amount}`);
        assert.ok(mail.html.includes(amount), `html has ${amount}`);
      });
    }
  }

  const amounts: Array<[string, number, string, string]> = [
    ['en', 12990, 'EUR', '€129.90'],
    ['it', 12990, 'EUR', '129,90\u00a0€'],
    ['de', 123456, 'EUR', '1.234,56\u00a0€'],
    ['fr', 12990, 'EUR', '129,90\u00a0€'],
    ['es', 12990, 'EUR', '129,90\u00a0€'],
    ['en', 1234, 'JPY', '¥1,234'],
    ['it', 12345000, 'KWD', '12.345,000\u00a0KWD'],
  ];
  for (const [locale, amountMinor, currency, shown] of amounts) {
    it(`formats ${amountMinor} ${currency} for ${locale} as ${shown}`, async () => {
      const mail = await renderer.render({ template: 'paylink', locale, data: paylink({ amountMinor, currency }) });
      assert.ok(mail.text.includes(shown), mail.text);
      assert.ok(mail.subject.includes(shown), mail.subject);
    });
  }

  it('attaches the QR code of the link as an inline image referenced by cid', async () => {
    const mail = await renderer.render({ template: 'paylink', locale: 'en', data: paylink() });
    assert.equal(mail.attachments.length, 1);
    const qr = mail.attachments[0]!;
    assert.equal(qr.contentType, 'image/png');
    assert.deepEqual([...qr.content.subarray(0, 4)], [0x89, 0x50, 0x4e, 0x47]);
    assert.ok(mail.html.includes(`src="cid:${qr.cid}"`));
    assert.equal((mail.html.match(/src="cid:/g) ?? []).length, 1);
  });

  it('shows the link as a button and as text, in both parts', async () => {
    const mail = await renderer.render({ template: 'paylink', locale: 'en', data: paylink() });
    const escaped = LINK.replace(/&/g, '&amp;').replace(/=/g, '&#x3D;');
    assert.ok((mail.html.split(`href="${escaped}"`).length - 1) >= 2, 'button and text link');
    assert.ok(mail.text.includes(LINK));
    assert.ok(mail.text.includes('Pay €129.90'));
  });

  it('escapes the merchant-provided description and name in HTML', async () => {
    const mail = await renderer.render({
      template: 'paylink',
      locale: 'en',
      data: paylink({ merchantName: '<img src=x onerror=alert(1)>' }),
    });
    assert.ok(!mail.html.includes('<script>alert'));
    assert.ok(!mail.html.includes('<img src=x'));
    assert.ok(mail.html.includes('&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt; &amp; a table'));
    assert.ok(mail.text.includes('<script>alert("x")</script> & a table'), 'text part is not HTML-escaped');
  });

  it('tells the merchant to forward the link when the mail goes to the merchant', async () => {
    const toMerchant = await renderer.render({ template: 'paylink', locale: 'en', data: paylink({ toCustomer: false }) });
    const toCustomer = await renderer.render({ template: 'paylink', locale: 'en', data: paylink() });
    assert.match(toMerchant.html, /Forward this link to your customer/);
    assert.match(toMerchant.text, /Forward this link to your customer/);
    assert.match(toMerchant.subject, /A-1001/);
    assert.doesNotMatch(toCustomer.html, /Forward this link/);
    assert.match(toCustomer.text, /Hello Anna,/);
  });

  const locales: Array<[string, string]> = [
    ['it-CH', 'Richiesta di pagamento'],
    ['de_DE', 'Zahlungsaufforderung'],
    ['pt', 'Payment request'],
    ['', 'Payment request'],
    ['not a locale', 'Payment request'],
  ];
  for (const [locale, word] of locales) {
    it(`resolves locale "${locale}" (fallback to en)`, async () => {
      const mail = await renderer.render({ template: 'paylink', locale, data: paylink() });
      assert.ok(mail.subject.includes(word), mail.subject);
    });
  }

  it('formats dates in the locale and the time zone of the data (default Europe/Rome)', async () => {
    const rome = await renderer.render({ template: 'paylink', locale: 'it', data: paylink() });
    assert.match(rome.text, /1 marzo 2031.*18:30/);
    const ny = await renderer.render({ template: 'paylink', locale: 'en', data: paylink({ timeZone: 'America/New_York' }) });
    assert.match(ny.text, /March 1, 2031.*12:30/);
    const bad = await renderer.render({ template: 'paylink', locale: 'en', data: paylink({ timeZone: 'Mars/Base' }) });
    assert.match(bad.text, /March 1, 2031.*06:30/);
  });

  it('shows the receipt: number, merchant, reference, masked card with country, auth code, date', async () => {
    const mail = await renderer.render({ template: 'receipt-merchant', locale: 'en', data: receipt() });
    for (const part of [mail.html, mail.text]) {
      for (const s of ['R-000123', 'Bottega Rossi', 'A-1001', 'Visa •••• 4242', 'Italy', 'AUTH42', 'February 10, 2031']) {
        assert.ok(part.includes(s), `${s} in ${part === mail.html ? 'html' : 'text'}`);
      }
    }
    const it_ = await renderer.render({ template: 'receipt-customer', locale: 'it', data: receipt({ card: { brand: 'mastercard', last4: '4444' } }) });
    assert.ok(it_.text.includes('Mastercard •••• 4444'));
    assert.ok(!it_.text.includes('Paese di emissione'), 'no country line without a country');
  });

  describe('a part of an order paid in parts (issue 13 part 1)', () => {
    const deposit = { seq: 1, of: 2, kind: 'deposit', totalMinor: 100_000 };
    const balance = { seq: 2, of: 2, kind: 'balance', totalMinor: 100_000 };
    const norm = (s: string) => s.replace(/\s+/g, ' ');
    for (const template of ['paylink', 'reminder', 'link-renewed'] as const) {
      it(`${template} names the part and the total, in HTML and text`, async () => {
        const mail = await renderer.render({ template, locale: 'en', data: paylink({ amountMinor: 30_000, part: deposit }) });
        for (const body of [mail.text, mail.html]) assert.ok(norm(body).includes('Deposit of €300.00 (total €1,000.00)'), `${template}: ${body === mail.html ? 'html' : 'text'}`);
        const plain = await renderer.render({ template, locale: 'en', data: paylink() });
        assert.ok(!/total €/.test(plain.text) && !plain.html.includes('(total'), 'no part line without a part');
      });
    }
    const LINES: Array<{ locale: string; link: string; deposit: string; balance: string; instalment: string }> = [
      { locale: 'en', link: 'Balance of €700.00 (total €1,000.00)', deposit: 'Deposit received: €300.00 of €1,000.00', balance: 'Balance received — the order is paid in full', instalment: 'Instalment 2 of 3 received: €333.33 of €1,000.00' },
      { locale: 'it', link: 'Saldo di 700,00 € (totale 1000,00 €)', deposit: 'Acconto ricevuto: 300,00 € su 1000,00 €', balance: "Saldo ricevuto — l'ordine è pagato per intero", instalment: 'Rata 2 di 3 ricevuta: 333,33 € su 1000,00 €' },
      { locale: 'fr', link: 'Solde de 700,00 € (total 1 000,00 €)', deposit: 'Acompte reçu : 300,00 € sur 1 000,00 €', balance: 'Solde reçu — la commande est payée en totalité', instalment: 'Versement 2 sur 3 reçu : 333,33 € sur 1 000,00 €' },
      { locale: 'de', link: 'Restzahlung von 700,00 € (Gesamtbetrag 1.000,00 €)', deposit: 'Anzahlung erhalten: 300,00 € von 1.000,00 €', balance: 'Restzahlung erhalten — die Bestellung ist vollständig bezahlt', instalment: 'Rate 2 von 3 erhalten: 333,33 € von 1.000,00 €' },
      { locale: 'es', link: 'Saldo de 700,00 € (total 1000,00 €)', deposit: 'Depósito recibido: 300,00 € de 1000,00 €', balance: 'Saldo recibido — el pedido está pagado en su totalidad', instalment: 'Cuota 2 de 3 recibida: 333,33 € de 1000,00 €' },
    ];
    for (const c of LINES) {
      it(`says which part a pay-link asks for and a receipt is for, in ${c.locale}`, async () => {
        const link = await renderer.render({ template: 'paylink', locale: c.locale, data: paylink({ amountMinor: 70_000, part: balance }) });
        assert.ok(norm(link.text).includes(norm(c.link)), `${c.locale} pay-link: ${link.text}`);
        for (const template of ['receipt-customer', 'receipt-merchant'] as const) {
          const dep = await renderer.render({ template, locale: c.locale, data: receipt({ amountMinor: 30_000, part: deposit }) });
          for (const body of [dep.text, dep.html]) assert.ok(norm(body).includes(norm(c.deposit)), `${template} ${c.locale}: ${c.deposit}`);
          const bal = await renderer.render({ template, locale: c.locale, data: receipt({ amountMinor: 70_000, part: balance }) });
          assert.ok(norm(bal.text).includes(norm(c.balance)), `${template} ${c.locale}: ${c.balance}`);
          const inst = await renderer.render({ template, locale: c.locale, data: receipt({ amountMinor: 33_333, part: { seq: 2, of: 3, kind: 'instalment', totalMinor: 100_000 } }) });
          assert.ok(norm(inst.text).includes(norm(c.instalment)), `${template} ${c.locale}: ${c.instalment}`);
        }
      });
    }
  });

  it('lists what the intake created and each problem with field, line/row, value and expectation', async () => {
    const mail = await renderer.render({ template: 'intake-reply', locale: 'en', data: intakeReply() });
    for (const s of ['A-1', 'A-2', 'already existed', `${LINK}1`, 'Amount', 'line 4', '1.234', 'write 1234 or 1.234,00', 'Customer email', 'row 3', 'bob@']) {
      assert.ok(mail.text.includes(s), `${s} in text`);
    }
    assert.ok(mail.html.includes('expected an address like &lt;name@example.com&gt;'));
    assert.ok(mail.text.includes('Pay-links created: 1 · Already existing: 1 · Problems found: 2'));
    const empty = await renderer.render({ template: 'intake-reply', locale: 'en', data: intakeReply({ subject: '', created: [] }) });
    assert.equal(empty.subject, 'Your order mail to paymail');
    assert.match(empty.text, /No pay-link was created/);
  });

  it("names a payment plan's fields in the merchant's language (issue 13 part 1)", async () => {
    const problems = [
      { field: 'deposit', code: 'DEPOSIT_INVALID', message: 'a share between 1% and 99%, or an amount less than the total', value: '120%', line: 2 },
      { field: 'balanceDue', code: 'BALANCE_DUE_PAST', message: 'a date from today on', value: '2020-01-01', line: 3 },
      { field: 'instalments', code: 'PLAN_CONFLICT', message: 'either a deposit or instalments, not both', value: '3 monthly', line: 4 },
    ];
    const labels: Record<string, string[]> = {
      en: ['Deposit', 'Balance due', 'Instalments'],
      it: ['Acconto', 'Saldo entro', 'Rate'],
      fr: ['Acompte', 'Solde le', 'Versements'],
      de: ['Anzahlung', 'Restzahlung am', 'Raten'],
      es: ['Depósito', 'Fecha del saldo', 'Cuotas'],
    };
    for (const [locale, words] of Object.entries(labels)) {
      const mail = await renderer.render({ template: 'intake-reply', locale, data: intakeReply({ problems }) });
      for (const w of [...words, '120%', '2020-01-01', '3 monthly']) assert.ok(mail.text.includes(w), `${locale}: ${w} in text`);
      assert.ok(!mail.text.includes('balanceDue'), `${locale}: no raw field name`);
    }
  });

  const invalid: Array<[string, Record<string, unknown>, string]> = [
    ['nope', {}, 'MAIL_TEMPLATE_UNKNOWN'],
    ['paylink', paylink({ amountMinor: '12.90' }), 'MAIL_DATA_INVALID'],
    ['paylink', paylink({ currency: 'XXY' }), 'MAIL_DATA_INVALID'],
    ['paylink', paylink({ expiresAt: 'tomorrow' }), 'MAIL_DATA_INVALID'],
    ['receipt-customer', receipt({ card: undefined }), 'MAIL_DATA_INVALID'],
  ];
  for (const [template, data, code] of invalid) {
    it(`refuses ${template} with bad data: ${code}`, async () => {
      await assert.rejects(renderer.render({ template, locale: 'en', data }), (e: unknown) => isAppError(e, code));
    });
  }

  it('ran MJML once per template at start-up, never per mail', async () => {
    for (let i = 0; i < 5; i++) await renderer.render({ template: 'paylink', locale: 'de', data: paylink() });
    assert.equal(renderer.compiledCount, MAIL_TEMPLATES.length);
  });

  it('has every English string translated in every locale', async () => {
    const keys = (o: unknown, prefix = ''): string[] =>
      o && typeof o === 'object'
        ? Object.entries(o).flatMap(([k, v]) => keys(v, prefix ? `${prefix}.${k}` : k))
        : [prefix];
    const read = async (lc: string) =>
      JSON.parse(await readFile(path.join(TEMPLATES_DIR, 'locales', lc, 'mail.json'), 'utf8')) as unknown;
    const en = keys(await read('en')).sort();
    for (const lc of MAIL_LOCALES) assert.deepEqual(keys(await read(lc)).sort(), en, lc);
  });
});
