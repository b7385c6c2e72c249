// Daily recaps: which merchant-days were mailed (claims `recap:<merchant>:<date>`), the stored day
// totals of the 7-day chart (`recap_days`), and the recap's read model of orders and refunds.
// All database access for this aggregate; callers get it injected (src/db/repositories.ts).
//
// Indexes (declared in the models, checked by test/integration/query-indexes.test.ts): the read of
// a group of merchants' orders is `{merchantId: {$in}}` and an `$or` with one branch per money
// event (created, paid, expired, viewed, attempted in the window); each branch has its own
// `{merchantId, <event>}` index on `orders`, so MongoDB answers it with an OR of index range scans
// over the group's orders in the window only (each branch names the group's merchants), and
// our FerretDB build reads the group's rows by a merchantId index (ferretdb-merchant-pushdown.ts).
// That beats a ledger collection of money events here: no second write per payment, attempt or
// expiry (and no second document to keep consistent with the order), and each order is read once
// a run. Refunds by `{merchantId, at}`, claims by `{kind, payload.date}`, stored days by
// `{merchantId, date}`.
// Orders paid in parts (issue 13 part 1): `payment` is only the latest part's payment, so a further
// branch `plan.parts.payment.paidAt` (its own index) brings every order a part of which was
// paid in the window. The "Part-paid orders" section (issue 13 part 7) rides on the same read: two
// branches on `{merchantId, status, plan.nextDueAt}` — partly paid orders whose next part is due by
// `partPaid.by`, and those with no date (link open, or waiting for the merchant) — so the recap
// still reads `orders` once (test/integration/recap-pass.test.ts).
import { Claim, markApplied, unappliedClaims } from './claims.ts';
import { readAhead } from './read-ahead.ts';
import { Merchant, type MerchantDoc } from './models/merchant.model.ts';
import { Order } from './models/order.model.ts';
import { RecapDay, recapDayId, type RecapDayDoc } from './models/recap-day.model.ts';
import { Refund } from './models/refund.model.ts';
import { type RecapOrderFacts, type RecapRefundFacts } from '../domain/recap-data.ts';

export type { RecapDayDoc } from './models/recap-day.model.ts';

/**
 * Update statements sent in one request. FerretDB v1.24 does not answer an `update` command of 100
 * statements or more (measured: 99 answered in ~0.2 s; 100 and 101 not within minutes, the driver
 * waiting forever); MongoDB takes 100,000.
 */
const UPDATES_PER_REQUEST = 50;
export { recapDayId } from './models/recap-day.model.ts';

/** The fields of an order the recap reads (the pass's projection), as the recap aggregate takes them. */
export type RecapOrder = RecapOrderFacts;

const PASS_PROJECTION = {
  _id: 1,
  merchantId: 1,
  reference: 1,
  status: 1,
  amountMinor: 1,
  currency: 1,
  description: 1,
  customer: 1,
  createdAt: 1,
  expiredAt: 1,
  viewedAt: 1,
  expiresAt: 1,
  payment: 1,
  attempts: 1,
  plan: 1,
};

/** An open order as the recap's "expiring soon" and "opened but not paid" read it (from the pass). */
export interface OpenToActOrder {
  _id: string;
  merchantId: string;
  reference: string;
  amountMinor: number;
  currency: string;
  customer?: { name?: string | null; email?: string | null } | null;
  expiresAt: Date;
  viewedAt?: Date | null;
}

/** A refund as the recap reads it. */
export type RecapRefund = RecapRefundFacts;

/** A time window [from, before). */
export interface Window {
  from: Date;
  before: Date;
}

/** The filter of a group of merchants: the leading key of every index the recap's reads use. */
const ofMerchants = (merchantIds: string[]) => ({ merchantId: { $in: merchantIds } });

