// Turns orders and their history into the plain, formatted data the back-office templates show:
// money with Intl, dates in the merchant's time zone, the timeline of one order.
import { maskCard } from '../../domain/card.ts';
import { formatMoney } from '../../domain/money.ts';
import { type OrderDoc } from '../../db/orders.repository.ts';
import { type OrderPage } from '../../services/order-admin.service.ts';
import { type BackofficeViews } from './backoffice.views.ts';
import { countryName, dateTimeFormat } from '../../domain/intl-cache.ts';

type Stamped = { createdAt?: Date; updatedAt?: Date };

export function shortDate(date: Date | undefined | null, locale: string, timeZone: string): string {
  if (!date) return '';
  const opts: Intl.DateTimeFormatOptions = { year: 'numeric', month: 'short', day: 'numeric', hour: '2-digit', minute: '2-digit' };
  try {
    return dateTimeFormat(locale, { ...opts, timeZone }).format(date);
  } catch {
    return dateTimeFormat(locale, { ...opts, timeZone: 'UTC' }).format(date);
  }
}

const countryOf = (code: string | undefined | null, locale: string): string => (code ? countryName(code, locale) : '');

type Card = { brand?: string | null; last4?: string | null; country?: string | null } | undefined | null;

function cardText(card: Card, locale: string): string {
  if (!card?.brand || !card.last4) return '';
  const country = countryOf(card.country, locale);
  return country ? `${maskCard(card.brand, card.last4)} · ${country}` : maskCard(card.brand, card.last4);
}

export function orderRow(views: BackofficeViews, o: OrderDoc & Stamped, locale: string, tz: string) {
  return {
    id: o._id,
    href: `/backoffice/orders/${encodeURIComponent(o._id)}`,
    reference: o.reference,
    description: o.description ?? '',
    customer: o.customer?.name || o.customer?.email || '',
    created: shortDate(o.createdAt, locale, tz),
    createdIso: o.createdAt?.toISOString() ?? '',
    amount: formatMoney(o.amountMinor, o.currency, locale),
    status: o.status,
    statusLabel: views.t(locale, `status.${o.status}`),
  };
}

/** Page links keeping the current filters. */
export function pager(result: OrderPage, query: URLSearchParams) {
  const href = (page: number) => {
    const q = new URLSearchParams(query);
    q.set('page', String(page));
    return `/backoffice/orders?${q.toString()}`;
  };
  return {
    page: result.page,
    pages: result.pages,
    total: result.total,
    prev: result.page > 1 ? href(result.page - 1) : undefined,
    next: result.page < result.pages ? href(result.page + 1) : undefined,
  };
}

interface MailLike extends Stamped {
  template: string;
  /** A reminder's key says which slot it was (`reminder:<orderId>:before-3d@…` / `:unopened`). */
  dedupeKey?: string | null;
  to: string[];
  status: string;
  sentAt?: Date | null;
  lastError?: string | null;
  /** A permanent bounce, or the latest delay warning, reported for this mail (issue 13 part 8). */
  bounce?: BounceLike | null;
  delayed?: BounceLike | null;
}

interface BounceLike {
  at?: Date | null;
  recipient?: string | null;
  status?: string | null;
  reason?: string | null;
}

/** Mails whose bounce has wording of its own; any other says "e-mail". */
const BOUNCE_WORDED = new Set(['paylink', 'reminder', 'receipt-customer', 'receipt-merchant', 'link-renewed']);

export interface TimelineEntry {
  at: Date;
  when: string;
  text: string;
  detail: string;
  tone: 'info' | 'ok' | 'warn' | 'error';
}

/** Everything that happened to the order, oldest first. */
interface RefundLike {
  at: Date;
  amountMinor: number;
  currency: string;
  by: string;
  reason?: string | null;
}

/** "Payment reminder (3 days before expiry) mailed to …", from the reminder's slot in its dedupe key. */
function reminderText(t: (key: string, vars?: Record<string, unknown>) => string, m: MailLike): string {
  const to = m.to.join(', ');
  const slot = /^reminder:[^:]+:(.+)$/.exec(m.dedupeKey ?? '')?.[1];
  if (slot === 'unopened') return t('timeline.reminderUnopened', { to });
  const days = /^before-(\d+)d@/.exec(slot ?? '')?.[1];
  return days ? t('timeline.reminderBefore', { to, days }) : t('timeline.mail.reminder', { to });
}

