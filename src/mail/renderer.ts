// Outbound mail rendering. At start-up every MJML template is compiled ONCE into responsive HTML
// that still holds Handlebars slots, and that HTML is compiled with Handlebars; rendering a mail
// is then only a Handlebars call (plus a QR code for pay-links). Strings come from
// templates/locales/<lc>/mail.json with English as the fallback; values are formatted with Intl.
import { hash } from 'node:crypto';
import { readdir, readFile } from 'node:fs/promises';
import path from 'node:path';
import Handlebars from 'handlebars';
import mjml2html from 'mjml';
import { qrPng, type QrPngOptions } from './qr-png.ts';
import { z } from 'zod';
import { brandName, maskCard } from '../domain/card.ts';
import { AppError } from '../domain/errors.ts';
import { formatMoney, isCurrency } from '../domain/money.ts';
import { renderBarChart } from '../domain/recap-chart.ts';
import { type MailTemplate } from './outbox.ts';
import { receiptPdfFilename, renderReceiptPdf, type ReceiptPdf, type ReceiptPdfContent } from './receipt-pdf.ts';
import { dateTimeFormat } from '../domain/intl-cache.ts';
import { isTimeZone } from '../domain/time-zone.ts';

export const MAIL_TEMPLATES: readonly MailTemplate[] = ['paylink', 'receipt-customer', 'receipt-merchant', 'intake-reply', 'reminder', 'order-expired', 'command-reply', 'daily-recap'];
export const MAIL_LOCALES = ['en', 'it', 'fr', 'de', 'es'] as const;
export const DEFAULT_TIME_ZONE = 'Europe/Rome';
/** The pay-link QR image: qrcode's symbol at level M (see qr-png.ts), shown at 160 px, drawn at ≥ 360 px. */
export const QR_OPTIONS: QrPngOptions = { errorCorrectionLevel: 'M', margin: 1, width: 360, dark: '#111827', light: '#ffffff' };

export interface MailAttachment {
  filename: string;
  content: Buffer;
  contentType: string;
  /** Content-ID referenced from the HTML as `cid:<cid>` (inline image). */
  cid: string;
  /** 'attachment' for files the reader saves (the recap CSV); inline images by default. */
  disposition?: 'inline' | 'attachment';
}

export interface RenderedMail {
  subject: string;
  html: string;
  text: string;
  attachments: MailAttachment[];
}

export interface RenderRequest {
  template: string;
  locale: string;
  data: Record<string, unknown>;
}

export interface MailRenderer {
  render(req: RenderRequest): Promise<RenderedMail>;
  /** The PDF receipt the receipt mails carry, from the same data: what the download routes serve. */
  receiptPdf(req: Omit<RenderRequest, 'template'>): Promise<ReceiptPdf>;
  /** How many times MJML ran: once per template at start-up, never per mail. */
  readonly compiledCount: number;
}

export interface MailRendererOptions {
  templatesDir: string;
  publicUrl: string;
}

// ---- data contracts (what enqueueMail stores; validated here because the outbox holds Mixed) ----

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

const PaylinkData = z.object({
  merchantName: z.string(),
  reference: z.string(),
  amountMinor: z.number().int(),
  currency,
  description: text,
  customerName: text,
  expiresAt: isoDate,
  link: z.string().min(1),
  toCustomer: z.boolean().nullish().transform((v) => v === true),
  timeZone,
});

const ReceiptData = z.object({
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
});

/** The customer's reminder, 24 hours before the pay-link expires: a pay-link mail's facts. */
const ReminderData = PaylinkData.omit({ toCustomer: true });

/** Tells the merchant a pay-link expired unpaid. */
const OrderExpiredData = ReminderData.omit({ link: true }).extend({ customerEmail: text });

const FieldProblemData = z.object({
  field: z.string(),
  code: z.string(),
  message: z.string(),
  value: z.union([z.string(), z.number()]).nullish(),
  line: z.number().nullish(),
  row: z.number().nullish(),
});

