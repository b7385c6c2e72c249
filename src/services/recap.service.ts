// The daily recap: one mail per merchant and local day, about the previous local day (local
// midnight to midnight in the merchant's zone, 23 or 25 hours on DST change days).
// - Exactly once: claim `recap:<merchant>:<date>` (an insert under a unique _id) decides across
//   instances and restarts; the mail is enqueued with the same string as its outbox dedupe key,
//   so a claim whose winner died before enqueueing is finished by the next run (unapplied claims
//   of kind 'recap') and can never produce a second mail.
// - Late rather than never: each run looks back RECAP_LOOKBACK_DAYS for days whose recap hour has
//   passed without a claim (the service was down), never before the merchant existed.
// - One pass for all: FerretDB v1 reads the whole collection for any filter but `{_id: X}`, so a
//   query per merchant was a full scan of `orders` per merchant (and a dozen per recap). Every
//   recap of a run is built from ONE streamed read of the orders touched in the run's day windows
//   (created, paid, expired, attempted, or refunded then) and one of the refunds, aggregated per
//   merchant and day in memory: totals, the lists capped at RECAP_LIST_LIMIT, CSV lines. Memory
//   follows the recapped days' activity, never the collection.
// - The 7-day chart reads earlier days' totals from `recap_days` (stored by earlier runs); days
//   not stored yet widen the pass's payment window, and are stored for the next runs.
import { mapLimit } from '../domain/map-limit.ts';
import { type MerchantDoc } from '../db/merchants.repository.ts';
import { recapDayId, type RecapDayDoc, type RecapOrder, type RecapRefund } from '../db/recaps.repository.ts';
import { AppError } from '../domain/errors.ts';
import { addDays, isLocalDate, isTimeZone, localDate } from '../domain/local-day.ts';
import { toMajorString } from '../domain/money.ts';
import { type Logger } from '../logger.ts';
import { enqueueMail } from '../mail/outbox.ts';
import { type Repositories } from '../db/repositories.ts';
import { csvCell } from '../domain/csv.ts';
import { zoneOffset } from '../domain/time-zone.ts';

export const RECAP_LOOKBACK_DAYS = 7;
export const RECAP_LIST_LIMIT = 200;
export const DEFAULT_RECAP_HOUR = 7;
export const RECAP_CHART_DAYS = 7;
/** Stored day totals older than this (before the run's `now`) are deleted. */
export const RECAP_DAYS_KEEP = 21;
/** A claim older than this without its mail enqueued belongs to a run that died. */
const RECOVER_AFTER_MS = 60_000;
/** A day's totals are stored only once it ended this long ago (payments being written at midnight). */
const SETTLE_MS = 10 * 60_000;
/** Mails enqueued at once (each is two inserts; their round trips overlap). */
const ENQUEUE_CONCURRENCY = 8;
/** Up to this many merchants, the reads also filter by merchant (an index on MongoDB). */
const FEW_MERCHANTS = 100;

export const recapKey = (merchantId: string, date: string): string => `recap:${merchantId}:${date}`;

interface CardFacts {
  brand?: string | null;
  last4?: string | null;
  country?: string | null;
}

export interface RecapTotal {
  currency: string;
  count: number;
  totalMinor: number;
}

export interface RecapData {
  merchantName: string;
  date: string;
  timeZone: string;
  /** 24, or 23/25 on a DST change day. */
  hours: number;
  /** Orders created that day, by status and currency. */
  orders: Array<RecapTotal & { status: string }>;
  payments: {
    totals: RecapTotal[];
    count: number;
    items: Array<{ at: string; reference: string; orderId: string; amountMinor: number; currency: string; card: CardFacts | null }>;
  };
  /** Refunds made that day (positive amounts); the template hides the section when empty. */
  refunds: {
    totals: RecapTotal[];
    count: number;
    items: Array<{ at: string; reference: string; orderId: string; amountMinor: number; currency: string; card: CardFacts | null }>;
  };
  failed: {
    count: number;
    items: Array<{ at: string; reference: string; amountMinor: number; currency: string; outcome: string; declineCode: string; card: CardFacts | null }>;
  };
  expired: {
    count: number;
    items: Array<{ at: string; reference: string; amountMinor: number; currency: string; customer: string }>;
  };
  /** Orders the customer first opened that day (viewedAt) and that were not paid by its end. */
  opened: { count: number };
  /** Payments total per day (oldest first, the recapped day last) in the merchant's currency. */
  chart: { currency: string; days: Array<{ date: string; totalMinor: number; count: number }> };
  csv: { filename: string; content: string };
}

