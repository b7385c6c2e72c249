// Reads an order from the body of a merchant's mail: `Label: value` lines with labels in English,
// Italian, French, German and Spanish. Pure: no I/O, the clock comes in as `now`.
// Every problem is reported (field, code, value, 1-based line) so the merchant's reply can name
// them all; a draft is returned only when there is none. The same field reader serves batches
// (src/domain/batch.ts), where positions are rows instead of lines.
//
// Which lines count: the merchant's new text, down to a signature, a sign-off ("Kind regards,")
// after the order lines, or the history of a reply. When the new text holds no order line and the
// mail forwards another one (a "Forwarded message" block, or an Outlook separator in a mail whose
// subject says FW/I/WG/TR/RV), the forwarded part is read instead.
// The label tables live in order-mail-labels.ts, the boundary rules in order-mail-boundaries.ts.
import { z } from 'zod';
import { parseExpiry } from './duration.ts';
import { isAppError, type FieldProblem } from './errors.ts';
import { htmlToText } from './html-to-text.ts';
import { isCurrency, parseAmount } from './money.ts';
import { isForwardSubject, segments } from './order-mail-boundaries.ts';
import { type OrderDraft } from './order-draft.ts';
import { readPlan } from './order-mail-plan.ts';
import { parseReminderDays } from './reminders.ts';
import { at, CURRENCY_SYMBOLS, DELIVERY_MODE, type FieldValue, LABEL_FIELD, labelKey, LANGUAGE_CODE, type OrderField } from './order-mail-labels.ts';

export type { OrderDraft };
export { firstStop } from './order-mail-boundaries.ts';
export { fieldForLabel, fold, labelKey, ORDER_MAIL_CODES, ORDER_NOTICE_CODES, type FieldValue, type OrderField } from './order-mail-labels.ts';

const MAX = { reference: 64, description: 500, customerName: 120 } as const;

export interface FieldContext {
  defaultCurrency: string;
  now: Date;
  maxLifetimeDays: number;
  /** Merchant's IANA time zone: an expiry date means the end of that day there. */
  timeZone?: string | undefined;
}

export interface ParseOrderMailInput extends FieldContext {
  /** The text part; when blank, `html` is converted instead. */
  text?: string | undefined;
  html?: string | undefined;
  subject?: string | undefined;
}

export interface ParsedOrderMail {
  draft?: OrderDraft;
  problems: FieldProblem[];
  /** Accepted, but changed: e.g. an expiry beyond the maximum, capped. */
  notices: FieldProblem[];
  /** The body the line numbers refer to ('html' when it was converted from the HTML part). */
  body: 'text' | 'html' | 'none';
  /** How many order lines were read (0: the body holds no order at all). */
  fieldsFound: number;
  /** True when the order lines came from a forwarded message rather than the new text. */
  forwarded: boolean;
}