export function timeline(
  views: BackofficeViews,
  order: OrderDoc & Stamped,
  mails: MailLike[],
  locale: string,
  tz: string,
  refunds: RefundLike[] = [],
): TimelineEntry[] {
  const t = (key: string, vars?: Record<string, unknown>) => views.t(locale, key, vars);
  const out: Array<Omit<TimelineEntry, 'when'>> = [];
  const created = order.createdAt ?? new Date(0);
  if (order.sourceKey.startsWith('bo:')) out.push({ at: created, text: t('timeline.createdBackoffice'), detail: '', tone: 'info' });
  else out.push({ at: created, text: t('timeline.mailReceived'), detail: order.source?.subject ?? '', tone: 'info' });

  for (const m of mails) {
    const state = m.status === 'sent' ? 'sent' : m.status === 'dead' ? 'failed' : 'queued';
    out.push({
      at: m.sentAt ?? m.createdAt ?? created,
      text: m.template === 'reminder' ? reminderText(t, m) : t(`timeline.mail.${m.template}`, { to: m.to.join(', ') }),
      detail: t(`timeline.mailState.${state}`),
      tone: state === 'failed' ? 'error' : state === 'sent' ? 'ok' : 'info',
    });
    // What came back to the mail's return path: "pay-link undeliverable to <address>: <reason>".
    const kind = BOUNCE_WORDED.has(m.template) ? m.template : 'other';
    for (const [b, key, tone] of [[m.delayed, 'timeline.delayed', 'warn'], [m.bounce, `timeline.bounced.${kind}`, 'error']] as const) {
      if (!b?.at) continue;
      out.push({ at: b.at, text: t(key, { to: b.recipient ?? '', reason: b.reason ?? '' }), detail: b.status ?? '', tone });
    }
  }
  for (const a of order.attempts ?? []) {
    const detail = [cardText(a.card, locale), a.declineCode ? t(`decline.${a.declineCode}`) : '', a.authCode ? t('timeline.authCode', { code: a.authCode }) : '']
      .filter(Boolean)
      .join(' · ');
    out.push({
      at: a.at,
      text: a.moto ? `${t(`timeline.attempt.${a.outcome}`)} · ${t('timeline.moto')}` : t(`timeline.attempt.${a.outcome}`),
      detail,
      tone: a.outcome === 'approved' ? 'ok' : a.outcome === 'challenge' ? 'info' : 'warn',
    });
  }
  // An order paid in parts (issue 13 part 1): each part's payment, named; else the one payment.
  const parts = (order.plan?.parts ?? []).filter((p) => p.payment?.paidAt);
  for (const p of order.plan?.parts && order.plan.parts.length > 1 ? parts : []) {
    const part = t(`plan.kind.${p.kind}`, { n: p.seq, of: order.plan!.parts!.length });
    out.push({ at: p.payment!.paidAt!, text: t('timeline.partPaid', { part, receipt: p.payment!.receiptNumber ?? '' }), detail: cardText(p.payment!.card, locale), tone: 'ok' });
  }
  if (order.payment?.paidAt && !(order.plan?.parts && order.plan.parts.length > 1)) {
    out.push({
      at: order.payment.paidAt,
      text: t('timeline.paid', { receipt: order.payment.receiptNumber ?? '' }),
      detail: cardText(order.payment.card, locale),
      tone: 'ok',
    });
  }
  for (const r of refunds) {
    out.push({
      at: r.at,
      text: t('timeline.refunded', { amount: formatMoney(r.amountMinor, r.currency, locale) }),
      detail: [t('timeline.refundBy', { by: r.by }), r.reason ?? ''].filter(Boolean).join(' · '),
      tone: 'info',
    });
  }
  // The customer's first interaction with the checkout; merely opening the link is never recorded.
  if (order.viewedAt) out.push({ at: order.viewedAt, text: t('timeline.viewed'), detail: '', tone: 'info' });
  if (order.cancelledAt) out.push({ at: order.cancelledAt, text: t('timeline.cancelled'), detail: '', tone: 'warn' });
  if (order.expiredAt) out.push({ at: order.expiredAt, text: t('timeline.expired'), detail: '', tone: 'warn' });
  // Issue 13 parts 3 and 4: the customer stopped reminders, asked for a new link; renewals.
  if (order.remindersOffAt) out.push({ at: order.remindersOffAt, text: t('timeline.remindersOff'), detail: '', tone: 'info' });
  if (order.renewalRequest?.at) out.push({ at: order.renewalRequest.at, text: t('timeline.renewalRequested', { email: order.renewalRequest.email ?? '' }), detail: '', tone: 'info' });
  for (const r of order.renewals ?? []) {
    // The expiry a renewal undid (expiredAt is cleared when the order opens again).
    if (r.previousExpiredAt) out.push({ at: r.previousExpiredAt, text: t('timeline.expired'), detail: '', tone: 'warn' });
    const by = r.by.split(':')[0] ?? '';
    out.push({ at: r.at, text: t('timeline.renewed', { expires: shortDate(r.expiresAt, locale, tz) }), detail: t(`timeline.renewedBy.${by}`), tone: 'ok' });
  }
  return out
    .sort((a, b) => a.at.getTime() - b.at.getTime())
    .map((e) => ({ ...e, when: shortDate(e.at, locale, tz) }));
}

export function orderSummary(views: BackofficeViews, order: OrderDoc & Stamped, locale: string, tz: string) {
  return {
    ...orderRow(views, order, locale, tz),
    customerName: order.customer?.name ?? '',
    customerEmail: order.customer?.email ?? '',
    expires: shortDate(order.expiresAt, locale, tz),
    delivery: views.t(locale, `delivery.${order.delivery}`),
    receiptNumber: order.payment?.receiptNumber ?? '',
    card: cardText(order.payment?.card, locale),
    moto: order.payment?.moto === true,
  };
}