export function createRecapsRepository() {
  return {
    // ---- read model: orders and refunds -------------------------------------------------------

    /**
     * THE read of a group of merchants: every order of theirs created, viewed, expired or
     * attempted in `window`, or paid in `paidWindow` (wider: chart days not stored yet), plus the
     * orders `alsoIds` (few), streamed.
     */
    ordersTouched(q: { merchantIds: string[]; window: Window; paidWindow: Window; alsoIds?: string[]; open?: { at: Date; by: Date }; partPaid?: { by: Date } }): AsyncIterable<RecapOrder & { expiresAt?: Date }> {
      const range = { $gte: q.window.from, $lt: q.window.before };
      const paidRange = { $gte: q.paidWindow.from, $lt: q.paidWindow.before };
      const or: Record<string, unknown>[] = [
        { createdAt: range },
        { 'payment.paidAt': paidRange },
        // Issue 13 part 1: every part paid in the window (an earlier part is not in `payment`).
        { 'plan.parts.payment.paidAt': paidRange },
        { expiredAt: range },
        { viewedAt: range },
        { 'attempts.at': range },
      ];
      if (q.alsoIds?.length) or.push({ _id: { $in: q.alsoIds } });
      // Issue 13 part 7: the open orders to act on at the recap's time — expiring by `open.by`, or
      // opened by the customer — in the same read ({merchantId, status, expiresAt} serves both branches).
      if (q.open) {
        or.push({ status: 'pending', expiresAt: { $gt: q.open.at, $lte: q.open.by } });
        or.push({ status: 'pending', expiresAt: { $gt: q.open.at }, viewedAt: { $type: 'date' } });
      }
      // Issue 13 part 7: the partly paid orders — next part due soon, or no date (link open, or the
      // merchant to ask) — both on {merchantId, status, plan.nextDueAt}.
      if (q.partPaid) {
        or.push({ status: 'partially_paid', 'plan.nextDueAt': { $lte: q.partPaid.by } });
        or.push({ status: 'partially_paid', 'plan.nextDueAt': null });
      }
      // The group's merchants in each branch too, after the branch's own keys: MongoDB then plans
      // every branch on its {merchantId, …} index (the documented form; the outer key is what our
      // FerretDB build pushes down). The `$or` first: FerretDB tests a filter's keys in order, each
      // merchant of an `$in` in turn, and most of the group's rows it reads by merchant are outside
      // the window (MongoDB's plan does not depend on the order). Read ahead: the database finds
      // the next batch while the recap aggregates this one.
      const mine = ofMerchants(q.merchantIds);
      const branches = or.map((b) => ({ ...b, ...mine }));
      return readAhead(Order.collection.find<RecapOrder & { expiresAt?: Date }>({ $or: branches, ...mine } as never, { projection: PASS_PROJECTION, batchSize: 1000 }));
    },

    /** One order as the recap reads it (a refunded order the pass did not meet). */
    order: (id: string) => Order.collection.findOne<RecapOrder>({ _id: id as never }, { projection: PASS_PROJECTION }),

    /** Refunds made in `window`. */
    refundsIn(q: { merchantIds: string[]; window: Window }): AsyncIterable<RecapRefund> {
      return Refund.find({ ...ofMerchants(q.merchantIds), at: { $gte: q.window.from, $lt: q.window.before } })
        .lean<RecapRefund[]>()
        .cursor();
    },

    // ---- merchants ----------------------------------------------------------------------------

    /** Active merchants (those recapped), streamed. */
    activeMerchants: (): AsyncIterable<MerchantDoc> => Merchant.find({ status: 'active' }).lean<MerchantDoc[]>().cursor(),

    /** Ids of the active merchants, in id order (`paymail recap send --all`). */
    async activeMerchantIds(): Promise<string[]> {
      return (await Merchant.find({ status: 'active' }, { _id: 1 }).sort({ _id: 1 }).lean<Array<{ _id: string }>>()).map((m) => m._id);
    },

    /** The merchants with these ids (any status). */
    async merchantsByIds(ids: string[]): Promise<MerchantDoc[]> {
      if (ids.length === 0) return [];
      // By _id one at a time while few (FerretDB reads exactly those); else one read.
      if (ids.length <= 20) {
        const found = await Promise.all(ids.map((id) => Merchant.findById(id).lean<MerchantDoc>()));
        return found.filter((m): m is MerchantDoc => m !== null);
      }
      return Merchant.find({ _id: { $in: ids } }).lean<MerchantDoc[]>();
    },

    // ---- stored day totals --------------------------------------------------------------------

    /** Stored day totals with `from <= date <= to` (local dates). */
    storedDays: (q: { merchantIds: string[]; from: string; to: string }): AsyncIterable<RecapDayDoc> =>
      RecapDay.find({ ...ofMerchants(q.merchantIds), date: { $gte: q.from, $lte: q.to } })
        .lean<RecapDayDoc[]>()
        .cursor(),

    /** Stores settled days' totals; a day another run stored already is left alone. */
    async storeDays(days: RecapDayDoc[]): Promise<void> {
      if (days.length === 0) return;
      await RecapDay.collection.insertMany(days as never[], { ordered: false }).catch((e: { code?: number; writeErrors?: Array<{ code?: number }> }) => {
        const errs = e.writeErrors ?? [e];
        if (!errs.every((w) => w.code === 11000)) throw e;
      });
    },

    /** Deletes stored days before `date`. */
    async pruneDaysBefore(date: string): Promise<void> {
      await RecapDay.deleteMany({ date: { $lt: date } });
    },

    // ---- claims: which merchant-days were mailed ----------------------------------------------

    /**
     * Inserts the claims in one batch; returns the keys this caller won. A duplicate _id means
     * another caller has it (the insert of each document is atomic on FerretDB and MongoDB alike).
     */
    async claim(claims: Array<{ key: string; merchantId: string; date: string; kind: 'recap' | 'recap-resend' }>, now: Date, owner?: string): Promise<Set<string>> {
      const won = new Set<string>();
      if (claims.length === 0) return won;
      const docs = claims.map((c) => ({ _id: c.key, at: now, kind: c.kind, subject: c.merchantId, payload: { date: c.date }, applied: false, ...(owner ? { owner } : {}) }));
      const lost = new Set<number>();
      try {
        await Claim.collection.insertMany(docs as never[], { ordered: false });
      } catch (e) {
        const errs = (e as { writeErrors?: Array<{ code?: number; index: number }> | { code?: number; index: number } }).writeErrors;
        const list = Array.isArray(errs) ? errs : errs ? [errs] : undefined;
        if (!list || !list.every((w) => w.code === 11000)) throw e;
        for (const w of list) lost.add(w.index);
      }
      for (const [i, c] of claims.entries()) if (!lost.has(i)) won.add(c.key);
      return won;
    },

    /**
     * Marks the claims' mails enqueued: an update by `_id` per claim, UPDATES_PER_REQUEST to a request.
     * Not one updateMany over `{_id: {$in: keys}}`: FerretDB looks up only a single `_id` by its
     * index and ran that as a scan of every claim (at 10,000 merchants, ~65,000 claims read per
     * batch of 100: 20 s a batch; by `_id`, index look-ups on both engines).
     */
    async markApplied(keys: string[]): Promise<void> {
      if (keys.length === 1) return markApplied(keys[0]!);
      // FerretDB v1 never answers an update command of 100 statements or more: requests of fewer.
      for (let i = 0; i < keys.length; i += UPDATES_PER_REQUEST) {
        await Claim.collection.bulkWrite(
          keys.slice(i, i + UPDATES_PER_REQUEST).map((k) => ({ updateOne: { filter: { _id: k as never }, update: { $set: { applied: true } } } })),
          { ordered: false },
        );
      }
    },

    /** Keys of the claims of `kind` for local dates `from` on, or in `dates`. */
    claimedKeys(kind: 'recap' | 'recap-resend', dates: { from: string } | { in: string[] }): AsyncIterable<{ _id: string }> {
      const date = 'from' in dates ? { $gte: dates.from } : { $in: dates.in };
      return Claim.find({ kind, 'payload.date': date }, { _id: 1 }).lean<Array<{ _id: string }>>().cursor();
    },

    /** Claims of `kind` older than `olderThanMs` whose mail was never marked enqueued. */
    async stuckClaims(kind: 'recap' | 'recap-resend', olderThanMs: number, now: Date): Promise<Array<{ key: string; merchantId: string; date: string }>> {
      return (await unappliedClaims(kind, olderThanMs, now)).map((c) => ({
        key: String(c._id),
        merchantId: String(c.subject),
        date: String((c.payload as { date?: unknown } | undefined)?.date ?? ''),
      }));
    },
  };
}

export type RecapsRepository = ReturnType<typeof createRecapsRepository>;