const IntakeReplyData = z.object({
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
const CommandReplyData = z.object({
  subject: text,
  command: z.enum(['STATUS', 'CANCEL', 'RESEND', 'EXTEND']),
  reference: z.string(),
  argument: text,
  code: z.string(),
  capped: z.boolean().nullish(),
  resentTo: text,
  message: text,
  /** EXTEND: the expiry before the command. */
  previousExpiresAt: isoDate.nullish(),
  order: z
    .object({
      reference: z.string(),
      status: z.enum(['pending', 'paid', 'cancelled', 'expired']),
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

/** The daily recap (src/services/recap.service.ts builds it; RecapData is the same shape). */
const RecapCard = z.object({ brand: text, last4: text, country: text }).nullish();
const RecapTotal = z.object({ currency, count: z.number().int(), totalMinor: z.number().int() });
const RecapMoneyItem = z.object({ at: isoDate, reference: z.string(), orderId: text, amountMinor: z.number().int(), currency, card: RecapCard });
const RecapMoneyList = z.object({ totals: z.array(RecapTotal).default([]), count: z.number().int().default(0), items: z.array(RecapMoneyItem).default([]) });
const DailyRecapData = z.object({
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
  chart: z.object({ currency, days: z.array(z.object({ date: z.string(), totalMinor: z.number().int(), count: z.number().int() })) }),
  csv: z.object({ filename: z.string(), content: z.string() }).nullish(),
});

// ---- formatting ----

type Strings = Record<string, unknown>;

interface Ctx {
  /** BCP 47 tag used with Intl ("it", "de-CH"). */
  intl: string;
  timeZone: string;
}

// Intl formatters are costly to build (bench P3): zones and formatters come from the shared caches.
function validTimeZone(tz: string | null | undefined): string {
  return tz && isTimeZone(tz) ? tz : DEFAULT_TIME_ZONE;
}

export function formatDateTime(date: Date, intl: string, timeZone: string): string {
  // Explicit parts rather than dateStyle so the zone name can be shown: readers may live elsewhere.
  return dateTimeFormat(intl, { year: 'numeric', month: 'long', day: 'numeric', hour: '2-digit', minute: '2-digit', timeZone, timeZoneName: 'short' }).format(date);
}

function countryName(code: string, intl: string): string {
  try {
    return new Intl.DisplayNames([intl], { type: 'region' }).of(code.toUpperCase()) ?? code;
  } catch {
    return code;
  }
}

/** Replaces `{name}` placeholders; the result is still escaped by Handlebars when shown in HTML. */
function fill(template: string, vars: Record<string, string | number>): string {
  return template.replace(/\{(\w+)\}/g, (_, k: string) => String(vars[k] ?? ''));
}

/**
 * A locale's string section split once at its `{name}` placeholders: [key, literal, name, literal,
 * name, …, literal] per string. Filling it per mail is then concatenation, with no regex scan of
 * every string (bench P3). Same result as fill() on each string-valued key, in key order.
 */
type CompiledSection = Array<[key: string, parts: string[]]>;

function compileSection(strings: unknown): CompiledSection {
  const out: CompiledSection = [];
  if (strings && typeof strings === 'object') {
    for (const [k, v] of Object.entries(strings)) if (typeof v === 'string') out.push([k, v.split(/\{(\w+)\}/)]);
  }
  return out;
}

function fillAll(section: CompiledSection, vars: Record<string, string | number>): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, parts] of section) {
    let s = parts[0]!;
    for (let i = 1; i < parts.length; i += 2) s += String(vars[parts[i]!] ?? '') + parts[i + 1]!;
    out[k] = s;
  }
  return out;
}

function deepMerge(base: Strings, over: Strings): Strings {
  const out: Strings = { ...base };
  for (const [k, v] of Object.entries(over)) {
    const b = out[k];
    out[k] =
      v && typeof v === 'object' && !Array.isArray(v) && b && typeof b === 'object'
        ? deepMerge(b as Strings, v as Strings)
        : v;
  }
  return out;
}

/** One-line subject: the merchant's name or original subject must not break the header. */
function oneLine(s: string): string {
  return s.replace(/[\r\n\t]+/g, ' ').replace(/\s{2,}/g, ' ').trim();
}

// Reply prefixes of the common mail clients (Re, Aw, R, Rif, Réf, RV, with counters such as Re[2]
// or Re^2 and French spacing "Réf. :"): our reply's own prefix replaces them, so subjects do not
// stack up "Re: Re:". Forward prefixes (Fwd, I, WG, TR) say something else and are kept.
const REPLY_PREFIXES = /^(?:\s*(?:re|aw|r|rif|r[ée]f\.?|rv|sv|antw)\s*(?:\[\d+\]|\^\d+|\(\d+\))?\s*:)+\s*/i;

/** The subject a reply quotes: one line, without the reply prefixes already on it. */
export function replySubject(s: string): string {
  return oneLine(s).replace(REPLY_PREFIXES, '');
}

const PLURAL_RULES = new Map<string, Intl.PluralRules>();
/**
 * A string with plural forms (`{ "one": …, "other": … }`, Intl.PluralRules categories) picked
 * for `n` in the language `intl`; a plain string is used as it is.
 */
function pluralForm(entry: unknown, n: number, intl: string): string {
  if (typeof entry === 'string') return entry;
  if (!entry || typeof entry !== 'object') return '';
  let rules = PLURAL_RULES.get(intl);
  if (!rules) PLURAL_RULES.set(intl, (rules = new Intl.PluralRules(intl)));
  const forms = entry as Record<string, unknown>;
  const chosen = forms[rules.select(n)] ?? forms.other;
  return typeof chosen === 'string' ? chosen : '';
}

// ---- per-template view models ----

interface Prepared {
  /** Placeholder values for this template's strings (`{amount}`, `{merchant}`, …). */
  vars: Record<string, string | number>;
  /** Variant strings shown under a generic name, e.g. { subject: 'subjectCustomer' }. */
  pick?: Record<string, string>;
  view: Record<string, unknown>;
  qrLink?: string;
  /** Files and inline images this mail carries besides the QR code. */
  attachments?: MailAttachment[];
  /** A receipt mail's facts: the PDF receipt is attached, rendered from them. */
  receipt?: ReceiptFacts;
}

type ReceiptFacts = z.output<typeof ReceiptData>;

type Preparer = (data: Record<string, unknown>, ctx: Ctx, t: Strings) => Prepared;

function parse<T extends z.ZodType>(schema: T, template: string, data: unknown): z.output<T> {
  const r = schema.safeParse(data);
  if (!r.success) {
    const issue = r.error.issues[0];
    throw new AppError('MAIL_DATA_INVALID', `${template} mail data invalid at ${issue?.path.join('.') ?? '?'}: ${issue?.message ?? ''}`, {
      details: r.error.issues,
    });
  }
  return r.data;
}

function receiptPreparer(template: 'receipt-customer' | 'receipt-merchant'): Preparer {
  return (raw, ctx) => {
    const d = parse(ReceiptData, template, raw);
    const amount = formatMoney(d.amountMinor, d.currency, ctx.intl);
    const country = d.card.country ? countryName(d.card.country, ctx.intl) : '';
    const card = maskCard(brandName(d.card.brand), d.card.last4).trim();
    const customer = d.customerName && d.customerEmail ? `${d.customerName} <${d.customerEmail}>` : d.customerName || d.customerEmail;
    return {
      vars: { amount, merchant: d.merchantName, reference: d.reference, receiptNumber: d.receiptNumber, customer: customer || '—' },
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
      },
      receipt: d,
    };
  };
}

/**
 * The PDF receipt's text: the receipt mails' labels (`common`) and the `receiptPdf` strings,
 * values formatted for the locale, the paid time in the merchant's zone with the zone's name.
 */
function receiptPdfContent(d: ReceiptFacts, ctx: Ctx, labels: Record<string, string>, t: Record<string, string>): ReceiptPdfContent {
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

function recapPreparer(raw: Record<string, unknown>, ctx: Ctx, t: Strings): Prepared {
  const d = parse(DailyRecapData, 'daily-recap', raw);
  const group = (k: string) => (t[k] && typeof t[k] === 'object' ? (t[k] as Record<string, string>) : {});
  const str = (k: string) => (typeof t[k] === 'string' ? (t[k] as string) : '');
  const money = (minor: number, cur: string) => formatMoney(minor, cur, ctx.intl);
  // The calendar date itself, not an instant: formatted in UTC so no zone shifts it.
  const day = (iso: string, weekday: 'long' | 'short') =>
    dateTimeFormat(ctx.intl, weekday === 'long' ? { weekday, year: 'numeric', month: 'long', day: 'numeric', timeZone: 'UTC' } : { weekday, day: 'numeric', timeZone: 'UTC' }).format(new Date(`${iso}T12:00:00Z`));
  const time = (at: Date) => dateTimeFormat(ctx.intl, { hour: '2-digit', minute: '2-digit', timeZone: ctx.timeZone, timeZoneName: 'short' }).format(at);
  const card = (c: z.output<typeof RecapCard>) => (c && c.last4 ? maskCard(brandName(c.brand), c.last4).trim() : '');
  const sum = (totals: Array<{ currency: string; totalMinor: number }>) => totals.map((x) => money(x.totalMinor, x.currency)).join(' + ') || money(0, d.chart.currency);
  const more = (shown: number, count: number) => (count > shown ? fill(str('more'), { n: count - shown }) : '');
  const date = day(d.date, 'long');
  const payments = d.payments.items.map((p) => ({ time: time(p.at), reference: p.reference, amount: money(p.amountMinor, p.currency), card: card(p.card), country: p.card?.country ? countryName(p.card.country, ctx.intl) : '' }));
  const refunds = d.refunds.items.map((p) => ({ time: time(p.at), reference: p.reference, amount: money(p.amountMinor, p.currency), card: card(p.card) }));
  const outcomes = group('outcomes');
  const failed = d.failed.items.map((f) => ({ time: time(f.at), reference: f.reference, amount: money(f.amountMinor, f.currency), outcome: [outcomes[f.outcome] ?? f.outcome, f.declineCode].filter(Boolean).join(' · '), card: card(f.card) }));
  const expired = d.expired.items.map((e) => ({ time: time(e.at), reference: e.reference, amount: money(e.amountMinor, e.currency), customer: e.customer }));
  const statuses = group('statuses');
  const chartCid = `recap-chart.${d.date}@paymail`;
  const attachments: MailAttachment[] = [
    { filename: `recap-chart-${d.date}.png`, contentType: 'image/png', cid: chartCid, content: renderBarChart(d.chart.days.map((x) => x.totalMinor)) },
  ];
  if (d.csv) attachments.push({ filename: d.csv.filename, contentType: 'text/csv; charset=utf-8', cid: '', disposition: 'attachment', content: Buffer.from(`\uFEFF${d.csv.content}`, 'utf8') });
  return {
    vars: {
      merchant: d.merchantName,
      date,
      payments: d.payments.count,
      total: sum(d.payments.totals),
      failed: d.failed.count,
      expired: d.expired.count,
      opened: d.opened.count,
      zone: ctx.timeZone,
      currency: d.chart.currency,
      file: d.csv?.filename ?? '',
    },
    view: {
      dayNote: d.hours > 24 ? str('longDay') : d.hours < 24 ? str('shortDay') : '',
      paymentTotals: d.payments.totals.map((x) => ({ count: x.count, total: money(x.totalMinor, x.currency) })),
      orders: d.orders.map((o) => ({ status: statuses[o.status] ?? o.status, count: o.count, total: money(o.totalMinor, o.currency) })),
      payments,
      paymentsMore: more(payments.length, d.payments.count),
      refunds,
      refundsMore: more(refunds.length, d.refunds.count),
      failed,
      failedMore: more(failed.length, d.failed.count),
      expired,
      expiredMore: more(expired.length, d.expired.count),
      chartCid,
      chartDays: d.chart.days.map((x) => ({ day: day(x.date, 'short'), total: money(x.totalMinor, d.chart.currency), count: x.count })),
      hasCsv: Boolean(d.csv),
    },
    attachments,
  };
}

const PAYLINK_PICKED = ['subject', 'preheader', 'heading', 'intro', 'footer'];
const PAYLINK_PICK_CUSTOMER = Object.fromEntries(PAYLINK_PICKED.map((k) => [k, `${k}Customer`]));
const PAYLINK_PICK_MERCHANT = Object.fromEntries(PAYLINK_PICKED.map((k) => [k, `${k}Merchant`]));

const PREPARERS: Record<MailTemplate, Preparer> = {
  'daily-recap': recapPreparer,
  paylink(raw, ctx) {
    const d = parse(PaylinkData, 'paylink', raw);
    const amount = formatMoney(d.amountMinor, d.currency, ctx.intl);
    const expires = formatDateTime(d.expiresAt, ctx.intl, ctx.timeZone);
    return {
      vars: { amount, merchant: d.merchantName, reference: d.reference, expires, customerName: d.customerName },
      pick: d.toCustomer ? PAYLINK_PICK_CUSTOMER : PAYLINK_PICK_MERCHANT,
      view: {
        toCustomer: d.toCustomer,
        merchantName: d.merchantName,
        reference: d.reference,
        description: d.description,
        customerName: d.customerName,
        amount,
        expires,
        link: d.link,
      },
      qrLink: d.link,
    };
  },
  'receipt-customer': receiptPreparer('receipt-customer'),
  'receipt-merchant': receiptPreparer('receipt-merchant'),
  reminder(raw, ctx) {
    const d = parse(ReminderData, 'reminder', raw);
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
  },
  'order-expired'(raw, ctx) {
    const d = parse(OrderExpiredData, 'order-expired', raw);
    const amount = formatMoney(d.amountMinor, d.currency, ctx.intl);
    const expires = formatDateTime(d.expiresAt, ctx.intl, ctx.timeZone);
    const customer = d.customerName && d.customerEmail ? `${d.customerName} <${d.customerEmail}>` : d.customerName || d.customerEmail;
    return {
      vars: { amount, merchant: d.merchantName, reference: d.reference, expires },
      view: { merchantName: d.merchantName, reference: d.reference, description: d.description, customer, amount, expires },
    };
  },
  'intake-reply'(raw, _ctx, t) {
    const d = parse(IntakeReplyData, 'intake-reply', raw);
    const fields = (t.fields && typeof t.fields === 'object' ? t.fields : {}) as Record<string, string>;
    const str = (k: string) => (typeof t[k] === 'string' ? (t[k] as string) : '');
    const newCount = d.created.filter((c) => !c.duplicate).length;
    const where = (p: { line?: number | null | undefined; row?: number | null | undefined }) =>
      [p.line != null ? fill(str('line'), { n: p.line }) : '', p.row != null ? fill(str('row'), { n: p.row }) : ''].filter(Boolean).join(', ');
    return {
      vars: {
        subject: replySubject(d.subject),
        created: newCount,
        duplicates: d.created.length - newCount,
        problems: d.problems.length,
        file: d.batch?.filename ?? '',
        rows: d.batch?.rows ?? 0,
      },
      ...(d.subject.trim() ? {} : { pick: { subject: 'subjectFallback' } }),
      view: {
        // Raw values: the template formats them with the money and datetime helpers.
        created: d.created.map((c) => ({
          reference: c.reference,
          amountMinor: c.amountMinor,
          currency: c.currency,
          link: c.link,
          expiresAt: c.expiresAt,
          duplicate: c.duplicate ? str('duplicate') : '',
          capped: c.capped ? str('capped') : '',
          deliveredTo: c.deliveredTo ? fill(str('deliveredTo'), { email: c.deliveredTo }) : '',
          where: c.row != null ? fill(str('row'), { n: c.row }) : '',
        })),
        problems: d.problems.map((p) => ({
          field: fields[p.field] ?? p.field,
          where: where(p),
          value: p.value == null ? '' : String(p.value),
          expected: p.message,
          code: p.code,
        })),
        notices: d.notices.map((p) => ({
          field: fields[p.field] ?? p.field,
          where: where(p),
          value: p.value == null ? '' : String(p.value),
          // Codes with a sentence of their own in the locale; the parser's words otherwise.
          text: (t.noticeText as Record<string, string> | undefined)?.[p.code] ?? p.message,
        })),
        batch: Boolean(d.batch),
      },
    };
  },
  'command-reply'(raw, ctx, t) {
    const d = parse(CommandReplyData, 'command-reply', raw);
    const group = (k: string) => (t[k] && typeof t[k] === 'object' ? (t[k] as Record<string, string>) : {});
    const attemptStrings = (t.attempts && typeof t.attempts === 'object' ? t.attempts : {}) as Record<string, unknown>;
    const o = d.order;
    const amount = o ? formatMoney(o.amountMinor, o.currency, ctx.intl) : '';
    const expires = o ? formatDateTime(o.expiresAt, ctx.intl, ctx.timeZone) : '';
    const status = o ? (group('statuses')[o.status] ?? o.status) : '';
    const vars = {
      subject: replySubject(d.subject),
      command: d.command,
      reference: o?.reference ?? d.reference,
      argument: d.argument,
      amount,
      expires,
      status,
      resentTo: d.resentTo,
      message: d.message,
      previousExpires: d.previousExpiresAt ? formatDateTime(d.previousExpiresAt, ctx.intl, ctx.timeZone) : '',
    };
    const a = o?.attempts;
    const attempts = !a
      ? ''
      : a.total === 0
        ? (group('attempts').none ?? '')
        : fill(pluralForm(attemptStrings.summary, a.total, ctx.intl), { total: a.total, declined: a.declined }) +
          (a.lastOutcome && a.lastAt
            ? ' ' +
              fill(group('attempts').last ?? '', {
                outcome: group('attemptOutcomes')[a.lastOutcome] ?? a.lastOutcome,
                at: formatDateTime(a.lastAt, ctx.intl, ctx.timeZone),
              })
            : '');
    return {
      vars,
      ...(d.subject.trim() ? {} : { pick: { subject: 'subjectFallback' } }),
      view: {
        outcome: fill(group('outcomes')[d.code] ?? d.code, vars),
        capped: d.capped ? (typeof t.capped === 'string' ? t.capped : '') : '',
        order: o
          ? {
              reference: o.reference,
              status,
              amount,
              expires,
              link: o.link,
              paidAt: o.paidAt ? formatDateTime(o.paidAt, ctx.intl, ctx.timeZone) : '',
              attempts,
            }
          : null,
      },
    };
  },
};

// ---- factory ----

// The [name, key] pairs of a `pick` map, computed once per map object (the paylink maps are constants).
const PICK_PAIRS = new WeakMap<Record<string, string>, Array<[string, string]>>();
function pickPairs(pick: Record<string, string>): Array<[string, string]> {
  let pairs = PICK_PAIRS.get(pick);
  if (!pairs) {
    pairs = Object.entries(pick);
    PICK_PAIRS.set(pick, pairs);
  }
  return pairs;
}

interface Compiled {
  html: Handlebars.TemplateDelegate;
  text: Handlebars.TemplateDelegate;
}

function isTemplate(name: string): name is MailTemplate {
  return (MAIL_TEMPLATES as readonly string[]).includes(name);
}

async function loadStrings(templatesDir: string): Promise<Map<string, Strings>> {
  const read = async (lc: string): Promise<Strings> =>
    JSON.parse(await readFile(path.join(templatesDir, 'locales', lc, 'mail.json'), 'utf8')) as Strings;
  const en = await read('en');
  const map = new Map<string, Strings>([['en', en]]);
  for (const lc of MAIL_LOCALES) {
    if (lc !== 'en') map.set(lc, deepMerge(en, await read(lc)));
  }
  return map;
}

// Locale tags seen, resolved once (Intl.getCanonicalLocales per mail showed in the P3 profile).
const RESOLVED_LOCALES = new Map<string, { lc: string; intl: string }>();

function resolveLocale(locale: string): { lc: string; intl: string } {
  let r = RESOLVED_LOCALES.get(locale);
  if (!r) {
    r = resolveLocaleUncached(locale);
    if (RESOLVED_LOCALES.size < 1_000) RESOLVED_LOCALES.set(locale, r);
  }
  return r;
}

function resolveLocaleUncached(locale: string): { lc: string; intl: string } {
  const base = (locale || 'en').toLowerCase().split(/[-_]/)[0] ?? 'en';
  if (!(MAIL_LOCALES as readonly string[]).includes(base)) return { lc: 'en', intl: 'en' };
  try {
    const tag = Intl.getCanonicalLocales(locale.replace(/_/g, '-'))[0];
    return { lc: base, intl: tag ?? base };
  } catch {
    return { lc: base, intl: base };
  }
}

export async function createMailRenderer(opts: MailRendererOptions): Promise<MailRenderer> {
  const mailDir = path.join(opts.templatesDir, 'mail');
  const strings = await loadStrings(opts.templatesDir);
  // Per locale: each template's section and `common`, split at placeholders once, here.
  const compiledStrings = new Map<string, Map<string, CompiledSection>>();
  for (const [lc, all] of strings) {
    compiledStrings.set(lc, new Map(Object.entries(all).map(([k, v]) => [k, compileSection(v)])));
  }
  const hbs = Handlebars.create();
  let compiledCount = 0;

  // Helpers read the locale and zone from the root context, so templates stay locale-agnostic.
  const root = (o: Handlebars.HelperOptions) => (o.data as { root: { _ctx: Ctx } }).root._ctx;
  hbs.registerHelper('money', (amountMinor: number, cur: string, o: Handlebars.HelperOptions) =>
    formatMoney(amountMinor, cur, root(o).intl),
  );
  hbs.registerHelper('datetime', (date: Date, o: Handlebars.HelperOptions) => formatDateTime(date, root(o).intl, root(o).timeZone));

  // Text-part partials (footer, receipt details), compiled here so they keep noEscape.
  for (const file of (await readdir(path.join(mailDir, 'partials'))).filter((f) => f.endsWith('.txt.hbs'))) {
    const source = await readFile(path.join(mailDir, 'partials', file), 'utf8');
    hbs.registerPartial(file.slice(0, -'.txt.hbs'.length), hbs.compile(source, { noEscape: true }));
  }

  const compiled = new Map<MailTemplate, Compiled>();
  for (const name of MAIL_TEMPLATES) {
    const file = path.join(mailDir, `${name}.mjml`);
    const source = await readFile(file, 'utf8');
    compiledCount++;
    // mjml 5 returns a Promise. Strict validation so a template mistake stops start-up.
    const out = await mjml2html(source, {
      filePath: file,
      ignoreIncludes: false,
      includePath: mailDir,
      validationLevel: 'strict',
      keepComments: false,
      // No web fonts: a mail should not make the reader's client call a third party.
      fonts: {},
    });
    if (out.errors.length > 0) {
      throw new AppError('MAIL_TEMPLATE_INVALID', `${name}.mjml: ${out.errors.map((e) => e.formattedMessage).join('; ')}`);
    }
    const textSource = await readFile(path.join(mailDir, `${name}.txt.hbs`), 'utf8');
    compiled.set(name, {
      html: hbs.compile(out.html, { strict: false }),
      // Plain text is not HTML: escaping would turn "&" into "&amp;".
      text: hbs.compile(textSource, { noEscape: true }),
    });
  }
  const publicHost = new URL(opts.publicUrl).host;

  async function receiptPdfOf(d: ReceiptFacts, lc: string, ctx: Ctx): Promise<ReceiptPdf> {
    const sections = compiledStrings.get(lc)!;
    const vars = { merchant: d.merchantName, receiptNumber: d.receiptNumber, host: publicHost };
    const content = receiptPdfContent(d, ctx, fillAll(sections.get('common') ?? [], vars), fillAll(sections.get('receiptPdf') ?? [], vars));
    return { filename: receiptPdfFilename(d.receiptNumber), content: await renderReceiptPdf(content) };
  }

  async function receiptPdf(req: Omit<RenderRequest, 'template'>): Promise<ReceiptPdf> {
    const { lc, intl } = resolveLocale(req.locale);
    return receiptPdfOf(parse(ReceiptData, 'receipt PDF', req.data), lc, { intl, timeZone: validTimeZone(req.data.timeZone as string | undefined) });
  }

  async function render(req: RenderRequest): Promise<RenderedMail> {
    if (!isTemplate(req.template)) {
      throw new AppError('MAIL_TEMPLATE_UNKNOWN', `unknown mail template "${req.template}"`);
    }
    const tpl = compiled.get(req.template)!;
    const { lc, intl } = resolveLocale(req.locale);
    const all = strings.get(lc)!;
    const section = (all[req.template] ?? {}) as Strings;
    const ctx: Ctx = { intl, timeZone: validTimeZone(req.data.timeZone as string | undefined) };
    const prep = PREPARERS[req.template](req.data, ctx, section);
    const vars = { ...prep.vars, host: publicHost };
    const sections = compiledStrings.get(lc)!;
    const t = fillAll(sections.get(req.template) ?? [], vars);
    if (prep.pick) for (const [name, key] of pickPairs(prep.pick)) t[name] = t[key] ?? '';
    const labels = fillAll(sections.get('common') ?? [], vars);
    const subject = oneLine(t.subject ?? '');

    const attachments: MailAttachment[] = [];
    let qrCid = '';
    if (prep.qrLink) {
      qrCid = `qr.${hash('sha256', prep.qrLink, 'hex').slice(0, 16)}@paymail`;
      attachments.push({
        filename: 'pay-link-qr.png',
        contentType: 'image/png',
        cid: qrCid,
        // qrcode's symbol as a 1-bit PNG (src/mail/qr-png.ts): qrcode's own RGBA PNG was most of the render's CPU.
        content: qrPng(prep.qrLink, QR_OPTIONS),
      });
    }
    attachments.push(...(prep.attachments ?? []));
    if (prep.receipt) {
      const pdf = await receiptPdfOf(prep.receipt, lc, ctx);
      attachments.push({ ...pdf, contentType: 'application/pdf', cid: '', disposition: 'attachment' });
    }
    const model = {
      ...prep.view,
      _ctx: ctx,
      lang: lc,
      subject,
      preheader: t.preheader ?? '',
      t,
      labels,
      qrCid,
      publicUrl: opts.publicUrl,
      publicHost,
    };
    return { subject, html: tpl.html(model), text: tpl.text(model), attachments };
  }

  return {
    render,
    receiptPdf,
    get compiledCount() {
      return compiledCount;
    },
  };
}
