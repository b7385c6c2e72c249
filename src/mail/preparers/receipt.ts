// The receipt mails (to the customer and to the merchant) and the PDF receipt they carry, which
// the download routes serve too (renderer.receiptPdf).
import { brandName, maskCard } from '../../domain/card.ts';
import { formatMoney } from '../../domain/money.ts';
import { parseMailData as parse, ReceiptData, type ReceiptFacts } from '../contracts.ts';
import { countryName, type Ctx, formatDateTime } from '../format.ts';
import { type ReceiptPdfContent } from '../receipt-pdf.ts';
import { partLine } from './part.ts';
import { type Preparer } from './types.ts';

export function receiptPreparer(template: 'receipt-customer' | 'receipt-merchant'): Preparer {
  return (raw, ctx) => {
    const d = parse(ReceiptData, template, raw);
    const amount = formatMoney(d.amountMinor, d.currency, ctx.intl);
    const country = d.card.country ? countryName(d.card.country, ctx.intl) : '';
    const card = maskCard(brandName(d.card.brand), d.card.last4).trim();
    const customer = d.customerName && d.customerEmail ? `${d.customerName} <${d.customerEmail}>` : d.customerName || d.customerEmail;
    // A part of an order paid in parts (issue 13 part 1): "Deposit received: 300.00 € of 1,000.00 €".
    const part = partLine(d.part, d.amountMinor, d.currency, ctx, 'paid');
    return {
      ...(part ? { partKey: part.key } : {}),
      vars: { amount, merchant: d.merchantName, reference: d.reference, receiptNumber: d.receiptNumber, customer: customer || '—', ...part?.vars },
      view: {
        merchantName: d.merchantName,
        amount,
        receiptNumber: d.receiptNumber,
        reference: d.reference,
        description: d.description,
        card,
        cardCountry: country,
        authCode: d.authCode,
        paidAt: formatDateTime(d.paidAt, ctx.intl, ctx.timeZone),
        customer,
        link: d.link,
        proof: d.proof,
        verifyUrl: d.verifyUrl,
        // Saved cards (issue 12 part 3): the link that removes the card (customer's receipt only).
        removeCardUrl: d.removeCardUrl,
      },
      receipt: d,
    };
  };
}

/**
 * The PDF receipt's text: the receipt mails' labels (`common`) and the `receiptPdf` strings,
 * values formatted for the locale, the paid time in the merchant's zone with the zone's name.
 */
export function receiptPdfContent(d: ReceiptFacts, ctx: Ctx, labels: Record<string, string>, t: Record<string, string>, part?: { label: string; line: string }): ReceiptPdfContent {
  const amount = formatMoney(d.amountMinor, d.currency, ctx.intl);
  const { expMonth, expYear, country } = d.card;
  const expiry = expMonth && expYear ? `${String(expMonth).padStart(2, '0')}/${expYear < 100 ? 2000 + expYear : expYear}` : '';
  const row = (label: string | undefined, value: string) => (value ? [{ label: label ?? '', value }] : []);
  return {
    lang: ctx.intl,
    documentTitle: `${t.title ?? ''} ${d.receiptNumber}`,
    heading: t.title ?? '',
    merchantName: d.merchantName,
    contact: d.merchantEmail ? { label: t.contact ?? '', value: d.merchantEmail } : undefined,
    amount: { label: labels.amountPaid ?? '', value: amount },
    rows: [
      ...row(labels.receiptNumber, d.receiptNumber),
      // Issue 13 part 1: which part of an order paid in parts this receipt is for.
      ...(part ? row(part.label, part.line) : []),
      ...row(labels.reference, d.reference),
      ...row(labels.description, d.description),
      ...row(labels.amountPaid, amount),
      ...row(labels.card, maskCard(brandName(d.card.brand), d.card.last4).trim()),
      ...row(t.cardExpiry, expiry),
      ...row(labels.issuingCountry, country ? countryName(country, ctx.intl) : ''),
      ...row(labels.authCode, d.authCode),
      ...row(labels.date, `${formatDateTime(d.paidAt, ctx.intl, ctx.timeZone)} (${ctx.timeZone})`),
    ],
    proof:
      d.proof && d.verifyUrl
        ? { title: labels.proofTitle ?? '', intro: labels.proofIntro ?? '', scan: t.scan ?? '', verifyUrl: d.verifyUrl }
        : undefined,
    footer: t.footer ?? '',
    createdAt: d.paidAt,
  };
}