export type SendOutcome = 'sent' | 'resent' | 'skipped';

export interface SendResult {
  merchantId: string;
  date: string;
  outcome?: SendOutcome;
  error?: AppError;
}

export interface RecapServiceDeps {
  /** The storage seam (src/db/repositories.ts). */
  repos: Repositories;
  mailDomain: string;
  logger?: Logger;
  /** Recorded on claims, to tell instances apart when debugging. */
  owner?: string;
}

const FAILED_OUTCOMES = new Set(['declined', 'error']);

const validZones = new Map<string, boolean>();
function zoneOf(m: MerchantDoc): string {
  if (!m.timezone) return 'Europe/Rome';
  let ok = validZones.get(m.timezone);
  // isTimeZone builds an Intl formatter: once per zone, not once per merchant and day.
  if (ok === undefined) validZones.set(m.timezone, (ok = isTimeZone(m.timezone)));
  return ok ? m.timezone : 'Europe/Rome';
}

function hourOf(m: MerchantDoc): number {
  const h = (m as { recapHour?: number | null }).recapHour;
  return typeof h === 'number' && Number.isInteger(h) && h >= 0 && h <= 23 ? h : DEFAULT_RECAP_HOUR;
}

function createdAtOf(m: MerchantDoc): Date | undefined {
  return (m as { createdAt?: Date }).createdAt;
}

// ---- local time, fast ----

const QUARTER_HOUR = 15 * 60_000;
const offsetCaches = new Map<string, Map<number, number>>();

/** zoneOffset (src/domain/time-zone.ts: one cached formatter per zone) at a millisecond instant. */
const zoneOffsetCached = (ms: number, timeZone: string): number => zoneOffset(new Date(ms), timeZone);

/**
 * The zone's offset, memoised per quarter hour (offsets change only on quarter-hour boundaries).
 * A run over 1,000 merchants asks for tens of thousands of local times: building an
 * Intl.DateTimeFormat for each (what zoneOffset does) cost seconds of CPU and hundreds of MB of
 * native memory that only a full GC gives back.
 */
function offsetAt(ms: number, timeZone: string): number {
  let cache = offsetCaches.get(timeZone);
  if (!cache) offsetCaches.set(timeZone, (cache = new Map()));
  if (cache.size > 20_000) cache.clear();
  const q = Math.floor(ms / QUARTER_HOUR);
  let off = cache.get(q);
  if (off === undefined) cache.set(q, (off = zoneOffsetCached(q * QUARTER_HOUR, timeZone)));
  return off;
}

/** As localDate (src/domain/local-day.ts). */
function localDateFast(ms: number, timeZone: string): string {
  return new Date(ms + offsetAt(ms, timeZone)).toISOString().slice(0, 10);
}

/** As localTime (src/domain/local-day.ts): the instant the local clock shows `date` `hour`:00. */
function localTimeFast(date: string, hour: number, timeZone: string): number {
  const wall = Date.parse(`${date}T00:00:00Z`) + hour * 3600_000;
  let guess = wall - offsetAt(wall, timeZone);
  guess = wall - offsetAt(guess, timeZone);
  if (guess + offsetAt(guess, timeZone) !== wall) guess = Math.max(guess, wall - offsetAt(guess + 3600_000, timeZone));
  return guess;
}

/** As localDayBounds (src/domain/local-day.ts), in epoch ms. */
function dayBounds(date: string, timeZone: string): { start: number; end: number; hours: number } {
  const start = localTimeFast(date, 0, timeZone);
  const end = localTimeFast(addDays(date, 1), 0, timeZone);
  return { start, end, hours: (end - start) / 3600_000 };
}

