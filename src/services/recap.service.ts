// The daily recap: one mail per merchant and local day, about the previous local day (local
// midnight to midnight in the merchant's zone, 23 or 25 hours on DST change days).
// - Exactly once: claimOnce(`recap:<merchant>:<date>`) decides across instances and restarts; the
//   mail is enqueued with the same string as its outbox dedupe key, so a claim whose winner died
//   before enqueueing is finished by the next run (unapplied claims of kind 'recap') and can never
//   produce a second mail.
// - Late rather than never: each run looks back RECAP_LOOKBACK_DAYS for days whose recap hour has
//   passed without a claim (the service was down), never before the merchant existed.
// - Bounded: only $match/$group/$unwind/$sort/$limit/$project (FerretDB), lists capped at
//   RECAP_LIST_LIMIT rows in the mail (the CSV has them all), CSV built from cursors.
import { Claim, claimOnce, markApplied, unappliedClaims } from '../db/claims.ts';
import { Merchant, type MerchantDoc } from '../db/models/merchant.model.ts';
import { Order } from '../db/models/order.model.ts';
import { Refund } from '../db/models/refund.model.ts';
import { AppError } from '../domain/errors.ts';
import { addDays, isLocalDate, isTimeZone, localDate, localDayBounds, localIso, localTime } from '../domain/local-day.ts';
import { toMajorString } from '../domain/money.ts';
import { type Logger } from '../logger.ts';
import { enqueueMail } from '../mail/outbox.ts';

export const RECAP_LOOKBACK_DAYS = 7;
export const RECAP_LIST_LIMIT = 200;
export const DEFAULT_RECAP_HOUR = 7;
export const RECAP_CHART_DAYS = 7;
/** A claim older than this without its mail enqueued belongs to a run that died. */
const RECOVER_AFTER_MS = 60_000;

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
  /** Payments total per day (oldest first, the recapped day last) in the merchant's currency. */
  chart: { currency: string; days: Array<{ date: string; totalMinor: number; count: number }> };
  csv: { filename: string; content: string };
}

export type SendOutcome = 'sent' | 'resent' | 'skipped';

export interface RecapServiceDeps {
  mailDomain: string;
  logger?: Logger;
  /** Recorded on claims, to tell instances apart when debugging. */
  owner?: string;
}

const FAILED_OUTCOMES = ['declined', 'error'];

function zoneOf(m: MerchantDoc): string {
  return m.timezone && isTimeZone(m.timezone) ? m.timezone : 'Europe/Rome';
}

function hourOf(m: MerchantDoc): number {
  const h = (m as { recapHour?: number | null }).recapHour;
  return typeof h === 'number' && Number.isInteger(h) && h >= 0 && h <= 23 ? h : DEFAULT_RECAP_HOUR;
}

function createdAtOf(m: MerchantDoc): Date | undefined {
  return (m as { createdAt?: Date }).createdAt;
}

// ---- CSV ----

