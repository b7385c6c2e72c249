// The merchant's notice that a mail about an order bounced for good (issue 13 part 8): which
// mail, which address, the receiving server's reason, and the reply that sends the pay-link to a
// corrected address (`RESEND <ref> new@address`).
import { formatMoney } from '../../domain/money.ts';
import { MailBouncedData, parseMailData as parse } from '../contracts.ts';
import { formatDateTime } from '../format.ts';
import { type Preparer } from './types.ts';

export const mailBouncedPreparer: Preparer = (raw, ctx, t) => {
  const d = parse(MailBouncedData, 'mail-bounced', raw);
  const amount = formatMoney(d.amountMinor, d.currency, ctx.intl);
  const names = (t.mails && typeof t.mails === 'object' ? t.mails : {}) as Record<string, string>;
  const mailKind = names[d.mail] ?? names.other ?? d.mail;
  const bouncedAt = formatDateTime(d.bouncedAt, ctx.intl, ctx.timeZone);
  return {
    vars: { reference: d.reference, amount, recipient: d.recipient, merchant: d.merchantName, reason: d.reason, mailKind },
    view: {
      merchantName: d.merchantName,
      reference: d.reference,
      amount,
      description: d.description,
      customerName: d.customerName,
      recipient: d.recipient,
      reason: d.reason,
      status: d.status,
      bouncedAt,
      payable: d.payable,
    },
  };
};
