// The pay-link family's preparers: the pay-link mail (to the merchant or straight to the customer,
// with its QR code), the customer's reminder before it expires, and the merchant's notice that it
// expired unpaid.
import { type z } from 'zod';
import { formatMoney } from '../../domain/money.ts';
import { OrderExpiredData, parseMailData as parse, PaylinkData, ReminderData } from '../contracts.ts';
import { type Ctx, formatDateTime } from '../format.ts';
import { type Preparer } from './types.ts';

const PAYLINK_PICKED = ['subject', 'preheader', 'heading', 'intro', 'footer'];
const PAYLINK_PICK_CUSTOMER = Object.fromEntries(PAYLINK_PICKED.map((k) => [k, `${k}Customer`]));
const PAYLINK_PICK_MERCHANT = Object.fromEntries(PAYLINK_PICKED.map((k) => [k, `${k}Merchant`]));

/** What the pay-link and its reminder both show: the order, formatted for the reader, and its link. */
function linkFacts(d: z.output<typeof ReminderData>, ctx: Ctx) {
  const amount = formatMoney(d.amountMinor, d.currency, ctx.intl);
  const expires = formatDateTime(d.expiresAt, ctx.intl, ctx.timeZone);
  return {
    vars: { amount, merchant: d.merchantName, reference: d.reference, expires, customerName: d.customerName },
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
  const { vars, view } = linkFacts(d, ctx);
  return {
    vars,
    pick: d.toCustomer ? PAYLINK_PICK_CUSTOMER : PAYLINK_PICK_MERCHANT,
    view: { toCustomer: d.toCustomer, ...view },
    qrLink: d.link,
  };
};

export const reminderPreparer: Preparer = (raw, ctx) => linkFacts(parse(ReminderData, 'reminder', raw), ctx);

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
