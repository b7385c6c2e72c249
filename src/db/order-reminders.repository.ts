// The orders' side of reminders and renewals (issue 13 parts 3 and 4), and the expiry job's one
// query: part of the orders repository (src/db/orders.repository.ts spreads it in), kept apart so
// neither file grows past a screenful of concerns.
import { bumpCounters } from './counters.ts';
import { Order, type OrderDoc } from './models/order.model.ts';

/** The fields the expiry job reads of an order (expiry and reminders). */
const EXPIRY_FIELDS = {
  _id: 1, merchantId: 1, reference: 1, amountMinor: 1, currency: 1, description: 1, customer: 1, locale: 1, expiresAt: 1,
  linkExpiresAt: 1, publicId: 1, createdAt: 1, status: 1, viewedAt: 1, reminderPlan: 1, remindAt: 1, reminders: 1, remindersOffAt: 1, renewals: 1,
  // An order paid in parts reminds of its open part (src/domain/order-plan.ts).
  plan: 1,
} as const;

/** A reminder as the order records it (src/domain/reminders.ts). */
export interface ReminderRecord {
  slot: string;
  slotAt: Date;
  at: Date;
}

/** A renewal as the order records it: expired -> pending with a new expiry. */
export interface RenewalRecord {
  at: Date;
  expiresAt: Date;
  previousExpiredAt?: Date | undefined;
  /** 'merchant:<user>' (back office), 'command:<inboundId>' (EXTEND reply), 'auto' (the merchant's setting). */
  by: string;
}

const after = { returnDocument: 'after' } as const;

export function createOrderRemindersRepository() {
  return {
    /**
     * The expiry job's one query per pass: pending orders whose expiry has passed, and pending or
     * partly paid orders whose reminder check (`remindAt`) has come, soonest expiry first, with what expiry and reminders need. Each
     * `$or` branch has its index ({status, expiresAt}, {status, remindAt}).
     */
    pendingDue: (at: Date) =>
      // A partly paid order's open part (issue 13 part 1) has reminders too; it never expires.
      Order.find({ $or: [{ status: 'pending', expiresAt: { $lte: at } }, { status: { $in: ['pending', 'partially_paid'] }, remindAt: { $lte: at } }] }, EXPIRY_FIELDS)
        .sort({ expiresAt: 1 })
        .lean<OrderDoc[]>(),

    /**
     * Records a reminder sent for a pending order (once per slot) and its next check. `$nor`, not
     * `$ne` (see addAttempt). True when recorded by this call.
     */
    async recordReminder(orderId: string, sent: ReminderRecord, next: Date | undefined): Promise<boolean> {
      const r = await Order.updateOne(
        { _id: orderId, $nor: [{ 'reminders.slot': sent.slot }] },
        { $push: { reminders: sent }, ...(next ? { $set: { remindAt: next } } : { $unset: { remindAt: 1 } }) },
      );
      return r.modifiedCount > 0;
    },

    /** The next reminder check of a pending (or partly paid) order, only over the one the caller read (`prior`). */
    async setRemindAt(orderId: string, prior: Date | null | undefined, next: Date | undefined): Promise<void> {
      await Order.updateOne(
        { _id: orderId, status: { $in: ['pending', 'partially_paid'] }, remindAt: prior ?? null },
        next ? { $set: { remindAt: next } } : { $unset: { remindAt: 1 } },
      );
    },

    /**
     * Open orders stored before reminder checks existed (no `remindAt`) are looked at by the next
     * pass; those in their last `recentMs` were reminded by the single 24-hour reminder of before
     * and are left alone. Once per process start (the expiry job).
     */
    async scheduleUnscheduled(at: Date, recentMs: number): Promise<number> {
      return (
        await Order.updateMany(
          { status: 'pending', expiresAt: { $gt: new Date(at.getTime() + recentMs) }, remindAt: { $exists: false }, 'customer.email': { $exists: true } },
          { $set: { remindAt: at } },
        )
      ).modifiedCount;
    },

    /** Every pending order of the merchant is looked at again by the next pass (its reminder settings changed). */
    async recheckReminders(merchantId: string, at: Date): Promise<number> {
      return (await Order.updateMany({ merchantId, status: 'pending' }, { $set: { remindAt: at } })).modifiedCount;
    },

    /** The customer stops reminders for this order; the updated order, or null when already stopped. */
    remindersOff: (orderId: string, at: Date) =>
      Order.findOneAndUpdate({ _id: orderId, remindersOffAt: null }, { $set: { remindersOffAt: at }, $unset: { remindAt: 1 } }, after).lean<OrderDoc>(),

    /** The customer's request for a new link on an expired order (the caller's claim makes it once). */
    recordRenewalRequest: (orderId: string, request: { at: Date; email: string; generation: number }) =>
      Order.findOneAndUpdate({ _id: orderId }, { $set: { renewalRequest: request } }, after).lean<OrderDoc>(),

    /**
     * expired -> pending with a new expiry, only from the expiry the caller read (`expiredAt`): the
     * reference opens again (a duplicate-key error when another open order has it now), the renewal
     * is recorded, reminders start over from `remindAt`.
     */
    async reopenExpired(order: Pick<OrderDoc, '_id' | 'reference' | 'expiredAt'>, renewal: RenewalRecord, remindAt: Date | undefined): Promise<OrderDoc | null> {
      const done = await Order.findOneAndUpdate(
        { _id: order._id, status: 'expired', expiredAt: order.expiredAt ?? null },
        {
          $set: {
            status: 'pending',
            openReference: order.reference,
            expiresAt: renewal.expiresAt,
            linkExpiresAt: Math.floor(renewal.expiresAt.getTime() / 1000),
            ...(remindAt ? { remindAt } : {}),
          },
          $unset: { expiredAt: 1, ...(remindAt ? {} : { remindAt: 1 }) },
          $push: { renewals: renewal },
        },
        after,
      ).lean<OrderDoc>();
      if (done) await bumpCounters({ 'orders:expired': -1, 'orders:pending': 1 });
      return done;
    },

  };
}
