// One preparer per template: each parses its template's data (src/mail/contracts.ts) and builds
// the placeholder values and view its MJML/Handlebars templates read.
import { type MailTemplate } from '../outbox.ts';
import { linkRenewedPreparer, linkRequestPreparer, orderExpiredPreparer, paylinkPreparer, reminderPreparer } from './paylink.ts';
import { mailBouncedPreparer } from './bounce.ts';
import { receiptPreparer } from './receipt.ts';
import { recapPreparer } from './recap.ts';
import { commandReplyPreparer, intakeReplyPreparer } from './replies.ts';
import { type Preparer } from './types.ts';

export const PREPARERS: Record<MailTemplate, Preparer> = {
  'daily-recap': recapPreparer,
  paylink: paylinkPreparer,
  'receipt-customer': receiptPreparer('receipt-customer'),
  'receipt-merchant': receiptPreparer('receipt-merchant'),
  reminder: reminderPreparer,
  'order-expired': orderExpiredPreparer,
  'intake-reply': intakeReplyPreparer,
  'command-reply': commandReplyPreparer,
  'mail-bounced': mailBouncedPreparer,
  'link-request': linkRequestPreparer,
  'link-renewed': linkRenewedPreparer,
};
