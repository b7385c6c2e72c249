// Refunds of paid orders: one document per refund the acquirer accepted (the order itself is never
// updated by a refund; its refunded total is the sum). Who may refund how much is refereed by the
// numbered refund claims of src/services/refund.service.ts.
import { Refund, type RefundDoc } from './models/refund.model.ts';

export type { RefundDoc } from './models/refund.model.ts';

export function createRefundsRepository() {
  return {
    /** Stores a refund once: storing the same id again (a repaired refund) is a no-op. */
    async record(doc: RefundDoc): Promise<void> {
      try {
        await Refund.create(doc);
      } catch (e) {
        if ((e as { code?: number }).code !== 11000) throw e;
      }
    },

    /** The refunds of one of the merchant's orders, oldest first. */
    forOrder: (merchantId: string, orderId: string) => Refund.find({ orderId, merchantId }).sort({ seq: 1 }).lean<RefundDoc[]>(),
  };
}

export type RefundsRepository = ReturnType<typeof createRefundsRepository>;
