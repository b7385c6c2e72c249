// Mail data contracts: one zod schema per template for the data a mail is queued with (raw values:
// minor units, ISO dates; the renderer formats them). The schema gives the TypeScript type callers
// queue (MailDataOf), is checked when the mail is queued (src/mail/outbox.ts) and again when it is
// rendered (the outbox holds Mixed, and mail queued before a contract changed must still render).
import { z } from 'zod';
import { LOGO_PATH } from '../domain/brand.ts';
import { ORDER_STATUSES } from '../domain/order-status.ts';
import { AppError } from '../domain/errors.ts';
import { isCurrency } from '../domain/money.ts';

/** Every mail paymail sends; the outbox stores the name, the renderer has one template each. */
export type MailTemplate = 'paylink' | 'receipt-customer' | 'receipt-merchant' | 'intake-reply' | 'reminder' | 'order-expired' | 'command-reply' | 'daily-recap' | 'link-request' | 'link-renewed' | 'mail-bounced';

export const MAIL_TEMPLATES: readonly MailTemplate[] = ['paylink', 'receipt-customer', 'receipt-merchant', 'intake-reply', 'reminder', 'order-expired', 'command-reply', 'daily-recap', 'link-request', 'link-renewed', 'mail-bounced'];

export function isTemplate(name: string): name is MailTemplate {
  return (MAIL_TEMPLATES as readonly string[]).includes(name);
}

const text = z.string().nullish().transform((v) => v ?? '');
const currency = z.string().refine(isCurrency, 'expected an ISO 4217 currency');
const isoDate = z.union([z.string(), z.date()]).transform((v, ctx) => {
  const d = v instanceof Date ? v : new Date(v);
  if (Number.isNaN(d.getTime())) {
    ctx.addIssue({ code: 'custom', message: 'expected an ISO date' });
    return z.NEVER;
  }
  return d;
});
const timeZone = z.string().nullish();

/**
 * The merchant's look in its customers' mails (src/domain/brand.ts): the accent of the button and
 * the logo's path on paymail's site (the renderer makes it absolute and the PDF reads its bytes).
 * Absent in mails queued before merchants had a look, and for merchants without one.
 */
