// The PDF receipt attached to both receipt mails, read back as a person would: its text with
// pdftotext, its QR code with zbar after rasterising; the code opens the verify page and the
// proof in it verifies. Rendered from the mail data only, so the same data gives the same bytes.
import assert from 'node:assert/strict';
import { generateKeyPairSync } from 'node:crypto';
import path from 'node:path';
import { signReceipt } from '../../src/domain/receipt-proof.ts';
import { formatMoney } from '../../src/domain/money.ts';
import { createMailRenderer, formatDateTime, type MailRenderer } from '../../src/mail/renderer.ts';
import { hardWrap, toWinAnsi } from '../../src/mail/receipt-pdf.ts';
import { createReceiptProofs } from '../../src/services/receipt-proof.service.ts';
import { createReceiptKeyRing } from '../../src/services/signing-keys.ts';
import { pdfQrCodes, pdfText, squash } from '../helpers/pdf-tools.ts';

const TEMPLATES_DIR = path.resolve(import.meta.dirname, '../../templates');
const PUBLIC_URL = 'https://pay.example.test';
const PAID_AT = '2031-02-10T09:15:00.000Z';

const { privateKey } = generateKeyPairSync('ed25519');
const ring = createReceiptKeyRing(privateKey);
const proofs = createReceiptProofs({ keys: ring, publicUrl: PUBLIC_URL });

function receipt(merchantName: string, description: string, over: Record<string, unknown> = {}) {
  const token = signReceipt(
    {
      v: 1,
      receiptNumber: 'RCPT-7Q2M9XK4',
      merchant: { id: 'mer_1', name: merchantName },
      reference: 'A-1001',
      amountMinor: 123456,
      currency: 'EUR',
      card: { brand: 'visa', last4: '4242' },
      authCode: 'A1B2C3',
      paidAt: PAID_AT,
      orderPublicId: 'AbCdEfGhIjKlMnOp',
    },
    ring.signing!,
  );
  return {
    receiptNumber: 'RCPT-7Q2M9XK4',
    merchantName,
    merchantEmail: 'shop@merchant.example',
    reference: 'A-1001',
    amountMinor: 123456,
    currency: 'EUR',
    description,
    card: { brand: 'visa', last4: '4242', expMonth: 9, expYear: 2031, country: 'IT' },
    authCode: 'A1B2C3',
    paidAt: PAID_AT,
    customerEmail: 'anna@example.test',
    customerName: 'Anna',
    link: `${PUBLIC_URL}/pay/AbCdEfGhIjKlMnOp?a=123456`,
    timeZone: 'Europe/Rome',
    proof: token,
    verifyUrl: proofs.verifyUrl(token, 'Europe/Rome'),
    ...over,
  };
}

const pdfOf = (mail: Awaited<ReturnType<MailRenderer['render']>>) => {
  const pdfs = mail.attachments.filter((a) => a.contentType === 'application/pdf');
  assert.equal(pdfs.length, 1, 'one PDF attachment');
  return pdfs[0]!;
};

// Per language: the merchant and description (accents, ß, ñ), and words of that language on the page.
const CASES: Array<{ locale: string; merchant: string; description: string; words: string[] }> = [
  { locale: 'en', merchant: 'Bottega Rossi & Figli', description: 'Two beech chairs', words: ['Payment receipt', 'Receipt number', 'Authorisation code', 'Card expiry'] },
  { locale: 'it', merchant: 'Caffè Però', description: 'Due sedie in faggio, così', words: ['Ricevuta di pagamento', 'Numero ricevuta', 'Codice di autorizzazione'] },
  { locale: 'fr', merchant: 'Crêperie Élodie', description: 'Deux chaises en hêtre', words: ['Reçu de paiement', "Code d'autorisation"] },
  { locale: 'de', merchant: 'Bäckerei Großmann', description: 'Zwei Stühle aus Buche, groß', words: ['Zahlungsbeleg', 'Autorisierungscode'] },
  { locale: 'es', merchant: 'Señor Muñoz', description: 'Dos sillas de haya, año 2031', words: ['Recibo de pago', 'Código de autorización'] },
];

