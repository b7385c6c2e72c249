// What a merchant asks for when creating an order (by mail, form or batch), before it is stored.
import { type PlanSpec } from './payment-plan.ts';

export interface OrderDraft {
  amountMinor: number;
  currency: string;
  reference?: string | undefined;
  description?: string | undefined;
  customerEmail?: string | undefined;
  customerName?: string | undefined;
  locale?: string | undefined;
  delivery?: 'merchant' | 'customer' | undefined;
  expiresAt?: Date | undefined;
  /** From a sealed website request: where the buyer returns after paying or a cancellation. */
  returnUrls?: { success: string; cancel: string } | undefined;
  /** `Reminders: off` or `Reminders: 5, 2` (days before expiry): this order's own plan; absent: the merchant's settings. */
  reminders?: { off?: boolean; daysBefore?: number[] } | undefined;
  /**
   * A payment plan (issue 13 part 1): `Deposit: 30%` (with `Balance due:` for the date the balance's
   * link goes out by itself) or `Instalments: 3 monthly`. Already checked against the amount with
   * planParts (src/domain/payment-plan.ts); absent: one payment of the whole amount.
   */
  plan?: PlanSpec | undefined;
}
