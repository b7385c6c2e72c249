// The recap mail data, assembled: the recaps of a run are built a group of merchants at a time
// (MERCHANTS_PER_READ), each group from ONE streamed read of its merchants' orders touched in the
// run's day windows and one of their refunds (through the recap repository), aggregated per
// merchant and day in memory (src/domain/recap-day.ts) and handed over before the next group is
// read: memory follows the group, not the number of merchants. Each read filters by the group's
// merchants, which every engine answers from `{merchantId, …}` indexes (MongoDB: an OR of index
// ranges over the window; our FerretDB build: the group's rows by the merchantId index,
// src/db/ferretdb-merchant-pushdown.ts), so the groups together read what one pass would.
// The 7-day chart reads earlier days' totals from `recap_days`; days not stored yet are counted
// in the pass and stored for the next runs once settled.
import { type MerchantDoc } from '../db/merchants.repository.ts';
import { type OpenToActOrder, recapDayId, type RecapDayDoc, type RecapOrder } from '../db/recaps.repository.ts';
import { type Repositories } from '../db/repositories.ts';
import { addDays } from '../domain/local-day.ts';
import { mapLimit } from '../domain/map-limit.ts';
import { type RecapData } from '../domain/recap-data.ts';
import { DayRecap, MerchantDays, paymentsOf } from '../domain/recap-day.ts';
import { PART_PAID_AHEAD_MS, partPaidSection } from '../domain/recap-part-paid.ts';
import { dayBounds } from '../domain/recap-local-time.ts';

export const RECAP_CHART_DAYS = 7;
/** A day's totals are stored only once it ended this long ago (payments being written at midnight). */
const SETTLE_MS = 10 * 60_000;
/** Refunded orders the pass did not meet, read by _id at once (their round trips overlap). */
const READ_CONCURRENCY = 8;
/**
 * Merchants whose recaps are built from one read of the orders. At 10,000 merchants (P5+), holding
 * every merchant's day until one pass ended took the recap to 483 MB; a group holds 1/20 of that.
 */
export const MERCHANTS_PER_READ = 500;

/** The fields of an order the recap reads (the pass's projection, src/db/recaps.repository.ts). */
type PassOrder = RecapOrder;

/** "Expiring in the next 24 hours" looks this far ahead of the recap's time. */
const ACT_WINDOW_MS = 24 * 3_600_000;
/** Items listed per section (the count says how many more). */
const ACT_ITEMS = 20;

const customerOf = (o: OpenToActOrder) => (o.customer?.name && o.customer.email ? `${o.customer.name} <${o.customer.email}>` : (o.customer?.name ?? o.customer?.email ?? ''));

/** The recap's two "act on these" sections of one merchant's open orders (issue 13 part 7). */
function openSections(open: OpenToActOrder[], at: Date): Pick<RecapData, 'expiringSoon' | 'openedUnpaid'> {
  const by = at.getTime() + ACT_WINDOW_MS;
  const expiring = open.filter((o) => new Date(o.expiresAt).getTime() <= by).sort((a, b) => new Date(a.expiresAt).getTime() - new Date(b.expiresAt).getTime());
  const opened = open.filter((o) => o.viewedAt).sort((a, b) => new Date(b.viewedAt!).getTime() - new Date(a.viewedAt!).getTime());
  return {
    expiringSoon: {
      count: expiring.length,
      items: expiring.slice(0, ACT_ITEMS).map((o) => ({ reference: o.reference, amountMinor: o.amountMinor, currency: o.currency, expiresAt: new Date(o.expiresAt).toISOString(), customer: customerOf(o) })),
    },
    openedUnpaid: {
      count: opened.length,
      items: opened.slice(0, ACT_ITEMS).map((o) => ({ reference: o.reference, amountMinor: o.amountMinor, currency: o.currency, viewedAt: new Date(o.viewedAt!).toISOString(), expiresAt: new Date(o.expiresAt).toISOString(), customer: customerOf(o) })),
    },
  };
}

type Item = { merchant: MerchantDoc; date: string };
/** Receives finished recaps: `at[k]` is the index of `batch[k]` in the items given. */
type Each = (batch: RecapData[], at: number[]) => Promise<void> | void;