export const BrandData = z
  .object({
    accent: z.string().regex(/^#[0-9a-f]{6}$/).nullish(),
    logoPath: z.string().regex(LOGO_PATH).nullish(),
    logoWidth: z.number().int().positive().max(240).nullish(),
    logoHeight: z.number().int().positive().max(48).nullish(),
  })
  .nullish();

/**
 * The part of an order paid in parts (issue 13 part 1) that a pay-link asks for or a receipt is
 * for: which one of how many, its kind (deposit, balance, instalment) and the order's total. The
 * mail's `amountMinor` is then the part's. Absent for an order paid at once.
 */
export const PartData = z
  .object({ seq: z.number().int().positive(), of: z.number().int().positive(), kind: z.string(), totalMinor: z.number().int() })
  .nullish();

/** What every mail about one order tells of it (src/services/order-effects.ts orderFacts). */
const OrderFactsData = z.object({
  merchantName: z.string(),
  reference: z.string(),
  amountMinor: z.number().int(),
  currency,
  description: text,
  customerName: text,
});

export const PaylinkData = OrderFactsData.extend({
  expiresAt: isoDate,
  link: z.string().min(1),
  toCustomer: z.boolean().nullish().transform((v) => v === true),
  timeZone,
  brand: BrandData,
  part: PartData,
});

export const ReceiptData = z.object({
  receiptNumber: z.string(),
  merchantName: z.string(),
  /** The merchant's contact address, printed on the PDF (absent in receipts queued before it was). */
  merchantEmail: text,
  reference: z.string(),
  amountMinor: z.number().int(),
  currency,
  description: text,
  card: z.object({
    brand: text,
    last4: z.string(),
    expMonth: z.number().nullish(),
    expYear: z.number().nullish(),
    country: z.string().nullish(),
  }),
  authCode: text,
  paidAt: isoDate,
  customerEmail: text,
  customerName: text,
  link: text,
  timeZone,
  /** Signed payment proof (src/domain/receipt-proof.ts) and the page that verifies it. */
  proof: text,
  verifyUrl: text,
  /** The signed link removing the saved card this payment used or saved (customer's receipt only). */
  removeCardUrl: text,
  brand: BrandData,
  part: PartData,
});

/** A pay-link mail's facts without the delivery switch (the reminder and the renewed link). */
const LinkFactsData = PaylinkData.omit({ toCustomer: true });

/**
 * The customer's reminder (issue 13 part 3): a pay-link mail's facts, which slot it is (before
 * expiry, or the link not opened) and the stop-reminders link (absent in reminders queued before).
 */
export const ReminderData = LinkFactsData.extend({
  kind: z.enum(['before', 'unopened']).nullish(),
  daysBefore: z.number().int().nullish(),
  remindersOffLink: text,
});

/** Tells the merchant a pay-link expired unpaid. */
export const OrderExpiredData = LinkFactsData.omit({ link: true }).extend({ customerEmail: text });

/** Tells the merchant the customer asks for a new link for an expired order (issue 13 part 4). */
export const LinkRequestData = LinkFactsData.omit({ link: true }).extend({
  customerEmail: text,
  /** The order's page in the back office, where a button renews the link. */
  backofficeLink: z.string().min(1),
});

/** The customer's renewed pay-link (issue 13 part 4). */
export const LinkRenewedData = LinkFactsData;

const FieldProblemData = z.object({
  field: z.string(),
  code: z.string(),
  message: z.string(),
  value: z.union([z.string(), z.number()]).nullish(),
  line: z.number().nullish(),
  row: z.number().nullish(),
});

export const IntakeReplyData = z.object({
  subject: text,
  created: z
    .array(
      z.object({
        reference: z.string(),
        amountMinor: z.number().int(),
        currency,
        link: z.string(),
        expiresAt: isoDate,
        duplicate: z.enum(['source', 'reference']).nullish(),
        /** The expiry asked for was beyond the maximum link lifetime and was capped. */
        capped: z.boolean().nullish(),
        /** Batch row with customer delivery: the link was mailed to this address. */
        deliveredTo: z.string().nullish(),
        row: z.number().nullish(),
      }),
    )
    .default([]),
  problems: z.array(FieldProblemData).default([]),
  /** Accepted with a change, or something ignored (an unknown batch column). */
  notices: z.array(FieldProblemData).default([]),
  /** Present when the orders came from a CSV/JSON attachment. */
  batch: z.object({ filename: text, rows: z.number().int() }).nullish(),
  timeZone,
});

/** The answer to a reply command (src/services/commands.service.ts). */
export const CommandReplyData = z.object({
  subject: text,
  command: z.enum(['STATUS', 'CANCEL', 'RESEND', 'EXTEND', 'BALANCE']),
  reference: z.string(),
  argument: text,
  code: z.string(),
  capped: z.boolean().nullish(),
  resentTo: text,
  message: text,
  /** EXTEND: the expiry before the command. */
  previousExpiresAt: isoDate.nullish(),
  /** CANCEL of a partly paid order (issue 13 part 1): what it was paid, refunded or kept. */
  paidMinor: z.number().int().nullish(),
  /** BALANCE (issue 13 part 1): the part asked for (or the deposit not paid yet). */
  part: z.object({ seq: z.number().int().positive(), of: z.number().int().positive(), kind: z.string(), amountMinor: z.number().int() }).nullish(),
  order: z
    .object({
      reference: z.string(),
      status: z.enum(ORDER_STATUSES),
      amountMinor: z.number().int(),
      currency,
      link: text,
      expiresAt: isoDate,
      paidAt: isoDate.nullish(),
      attempts: z.object({
        total: z.number().int(),
        declined: z.number().int(),
        lastOutcome: z.string().nullish(),
        lastAt: isoDate.nullish(),
      }),
    })
    .nullish(),
  timeZone,
});

/**
 * Tells the merchant a mail about an order bounced for good (issue 13 part 8,
 * src/services/bounce.service.ts) and how to send the pay-link to a corrected address.
 */
export const MailBouncedData = OrderFactsData.extend({
  /** The template of the mail that bounced (paylink, reminder, receipt-customer, …). */
  mail: z.string(),
  recipient: z.string(),
  status: text,
  reason: z.string(),
  bouncedAt: isoDate,
  /** Whether the order can still be paid (the RESEND command only helps then). */
  payable: z.boolean(),
  timeZone,
});

/** The daily recap (src/services/recap.service.ts builds it; RecapData is the same shape). */
export const RecapCard = z.object({ brand: text, last4: text, country: text }).nullish();
const RecapTotal = z.object({ currency, count: z.number().int(), totalMinor: z.number().int() });
const RecapPart = z.object({ seq: z.number().int(), of: z.number().int(), kind: z.string() });
const RecapMoneyItem = z.object({ at: isoDate, reference: z.string(), orderId: text, amountMinor: z.number().int(), currency, card: RecapCard, part: RecapPart.nullish() });
const RecapMoneyList = z.object({ totals: z.array(RecapTotal).default([]), count: z.number().int().default(0), items: z.array(RecapMoneyItem).default([]) });
export const DailyRecapData = z.object({
  merchantName: z.string(),
  date: z.string().regex(/^\d{4}-\d{2}-\d{2}$/),
  timeZone,
  hours: z.number().default(24),
  orders: z.array(RecapTotal.extend({ status: z.string() })).default([]),
  payments: RecapMoneyList,
  refunds: RecapMoneyList.default({ totals: [], count: 0, items: [] }),
  failed: z.object({
    count: z.number().int(),
    items: z.array(
      z.object({ at: isoDate, reference: z.string(), amountMinor: z.number().int(), currency, outcome: z.string(), declineCode: text, card: RecapCard }),
    ),
  }),
  expired: z.object({
    count: z.number().int(),
    items: z.array(z.object({ at: isoDate, reference: z.string(), amountMinor: z.number().int(), currency, customer: text })),
  }),
  // Recaps queued before "opened, not paid" existed have none.
  opened: z.object({ count: z.number().int() }).default({ count: 0 }),
  // Issue 13 part 7 (absent in recaps queued before): open orders to act on at the recap's time.
  expiringSoon: z
    .object({ count: z.number().int(), items: z.array(z.object({ reference: z.string(), amountMinor: z.number().int(), currency, expiresAt: isoDate, customer: text })) })
    .default({ count: 0, items: [] }),
  openedUnpaid: z
    .object({ count: z.number().int(), items: z.array(z.object({ reference: z.string(), amountMinor: z.number().int(), currency, viewedAt: isoDate, expiresAt: isoDate, customer: text })) })
    .default({ count: 0, items: [] }),
  // Issue 13 part 7 (absent in recaps queued before): partly paid orders and their next step.
  partPaid: z
    .object({
      count: z.number().int(),
      items: z.array(
        z.object({
          reference: z.string(),
          currency,
          totalMinor: z.number().int(),
          paidMinor: z.number().int(),
          partsPaid: z.number().int(),
          customer: text,
          next: RecapPart.extend({ amountMinor: z.number().int(), step: z.enum(['open', 'expired', 'due', 'ask']), at: isoDate.nullish() }),
        }),
      ),
    })
    .default({ count: 0, items: [] }),
  chart: z.object({ currency, days: z.array(z.object({ date: z.string(), totalMinor: z.number().int(), count: z.number().int() })) }),
  csv: z.object({ filename: z.string(), content: z.string() }).nullish(),
});

/** Each template's schema. */
export const MAIL_DATA = {
  paylink: PaylinkData,
  'receipt-customer': ReceiptData,
  'receipt-merchant': ReceiptData,
  'intake-reply': IntakeReplyData,
  reminder: ReminderData,
  'order-expired': OrderExpiredData,
  'command-reply': CommandReplyData,
  'daily-recap': DailyRecapData,
  'mail-bounced': MailBouncedData,
  'link-request': LinkRequestData,
  'link-renewed': LinkRenewedData,
} as const satisfies Record<MailTemplate, z.ZodType>;

/** The data a mail of template T is queued with (the schema's input: ISO strings or Dates, optional texts). */
export type MailDataOf<T extends MailTemplate> = z.input<(typeof MAIL_DATA)[T]>;

export type ReceiptFacts = z.output<typeof ReceiptData>;

/** Parses a template's data; MAIL_DATA_INVALID names the template and the first field at fault. */
export function parseMailData<T extends z.ZodType>(schema: T, template: string, data: unknown): z.output<T> {
  const r = schema.safeParse(data);
  if (!r.success) {
    const issue = r.error.issues[0];
    throw new AppError('MAIL_DATA_INVALID', `${template} mail data invalid at ${issue?.path.join('.') ?? '?'}: ${issue?.message ?? ''}`, {
      details: r.error.issues,
    });
  }
  return r.data;
}

/**
 * Checks a mail's data against its template's contract when it is queued, so a programming error
 * fails at the call site rather than in the worker: MAIL_DATA_INVALID names the template and every
 * field at fault. The data is stored as given (the renderer parses it again).
 */
export function validateMailData(template: string, data: unknown): void {
  const schema = (MAIL_DATA as Record<string, z.ZodType | undefined>)[template];
  if (!schema) throw new AppError('MAIL_TEMPLATE_UNKNOWN', `unknown mail template "${template}"`);
  const r = schema.safeParse(data);
  if (r.success) return;
  const problems = r.error.issues.map((i) => `${i.path.join('.') || '(data)'}: ${i.message}`).join('; ');
  throw new AppError('MAIL_DATA_INVALID', `${template} mail data invalid at ${problems}`, { details: r.error.issues });
}