/** "Mario Rossi <mario@example.com>" → name and address; "mario@example.com <mailto:…>" too. */
function splitAddress(value: string): { name?: string; address: string } {
  const lt = value.indexOf('<');
  const gt = value.indexOf('>', lt + 1);
  if (lt >= 0 && gt > lt) {
    const inside = value.slice(lt + 1, gt).replace(/^mailto:/i, '').trim();
    const outside = value.slice(0, lt).replace(/["']/g, '').trim();
    if (outside.includes('@') && outside.toLowerCase() === inside.toLowerCase()) return { address: inside };
    return outside ? { name: outside, address: inside } : { address: inside };
  }
  return { address: value.replace(/^mailto:/i, '').trim() };
}

const EmailSchema = z.email();

/** Removes "Re:", "Fwd:", "R:", "I:", "AW:", "WG:", "TR:", "RV:" prefixes, however many. */
export function stripSubjectPrefixes(subject: string): string {
  let s = subject.trim();
  for (;;) {
    const m = /^(re|r|fwd?|i|aw|wg|tr|rv|enc|sv|antw)(\[\d+\])?\s*:\s*/i.exec(s);
    if (!m) return s;
    s = s.slice(m[0].length);
  }
}

function bodyOf(input: ParseOrderMailInput): { text: string; body: ParsedOrderMail['body'] } {
  if (input.text && input.text.trim() !== '') return { text: input.text, body: 'text' };
  if (input.html && input.html.trim() !== '') {
    const isLabel = (cell: string) => LABEL_FIELD.has(labelKey(cell)) && !/\d/.test(cell);
    return { text: htmlToText(input.html, { isLabel }), body: 'html' };
  }
  return { text: '', body: 'none' };
}

export interface ReadFields {
  draft?: OrderDraft;
  problems: FieldProblem[];
  notices: FieldProblem[];
}

/**
 * Turns the values of one order (from mail lines or a batch row) into a draft, naming every
 * problem with the field, the value and where it was given.
 */
export function readOrderFields(
  found: ReadonlyMap<OrderField, FieldValue>,
  ctx: FieldContext & { fallbackDescription?: string | undefined },
): ReadFields {
  const problems: FieldProblem[] = [];
  const notices: FieldProblem[] = [];
  const problem = (field: OrderField, code: string, message: string, v?: FieldValue) =>
    problems.push({ field, code, message, ...(v ? at(v) : {}) });

  const draft: Partial<OrderDraft> = {};
  const get = (f: OrderField) => {
    const v = found.get(f);
    return v && v.value !== '' ? v : undefined;
  };

  // Currency first: the amount is read with it.
  let explicitCurrency: string | undefined;
  const currency = get('currency');
  if (currency) {
    const c = CURRENCY_SYMBOLS[currency.value] ?? currency.value.toUpperCase();
    if (isCurrency(c)) explicitCurrency = c;
    else problem('currency', 'ORDER_CURRENCY_UNKNOWN', 'expected an ISO 4217 currency code such as EUR, USD, GBP, CHF', currency);
  }

  const amount = found.get('amount');
  if (!amount || amount.value === '') {
    problems.push({
      field: 'amount',
      code: 'ORDER_AMOUNT_MISSING',
      message: 'an amount is required, e.g. "Amount: 129.90"',
      ...(amount ? { ...at(amount), value: '' } : {}),
    });
  } else {
    const r = parseAmount(amount.value, ctx.defaultCurrency, explicitCurrency);
    if (r.ok) {
      draft.amountMinor = r.money.amountMinor;
      draft.currency = r.money.currency;
    } else {
      problems.push({ ...r.problem, field: 'amount', ...at(amount) });
    }
  }

  const reference = get('reference');
  if (reference) {
    if (reference.value.length > MAX.reference || /[\u0000-\u001f<>]/.test(reference.value)) {
      problem('reference', 'ORDER_REFERENCE_INVALID', `expected at most ${MAX.reference} characters, without < or >`, reference);
    } else draft.reference = reference.value;
  }

  const description = get('description');
  const fallback = ctx.fallbackDescription ?? '';
  if (description) {
    if (description.value.length > MAX.description) {
      problem('description', 'ORDER_TEXT_TOO_LONG', `expected at most ${MAX.description} characters`, description);
    } else draft.description = description.value;
  } else if (fallback) {
    draft.description = fallback.slice(0, MAX.description);
  }

  const email = get('customerEmail');
  let nameFromAddress: string | undefined;
  if (email) {
    const { name, address } = splitAddress(email.value);
    if (EmailSchema.safeParse(address).success) {
      draft.customerEmail = address.toLowerCase();
      nameFromAddress = name;
    } else problem('customerEmail', 'ORDER_EMAIL_INVALID', 'expected an e-mail address such as mario.rossi@example.com', email);
  }

  const name = get('customerName');
  if (name) {
    // "Customer: Mario Rossi <mario@example.com>" gives both.
    const split = name.value.includes('@') ? splitAddress(name.value) : undefined;
    const value = split?.name ?? name.value;
    if (split && !email && EmailSchema.safeParse(split.address).success) draft.customerEmail = split.address.toLowerCase();
    if (value.length > MAX.customerName) {
      problem('customerName', 'ORDER_TEXT_TOO_LONG', `expected at most ${MAX.customerName} characters`, name);
    } else draft.customerName = value;
  } else if (nameFromAddress) draft.customerName = nameFromAddress.slice(0, MAX.customerName);

  const language = get('language');
  if (language) {
    const code = LANGUAGE_CODE.get(labelKey(language.value.split(/[-_]/)[0] ?? ''));
    if (code) draft.locale = code;
    else problem('language', 'ORDER_LANGUAGE_UNKNOWN', 'expected one of en, it, fr, de, es (or English, Italiano, Français, Deutsch, Español)', language);
  }

  const expiry = get('expiry');
  if (expiry) {
    const r = parseExpiry(expiry.value, { now: ctx.now, maxLifetimeDays: ctx.maxLifetimeDays, timeZone: ctx.timeZone });
    if (r.ok) {
      draft.expiresAt = r.expiresAt;
      if (r.capped) {
        notices.push({
          field: 'expiry',
          code: 'ORDER_EXPIRY_CAPPED',
          message: `capped at the maximum link lifetime of ${ctx.maxLifetimeDays} days`,
          ...at(expiry),
        });
      }
    } else problem('expiry', r.code, r.message, expiry);
  }

  const delivery = get('delivery');
  if (delivery) {
    const mode = DELIVERY_MODE.get(labelKey(delivery.value));
    if (mode) draft.delivery = mode;
    else problem('delivery', 'ORDER_DELIVERY_UNKNOWN', 'expected merchant (the link comes to you) or customer (straight to the customer)', delivery);
  }

  const reminders = get('reminders');
  if (reminders) {
    const r = parseReminderDays(reminders.value);
    if (!r.ok) problem('reminders', 'ORDER_REMINDERS_INVALID', r.message, reminders);
    else draft.reminders = r.off ? { off: true } : { daysBefore: r.days };
  }

  // Deposit, balance due and instalments: checked against the amount, so after it.
  const plan = readPlan({ deposit: get('deposit'), balanceDue: get('balanceDue'), instalments: get('instalments') }, draft, explicitCurrency ?? ctx.defaultCurrency, ctx);
  for (const p of plan.problems) problem(p.field, p.code, p.message, p.at);
  if (plan.plan) draft.plan = plan.plan;

  if (problems.length > 0 || draft.amountMinor === undefined || draft.currency === undefined) return { problems, notices };
  return { draft: draft as OrderDraft, problems, notices };
}

const byPosition = (a: FieldProblem, b: FieldProblem) => (a.line ?? a.row ?? Infinity) - (b.line ?? b.row ?? Infinity);

export function parseOrderMail(input: ParseOrderMailInput): ParsedOrderMail {
  const { text, body } = bodyOf(input);
  const parts = segments(text, isForwardSubject(input.subject ?? ''));
  // The new text wins; a forwarded part counts only when the new text holds no order line.
  const chosen = parts[0]!.count > 0 ? parts[0]! : (parts.find((p) => p.kind === 'forward' && p.count > 0) ?? parts[0]!);
  const forwarded = chosen !== parts[0];
  const r = readOrderFields(chosen.found, {
    ...input,
    // A forward's subject is the forwarded one's with a prefix: stripped either way.
    fallbackDescription: input.subject ? stripSubjectPrefixes(input.subject) : '',
  });
  const problems = [...chosen.problems, ...r.problems].sort(byPosition);
  const result: ParsedOrderMail = { problems, notices: r.notices, body, fieldsFound: chosen.count, forwarded };
  if (r.draft && problems.length === 0) result.draft = r.draft;
  return result;
}

/** The parts of a parsed message the order reader needs (mailparser's ParsedMail fits). */
export interface MailContent {
  subject?: string | undefined;
  text?: string | undefined;
  html?: string | false | undefined;
  attachments?: ReadonlyArray<{ contentType: string; filename?: string | undefined; content: Uint8Array }> | undefined;
}

/** Forwarded-as-attachment messages read at most, and their largest size: a mail is not an archive. */
const MAX_ATTACHED_MESSAGES = 3;
const MAX_ATTACHED_BYTES = 2 * 1024 * 1024;

/**
 * Reads the order of a parsed mail: its body, or, when the body holds no order line, a message
 * forwarded as an attachment (message/rfc822, Outlook's "Forward as attachment"), parsed with
 * `parseAttached` (the caller's MIME parser; this module does no I/O).
 */
export async function readOrderMail(
  mail: MailContent,
  ctx: FieldContext,
  parseAttached?: (raw: Buffer) => Promise<MailContent>,
): Promise<ParsedOrderMail & { attachedMessage?: string }> {
  const html = typeof mail.html === 'string' ? mail.html : undefined;
  const parsed = parseOrderMail({ ...ctx, text: mail.text, html, subject: mail.subject });
  if (parsed.fieldsFound > 0 || !parseAttached) return parsed;
  const attached = (mail.attachments ?? [])
    .filter((a) => a.contentType.toLowerCase() === 'message/rfc822' && a.content.byteLength <= MAX_ATTACHED_BYTES)
    .slice(0, MAX_ATTACHED_MESSAGES);
  for (const a of attached) {
    let inner: MailContent;
    try {
      inner = await parseAttached(Buffer.from(a.content.buffer, a.content.byteOffset, a.content.byteLength));
    } catch (e) {
      // Only the parser refusing these bytes (MAIL_PARSE_FAILED, or the in-thread parser's own
      // error) means the attachment holds no order we can read: the mail is still answered. A
      // parser that is busy, shut down, crashed or out of time says nothing about the attachment:
      // the error goes up and intake retries the whole message.
      if (isAppError(e) && e.code !== 'MAIL_PARSE_FAILED') throw e;
      continue;
    }
    const r = parseOrderMail({
      ...ctx,
      text: inner.text,
      html: typeof inner.html === 'string' ? inner.html : undefined,
      subject: inner.subject || mail.subject,
    });
    if (r.fieldsFound > 0) return { ...r, forwarded: true, attachedMessage: a.filename ?? inner.subject ?? 'message' };
  }
  return parsed;
}
