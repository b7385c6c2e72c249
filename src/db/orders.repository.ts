// Orders with their payment, attempts and history. All database access for this aggregate; callers
// get it injected (src/db/repositories.ts). Refunds and 3-D Secure challenges have their own
// repositories (refunds.repository.ts, challenges.repository.ts).
//
// Every state transition is ONE conditional update with the expected prior state in the filter
// (`{_id, status: 'pending'}`), returning the updated order or null when the order is not (any
// longer) in that state: atomic on MongoDB in one round trip. FerretDB v1 applies an update as a
// read-modify-write without a lock (src/db/claims.ts), so there the close claims of
// src/services/order-transitions.ts referee which transition runs; the filter still keeps a
// transition from overwriting a state it did not expect. Filters that contain `_id` are primary-key
// look-ups on both engines (FerretDB: the build's `_id` push-down patch, src/db/ferretdb-build.ts).
import { orderIdFor } from '../domain/ids.ts';
import { type NewPlan } from '../domain/order-plan.ts';
import { type OrderStatus } from '../domain/order-status.ts';
import { bumpCounters } from './counters.ts';
import { findById } from './find-by-id.ts';
import { Order, type OrderDoc } from './models/order.model.ts';
import { createOrderPlanRepository } from './order-plan.repository.ts';
import { createOrderRemindersRepository } from './order-reminders.repository.ts';

export type { ReminderRecord, RenewalRecord } from './order-reminders.repository.ts';
export type { OrderDoc } from './models/order.model.ts';

/** A new order as the order service builds it (src/services/order.service.ts). */
export interface NewOrder {
  _id: string;
  publicId: string;
  merchantId: string;
  reference: string;
  openReference: string;
  sourceKey: string;
  amountMinor: number;
  currency: string;
  description?: string | undefined;
  customer: { email?: string | undefined; name?: string | undefined };
  locale: string;
  localeGiven: boolean;
  delivery: 'merchant' | 'customer';
  status: 'pending';
  expiresAt: Date;
  linkExpiresAt: number;
  source: { inboundMessageId?: string | undefined; messageId?: string | undefined; subject?: string | undefined };
  returnUrls?: { success?: string | undefined; cancel?: string | undefined };
  /** The order's own reminder plan (issue 13 part 3) and its first reminder check. */
  reminderPlan?: { off?: boolean; daysBefore?: number[] } | undefined;
  remindAt?: Date | undefined;
  /** Paid in parts (issue 13 part 1): the parts, the first one open. */
  plan?: NewPlan | undefined;
}

/** One payment attempt as stored on the order; one with a `key` is stored once. */
export type AttemptRecord = Record<string, unknown> & { key?: string };

/** What a payment writes on the order it closes (the close claim's payload, src/services/order-transitions.ts). */
export interface PaidUpdate {
  payment: Record<string, unknown>;
  customerEmail?: string | undefined;
  attempt: AttemptRecord;
  /** The customer whose saved card paid, or who saved the card paying (issue 12 part 3). */
  customerCode?: string | undefined;
  /**
   * The part of a plan order this payment pays (issue 13 part 1): its index in `plan.parts`, and
   * when the next part's link goes out by itself (absent: when the merchant asks).
   */
  part?: { seq: number; of: number; nextDueAt?: Date | undefined } | undefined;
}

/** The back office's order search; every bound optional. Dates are instants (the caller converts local days). */
export interface OrderSearch {
  status?: OrderStatus | undefined;
  createdFrom?: Date | undefined;
  createdBefore?: Date | undefined;
  minAmountMinor?: number | undefined;
  maxAmountMinor?: number | undefined;
  /** Part of the reference, any case. */
  reference?: string | undefined;
  /** Part of the customer's name or e-mail address, any case. */
  customer?: string | undefined;
}


const escapeRegex = (s: string): string => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
const after = { returnDocument: 'after' } as const;