/**
 * The items' indexes in groups of at most `perRead` merchants (a merchant's items in one group), in
 * the order given.
 */
function merchantGroups(items: Item[], perRead: number): number[][] {
  const groups: number[][] = [];
  const groupOf = new Map<string, number[]>();
  let merchants = perRead;
  items.forEach((it, i) => {
    let g = groupOf.get(it.merchant._id);
    if (!g) {
      if (merchants >= perRead) {
        groups.push([]);
        merchants = 0;
      }
      g = groups.at(-1)!;
      groupOf.set(it.merchant._id, g);
      merchants++;
    }
    g.push(i);
  });
  return groups;
}

/** `buildRecaps` over the recap repository; `merchantsPerRead` (MERCHANTS_PER_READ) sizes the groups. */
export function createRecapBuilder(store: Repositories['recaps'], opts: { merchantsPerRead?: number } = {}) {
  const perRead = opts.merchantsPerRead ?? MERCHANTS_PER_READ;
  /**
   * Builds the recaps of (merchant, date) pairs, a group of merchants per read of the orders and
   * of the refunds; results in the order given. Days' totals counted on the way are stored in
   * `recap_days` once they are settled at `now`.
   */
  async function buildRecaps(items: Item[], now = new Date(), timings: Record<string, number> = {}): Promise<RecapData[]> {
    const out: RecapData[] = new Array<RecapData>(items.length);
    await buildRecapsEach(items, now, items.length || 1, (batch, at) => batch.forEach((d, k) => (out[at[k]!] = d)), timings);
    return out;
  }

  /**
   * buildRecaps, handing the finished recaps to `each` `batchSize` at a time (a group's in the
   * order given, group after group) and letting each batch's day rows go before the next is
   * finished: the run holds one group's days and one batch of mail data at a time.
   * `timings` adds up each phase's milliseconds over the groups.
   */
  async function buildRecapsEach(items: Item[], now: Date, batchSize: number, each: Each, timings: Record<string, number> = {}): Promise<void> {
    for (const at of merchantGroups(items, perRead)) {
      await buildGroup(
        at.map((i) => items[i]!),
        now,
        batchSize,
        (batch, k) => each(batch, k.map((j) => at[j]!)),
        timings,
      );
    }
  }

  /** The recaps of one group of merchants, from one read of their orders and one of their refunds. */
  async function buildGroup(items: Item[], now: Date, batchSize: number, each: Each, timings: Record<string, number>): Promise<void> {
    if (items.length === 0) return;
    let mark = performance.now();
    const lap = (name: string) => {
      const t = performance.now();
      timings[name] = (timings[name] ?? 0) + Math.round(t - mark);
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
    const start = Math.min(...recaps.map((r) => r.start));
    const end = Math.max(...recaps.map((r) => r.end));
    const window = { from: new Date(start), before: new Date(end) };

    // Stored day totals for the charts (one read of the small `recap_days`).
    const chartDates = (r: DayRecap) => Array.from({ length: RECAP_CHART_DAYS }, (_, k) => addDays(r.date, k - RECAP_CHART_DAYS + 1));
    const wanted = new Set(recaps.flatMap((r) => chartDates(r).slice(0, -1).map((d) => recapDayId(r.merchant._id, d))));
    const firstChart = recaps.map((r) => chartDates(r)[0]!).sort()[0]!;
    const lastDate = recaps.map((r) => r.date).sort().at(-1)!;
    const stored = store.storedDays({ merchantIds, from: firstChart, to: lastDate });
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
    for await (const r of store.refundsIn({ merchantIds, window })) {
      for (const rec of byMerchant.get(r.merchantId) ?? []) {
        if (!rec.has(new Date(r.at).getTime())) continue;
        rec.refunds.push(r);
        refundOrderIds.add(r.orderId);
      }
    }

    lap('refunds');
    // THE read of the group: every order any of these recaps needs, streamed once.
    const refundOrders = new Map<string, PassOrder>();
    // Few refunded orders: in the pass. Many: not as an $in (FerretDB would test the list against
    // every order); those the pass did not meet anyway are read by _id afterwards.
    const alsoIds = refundOrderIds.size > 0 && refundOrderIds.size <= 50 ? [...refundOrderIds] : undefined;
    // Issue 13 part 7: the same read brings the open orders to act on at the recap's time.
    const open = { at: now, by: new Date(now.getTime() + ACT_WINDOW_MS) };
    const toAct = new Map<string, OpenToActOrder[]>();
    // Issue 13 part 7: and the partly paid orders (the "Part-paid orders" section).
    const partPaid = new Map<string, PassOrder[]>();
    const cursor = store.ordersTouched({ merchantIds, window, paidWindow: { from: new Date(paidFrom), before: new Date(end) }, alsoIds, open, partPaid: { by: new Date(now.getTime() + PART_PAID_AHEAD_MS) } });
    for await (const o of cursor) {
      const rs = byMerchant.get(o.merchantId);
      if (!rs) continue;
      if (o.status === 'pending' && o.expiresAt && o.expiresAt > open.at && (o.expiresAt <= open.by || o.viewedAt)) {
        // Only what the two sections show: the group's read holds these for all its merchants.
        const act: OpenToActOrder = { _id: o._id, merchantId: o.merchantId, reference: o.reference, amountMinor: o.amountMinor, currency: o.currency, customer: o.customer ?? null, expiresAt: o.expiresAt, viewedAt: o.viewedAt ?? null };
        const list = toAct.get(o.merchantId);
        if (list) list.push(act);
        else toAct.set(o.merchantId, [act]);
      }
      if (o.status === 'partially_paid' && o.plan) {
        const list = partPaid.get(o.merchantId);
        if (list) list.push(o);
        else partPaid.set(o.merchantId, [o]);
      }
      if (refundOrderIds.has(o._id)) {
        refundOrders.set(o._id, { _id: o._id, merchantId: o.merchantId, reference: o.reference, status: o.status, amountMinor: o.amountMinor, currency: o.currency, description: o.description ?? null, customer: o.customer ?? null, payment: o.payment ? { card: o.payment.card ?? null } : null, plan: o.plan ?? null });
      }
      for (const r of rs) r.addOrder(o);
      // The chart: each payment (each part of an order paid in parts) on its own day.
      for (const p of paymentsOf(o)) days.get(o.merchantId)!.count(p.at, o.currency, p.amountMinor);
    }

    lap('orders');
    const missing = [...refundOrderIds].filter((id) => !refundOrders.has(id));
    await mapLimit(missing, READ_CONCURRENCY, async (id) => {
      const o = await store.order(id);
      if (o) refundOrders.set(o._id, o);
    });

    lap('refundOrders');
    // Store the settled days counted here; an existing document (another run's) is left alone.
    const settled: RecapDayDoc[] = [];
    for (const md of days.values()) {
      for (const [date, d] of md.counted) {
        if (d.end + SETTLE_MS > now.getTime()) continue;
        settled.push({ _id: recapDayId(md.merchant._id, date), merchantId: md.merchant._id, date, timeZone: md.timeZone, paid: [...d.totals.values()], at: now });
      }
    }
    await store.storeDays(settled);
    lap('storeSettled');

    const finish = (r: DayRecap): RecapData => {
      const md = days.get(r.merchant._id)!;
      const data = r.finish(refundOrders, (currency) =>
        chartDates(r).map((date) => {
          const t = md.totals(date)?.get(currency);
          return { date, totalMinor: t?.totalMinor ?? 0, count: t?.count ?? 0 };
        }),
      );
      return { ...data, ...openSections(toAct.get(r.merchant._id) ?? [], now), partPaid: partPaidSection(partPaid.get(r.merchant._id) ?? [], now, r, ACT_ITEMS) };
    };
    byMerchant.clear();
    const held: Array<DayRecap | undefined> = recaps;
    for (let b = 0; b < held.length; b += batchSize) {
      const batch: RecapData[] = [];
      for (let i = b; i < Math.min(b + batchSize, held.length); i++) {
        batch.push(finish(held[i]!));
        // Its rows are in the mail data now.
        held[i] = undefined;
      }
      await each(
        batch,
        batch.map((_, k) => b + k),
      );
    }
    lap('finishAndHandOver');
  }

  return { buildRecaps, buildRecapsEach };
}
