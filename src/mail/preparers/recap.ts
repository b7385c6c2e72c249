// The daily recap mail: the day's payments, refunds, failed attempts and expired links in the
// merchant's zone, a bar chart of the last days as an inline PNG and, if asked for, the CSV.
import { type z } from 'zod';
import { brandName, maskCard } from '../../domain/card.ts';
import { dateTimeFormat } from '../../domain/intl-cache.ts';
import { formatMoney } from '../../domain/money.ts';
import { renderBarChart } from '../../domain/recap-chart.ts';
import { DailyRecapData, parseMailData as parse, type RecapCard } from '../contracts.ts';
import { countryName, type Ctx, fill, type Strings } from '../format.ts';
import type { MailAttachment } from './types.ts';
import { type Prepared } from './types.ts';

export function recapPreparer(raw: Record<string, unknown>, ctx: Ctx, t: Strings): Prepared {
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
  // Issue 13 part 1: the part a payment paid — Deposit, Balance, Instalment 2/3.
  const partLabel = (p: { seq: number; of: number; kind: string }) =>
    p.kind === 'deposit' ? str('partDeposit') : p.kind === 'balance' ? str('partBalance') : fill(str('partInstalment'), { seq: p.seq, of: p.of });
  const payments = d.payments.items.map((p) => ({ time: time(p.at), reference: p.reference, part: p.part ? partLabel(p.part) : '', amount: money(p.amountMinor, p.currency), card: card(p.card), country: p.card?.country ? countryName(p.card.country, ctx.intl) : '' }));
  const refunds = d.refunds.items.map((p) => ({ time: time(p.at), reference: p.reference, part: p.part ? partLabel(p.part) : '', amount: money(p.amountMinor, p.currency), card: card(p.card) }));
  const outcomes = group('outcomes');
  const failed = d.failed.items.map((f) => ({ time: time(f.at), reference: f.reference, amount: money(f.amountMinor, f.currency), outcome: [outcomes[f.outcome] ?? f.outcome, f.declineCode].filter(Boolean).join(' · '), card: card(f.card) }));
  const expired = d.expired.items.map((e) => ({ time: time(e.at), reference: e.reference, amount: money(e.amountMinor, e.currency), customer: e.customer }));
  const statuses = group('statuses');
  // Issue 13 part 7: open orders to act on (expiring within 24 hours; opened but not paid).
  const at = (x: Date) => dateTimeFormat(ctx.intl, { day: 'numeric', month: 'short', hour: '2-digit', minute: '2-digit', timeZone: ctx.timeZone }).format(x);
  const expiringSoon = d.expiringSoon.items.map((e) => ({ expires: at(e.expiresAt), reference: e.reference, amount: money(e.amountMinor, e.currency), customer: e.customer, command: `EXTEND ${e.reference} 7 days` }));
  const openedUnpaid = d.openedUnpaid.items.map((e) => ({ viewed: at(e.viewedAt), expires: at(e.expiresAt), reference: e.reference, amount: money(e.amountMinor, e.currency), customer: e.customer }));
  // Issue 13 part 7: partly paid orders — paid so far, what remains, the next step.
  const nextKey = { open: 'nextOpen', expired: 'nextExpired', due: 'nextDue', ask: 'nextAsk' } as const;
  const partPaid = d.partPaid.items.map((o) => ({
    reference: o.reference,
    customer: o.customer,
    line: fill(str('partPaidLine'), { paid: money(o.paidMinor, o.currency), total: money(o.totalMinor, o.currency), remaining: money(o.totalMinor - o.paidMinor, o.currency) }),
    next: fill(str(nextKey[o.next.step]), { part: partLabel(o.next), amount: money(o.next.amountMinor, o.currency), at: o.next.at ? at(o.next.at) : '', ref: o.reference }),
  }));
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
      expiringCount: d.expiringSoon.count,
      openedUnpaidCount: d.openedUnpaid.count,
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
      expiringSoon,
      expiringMore: more(expiringSoon.length, d.expiringSoon.count),
      openedUnpaid,
      openedUnpaidMore: more(openedUnpaid.length, d.openedUnpaid.count),
      partPaid,
      partPaidMore: d.partPaid.count > partPaid.length ? fill(str('partPaidMore'), { n: d.partPaid.count - partPaid.length }) : '',
      chartCid,
      chartDays: d.chart.days.map((x) => ({ day: day(x.date, 'short'), total: money(x.totalMinor, d.chart.currency), count: x.count })),
      hasCsv: Boolean(d.csv),
    },
    attachments,
  };
}