function searchFilter(merchantId: string, f: OrderSearch): Record<string, unknown> {
  const q: Record<string, unknown> = { merchantId };
  if (f.status) q['status'] = f.status;
  if (f.createdFrom || f.createdBefore) {
    q['createdAt'] = { ...(f.createdFrom ? { $gte: f.createdFrom } : {}), ...(f.createdBefore ? { $lt: f.createdBefore } : {}) };
  }
  if (f.minAmountMinor !== undefined || f.maxAmountMinor !== undefined) {
    q['amountMinor'] = {
      ...(f.minAmountMinor !== undefined ? { $gte: f.minAmountMinor } : {}),
      ...(f.maxAmountMinor !== undefined ? { $lte: f.maxAmountMinor } : {}),
    };
  }
  if (f.reference) q['reference'] = { $regex: escapeRegex(f.reference), $options: 'i' };
  if (f.customer) {
    const re = { $regex: escapeRegex(f.customer), $options: 'i' };
    q['$or'] = [{ 'customer.email': re }, { 'customer.name': re }];
  }
  return q;
}

/** The /metrics total an appended attempt adds to (`attempts:<outcome>`). */
const attemptCount = (a: unknown): Record<string, number> => {
  const outcome = (a as { outcome?: unknown } | undefined)?.outcome;
  return typeof outcome === 'string' ? { [`attempts:${outcome}`]: 1 } : {};
};

