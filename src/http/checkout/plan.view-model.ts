// What the customer sees of an order paid in parts (issue 13 part 1): on the checkout, which part
// the link collects and of what total, with the whole schedule; on the receipt page, which part was
// received and what follows (its date, or the merchant's link), or — paid in full — every part's
// receipt with its PDF. Formatted for the page's locale; plain data for templates/pages/*.hbs.
import { formatMoney } from '../../domain/money.ts';
import { dateTimeFormat, numberFormat } from '../../domain/intl-cache.ts';
import { hasPlan, nextUnpaid, openPart, partsPaid, type StoredPart } from '../../domain/order-plan.ts';
import { type MerchantDoc } from '../../db/merchants.repository.ts';
import { type OrderDoc } from '../../db/orders.repository.ts';
import { type Views } from '../views.ts';
import { formatDate } from './checkout.view-model.ts';

/** A part's due date ('YYYY-MM-DD', the merchant's local day) as a long date in `locale`. */
export function formatDay(day: string, locale: string): string {
  const at = new Date(`${day}T12:00:00Z`);
  const opts: Intl.DateTimeFormatOptions = { year: 'numeric', month: 'long', day: 'numeric', timeZone: 'UTC' };
  try {
    return dateTimeFormat(locale, opts).format(at);
  } catch {
    return day;
  }
}

const kindOf = (p: StoredPart): 'deposit' | 'balance' | 'instalment' =>
  p.kind === 'deposit' || p.kind === 'balance' ? p.kind : 'instalment';

/** "Deposit", "Balance", "Instalment 2". */
function partName(views: Views, locale: string, p: StoredPart): string {
  const kind = kindOf(p);
  return views.t(locale, `plan.name.${kind}`, { seq: p.seq });
}

/** The line under the amount to pay: "Deposit (30%) of the total 1,000.00 €". */
function partLine(views: Views, order: OrderDoc, part: StoredPart, locale: string): string {
  const total = formatMoney(order.amountMinor, order.currency, locale);
  const of = order.plan?.parts?.length ?? 0;
  const percent = numberFormat(locale, { style: 'percent', maximumFractionDigits: 1 }).format(part.amountMinor / order.amountMinor);
  return views.t(locale, `plan.line.${kindOf(part)}`, { percent, total, seq: part.seq, of });
}

/** The schedule table: every part with its amount, when it is due and whether it is paid. */
function schedule(views: Views, order: OrderDoc, merchant: MerchantDoc, locale: string) {
  const open = openPart(order);
  return (order.plan?.parts ?? []).map((p) => {
    const paid = Boolean(p.payment?.paidAt);
    const current = !paid && open?.seq === p.seq;
    const dueText = paid
      ? formatDate(p.payment!.paidAt!, locale, merchant.timezone)
      : current
        ? views.t(locale, 'plan.dueNow')
        : p.dueDate
          ? formatDay(p.dueDate, locale)
          : views.t(locale, 'plan.dueOnRequest', { merchant: merchant.name });
    return {
      seq: p.seq,
      name: partName(views, locale, p),
      amountText: formatMoney(p.amountMinor, order.currency, locale),
      dueText,
      paid,
      current,
      statusText: views.t(locale, paid ? 'plan.status.paid' : current ? 'plan.status.now' : 'plan.status.later'),
    };
  });
}

/** The checkout's plan block for an order paid in parts with a part open; undefined otherwise. */
export function checkoutPlanView(views: Views, order: OrderDoc, merchant: MerchantDoc, locale: string) {
  const part = openPart(order);
  if (!hasPlan(order) || !part) return undefined;
  return { line: partLine(views, order, part, locale), rows: schedule(views, order, merchant, locale) };
}

/**
 * The receipt page's plan block: the part just received and what follows (partially paid), or
 * every part's receipt (paid in full). `pdfOf(seq)` is the download link of one part's receipt.
 */
export function receiptPlanView(views: Views, order: OrderDoc, merchant: MerchantDoc, locale: string, pdfOf?: (seq: number) => string) {
  if (!hasPlan(order)) return undefined;
  const paid = partsPaid(order);
  const last = paid.reduce<StoredPart | undefined>((a, p) => (!a || p.payment!.paidAt! > a.payment!.paidAt! ? p : a), undefined);
  if (!last) return undefined;
  const of = order.plan!.parts!.length;
  const received = views.t(locale, `plan.received.${kindOf(last)}`, { seq: last.seq, of });
  const next = nextUnpaid(order);
  let follow: string | undefined;
  if (next) {
    const amount = formatMoney(next.amountMinor, order.currency, locale);
    const when = next.dueDate
      ? views.t(locale, 'plan.follow.on', { date: formatDay(next.dueDate, locale) })
      : views.t(locale, 'plan.follow.onRequest', { merchant: merchant.name });
    follow = views.t(locale, `plan.follow.${kindOf(next)}`, { amount, seq: next.seq, when });
  }
  return {
    lastSeq: last.seq,
    heading: next ? received : views.t(locale, 'plan.paidInFull'),
    received,
    follow,
    paidInFull: !next,
    totalText: views.t(locale, next ? 'plan.paidOfTotal' : 'plan.paidAll', {
      paid: formatMoney(paid.reduce((s, p) => s + p.amountMinor, 0), order.currency, locale),
      total: formatMoney(order.amountMinor, order.currency, locale),
      count: paid.length,
    }),
    parts: paid.map((p) => ({
      seq: p.seq,
      name: partName(views, locale, p),
      amountText: formatMoney(p.amountMinor, order.currency, locale),
      receiptNumber: p.payment?.receiptNumber ?? '',
      paidIso: p.payment!.paidAt!.toISOString(),
      paidText: formatDate(p.payment!.paidAt!, locale, merchant.timezone),
      pdf: pdfOf?.(p.seq),
      pdfLabel: views.t(locale, 'plan.pdf', { receipt: p.payment?.receiptNumber ?? '' }),
    })),
  };
}
