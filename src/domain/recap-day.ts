// The recap aggregate: a merchant's local day (DayRecap: totals, the lists capped at
// RECAP_LIST_LIMIT, CSV lines) and a merchant's payments per day for the 7-day chart
// (MerchantDays), computed in memory from plain order and refund facts — no database, no mail.
import { csvCell } from './csv.ts';
import { toMajorString } from './money.ts';
import { type CardFacts, type RecapData, type RecapMerchant, type RecapOrderFacts, type RecapPart, type RecapRefundFacts, type RecapTotal } from './recap-data.ts';
import { dayBounds, localIsoFast } from './recap-local-time.ts';
import { zoneOf } from './recap-schedule.ts';

export const RECAP_LIST_LIMIT = 200;

const FAILED_OUTCOMES = new Set(['declined', 'error']);

// ---- CSV ----

// Text cells: the one CSV writer's quoting and formula guard (src/domain/csv.ts).
const csvText = csvCell;

export const RECAP_CSV_HEADER = [
  'record',
  'time',
  'order_id',
  'reference',
  'status',
  'amount',
  'currency',
  'customer_name',
  'customer_email',
  'card_brand',
  'card_last4',
  'card_country',
  'description',
  // Issue 13 part 1: the part a payment row paid (deposit 1/2, balance 2/2, instalment 2/3; empty
  // without plan), and the order's total and amount paid so far (at the recap's time).
  'part',
  'order_total',
  'order_paid',
];

/** The fields of an order the recap reads (the pass's projection, src/db/recaps.repository.ts). */
type PassOrder = RecapOrderFacts;
type RefundRow = RecapRefundFacts;

/** The CSV's name of a part: `deposit 1/2`, `balance 2/2`, `instalment 2/3`. */
export const partCsvLabel = (p: RecapPart | null | undefined): string => (p ? `${p.kind} ${p.seq}/${p.of}` : '');

/** What an order paid in parts has paid so far; an order without plan: its amount once paid. */
export function recapPaidMinor(o: PassOrder): number {
  const parts = o.plan?.parts ?? [];
  if (parts.length > 1) return parts.reduce((s, p) => s + (p.payment?.paidAt ? p.amountMinor : 0), 0);
  return o.payment?.paidAt ? o.amountMinor : 0;
}

/**
 * Every payment of an order: one per part paid for an order paid in parts (its own amount, card
 * and time; `payment` on the order is only the latest part's), else the order's one payment.
 */
export function paymentsOf(o: PassOrder): Array<{ at: number; amountMinor: number; card: CardFacts | null | undefined; part: RecapPart | null }> {
  const parts = o.plan?.parts ?? [];
  if (parts.length > 1) {
    return parts
      .filter((p) => p.payment?.paidAt)
      .map((p) => ({ at: new Date(p.payment!.paidAt!).getTime(), amountMinor: p.amountMinor, card: p.payment!.card, part: { seq: p.seq, of: parts.length, kind: p.kind } }));
  }
  const paid = o.payment?.paidAt ? new Date(o.payment.paidAt).getTime() : NaN;
  return Number.isFinite(paid) ? [{ at: paid, amountMinor: o.amountMinor, card: o.payment?.card, part: null }] : [];
}

/** The part a refund gave money back on, when the refund names it (`part`) and the order has a plan. */
function refundedPart(o: PassOrder, r: RefundRow): { card: CardFacts | null | undefined; part: RecapPart } | undefined {
  const parts = o.plan?.parts ?? [];
  const p = r.part ? parts.find((x) => x.seq === r.part) : undefined;
  return p && parts.length > 1 ? { card: p.payment?.card, part: { seq: p.seq, of: parts.length, kind: p.kind } } : undefined;
}

function csvRow(record: 'payment' | 'order' | 'refund', atMs: number, o: PassOrder, timeZone: string, pay?: { amountMinor: number; card: CardFacts | null | undefined; part: RecapPart | null }): string {
  const card = record === 'order' ? undefined : pay ? pay.card : o.payment?.card;
  return [
    record,
    localIsoFast(atMs, timeZone),
    csvText(o._id),
    csvText(o.reference),
    csvText(o.status),
    // A number: no formula guard (a refund row is negative and must stay numeric).
    toMajorString(pay ? pay.amountMinor : o.amountMinor, o.currency),
    csvText(o.currency),
    csvText(o.customer?.name),
    csvText(o.customer?.email),
    csvText(card?.brand),
    csvText(card?.last4),
    csvText(card?.country),
    csvText(o.description),
    csvText(partCsvLabel(pay?.part)),
    record === 'refund' ? '' : toMajorString(o.amountMinor, o.currency),
    record === 'refund' ? '' : toMajorString(recapPaidMinor(o), o.currency),
  ].join(',');
}