/** As localIso (src/domain/local-day.ts): "2026-10-25T02:30:00+01:00". */
function localIsoFast(ms: number, timeZone: string): string {
  const offset = offsetAt(ms, timeZone);
  const wall = new Date(Math.floor(ms / 1000) * 1000 + offset).toISOString().slice(0, 19);
  const abs = Math.abs(offset) / 60_000;
  return `${wall}${offset < 0 ? '-' : '+'}${String(Math.floor(abs / 60)).padStart(2, '0')}:${String(abs % 60).padStart(2, '0')}`;
}

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
];

/** The fields of an order the recap reads (the pass's projection, src/db/recaps.repository.ts). */
type PassOrder = RecapOrder;
type RefundRow = RecapRefund;

function csvRow(record: 'payment' | 'order' | 'refund', atMs: number, o: PassOrder, timeZone: string): string {
  const card = record === 'order' ? undefined : o.payment?.card;
  return [
    record,
    localIsoFast(atMs, timeZone),
    csvText(o._id),
    csvText(o.reference),
    csvText(o.status),
    // A number: no formula guard (a refund row is negative and must stay numeric).
    toMajorString(o.amountMinor, o.currency),
    csvText(o.currency),
    csvText(o.customer?.name),
    csvText(o.customer?.email),
    csvText(card?.brand),
    csvText(card?.last4),
    csvText(card?.country),
    csvText(o.description),
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
class DayRecap {
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
    readonly merchant: MerchantDoc,
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
    const paid = o.payment?.paidAt ? new Date(o.payment.paidAt).getTime() : NaN;
    if (this.has(paid)) {
      addTotal(this.paidTotals, o.currency, o.currency, o.amountMinor);
      this.paidItems.push(paid, o._id, {
        at: new Date(paid).toISOString(),
        reference: o.reference,
        orderId: o._id,
        amountMinor: o.amountMinor,
        currency: o.currency,
        card: cardOf(o.payment?.card),
      });
      this.paidCsv.push({ t: paid, tie: o._id, line: csvRow('payment', paid, o, tz) });
    }
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
      if (o) refundCsv.push(`${csvRow('refund', new Date(r.at).getTime(), { ...o, amountMinor: -r.amountMinor, currency: r.currency, status: 'refunded' }, this.timeZone)}\r\n`);
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
            card: cardOf(o?.payment?.card),
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
class MerchantDays {
  readonly timeZone: string;
  /** date → totals by currency. */
  readonly stored = new Map<string, Map<string, RecapTotal>>();
  /** Days counted from the pass: [start, end) and totals. */
  readonly counted = new Map<string, { start: number; end: number; totals: Map<string, RecapTotal> }>();
  constructor(readonly merchant: MerchantDoc) {
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

export function createRecapService(deps: RecapServiceDeps) {
  const log = deps.logger?.child({ component: 'recap' });
  const store = deps.repos.recaps;
  /** Recap claims known to exist (pruned only long after the look-back): later runs skip them without a read. */
  const knownClaims = new Set<string>();

  /**
   * Builds the recaps of (merchant, date) pairs from one pass over the orders and one over the
   * refunds; results in the order given. Days' totals counted on the way are stored in
   * `recap_days` once they are settled at `now`.
   */
  async function buildRecaps(items: Array<{ merchant: MerchantDoc; date: string }>, now = new Date(), timings: Record<string, number> = {}): Promise<RecapData[]> {
    if (items.length === 0) return [];
    let mark = performance.now();
    const lap = (name: string) => {
      const t = performance.now();
      timings[name] = Math.round(t - mark);
      mark = t;
    };
    const recaps = items.map((i) => new DayRecap(i.merchant, i.date));
    const byMerchant = new Map<string, DayRecap[]>();
    const days = new Map<string, MerchantDays>();
    for (const r of recaps) {
      const id = r.merchant._id;
      byMerchant.set(id, [...(byMerchant.get(id) ?? []), r]);
      if (!days.has(id)) days.set(id, new MerchantDays(r.merchant));
    }
    const merchantIds = [...byMerchant.keys()];
    const few = merchantIds.length <= FEW_MERCHANTS ? merchantIds : undefined;
    const start = Math.min(...recaps.map((r) => r.start));
    const end = Math.max(...recaps.map((r) => r.end));
    const window = { from: new Date(start), before: new Date(end) };

    // Stored day totals for the charts (one read of the small `recap_days`).
    const chartDates = (r: DayRecap) => Array.from({ length: RECAP_CHART_DAYS }, (_, k) => addDays(r.date, k - RECAP_CHART_DAYS + 1));
    const wanted = new Set(recaps.flatMap((r) => chartDates(r).slice(0, -1).map((d) => recapDayId(r.merchant._id, d))));
    const firstChart = recaps.map((r) => chartDates(r)[0]!).sort()[0]!;
    const lastDate = recaps.map((r) => r.date).sort().at(-1)!;
    const stored = store.storedDays({ merchantIds: few, from: firstChart, to: lastDate });
    for await (const d of stored) {
      const md = days.get(d.merchantId);
      if (!md || !wanted.has(d._id) || d.timeZone !== md.timeZone) continue;
      md.stored.set(d.date, new Map(d.paid.map((p) => [p.currency, { currency: p.currency, count: p.count, totalMinor: p.totalMinor }])));
    }
    for (const r of recaps) {
      const md = days.get(r.merchant._id)!;
      for (const [k, date] of chartDates(r).entries()) {
        // The recapped day is always counted: its payments are read for the recap anyway.
        if (k < RECAP_CHART_DAYS - 1 && md.stored.has(date)) continue;
        if (md.counted.has(date)) continue;
        const b = dayBounds(date, md.timeZone);
        md.counted.set(date, { start: b.start, end: b.end, totals: new Map() });
      }
    }
    const paidFrom = Math.min(start, ...[...days.values()].map((d) => d.from()));
    lap('storedDays');

    // Refunds made in the window, and which orders they need.
    const refundOrderIds = new Set<string>();
    for await (const r of store.refundsIn({ merchantIds: few, window })) {
      for (const rec of byMerchant.get(r.merchantId) ?? []) {
        if (!rec.has(new Date(r.at).getTime())) continue;
        rec.refunds.push(r);
        refundOrderIds.add(r.orderId);
      }
    }

    lap('refunds');
    // THE pass: every order any of these recaps needs, streamed once.
    const refundOrders = new Map<string, PassOrder>();
    // Few refunded orders: in the pass. Many: not as an $in (FerretDB would test the list against
    // every order); those the pass did not meet anyway are read by _id afterwards.
    const alsoIds = refundOrderIds.size > 0 && refundOrderIds.size <= 50 ? [...refundOrderIds] : undefined;
    const cursor = store.ordersTouched({ merchantIds: few, window, paidWindow: { from: new Date(paidFrom), before: new Date(end) }, alsoIds });
    for await (const o of cursor) {
      const rs = byMerchant.get(o.merchantId);
      if (!rs) continue;
      if (refundOrderIds.has(o._id)) {
        refundOrders.set(o._id, { _id: o._id, merchantId: o.merchantId, reference: o.reference, status: o.status, amountMinor: o.amountMinor, currency: o.currency, description: o.description ?? null, customer: o.customer ?? null, payment: o.payment ? { card: o.payment.card ?? null } : null });
      }
      for (const r of rs) r.addOrder(o);
      const paid = o.payment?.paidAt ? new Date(o.payment.paidAt).getTime() : NaN;
      if (Number.isFinite(paid)) days.get(o.merchantId)!.count(paid, o.currency, o.amountMinor);
    }

    lap('orders');
    const missing = [...refundOrderIds].filter((id) => !refundOrders.has(id));
    await mapLimit(missing, ENQUEUE_CONCURRENCY, async (id) => {
      const o = await store.order(id);
      if (o) refundOrders.set(o._id, o);
    });

    lap('refundOrders');
    const out = recaps.map((r) => {
      const md = days.get(r.merchant._id)!;
      return r.finish(refundOrders, (currency) =>
        chartDates(r).map((date) => {
          const t = md.totals(date)?.get(currency);
          return { date, totalMinor: t?.totalMinor ?? 0, count: t?.count ?? 0 };
        }),
      );
    });

    // Store the settled days counted here; an existing document (another run's) is left alone.
    const settled: RecapDayDoc[] = [];
    for (const md of days.values()) {
      for (const [date, d] of md.counted) {
        if (d.end + SETTLE_MS > now.getTime()) continue;
        settled.push({ _id: recapDayId(md.merchant._id, date), merchantId: md.merchant._id, date, timeZone: md.timeZone, paid: [...d.totals.values()], at: now });
      }
    }
    await store.storeDays(settled);
    lap('assembleAndStore');
    return out;
  }

  /** Everything the recap mail shows about `date` (a local day of the merchant). */
  async function buildRecap(merchant: MerchantDoc, date: string, now = new Date()): Promise<RecapData> {
    return (await buildRecaps([{ merchant, date }], now))[0]!;
  }

  function mailOf(merchant: MerchantDoc, data: RecapData, dedupeKey: string) {
    return { dedupeKey, template: 'daily-recap' as const, locale: merchant.locale, to: [merchant.email], merchantId: merchant._id, data };
  }

  /**
   * Builds the recaps in one pass, then enqueues each mail and marks its claim applied
   * (ENQUEUE_CONCURRENCY at once); `done` is told of each one enqueued.
   */
  async function enqueueAll(
    jobs: Array<{ merchant: MerchantDoc; date: string; key: string }>,
    now: Date,
    done?: (i: number) => void,
    timings: Record<string, number> = {},
  ): Promise<number> {
    if (jobs.length === 0) return 0;
    const data = await buildRecaps(jobs, now, timings);
    const t0 = performance.now();
    let n = 0;
    // Claims are marked applied in batches: FerretDB took ~25 ms per single-claim update (each
    // its own write), 1,000 of them dominated the run; one updateMany per batch reads the claims
    // once. A crash before the mark leaves the claim to recover(), which the dedupe key makes
    // harmless.
    let applied: string[] = [];
    const flushApplied = async () => {
      const keys = applied;
      applied = [];
      await store.markApplied(keys);
    };
    await mapLimit(jobs, ENQUEUE_CONCURRENCY, async (job, i) => {
      await enqueueMail(mailOf(job.merchant, data[i]!, job.key), deps.mailDomain);
      // The data is in the outbox: let it go.
      (data as Array<RecapData | undefined>)[i] = undefined;
      applied.push(job.key);
      if (applied.length >= 200) await flushApplied();
      n++;
      done?.(i);
    });
    await flushApplied();
    timings.enqueue = Math.round(performance.now() - t0);
    return n;
  }

  /**
   * Inserts the claims in one batch; returns the keys this caller won. A duplicate _id means
   * another caller has it (the insert of each document is atomic on FerretDB and MongoDB alike).
   */
  async function claimMany(claims: Array<{ key: string; merchantId: string; date: string; kind: 'recap' | 'recap-resend' }>, now: Date): Promise<Set<string>> {
    const won = new Set<string>();
    if (claims.length === 0) return won;
    const taken = await store.claim(claims, now, deps.owner);
    for (const c of claims) {
      knownClaims.add(c.key);
      if (taken.has(c.key)) won.add(c.key);
    }
    return won;
  }

  /** Local days (oldest first) whose recap hour has passed at `now`, within the look-back. */
  function dueDates(merchant: MerchantDoc, now: Date): string[] {
    const tz = zoneOf(merchant);
    const hour = hourOf(merchant);
    const today = localDateFast(now.getTime(), tz);
    const created = createdAtOf(merchant);
    const first = created ? localDateFast(new Date(created).getTime(), tz) : undefined;
    const out: string[] = [];
    for (let k = RECAP_LOOKBACK_DAYS; k >= 1; k--) {
      const d = addDays(today, -k);
      if (first && d < first) continue;
      if (localTimeFast(addDays(d, 1), hour, tz) <= now.getTime()) out.push(d);
    }
    return out;
  }

  /** Claims whose winner died before the mail was enqueued: to be finished (dedupe keeps them single). */
  async function stuckClaims(now: Date): Promise<Array<{ key: string; merchantId: string; date: string }>> {
    return [...(await store.stuckClaims('recap', RECOVER_AFTER_MS, now)), ...(await store.stuckClaims('recap-resend', RECOVER_AFTER_MS, now))];
  }

  async function merchantsById(ids: string[]): Promise<Map<string, MerchantDoc>> {
    const list = await store.merchantsByIds([...new Set(ids)]);
    return new Map(list.map((m) => [m._id, m]));
  }

  /** Finishes stuck claims (see stuckClaims); the count of mails enqueued. */
  async function recover(now: Date): Promise<number> {
    const stuck = await stuckClaims(now);
    const merchants = await merchantsById(stuck.map((s) => s.merchantId));
    const jobs = stuck.flatMap((s) => {
      const merchant = merchants.get(s.merchantId);
      return merchant && isLocalDate(s.date) ? [{ merchant, date: s.date, key: s.key }] : [];
    });
    const n = await enqueueAll(jobs, now);
    for (const s of stuck) if (!jobs.some((j) => j.key === s.key)) await store.markApplied([s.key]);
    return n;
  }

  /** Drops stored day totals nobody's chart will read again (only in runs that recapped). */
  async function prune(now: Date): Promise<void> {
    await store.pruneDaysBefore(addDays(now.toISOString().slice(0, 10), -RECAP_DAYS_KEEP));
  }

  /** One pass of the job: every active merchant's due recaps, including missed days, and stuck claims. */
  async function runDue(now: Date): Promise<{ sent: number; recovered: number }> {
    const t0 = performance.now();
    const timings: Record<string, number> = {};
    const stuck = await stuckClaims(now);
    const candidates: Array<{ merchant: MerchantDoc; date: string; key: string }> = [];
    const active = new Map<string, MerchantDoc>();
    for await (const merchant of store.activeMerchants()) {
      active.set(merchant._id, merchant);
      for (const date of dueDates(merchant, now)) {
        const key = recapKey(merchant._id, date);
        if (!knownClaims.has(key)) candidates.push({ merchant, date, key });
      }
    }
    // Which of them were claimed already (by an earlier run, another instance, the CLI): one read.
    if (candidates.length > 0) {
      const oldest = candidates.reduce((o, c) => (c.date < o ? c.date : o), candidates[0]!.date);
      const taken = store.claimedKeys('recap', { from: oldest });
      for await (const c of taken) knownClaims.add(c._id);
      if (knownClaims.size > 200_000) knownClaims.clear();
    }
    const open = candidates.filter((c) => !knownClaims.has(c.key));
    const won = await claimMany(open.map((c) => ({ key: c.key, merchantId: c.merchant._id, date: c.date, kind: 'recap' })), now);

    const recoverMerchants = await merchantsById(stuck.filter((s) => !active.has(s.merchantId)).map((s) => s.merchantId));
    const recoverJobs = stuck.flatMap((s) => {
      const merchant = active.get(s.merchantId) ?? recoverMerchants.get(s.merchantId);
      return merchant && isLocalDate(s.date) ? [{ merchant, date: s.date, key: s.key }] : [];
    });
    const jobs = [...open.filter((c) => won.has(c.key)), ...recoverJobs];
    timings.claims = Math.round(performance.now() - t0);
    let sent = 0;
    let recovered = 0;
    try {
      await enqueueAll(jobs, now, (i) => (i < jobs.length - recoverJobs.length ? sent++ : recovered++), timings);
    } catch (err) {
      // Claims left unapplied: a later run finishes them.
      log?.error({ err, recaps: jobs.length }, 'recaps failed; will retry');
    }
    for (const s of stuck) if (!recoverJobs.some((j) => j.key === s.key)) await store.markApplied([s.key]);
    if (jobs.length > 0) await prune(now).catch((err: unknown) => log?.warn({ err }, 'pruning recap_days failed'));
    // Phase timings (ms): where a slow run spends its time.
    if (sent || recovered) log?.info({ sent, recovered, ms: Math.round(performance.now() - t0), timings }, 'recaps enqueued');
    return { sent, recovered };
  }

  /**
   * For the CLI: sends each (merchant, date) recap unless it was already sent; with `force`,
   * sends it again under a new dedupe key (`…:resend:<n>`, n claimed so two operators never
   * collide). A missing date means the merchant's previous local day. All recaps come from one
   * pass; `progress` is told of each finished item. Errors are per item (AppError codes).
   */
  async function sendMany(
    items: Array<{ merchantId: string; date?: string }>,
    opts: { force?: boolean; now?: Date; progress?: (r: SendResult) => void } = {},
  ): Promise<SendResult[]> {
    const now = opts.now ?? new Date();
    const merchants = await merchantsById(items.map((i) => i.merchantId));
    const results: SendResult[] = [];
    const ready: Array<{ r: SendResult; merchant: MerchantDoc; key: string }> = [];
    for (const it of items) {
      const merchant = merchants.get(it.merchantId);
      const date = it.date ?? (merchant ? previousLocalDay(merchant, now) : '');
      const r: SendResult = { merchantId: it.merchantId, date };
      results.push(r);
      if (it.date !== undefined && !isLocalDate(it.date)) r.error = new AppError('RECAP_DATE_INVALID', `expected a date as YYYY-MM-DD, got "${it.date}"`);
      else if (!merchant) r.error = new AppError('MERCHANT_NOT_FOUND', `no merchant ${it.merchantId}`);
      else if (dayBounds(date, zoneOf(merchant)).end > now.getTime()) {
        r.error = new AppError('RECAP_DAY_NOT_OVER', `${date} is not over yet in ${zoneOf(merchant)}`);
      } else {
        ready.push({ r, merchant, key: recapKey(merchant._id, date) });
        continue;
      }
      opts.progress?.(r);
    }
    const won = await claimMany(ready.map((x) => ({ key: x.key, merchantId: x.merchant._id, date: x.r.date, kind: 'recap' })), now);
    const jobs: Array<{ merchant: MerchantDoc; date: string; key: string; r: SendResult }> = [];
    const resend = ready.filter((x) => !won.has(x.key));
    if (opts.force && resend.length > 0) {
      // Resend numbers taken so far, from one read; a collision with a concurrent operator moves on.
      const taken = new Map<string, number>();
      const dates = [...new Set(resend.map((x) => x.r.date))];
      for await (const c of store.claimedKeys('recap-resend', { in: dates })) {
        const m = /^(.*):resend:(\d+)$/.exec(c._id);
        if (m) taken.set(m[1]!, Math.max(taken.get(m[1]!) ?? 0, Number(m[2])));
      }
      for (const x of resend) {
        let n = (taken.get(x.key) ?? 0) + 1;
        while (!(await claimMany([{ key: `${x.key}:resend:${n}`, merchantId: x.merchant._id, date: x.r.date, kind: 'recap-resend' }], now)).size) n++;
        x.r.outcome = 'resent';
        jobs.push({ merchant: x.merchant, date: x.r.date, key: `${x.key}:resend:${n}`, r: x.r });
      }
    } else {
      for (const x of resend) {
        x.r.outcome = 'skipped';
        opts.progress?.(x.r);
      }
    }
    for (const x of ready) {
      if (!won.has(x.key)) continue;
      x.r.outcome = 'sent';
      jobs.push({ merchant: x.merchant, date: x.r.date, key: x.key, r: x.r });
    }
    await enqueueAll(jobs, now, (i) => opts.progress?.(jobs[i]!.r));
    return results;
  }

  /** One recap: see sendMany; throws its AppError. */
  async function send(merchantId: string, date: string, opts: { force?: boolean; now?: Date } = {}): Promise<SendOutcome> {
    if (!isLocalDate(date)) throw new AppError('RECAP_DATE_INVALID', `expected a date as YYYY-MM-DD, got "${date}"`);
    const [r] = await sendMany([{ merchantId, date }], opts);
    if (r!.error) throw r!.error;
    return r!.outcome!;
  }

  return { buildRecap, buildRecaps, dueDates, runDue, send, sendMany, recover };
}

export type RecapService = ReturnType<typeof createRecapService>;

/** The local day before `now` for a merchant: what `recap send` sends when no date is given. */
export function previousLocalDay(merchant: MerchantDoc, now: Date): string {
  return addDays(localDate(now, zoneOf(merchant)), -1);
}
