// Wording and layout of the mails (issue 10, item 16): plural forms by Intl.PluralRules, the paid
// amount labelled as paid, one reply prefix in reply subjects, the recap's headings aligned with
// its body.
import assert from 'node:assert/strict';
import path from 'node:path';
import { createMailRenderer, MAIL_LOCALES, type MailRenderer } from '../../src/mail/renderer.ts';

const TEMPLATES_DIR = path.resolve(import.meta.dirname, '../../templates');

const commandReply = (over: Record<string, unknown> = {}, order: Record<string, unknown> = {}) => ({
  subject: 'STATUS A-1',
  command: 'STATUS',
  reference: 'A-1',
  code: 'COMMAND_STATUS',
  order: {
    reference: 'A-1', status: 'pending', amountMinor: 12990, currency: 'EUR', link: 'https://pay.example.test/pay/x', expiresAt: '2031-03-01T17:30:00.000Z',
    attempts: { total: 1, declined: 0 },
    ...order,
  },
  ...over,
});

describe('mail wording', () => {
  let renderer: MailRenderer;
  before(async () => {
    renderer = await createMailRenderer({ templatesDir: TEMPLATES_DIR, publicUrl: 'https://pay.example.test' });
  });

  // One attempt, then two: the words must follow each language's plural rules.
  const ATTEMPTS: Record<string, [one: string, two: string]> = {
    en: ['1 payment attempt,', '2 payment attempts,'],
    it: ['1 tentativo di pagamento,', '2 tentativi di pagamento,'],
    fr: ['1 tentative de paiement,', '2 tentatives de paiement,'],
    de: ['1 Zahlungsversuch,', '2 Zahlungsversuche,'],
    es: ['1 intento de pago,', '2 intentos de pago,'],
  };
  for (const lc of MAIL_LOCALES) {
    it(`${lc}: "1 payment attempt" in the singular, 2 in the plural`, async () => {
      const one = await renderer.render({ template: 'command-reply', locale: lc, data: commandReply() });
      const two = await renderer.render({ template: 'command-reply', locale: lc, data: commandReply({}, { attempts: { total: 2, declined: 1 } }) });
      assert.ok(one.text.includes(ATTEMPTS[lc]![0]), one.text);
      assert.ok(two.text.includes(ATTEMPTS[lc]![1]), two.text);
    });
  }

  it('labels the amount of a paid order "Amount paid", not "Amount due" (CANCEL on a paid order)', async () => {
    const data = commandReply({ command: 'CANCEL', subject: 'CANCEL A-1', code: 'COMMAND_ALREADY_PAID' }, { status: 'paid', paidAt: '2031-02-27T10:00:00.000Z' });
    const r = await renderer.render({ template: 'command-reply', locale: 'en', data });
    assert.match(r.text, /Amount paid: €129\.90/);
    assert.doesNotMatch(r.text + r.html, /Amount due/);
    const pending = await renderer.render({ template: 'command-reply', locale: 'en', data: commandReply() });
    assert.match(pending.text, /Amount due: €129\.90/);
  });

  const SUBJECTS: Array<[string, string]> = [
    ['STATUS A-1', 'Re: STATUS A-1'],
    ['Re: STATUS A-1', 'Re: STATUS A-1'],
    ['Re: Re: STATUS A-1', 'Re: STATUS A-1'],
    ['RE: re:STATUS A-1', 'Re: STATUS A-1'],
    ['Aw: AW: STATUS A-1', 'Re: STATUS A-1'],
    ['R: Rif: STATUS A-1', 'Re: STATUS A-1'],
    ['Réf. : Réf: STATUS A-1', 'Re: STATUS A-1'],
    ['RV: Re[2]: STATUS A-1', 'Re: STATUS A-1'],
    ['Re: Fwd: STATUS A-1', 'Re: Fwd: STATUS A-1'],
    ['Reminder: STATUS A-1', 'Re: Reminder: STATUS A-1'],
  ];
  for (const [given, expected] of SUBJECTS) {
    it(`reply subject to "${given}" is "${expected}"`, async () => {
      const cmd = await renderer.render({ template: 'command-reply', locale: 'en', data: commandReply({ subject: given }) });
      assert.equal(cmd.subject, expected);
    });
  }

  it('the recap\'s section headings start where its body starts (same left padding everywhere)', async () => {
    const data = {
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
    };
    const r = await renderer.render({ template: 'daily-recap', locale: 'en', data });
    // MJML puts each block's padding on its <td>: "padding:top right bottom left" (or shorter).
    const lefts = new Set<string>();
    // The card only: the footer below it is centred small print with its own margins.
    const card = r.html.slice(0, r.html.lastIndexOf('<td', r.html.indexOf('You receive this recap every day')));
    for (const m of card.matchAll(/<td[^>]*style="font-size:0px;padding:([^;"]+);/g)) {
      const p = m[1]!.trim().split(/\s+/);
      lefts.add(p.length === 4 ? p[3]! : p.length >= 2 ? p[1]! : p[0]!);
    }
    assert.deepEqual([...lefts], ['32px']);
  });
});