describe('receipt PDF', function () {
  this.timeout(60_000);
  let renderer: MailRenderer;

  before(async () => {
    renderer = await createMailRenderer({ templatesDir: TEMPLATES_DIR, publicUrl: PUBLIC_URL });
  });

  for (const c of CASES) {
    it(`${c.locale}: merchant, order, amount, masked card, auth code, receipt number and the zone-named paid time`, async () => {
      const data = receipt(c.merchant, c.description);
      const mail = await renderer.render({ template: 'receipt-customer', locale: c.locale, data });
      const pdf = pdfOf(mail);
      assert.equal(pdf.filename, 'receipt-RCPT-7Q2M9XK4.pdf');
      assert.equal(pdf.disposition, 'attachment');
      assert.equal(pdf.content.subarray(0, 5).toString('latin1'), '%PDF-');
      const text = squash(await pdfText(pdf.content));
      const expected = [
        c.merchant,
        'shop@merchant.example',
        'A-1001',
        c.description,
        formatMoney(123456, 'EUR', c.locale),
        'Visa •••• 4242',
        '09/2031',
        'A1B2C3',
        'RCPT-7Q2M9XK4',
        formatDateTime(new Date(PAID_AT), c.locale, 'Europe/Rome'),
        'Europe/Rome',
        ...c.words,
      ];
      for (const s of expected) assert.ok(text.includes(squash(s)), `${c.locale}: "${s}" not in the PDF text:\n${text}`);
      assert.ok(text.includes('€'), 'the euro sign survives');
      // The verify address is printed too (wrapped over lines: compare without whitespace).
      assert.ok(text.replace(/\s+/g, '').includes(data.verifyUrl), 'the verify URL is printed');
    });
  }

  // Issue 13 part 1: each part of an order paid in parts has its own receipt, which says which part.
  for (const c of [
    { locale: 'en', part: { seq: 1, of: 2, kind: 'deposit' }, line: 'Payment plan Deposit received: €1,234.56 of €4,115.20' },
    { locale: 'en', part: { seq: 2, of: 2, kind: 'balance' }, line: 'Payment plan Balance received — the order is paid in full' },
    { locale: 'it', part: { seq: 1, of: 2, kind: 'deposit' }, line: 'Piano di pagamento Acconto ricevuto: 1234,56 € su 4115,20 €' },
    { locale: 'de', part: { seq: 2, of: 3, kind: 'instalment' }, line: 'Zahlungsplan Rate 2 von 3 erhalten: 1.234,56 € von 4.115,20 €' },
  ]) {
    it(`${c.locale}: a ${c.part.kind}'s receipt prints which part it is and of what total`, async () => {
      const data = receipt('Bottega Rossi & Figli', 'Two beech chairs', { part: { ...c.part, totalMinor: 411_520 } });
      const text = squash(await pdfText((await renderer.receiptPdf({ locale: c.locale, data })).content));
      assert.ok(text.includes(squash(c.line)), `"${c.line}" not in the PDF text:\n${text}`);
      const plain = squash(await pdfText((await renderer.receiptPdf({ locale: c.locale, data: receipt('Bottega Rossi & Figli', 'Two beech chairs') })).content));
      const label = { en: 'Payment plan', it: 'Piano di pagamento', de: 'Zahlungsplan' }[c.locale]!;
      assert.ok(!plain.includes(label), 'no part line on the receipt of an order paid at once');
    });
  }

  it('carries the proof as a QR code that opens the verify page, and the proof in it verifies', async () => {
    const data = receipt('Bottega Rossi & Figli', 'Two beech chairs');
    const mail = await renderer.render({ template: 'receipt-merchant', locale: 'it', data });
    const codes = await pdfQrCodes(pdfOf(mail).content);
    assert.deepEqual(codes, [data.verifyUrl]);
    const token = new URL(codes[0]!).searchParams.get('token') ?? '';
    const verified = proofs.verify(token);
    assert.ok(verified.ok, `proof refused: ${JSON.stringify(verified)}`);
    assert.equal(verified.claims.receiptNumber, 'RCPT-7Q2M9XK4');
    assert.equal(verified.claims.amountMinor, 123456);
  });

  it('is deterministic: the same data gives the same bytes, in either receipt mail and from receiptPdf', async () => {
    const data = receipt('Bäckerei Großmann', 'Zwei Stühle');
    const a = pdfOf(await renderer.render({ template: 'receipt-customer', locale: 'de', data })).content;
    const b = pdfOf(await renderer.render({ template: 'receipt-merchant', locale: 'de', data })).content;
    const c = await renderer.receiptPdf({ locale: 'de', data });
    assert.ok(a.equals(b), 'customer and merchant mails carry the same PDF');
    assert.ok(a.equals(c.content), 'the download is the mailed PDF');
    assert.equal(c.filename, 'receipt-RCPT-7Q2M9XK4.pdf');
    const other = pdfOf(await renderer.render({ template: 'receipt-customer', locale: 'en', data })).content;
    assert.ok(!a.equals(other), 'another language is another document');
  });

  it('gives a safe file name whatever the receipt number holds', async () => {
    const { filename } = await renderer.receiptPdf({ locale: 'en', data: receipt('Shop', '', { receiptNumber: 'R/../"x\r\ny' }) });
    assert.match(filename, /^receipt-[A-Za-z0-9_-]+\.pdf$/);
  });

  it('without a proof (receipt signing off) the PDF has no QR code but everything else', async () => {
    const data = receipt('Bottega Rossi', 'Chairs', { proof: '', verifyUrl: '' });
    const pdf = pdfOf(await renderer.render({ template: 'receipt-customer', locale: 'en', data })).content;
    assert.deepEqual(await pdfQrCodes(pdf), []);
    assert.ok(squash(await pdfText(pdf)).includes('RCPT-7Q2M9XK4'));
  });

  it('receipt data queued before the merchant contact existed still renders', async () => {
    const { merchantEmail: _, ...old } = receipt('Bottega Rossi', 'Chairs');
    const pdf = pdfOf(await renderer.render({ template: 'receipt-customer', locale: 'en', data: old })).content;
    assert.ok(squash(await pdfText(pdf)).includes('Bottega Rossi'));
  });

  describe('text for the standard fonts', () => {
    const cases: Array<[string, string, string]> = [
      ['the five languages pass as they are', 'Caffè Però · Crêperie Élodie · Großmann · Señor Muñoz · 1.234,56 € · d’autorisation « ok »', 'Caffè Però · Crêperie Élodie · Großmann · Señor Muñoz · 1.234,56 € · d’autorisation « ok »'],
      ['Intl narrow no-break spaces become spaces', '1\u202F234,56\u00A0€', '1 234,56\u00A0€'],
      ['other Latin letters lose their marks', 'Łódź Dvořák Ærø', '?ódz Dvorák Ærø'],
      ['other scripts become ?', 'Ωmega 東京', '?mega ??'],
    ];
    for (const [name, input, expected] of cases) it(name, () => assert.equal(toWinAnsi(input), expected));

    it('cuts the verify URL at fixed widths, never after a hyphen', () => {
      const lines = hardWrap('abc-defgh-ij--klmnop', 4);
      assert.equal(lines.join(''), 'abc-defgh-ij--klmnop');
      assert.ok(lines.every((l) => l.length <= 4 && !l.endsWith('-')), JSON.stringify(lines));
    });
  });
});
