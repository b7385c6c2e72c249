// The orders' side of payment plans (issue 13 part 1, src/domain/order-plan.ts): opening the next
// part, and the plan job's one query. Part of the orders repository (src/db/orders.repository.ts
// spreads it in); paying a part is the orders repository's markPaid.
import { Order, type OrderDoc } from './models/order.model.ts';

const after = { returnDocument: 'after' } as const;

export function createOrderPlanRepository() {
  return {
    /**
     * Opens the next part of a partially paid order (its date came, or the merchant asked): its
     * link goes out with a new expiry. Only while no part is open and `seq` is the next unpaid one.
     */
    openPart(orderId: string, seq: number, at: Date, expiresAt: Date): Promise<OrderDoc | null> {
      return Order.findOneAndUpdate(
        { _id: orderId, status: 'partially_paid', 'plan.openSeq': 0, [`plan.parts.${seq - 1}.seq`]: seq, [`plan.parts.${seq - 1}.payment`]: null },
        {
          // The expiry job looks at the new link's reminders at once.
          $set: { 'plan.openSeq': seq, [`plan.parts.${seq - 1}.requestedAt`]: at, expiresAt, linkExpiresAt: Math.floor(expiresAt.getTime() / 1000), remindAt: at },
          $unset: { 'plan.nextDueAt': '' },
        },
        after,
      ).lean<OrderDoc>();
    },

    /**
     * A new expiry for the open part of a partially paid order whose link expired unpaid (the
     * merchant asks again), only over the expiry the caller read.
     */
    reopenPart(orderId: string, seq: number, expected: Date, at: Date, expiresAt: Date): Promise<OrderDoc | null> {
      return Order.findOneAndUpdate(
        { _id: orderId, status: 'partially_paid', 'plan.openSeq': seq, expiresAt: expected },
        { $set: { [`plan.parts.${seq - 1}.requestedAt`]: at, expiresAt, linkExpiresAt: Math.floor(expiresAt.getTime() / 1000), remindAt: at } },
        after,
      ).lean<OrderDoc>();
    },

    /** Partially paid orders whose next part falls due by `at` (the plan job), oldest first. */
    partsDue: (at: Date, limit: number) =>
      Order.find({ status: 'partially_paid', 'plan.nextDueAt': { $lte: at } })
        .sort({ 'plan.nextDueAt': 1 })
        .limit(limit)
        .lean<OrderDoc[]>(),
  };
}