const cardOf = (c: CardFacts | null | undefined): CardFacts | null =>
  c && c.last4 ? { brand: c.brand ?? '', last4: c.last4, country: c.country ?? '' } : null;

/** The first `limit` items by (time, tie), holding at most 2 × limit at any moment. */
class FirstN<T> {
  private rows: Array<{ t: number; tie: string; v: T }> = [];
  constructor(private readonly limit: number) {}
  push(t: number, tie: string, v: T): void {
    this.rows.push({ t, tie, v });
    if (this.rows.length >= 2 * this.limit) this.trim();
  }
  private trim(): void {
    this.rows.sort((a, b) => a.t - b.t || (a.tie < b.tie ? -1 : a.tie > b.tie ? 1 : 0));
    this.rows.length = Math.min(this.rows.length, this.limit);
  }
  values(): T[] {
    this.trim();
    return this.rows.map((r) => r.v);
  }
}

/** CSV lines with their sort key; sorted once at the end. */
type Lines = Array<{ t: number; tie: string; line: string }>;
const sortedLines = (l: Lines): string[] =>
  l.sort((a, b) => a.t - b.t || (a.tie < b.tie ? -1 : a.tie > b.tie ? 1 : 0)).map((x) => `${x.line}\r\n`);

function addTotal(map: Map<string, RecapTotal>, key: string, currency: string, amountMinor: number): void {
  const t = map.get(key);
  if (t) {
    t.count++;
    t.totalMinor += amountMinor;
  } else map.set(key, { currency, count: 1, totalMinor: amountMinor });
}

/** One recap being built: a merchant's local day. */
export class DayRecap {
  readonly timeZone: string;
  readonly start: number;
  readonly end: number;
  readonly hours: number;
  readonly orderTotals = new Map<string, RecapTotal & { status: string }>();
  readonly paidTotals = new Map<string, RecapTotal>();
  readonly paidItems = new FirstN<RecapData['payments']['items'][number]>(RECAP_LIST_LIMIT);
  readonly failedItems = new FirstN<RecapData['failed']['items'][number]>(RECAP_LIST_LIMIT);
  readonly expiredItems = new FirstN<RecapData['expired']['items'][number]>(RECAP_LIST_LIMIT);
  failedCount = 0;
  expiredCount = 0;
  openedCount = 0;
  readonly refunds: RefundRow[] = [];
  readonly paidCsv: Lines = [];
  readonly createdCsv: Lines = [];

  constructor(
    readonly merchant: RecapMerchant,
    readonly date: string,
  ) {
    this.timeZone = zoneOf(merchant);
    const day = dayBounds(date, this.timeZone);
    this.start = day.start;
    this.end = day.end;
    this.hours = day.hours;
  }

  has(ms: number): boolean {
    return ms >= this.start && ms < this.end;
  }

  addOrder(o: PassOrder): void {
    const tz = this.timeZone;
    const created = o.createdAt ? new Date(o.createdAt).getTime() : NaN;
    if (this.has(created)) {
      const t = this.orderTotals.get(`${o.status}\u0000${o.currency}`);
      if (t) {
        t.count++;
        t.totalMinor += o.amountMinor;
      } else this.orderTotals.set(`${o.status}\u0000${o.currency}`, { status: o.status, currency: o.currency, count: 1, totalMinor: o.amountMinor });
      this.createdCsv.push({ t: created, tie: o._id, line: csvRow('order', created, o, tz) });
    }
    // Each payment of the day: a part paid that day counts with its own amount and card; a part
    // paid on another day does not count here.
    const pays = paymentsOf(o);
    for (const p of pays) {
      if (!this.has(p.at)) continue;
      const tie = p.part ? `${o._id}\u0000${String(p.part.seq).padStart(2, '0')}` : o._id;
      addTotal(this.paidTotals, o.currency, o.currency, p.amountMinor);
      this.paidItems.push(p.at, tie, {
        at: new Date(p.at).toISOString(),
        reference: o.reference,
        orderId: o._id,
        amountMinor: p.amountMinor,
        currency: o.currency,
        card: cardOf(p.card),
        ...(p.part ? { part: p.part } : {}),
      });
      this.paidCsv.push({ t: p.at, tie, line: csvRow('payment', p.at, o, tz, p) });
    }
    // The first payment (a deposit counts: the customer paid).
    const paid = pays.length ? Math.min(...pays.map((p) => p.at)) : NaN;
    const expired = o.expiredAt ? new Date(o.expiredAt).getTime() : NaN;
    if (this.has(expired)) {
      this.expiredCount++;
      this.expiredItems.push(expired, o._id, {
        at: new Date(expired).toISOString(),
        reference: o.reference,
        amountMinor: o.amountMinor,
        currency: o.currency,
        customer: o.customer?.name || o.customer?.email || '',
      });
    }
    // "Opened, not paid": first opened by a person that day, and no payment by the day's end.
    const viewed = o.viewedAt ? new Date(o.viewedAt).getTime() : NaN;
    if (this.has(viewed) && !(paid < this.end)) this.openedCount++;
    for (const [i, a] of (o.attempts ?? []).entries()) {
      const at = new Date(a.at).getTime();
      if (!this.has(at) || !FAILED_OUTCOMES.has(a.outcome)) continue;
      this.failedCount++;
      this.failedItems.push(at, `${o._id}\u0000${String(i).padStart(4, '0')}`, {
        at: new Date(at).toISOString(),
        reference: o.reference,
        amountMinor: o.amountMinor,
        currency: o.currency,
        outcome: a.outcome,
        declineCode: a.declineCode ?? '',
        card: cardOf(a.card),
      });
    }
  }