export function createOrdersRepository() {
  const byId = (id: string) => Order.findById(id).lean<OrderDoc>();

  /**
   * `from` → `status`; a close (paid, cancelled, expired) frees the reference for a new order (see
   * openReference in the model), a part payment keeps it. `match`: more of the expected state.
   */
  const move = async (
    orderId: string,
    from: OrderStatus,
    status: OrderStatus,
    set: Record<string, unknown>,
    push?: Record<string, unknown>,
    match: Record<string, unknown> = {},
    unset?: Record<string, 1>,
  ) => {
    const closes = status !== 'pending' && status !== 'partially_paid';
    const done = await Order.findOneAndUpdate(
      { _id: orderId, status: from, ...match },
      { $set: { ...set, status, ...(closes ? { openReference: orderId } : {}) }, ...(push ? { $push: push } : {}), ...(unset ? { $unset: unset } : {}) },
      after,
    ).lean<OrderDoc>();
    // /metrics totals (src/db/counters.ts): only the caller whose update won counts it.
    if (done) await bumpCounters({ ...(from !== status ? { [`orders:${from}`]: -1, [`orders:${status}`]: 1 } : {}), ...attemptCount(push?.attempts) });
    return done;
  };
  const close = (orderId: string, status: Exclude<OrderStatus, 'pending' | 'partially_paid'>, set: Record<string, unknown>, push?: Record<string, unknown>) =>
    move(orderId, 'pending', status, set, push);

  return {
    /** Stores a new order; a duplicate source or open reference throws the driver's 11000. */
    async insert(doc: NewOrder): Promise<OrderDoc> {
      const created = (await Order.create(doc)).toObject() as OrderDoc;
      await bumpCounters({ 'orders:pending': 1 });
      return created;
    },

    /** Stores new orders, each on its own: the unique indexes refuse some, the rest are stored, then this throws. */
    async insertMany(docs: NewOrder[]): Promise<void> {
      try {
        await Order.insertMany(docs, { ordered: false });
        await bumpCounters({ 'orders:pending': docs.length });
      } catch (e) {
        const err = e as { insertedDocs?: unknown[]; result?: { insertedCount?: number } };
        const stored = err.insertedDocs?.length ?? err.result?.insertedCount ?? 0;
        await bumpCounters({ 'orders:pending': stored });
        throw e;
      }
    },

    byId,

    async exists(id: string): Promise<boolean> {
      return (await Order.exists({ _id: id })) !== null;
    },

    /** Only the state of an order (cheap): its status and expiry (and, paid in parts, which part is open). */
    stateOf: (id: string) => Order.findById(id, { status: 1, expiresAt: 1, 'plan.openSeq': 1 }).lean<Pick<OrderDoc, '_id' | 'status' | 'expiresAt' | 'plan'>>(),

    /** The order of `merchantId` with this id; null for another merchant's (tenant isolation). */
    ofMerchant: (merchantId: string, orderId: string) => Order.findOne({ _id: orderId, merchantId }).lean<OrderDoc>(),

    /** The orders with these ids that belong to `merchantId`. */
    manyOfMerchant: (merchantId: string, ids: readonly string[]) =>
      Order.find({ _id: { $in: [...ids] }, merchantId }).lean<OrderDoc[]>(),

    /** The order a pay-link names: by `ord_<publicId>`, else by publicId (older orders); fresh each page view, one `find` by primary key (no mongoose query to build, no cursor, bench P2). */
    async forCheckout(publicId: string): Promise<OrderDoc | null> {
      const found = await findById<OrderDoc>(Order, orderIdFor(publicId));
      return found?.publicId === publicId ? found : Order.findOne({ publicId }).lean<OrderDoc>();
    },

    /** The order created from source `sourceKey` (an index look-up, not by primary key). */
    bySource: (merchantId: string, sourceKey: string) => Order.findOne({ merchantId, sourceKey }).lean<OrderDoc>(),

    /** The open order with this reference (at most one per merchant). */
    openByReference: (merchantId: string, reference: string) =>
      Order.findOne({ merchantId, openReference: reference }).lean<OrderDoc>(),

    /** The newest order with this reference, exactly or in any case. */
    async newestByReference(merchantId: string, reference: string, opts: { anyCase?: boolean } = {}): Promise<OrderDoc | null> {
      const ref = opts.anyCase ? { $regex: `^${escapeRegex(reference)}$`, $options: 'i' } : reference;
      const [o] = await Order.find({ merchantId, reference: ref }).sort({ createdAt: -1 }).limit(1).lean<OrderDoc[]>();
      return o ?? null;
    },

    /** One page of the back office's search, newest first, and the number of matches (FerretDB has no $facet). */
    async search(merchantId: string, f: OrderSearch, page: { skip: number; limit: number }): Promise<OrderDoc[]> {
      return Order.find(searchFilter(merchantId, f)).sort({ createdAt: -1, _id: -1 }).skip(page.skip).limit(page.limit).lean<OrderDoc[]>();
    },
    count: (merchantId: string, f: OrderSearch) => Order.countDocuments(searchFilter(merchantId, f)),

    /**
     * One page of the server API's order list: newest first in a stable order (createdAt, then
     * _id), from after the `after` position (the last order of the previous page), on the
     * (merchantId, createdAt) index.
     */
    async page(
      merchantId: string,
      f: { status?: OrderStatus | undefined; since?: Date | undefined; after?: { createdAt: Date; id: string } | undefined },
      limit: number,
    ): Promise<OrderDoc[]> {
      const q: Record<string, unknown> = { merchantId };
      if (f.status) q['status'] = f.status;
      if (f.since) q['createdAt'] = { $gte: f.since };
      if (f.after) {
        q['$or'] = [
          { createdAt: { $lt: f.after.createdAt } },
          { createdAt: f.after.createdAt, _id: { $lt: f.after.id } },
        ];
      }
      return Order.find(q).sort({ createdAt: -1, _id: -1 }).limit(limit).lean<OrderDoc[]>();
    },

    /** The merchant's orders created in [from, before), oldest first, from a cursor (close it when done early). */
    createdBetween(merchantId: string, from: Date, before: Date) {
      return Order.find({ merchantId, createdAt: { $gte: from, $lt: before } })
        .sort({ createdAt: 1, _id: 1 })
        .lean<OrderDoc[]>()
        .cursor({ batchSize: 200 }) as AsyncIterable<OrderDoc> & { close(): Promise<void> };
    },

    // The expiry job's query, reminders and renewals (issue 13 parts 3 and 4).
    ...createOrderRemindersRepository(),
    // The parts of orders paid in parts (issue 13 part 1).
    ...createOrderPlanRepository(),

    // ---- transitions: one conditional update each; the updated order, or null ----------------

    /**
     * pending → paid: the payment, the customer's address when typed at checkout, the approved
     * attempt. For a plan order, `p.part` names the part paid, which must be the open one: the
     * order becomes partially_paid (pending → or partially_paid →) until its last part makes it paid.
     */
    markPaid(orderId: string, p: PaidUpdate): Promise<OrderDoc | null> {
      const set = { payment: p.payment, ...(p.customerEmail ? { 'customer.email': p.customerEmail } : {}), ...(p.customerCode ? { customerCode: p.customerCode } : {}) };
      if (!p.part) return close(orderId, 'paid', set, { attempts: p.attempt });
      const { seq, of } = p.part;
      const last = seq >= of;
      const partSet = {
        ...set,
        [`plan.parts.${seq - 1}.payment`]: p.payment,
        'plan.openSeq': 0,
        ...(p.part.nextDueAt && !last ? { 'plan.nextDueAt': p.part.nextDueAt } : {}),
      };
      // The part's reminders end with it (the next part's start when its link goes out).
      return move(orderId, seq === 1 ? 'pending' : 'partially_paid', last ? 'paid' : 'partially_paid', partSet, { attempts: p.attempt }, { 'plan.openSeq': seq }, { remindAt: 1 });
    },


    /** pending → expired. */
    markExpired: (orderId: string, expiredAt: Date): Promise<OrderDoc | null> => close(orderId, 'expired', { expiredAt }),

    /** pending → cancelled, or partially_paid → cancelled (what was paid stays, to refund or keep). */
    async markCancelled(orderId: string, cancelledAt: Date): Promise<OrderDoc | null> {
      return (await close(orderId, 'cancelled', { cancelledAt })) ?? move(orderId, 'partially_paid', 'cancelled', { cancelledAt, 'plan.openSeq': 0 }, undefined);
    },

    /** The customer's first interaction: viewedAt on a pending order not viewed before. */
    markViewed(orderId: string, viewedAt: Date): Promise<OrderDoc | null> {
      return Order.findOneAndUpdate({ _id: orderId, status: 'pending', viewedAt: null }, { $set: { viewedAt } }, after).lean<OrderDoc>();
    },

    /** Appends an attempt; one with a `key` only when no attempt with that key is there yet. True when appended. */
    async addAttempt(orderId: string, attempt: AttemptRecord): Promise<boolean> {
      // `$nor` rather than `$ne`: FerretDB v1 matches `{'attempts.key': {$ne: k}}` when ANY attempt
      // has another key (measured: orders-repository.test.ts); `$nor` of the equality is right on both.
      const filter = attempt.key ? { _id: orderId, $nor: [{ 'attempts.key': attempt.key }] } : { _id: orderId };
      const added = (await Order.updateOne(filter, { $push: { attempts: attempt } })).modifiedCount > 0;
      if (added) await bumpCounters(attemptCount(attempt));
      return added;
    },

    /**
     * A new expiry for a pending order, only if it still has the expiry the caller read (`expected`;
     * and belongs to `merchantId` when given): a concurrent change is never overwritten. Both fields:
     * expiresAt is what checkout checks, linkExpiresAt what a new link is signed with.
     */
    extendExpiry(orderId: string, expected: { expiresAt: Date; merchantId?: string }, expiresAt: Date, recheckRemindersAt: Date = new Date()): Promise<OrderDoc | null> {
      return Order.findOneAndUpdate(
        // A partly paid order's open part (issue 13 part 1) has its link extended the same way.
        {
          _id: orderId,
          status: { $in: ['pending', 'partially_paid'] },
          $nor: [{ 'plan.openSeq': 0 }],
          expiresAt: expected.expiresAt,
          ...(expected.merchantId ? { merchantId: expected.merchantId } : {}),
        },
        // The new expiry has its own reminder slots: the expiry job looks at the order again.
        { $set: { expiresAt, linkExpiresAt: Math.floor(expiresAt.getTime() / 1000), remindAt: recheckRemindersAt } },
        after,
      ).lean<OrderDoc>();
    },
    /**
     * A corrected customer address for a pending order (`RESEND <ref> new@address`, issue 13 part
     * 8), only over the address it was decided from (`expected`, null for none), so replaying the
     * command never undoes a later change; the order is then delivered to the customer.
     */
    changeCustomerEmail(orderId: string, expected: { email: string | null }, email: string): Promise<OrderDoc | null> {
      return Order.findOneAndUpdate(
        { _id: orderId, status: { $in: ['pending', 'partially_paid'] }, 'customer.email': expected.email },
        { $set: { 'customer.email': email, delivery: 'customer' } },
        after,
      ).lean<OrderDoc>();
    },
  };
}

export type OrdersRepository = ReturnType<typeof createOrdersRepository>;
