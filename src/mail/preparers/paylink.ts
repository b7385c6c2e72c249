// The pay-link family's preparers: the pay-link mail (to the merchant or straight to the customer,
// with its QR code), the customer's reminder before it expires, and the merchant's notice that it
// expired unpaid.
import { type z } from 'zod';
import { formatMoney } from '../../domain/money.ts';
import { LinkRenewedData, LinkRequestData, OrderExpiredData, parseMailData as parse, PaylinkData, ReminderData } from '../contracts.ts';
import { type Ctx, formatDateTime } from '../format.ts';
import { partLine } from './part.ts';
import { type Preparer } from './types.ts';

const PAYLINK_PICKED = ['subject', 'preheader', 'heading', 'intro', 'footer'];
const PAYLINK_PICK_CUSTOMER = Object.fromEntries(PAYLINK_PICKED.map((k) => [k, `${k}Customer`]));
const PAYLINK_PICK_MERCHANT = Object.fromEntries(PAYLINK_PICKED.map((k) => [k, `${k}Merchant`]));

/** What the pay-link and its reminder both show: the order, formatted for the reader, and its link. */
function linkFacts(d: z.output<typeof LinkRenewedData>, ctx: Ctx) {
  const amount = formatMoney(d.amountMinor, d.currency, ctx.intl);
  const expires = formatDateTime(d.expiresAt, ctx.intl, ctx.timeZone);
  // A part of an order paid in parts (issue 13 part 1): "Deposit of 300.00 € (total 1,000.00 €)".
  const part = partLine(d.part, d.amountMinor, d.currency, ctx, 'link');
  return {
    ...(part ? { partKey: part.key } : {}),
    vars: { amount, merchant: d.merchantName, reference: d.reference, expires, customerName: d.customerName, ...part?.vars },
    view: {
      merchantName: d.merchantName,
      reference: d.reference,
      description: d.description,
      customerName: d.customerName,
      amount,
      expires,
      link: d.link,
    },
  };
}

export const paylinkPreparer: Preparer = (raw, ctx) => {
  const d = parse(PaylinkData, 'paylink', raw);
  const { vars, view, partKey } = linkFacts(d, ctx);
  return {
    vars,
    partKey,
    pick: d.toCustomer ? PAYLINK_PICK_CUSTOMER : PAYLINK_PICK_MERCHANT,
    view: { toCustomer: d.toCustomer, ...view },
    qrLink: d.link,
  };
};

/** The reminder says why it comes (days before expiry, or the link not opened) and how to stop reminders. */
export const reminderPreparer: Preparer = (raw, ctx) => {
  const d = parse(ReminderData, 'reminder', raw);
  const { vars, view, partKey } = linkFacts(d, ctx);
  const why = d.kind === 'unopened' ? 'whyUnopened' : d.daysBefore ? (d.daysBefore === 1 ? 'whyBeforeOne' : 'whyBefore') : '';
  return {
    vars: { ...vars, days: d.daysBefore ?? '' },
    partKey,
    pick: why ? { why } : { why: 'none' },
    view: { ...view, remindersOffLink: d.remindersOffLink },
  };
};

/** The customer's renewed link (the expired one was renewed by the merchant or automatically). */
export const linkRenewedPreparer: Preparer = (raw, ctx) => {
  const { vars, view, partKey } = linkFacts(parse(LinkRenewedData, 'link-renewed', raw), ctx);
  return { vars, view, partKey, qrLink: view.link };
};

/** Tells the merchant the customer asks for a new link, and how to give one. */
export const linkRequestPreparer: Preparer = (raw, ctx) => {
  const d = parse(LinkRequestData, 'link-request', raw);
  const amount = formatMoney(d.amountMinor, d.currency, ctx.intl);
  const expires = formatDateTime(d.expiresAt, ctx.intl, ctx.timeZone);
  const customer = d.customerName && d.customerEmail ? `${d.customerName} <${d.customerEmail}>` : d.customerName || d.customerEmail;
  return {
    vars: { amount, merchant: d.merchantName, reference: d.reference, expires, customer },
    view: { merchantName: d.merchantName, reference: d.reference, description: d.description, customer, amount, expires, backofficeLink: d.backofficeLink, command: `EXTEND ${d.reference} 7 days` },
  };
};

export const orderExpiredPreparer: Preparer = (raw, ctx) => {
  const d = parse(OrderExpiredData, 'order-expired', raw);
  const amount = formatMoney(d.amountMinor, d.currency, ctx.intl);
  const expires = formatDateTime(d.expiresAt, ctx.intl, ctx.timeZone);
  const customer = d.customerName && d.customerEmail ? `${d.customerName} <${d.customerEmail}>` : d.customerName || d.customerEmail;
  return {
    vars: { amount, merchant: d.merchantName, reference: d.reference, expires },
    view: { merchantName: d.merchantName, reference: d.reference, description: d.description, customer, amount, expires },
  };
};