  finish(refundOrders: Map<string, PassOrder>, chart: RecapData['chart']['days'] | ((currency: string) => RecapData['chart']['days'])): RecapData {
    const paymentTotals = [...this.paidTotals.values()].sort((a, b) => b.totalMinor - a.totalMinor || a.currency.localeCompare(b.currency));
    const refunds = this.refunds.sort((a, b) => new Date(a.at).getTime() - new Date(b.at).getTime() || (a._id < b._id ? -1 : 1));
    const refundTotals = new Map<string, RecapTotal>();
    const refundCsv: string[] = [];
    for (const r of refunds) {
      addTotal(refundTotals, r.currency, r.currency, r.amountMinor);
      const o = refundOrders.get(r.orderId);
      // Refunds as negative amounts, described by their order.
      if (o) {
        const part = refundedPart(o, r);
        refundCsv.push(`${csvRow('refund', new Date(r.at).getTime(), { ...o, amountMinor: -r.amountMinor, currency: r.currency, status: 'refunded' }, this.timeZone, part ? { amountMinor: -r.amountMinor, ...part } : undefined)}\r\n`);
      }
    }
    const chartCurrency = this.merchant.currency || paymentTotals[0]?.currency || 'EUR';
    const csv = [`${RECAP_CSV_HEADER.join(',')}\r\n`, ...sortedLines(this.paidCsv), ...refundCsv, ...sortedLines(this.createdCsv)].join('');
    return {
      merchantName: this.merchant.name,
      date: this.date,
      timeZone: this.timeZone,
      hours: this.hours,
      orders: [...this.orderTotals.values()].sort((a, b) => a.status.localeCompare(b.status) || a.currency.localeCompare(b.currency)),
      payments: { totals: paymentTotals, count: paymentTotals.reduce((n, t) => n + t.count, 0), items: this.paidItems.values() },
      refunds: {
        totals: [...refundTotals.values()],
        count: refunds.length,
        items: refunds.slice(0, RECAP_LIST_LIMIT).map((r) => {
          const o = refundOrders.get(r.orderId);
          return {
            at: new Date(r.at).toISOString(),
            reference: o?.reference ?? r.orderId,
            orderId: r.orderId,
            amountMinor: r.amountMinor,
            currency: r.currency,
            card: cardOf(o ? (refundedPart(o, r)?.card ?? o.payment?.card) : null),
            ...(o && refundedPart(o, r) ? { part: refundedPart(o, r)!.part } : {}),
          };
        }),
      },
      failed: { count: this.failedCount, items: this.failedItems.values() },
      expired: { count: this.expiredCount, items: this.expiredItems.values() },
      opened: { count: this.openedCount },
      chart: { currency: chartCurrency, days: typeof chart === 'function' ? chart(chartCurrency) : chart },
      csv: { filename: `paymail-recap-${this.date}.csv`, content: csv },
    };
  }
}

/** A merchant's payments per local day, for the chart: stored days, and days counted in the pass. */
export class MerchantDays {
  readonly timeZone: string;
  /** date → totals by currency. */
  readonly stored = new Map<string, Map<string, RecapTotal>>();
  /** Days counted from the pass: [start, end) and totals. */
  readonly counted = new Map<string, { start: number; end: number; totals: Map<string, RecapTotal> }>();
  constructor(readonly merchant: RecapMerchant) {
    this.timeZone = zoneOf(merchant);
  }
  /** Earliest instant the pass must read payments from (Infinity when nothing is counted). */
  from(): number {
    let f = Infinity;
    for (const d of this.counted.values()) f = Math.min(f, d.start);
    return f;
  }
  count(paidMs: number, currency: string, amountMinor: number): void {
    for (const d of this.counted.values()) {
      if (paidMs >= d.start && paidMs < d.end) {
        addTotal(d.totals, currency, currency, amountMinor);
        return;
      }
    }
  }
  totals(date: string): Map<string, RecapTotal> | undefined {
    return this.stored.get(date) ?? this.counted.get(date)?.totals;
  }
}

