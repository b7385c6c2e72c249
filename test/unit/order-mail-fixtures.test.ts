// Real-client order mails (test/fixtures/order-mail/*.eml) read the way intake reads them:
// mailparser with intake's options, then readOrderMail (body, forwarded part, attached message).
import assert from 'node:assert/strict';
import { readdir, readFile } from 'node:fs/promises';
import { simpleParser } from 'mailparser';
import { readOrderMail, type MailContent } from '../../src/domain/order-mail.ts';

const NOW = new Date('2026-03-02T10:00:00Z');
const DAY = 86_400_000;
const DIR = new URL('../fixtures/order-mail/', import.meta.url);
const ctx = { defaultCurrency: 'EUR', now: NOW, maxLifetimeDays: 60, timeZone: 'Europe/Rome' };

const parse = (raw: Buffer): Promise<MailContent> =>
  simpleParser(raw, { skipHtmlToText: true, skipTextToHtml: true, skipTextLinks: true, skipImageLinks: true });

interface Expected {
  draft?: Record<string, unknown>;
  /** [field, code] of each problem, in order; none when absent. */
  problems?: Array<[string, string]>;
  forwarded?: boolean;
}

const CASES: Record<string, Expected> = {
  'plain-en.eml': {
    draft: {
      amountMinor: 12990, currency: 'EUR', reference: 'ORD-1001', description: 'Oak dining table', customerName: 'Jane Doe',
      customerEmail: 'jane.doe@example.com', locale: 'en', delivery: 'customer', expiresAt: new Date(NOW.getTime() + 5 * DAY),
    },
  },
  'it-quoted-printable.eml': {
    draft: {
      amountMinor: 123450, currency: 'EUR', reference: 'ORD-2002', description: 'Macchina da caffè e accessori per la colazione del mattino',
      customerName: 'Mario Rossi', customerEmail: 'mario.rossi@example.it', locale: 'it', delivery: 'customer', expiresAt: new Date(NOW.getTime() + 3 * DAY),
    },
  },
  'outlook-html.eml': {
    draft: { amountMinor: 8900, currency: 'EUR', reference: 'ORD-3003', description: 'Lampada "Arco" & paralume', expiresAt: new Date(NOW.getTime() + 14 * DAY) },
  },
  'reply-quoted.eml': { draft: { amountMinor: 4500, currency: 'GBP', reference: 'ORD-4004', description: 'Order for the blue chair' } },
  // End of 31 March in Rome (summer time from the 29th: UTC+2).
  'signature.eml': { draft: { amountMinor: 2000, currency: 'EUR', description: 'Camiseta', expiresAt: new Date('2026-03-31T21:59:59Z') } },
  'html-gmail-divs.eml': {
    draft: { amountMinor: 7500, currency: 'EUR', reference: 'GM-1', description: 'Two concert tickets', customerName: 'Ana Lima', customerEmail: 'ana@example.com' },
  },
  'html-br-lines.eml': {
    draft: {
      amountMinor: 123456, currency: 'EUR', reference: 'BR-1', description: 'Sofá de tres plazas', customerEmail: 'cliente@example.es', locale: 'es',
      expiresAt: new Date(NOW.getTime() + 3 * DAY),
    },
  },
  'multipart-alternative-de.eml': {
    draft: {
      amountMinor: 123456, currency: 'EUR', reference: 'MA-1', description: 'Eichenschrank', customerName: 'Max Müller', customerEmail: 'max.mueller@example.de',
      locale: 'de', expiresAt: new Date(NOW.getTime() + 3 * DAY),
    },
  },
  'base64-utf8-it.eml': {
    draft: { amountMinor: 12500, currency: 'JPY', reference: 'B64-1', description: 'Tè verde giapponese', expiresAt: new Date(NOW.getTime() + 2 * DAY) },
  },
  'iso-8859-1-fr.eml': {
    draft: {
      amountMinor: 123456, currency: 'EUR', reference: 'FR-1', description: "Canapé d'angle", customerName: 'Élodie Durand', customerEmail: 'elodie@example.fr',
      locale: 'fr', expiresAt: new Date(NOW.getTime() + 3 * DAY),
    },
  },
  'windows-1252-de.eml': {
    draft: { amountMinor: 8990, currency: 'EUR', reference: 'CP-1', description: 'Größe „M“ – Jacke', customerEmail: 'kunde@example.de', delivery: 'customer' },
  },
  'windows-1252-es-outlook.eml': { draft: { amountMinor: 4500, currency: 'EUR', reference: 'CP-2', description: 'Café “Colombia” 1 kg' } },
  'forwarded-inline-gmail.eml': {
    forwarded: true,
    draft: { amountMinor: 21000, currency: 'EUR', reference: 'FW-1', description: 'Weekend package', customerEmail: 'guest@example.com' },
  },
  'forwarded-inline-html.eml': {
    forwarded: true,
    draft: { amountMinor: 21000, currency: 'EUR', reference: 'FW-2', description: 'Weekend package', customerEmail: 'guest@example.com' },
  },
  'forwarded-outlook-it.eml': {
    forwarded: true,
    draft: { amountMinor: 32000, currency: 'EUR', reference: 'FW-IT-1', description: 'Poltrona in pelle', customerName: 'Giulia Bianchi', customerEmail: 'giulia@example.it' },
  },
  'forwarded-rfc822.eml': { forwarded: true, draft: { amountMinor: 9950, currency: 'EUR', reference: 'FW-RFC-1', description: 'Séjour à Paris' } },
  'reply-gmail-alternative.eml': { draft: { amountMinor: 1500, currency: 'EUR', reference: 'RE-2', description: 'Pay-link for order OLD-1' } },
  // Only the new text counts: the order quoted below it is history, not a new order.
  'reply-no-new-order.eml': { problems: [['amount', 'ORDER_AMOUNT_MISSING']] },
  // Outlook 2013+ quotes the older mail under a bare From:/Sent:/To:/Subject: block: the older
  // order (other amount, a customer address, delivery to the customer) is history, not read.
  'reply-outlook-new-order.eml': { draft: { amountMinor: 4500, currency: 'EUR', reference: 'NEW-78', description: 'Second chair' } },
  'reply-outlook-html-it.eml': { draft: { amountMinor: 6000, currency: 'EUR', reference: 'NEW-91', description: 'Ordine OLD-90' } },
  // Payment plans (issue 13 part 1): an Outlook table with a deposit and the balance's date, a plain mail with instalments.
  'deposit-outlook-it.eml': {
    draft: {
      amountMinor: 480000, currency: 'EUR', reference: 'CUC-77', description: 'Cucina su misura',
      plan: { deposit: { percent: 30 }, balanceDue: '2026-05-15' },
    },
  },
  'instalments-es.eml': {
    draft: {
      amountMinor: 120000, currency: 'EUR', reference: 'SOF-12', description: 'Sofá de tres plazas', customerEmail: 'cliente@example.es',
      plan: { instalments: { count: 3, every: 'month' } },
    },
  },
  'disclaimer-en.eml': { draft: { amountMinor: 5420, currency: 'GBP', reference: 'DIS-1', description: 'New order', customerEmail: 'buyer@example.co.uk' } },
};

describe('order mail fixtures (mailparser + intake parsing)', () => {
  it('every fixture has a case and every case a fixture', async () => {
    const files = (await readdir(DIR)).filter((f) => f.endsWith('.eml')).sort();
    assert.deepEqual(files, Object.keys(CASES).sort());
  });

  for (const [file, expected] of Object.entries(CASES)) {
    it(file, async () => {
      const mail = await parse(await readFile(new URL(file, DIR)));
      const r = await readOrderMail(mail, ctx, parse);
      assert.deepEqual(
        r.problems.map((p) => [p.field, p.code]),
        expected.problems ?? [],
        JSON.stringify(r.problems),
      );
      assert.deepEqual(r.draft, expected.draft);
      assert.equal(r.forwarded, expected.forwarded ?? false);
    });
  }

  it('without a parser for attached messages, a forward-as-attachment has no order', async () => {
    const mail = await parse(await readFile(new URL('forwarded-rfc822.eml', DIR)));
    const r = await readOrderMail(mail, ctx);
    assert.deepEqual(r.problems.map((p) => p.code), ['ORDER_AMOUNT_MISSING']);
  });
});