/** RFC 4180 quoting, plus a guard against spreadsheet formulas in text cells. */
function csvText(v: string | null | undefined): string {
  let s = v ?? '';
  if (/^[=+\-@\t\r]/.test(s)) s = `'${s}`;
  return /[",\r\n;]/.test(s) ? `"${s.replace(/"/g, '""')}"` : s;
}

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

interface CsvOrder {
  _id: string;
  reference: string;
  status: string;
  amountMinor: number;
  currency: string;
  description?: string | null;
  customer?: { name?: string | null; email?: string | null } | null;
  createdAt?: Date;
  payment?: { paidAt?: Date | null; card?: CardFacts | null } | null;
}

interface RefundRow {
  _id: string;
  orderId: string;
  amountMinor: number;
  currency: string;
  at: Date;
}

function csvRow(record: 'payment' | 'order' | 'refund', at: Date, o: CsvOrder, timeZone: string): string {
  const card = record === 'order' ? undefined : o.payment?.card;
  return [
    record,
    localIso(at, timeZone),
    csvText(o._id),
    csvText(o.reference),
    csvText(o.status),
    // A number: no formula guard (a future refund row is negative and must stay numeric).
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

export function createRecapService(deps: RecapServiceDeps) {
  const log = deps.logger?.child({ component: 'recap' });

  /**
   * Count and sum per group. Two pipelines, because FerretDB (v1, measured here) computes only
   * the first `$sum` accumulator of a `$group` and returns 0 for the others.
   */
  async function totals(match: Record<string, unknown>, by: Record<string, string>, model: typeof Order | typeof Refund = Order) {
    const aggregate = (sum: string | number) =>
      (model as typeof Order).aggregate<{ _id: Record<string, string>; v: number }>([{ $match: match }, { $group: { _id: by, v: { $sum: sum } } }]);
    const [sums, counts] = await Promise.all([aggregate('$amountMinor'), aggregate(1)]);
    const count = new Map(counts.map((c) => [JSON.stringify(c._id), c.v]));
    return sums.map((r) => ({ _id: r._id, totalMinor: r.v, count: count.get(JSON.stringify(r._id)) ?? 0 }));
  }

  /** Streams the day's payments, then the orders created that day, as CSV text. */
  async function buildCsv(merchantId: string, start: Date, end: Date, timeZone: string): Promise<string> {
    const chunks: string[] = [`${RECAP_CSV_HEADER.join(',')}\r\n`];
    const fields = { _id: 1, reference: 1, status: 1, amountMinor: 1, currency: 1, description: 1, customer: 1, createdAt: 1, payment: 1 };
    const paid = Order.find({ merchantId, 'payment.paidAt': { $gte: start, $lt: end } }, fields).sort({ 'payment.paidAt': 1 }).lean<CsvOrder[]>().cursor();
    for await (const o of paid) chunks.push(`${csvRow('payment', new Date(o.payment!.paidAt!), o, timeZone)}\r\n`);
    // Refunds as negative amounts; their orders are looked up a page at a time (no $lookup).
    const refunds = Refund.find({ merchantId, at: { $gte: start, $lt: end } }).sort({ at: 1 }).lean<RefundRow[]>().cursor();
    let page: RefundRow[] = [];
    const flush = async () => {
      const orders = new Map((await Order.find({ _id: { $in: page.map((r) => r.orderId) } }, fields).lean<CsvOrder[]>()).map((o) => [o._id, o]));
      for (const r of page) {
        const o = orders.get(r.orderId);
        if (o) chunks.push(`${csvRow('refund', r.at, { ...o, amountMinor: -r.amountMinor, currency: r.currency, status: 'refunded' }, timeZone)}\r\n`);
      }
      page = [];
    };
    for await (const r of refunds) {
      page.push(r);
      if (page.length >= 200) await flush();
    }
    if (page.length > 0) await flush();
    const created = Order.find({ merchantId, createdAt: { $gte: start, $lt: end } }, fields).sort({ createdAt: 1 }).lean<CsvOrder[]>().cursor();
    for await (const o of created) chunks.push(`${csvRow('order', new Date(o.createdAt!), o, timeZone)}\r\n`);
    return chunks.join('');
  }

  /** Everything the recap mail shows about `date` (a local day of the merchant). */
  async function buildRecap(merchant: MerchantDoc, date: string): Promise<RecapData> {
    const timeZone = zoneOf(merchant);
    const day = localDayBounds(date, timeZone);
    const range = { $gte: day.start, $lt: day.end };
    const merchantId = merchant._id;

    const paidMatch = { merchantId, 'payment.paidAt': range };
    const attemptMatch = { 'attempts.at': range, 'attempts.outcome': { $in: FAILED_OUTCOMES } };
    const failedBase = [{ $match: { merchantId, 'attempts.at': range } }, { $unwind: '$attempts' }, { $match: attemptMatch }];
    const expiredMatch = { merchantId, expiredAt: range };
    // Independent reads, issued together: a backlog of missed days is many recaps in one run.
    const refundMatch = { merchantId, at: range };
    const [orderRows, paymentRows, paidList, failedCount, failedList, expiredCount, expiredList, refundRows, refundList] = await Promise.all([
      totals({ merchantId, createdAt: range }, { status: '$status', currency: '$currency' }),
      totals(paidMatch, { currency: '$currency' }),
      Order.find(paidMatch, { _id: 1, reference: 1, amountMinor: 1, currency: 1, payment: 1 })
        .sort({ 'payment.paidAt': 1 })
        .limit(RECAP_LIST_LIMIT)
        .lean<CsvOrder[]>(),
      Order.aggregate<{ n: number }>([...failedBase, { $group: { _id: null, n: { $sum: 1 } } }]).then((r) => r[0]?.n ?? 0),
      // FerretDB's $unwind keeps only _id and the unwound field (measured here), so the orders'
      // own fields are read by a second, bounded query.
      Order.aggregate<{ _id: string; attempts: { at: Date; outcome: string; declineCode?: string; card?: CardFacts } }>([
        ...failedBase,
        { $sort: { 'attempts.at': 1 } },
        { $limit: RECAP_LIST_LIMIT },
      ]).then(async (rows) => {
        const ids = [...new Set(rows.map((r) => r._id))];
        const orders = await Order.find({ _id: { $in: ids } }, { reference: 1, amountMinor: 1, currency: 1 }).lean<Array<{ _id: string; reference: string; amountMinor: number; currency: string }>>();
        const byId = new Map(orders.map((o) => [o._id, o]));
        return rows.flatMap((r) => {
          const o = byId.get(r._id);
          return o ? [{ ...o, attempts: r.attempts }] : [];
        });
      }),
      Order.countDocuments(expiredMatch),
      Order.find(expiredMatch, { reference: 1, amountMinor: 1, currency: 1, customer: 1, expiredAt: 1 })
        .sort({ expiredAt: 1 })
        .limit(RECAP_LIST_LIMIT)
        .lean<Array<CsvOrder & { expiredAt: Date }>>(),
      totals(refundMatch, { currency: '$currency' }, Refund),
      Refund.find(refundMatch)
        .sort({ at: 1 })
        .limit(RECAP_LIST_LIMIT)
        .lean<RefundRow[]>()
        .then(async (rows) => {
          const orders = await Order.find({ _id: { $in: [...new Set(rows.map((r) => r.orderId))] } }, { reference: 1, payment: 1 }).lean<CsvOrder[]>();
          const byId = new Map(orders.map((o) => [o._id, o]));
          return rows.map((r) => ({ refund: r, order: byId.get(r.orderId) }));
        }),
    ]);
    const orderTotals = orderRows
      .map((r) => ({ status: String(r._id.status), currency: String(r._id.currency), count: r.count, totalMinor: r.totalMinor }))
      .sort((a, b) => a.status.localeCompare(b.status) || a.currency.localeCompare(b.currency));
    const paymentTotals = paymentRows
      .map((r) => ({ currency: String(r._id.currency), count: r.count, totalMinor: r.totalMinor }))
      .sort((a, b) => b.totalMinor - a.totalMinor || a.currency.localeCompare(b.currency));

    // Bucketed by local day here from a cursor of two fields: FerretDB has no date operators we
    // can rely on in $group, and seven queries per recap made a backlog of recaps slow.
    const chartCurrency = merchant.currency || paymentTotals[0]?.currency || 'EUR';
    const days: RecapData['chart']['days'] = [];
    for (let k = RECAP_CHART_DAYS - 1; k >= 0; k--) days.push({ date: addDays(date, -k), totalMinor: 0, count: 0 });
    const chartStart = localDayBounds(days[0]!.date, timeZone).start;
    const chartPaid = Order.find(
      { merchantId, currency: chartCurrency, 'payment.paidAt': { $gte: chartStart, $lt: day.end } },
      { amountMinor: 1, 'payment.paidAt': 1 },
    )
      .lean<Array<{ amountMinor: number; payment: { paidAt: Date } }>>()
      .cursor();
    for await (const o of chartPaid) {
      const bucket = days.find((d) => d.date === localDate(new Date(o.payment.paidAt), timeZone));
      if (bucket) {
        bucket.totalMinor += o.amountMinor;
        bucket.count++;
      }
    }

    const card = (c: CardFacts | null | undefined): CardFacts | null =>
      c && c.last4 ? { brand: c.brand ?? '', last4: c.last4, country: c.country ?? '' } : null;
    return {
      merchantName: merchant.name,
      date,
      timeZone,
      hours: day.hours,
      orders: orderTotals,
      payments: {
        totals: paymentTotals,
        count: paymentTotals.reduce((n, t) => n + t.count, 0),
        items: paidList.map((o) => ({
          at: new Date(o.payment!.paidAt!).toISOString(),
          reference: o.reference,
          orderId: o._id,
          amountMinor: o.amountMinor,
          currency: o.currency,
          card: card(o.payment?.card),
        })),
      },
      refunds: {
        totals: refundRows.map((r) => ({ currency: String(r._id.currency), count: r.count, totalMinor: r.totalMinor })),
        count: refundRows.reduce((n, r) => n + r.count, 0),
        items: refundList.map(({ refund, order }) => ({
          at: new Date(refund.at).toISOString(),
          reference: order?.reference ?? refund.orderId,
          orderId: refund.orderId,
          amountMinor: refund.amountMinor,
          currency: refund.currency,
          card: card(order?.payment?.card),
        })),
      },
      failed: {
        count: failedCount,
        items: failedList.map((f) => ({
          at: new Date(f.attempts.at).toISOString(),
          reference: f.reference,
          amountMinor: f.amountMinor,
          currency: f.currency,
          outcome: f.attempts.outcome,
          declineCode: f.attempts.declineCode ?? '',
          card: card(f.attempts.card),
        })),
      },
      expired: {
        count: expiredCount,
        items: expiredList.map((o) => ({
          at: new Date(o.expiredAt).toISOString(),
          reference: o.reference,
          amountMinor: o.amountMinor,
          currency: o.currency,
          customer: o.customer?.name || o.customer?.email || '',
        })),
      },
      chart: { currency: chartCurrency, days },
      csv: { filename: `paymail-recap-${date}.csv`, content: await buildCsv(merchantId, day.start, day.end, timeZone) },
    };
  }

  async function enqueueRecap(merchant: MerchantDoc, date: string, dedupeKey: string): Promise<void> {
    const data = await buildRecap(merchant, date);
    await enqueueMail(
      {
        dedupeKey,
        template: 'daily-recap',
        locale: merchant.locale,
        to: [merchant.email],
        merchantId: merchant._id,
        data: data as unknown as Record<string, unknown>,
      },
      deps.mailDomain,
    );
  }

  /** Local days (oldest first) whose recap hour has passed at `now`, within the look-back. */
  function dueDates(merchant: MerchantDoc, now: Date): string[] {
    const tz = zoneOf(merchant);
    const hour = hourOf(merchant);
    const today = localDate(now, tz);
    const created = createdAtOf(merchant);
    const first = created ? localDate(created, tz) : undefined;
    const out: string[] = [];
    for (let k = RECAP_LOOKBACK_DAYS; k >= 1; k--) {
      const d = addDays(today, -k);
      if (first && d < first) continue;
      if (localTime(addDays(d, 1), hour, tz).getTime() <= now.getTime()) out.push(d);
    }
    return out;
  }

  function claimInfo(merchantId: string, date: string, kind: string) {
    return { kind, subject: merchantId, payload: { date }, ...(deps.owner ? { owner: deps.owner } : {}) };
  }

  /** Finishes claims whose winner died before the mail was enqueued (dedupe keeps it single). */
  async function recover(now: Date): Promise<number> {
    let n = 0;
    for (const kind of ['recap', 'recap-resend']) {
      for (const c of await unappliedClaims(kind, RECOVER_AFTER_MS, now)) {
        const date = String((c.payload as { date?: unknown } | undefined)?.date ?? '');
        const merchant = await Merchant.findById(String(c.subject)).lean<MerchantDoc>();
        if (merchant && isLocalDate(date)) {
          await enqueueRecap(merchant, date, String(c._id));
          n++;
        }
        await markApplied(String(c._id));
      }
    }
    return n;
  }

  /** One pass of the job: every active merchant's due recaps, including missed days. */
  async function runDue(now: Date): Promise<{ sent: number; recovered: number }> {
    const recovered = await recover(now);
    let sent = 0;
    const merchants = Merchant.find({ status: 'active' }).sort({ _id: 1 }).lean<MerchantDoc[]>().cursor();
    for await (const merchant of merchants) {
      const dates = dueDates(merchant, now);
      if (dates.length === 0) continue;
      const keys = dates.map((d) => recapKey(merchant._id, d));
      const taken = new Set((await Claim.find({ _id: { $in: keys } }, { _id: 1 }).lean<Array<{ _id: string }>>()).map((c) => c._id));
      for (const date of dates) {
        const key = recapKey(merchant._id, date);
        if (taken.has(key)) continue;
        // Lost: another instance (or an earlier run) has this day.
        if (!(await claimOnce(key, claimInfo(merchant._id, date, 'recap'), now))) continue;
        try {
          await enqueueRecap(merchant, date, key);
          await markApplied(key);
          sent++;
        } catch (err) {
          // Left unapplied: recover() retries it on a later run.
          log?.error({ err, merchantId: merchant._id, date }, 'recap failed; will retry');
        }
      }
    }
    if (sent || recovered) log?.info({ sent, recovered }, 'recaps enqueued');
    return { sent, recovered };
  }

  /**
   * For the CLI: sends the recap of `date` unless it was already sent; with `force`, sends it
   * again under a new dedupe key (`…:resend:<n>`, n claimed so two operators never collide).
   */
  async function send(merchantId: string, date: string, opts: { force?: boolean; now?: Date } = {}): Promise<SendOutcome> {
    if (!isLocalDate(date)) throw new AppError('RECAP_DATE_INVALID', `expected a date as YYYY-MM-DD, got "${date}"`);
    const merchant = await Merchant.findById(merchantId).lean<MerchantDoc>();
    if (!merchant) throw new AppError('MERCHANT_NOT_FOUND', `no merchant ${merchantId}`);
    const now = opts.now ?? new Date();
    const tz = zoneOf(merchant);
    if (localDayBounds(date, tz).end.getTime() > now.getTime()) {
      throw new AppError('RECAP_DAY_NOT_OVER', `${date} is not over yet in ${tz}`);
    }
    const key = recapKey(merchantId, date);
    if (await claimOnce(key, claimInfo(merchantId, date, 'recap'), now)) {
      await enqueueRecap(merchant, date, key);
      await markApplied(key);
      return 'sent';
    }
    if (!opts.force) return 'skipped';
    const escaped = `${key}:resend:`.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
    let n = (await Claim.countDocuments({ _id: { $regex: `^${escaped}\\d+$` } })) + 1;
    while (!(await claimOnce(`${key}:resend:${n}`, claimInfo(merchantId, date, 'recap-resend'), now))) n++;
    const resendKey = `${key}:resend:${n}`;
    await enqueueRecap(merchant, date, resendKey);
    await markApplied(resendKey);
    return 'resent';
  }

  return { buildRecap, dueDates, runDue, send, recover };
}

export type RecapService = ReturnType<typeof createRecapService>;

/** The local day before `now` for a merchant: what `recap send` sends when no date is given. */
export function previousLocalDay(merchant: MerchantDoc, now: Date): string {
  return addDays(localDate(now, zoneOf(merchant)), -1);
}
