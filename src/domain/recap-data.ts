// The daily recap's data: what the mail shows about a merchant's local day (RecapData, the shape
// of the 'daily-recap' contract in src/mail/contracts.ts), and the plain facts it is computed from
// (the merchant, and orders and refunds as the recap pass reads them, src/db/recaps.repository.ts).

/** The merchant fields the recap reads (a merchant document has them). */
export interface RecapMerchant {
  _id: string;
  name: string;
  currency?: string | null;
  timezone?: string | null;
}

export interface CardFacts {
  brand?: string | null;
  last4?: string | null;
  country?: string | null;
}

/** The fields of an order the recap reads (the pass's projection). */
export interface RecapOrderFacts {
  _id: string;
  merchantId: string;
  reference: string;
  status: string;
  amountMinor: number;
  currency: string;
  description?: string | null;
  customer?: { name?: string | null; email?: string | null } | null;
  createdAt?: Date;
  expiredAt?: Date | null;
  viewedAt?: Date | null;
  payment?: { paidAt?: Date | null; card?: CardFacts | null } | null;
  attempts?: Array<{ at: Date; outcome: string; declineCode?: string | null; card?: CardFacts | null }> | null;
  /** An order paid in parts (issue 13 part 1): each part's amount and, once paid, its payment. */
  plan?: RecapPlanFacts | null;
  /** The open link's expiry (the open part's, for a plan order). */
  expiresAt?: Date | null;
}

/** The plan of an order paid in parts, as the recap reads it (src/domain/order-plan.ts). */
export interface RecapPlanFacts {
  parts?: Array<{ seq: number; kind: string; amountMinor: number; dueDate?: string | null; payment?: { paidAt?: Date | null; card?: CardFacts | null } | null }> | null;
  openSeq?: number | null;
  nextDueAt?: Date | null;
}

/** Which part of an order paid in parts a payment paid. */
export interface RecapPart {
  seq: number;
  of: number;
  kind: string;
}

/** A refund as the recap reads it. */
export interface RecapRefundFacts {
  _id: string;
  orderId: string;
  merchantId: string;
  amountMinor: number;
  currency: string;
  at: Date;
  /** The part of an order paid in parts the refund gave money back on (refunds made before: none). */
  part?: number | null;
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
    /** One row per payment: a part paid that day is its own row with its amount and `part` (issue 13 part 1). */
    items: Array<{ at: string; reference: string; orderId: string; amountMinor: number; currency: string; card: CardFacts | null; part?: RecapPart | null }>;
  };
  /** Refunds made that day (positive amounts); the template hides the section when empty. */
  refunds: {
    totals: RecapTotal[];
    count: number;
    items: Array<{ at: string; reference: string; orderId: string; amountMinor: number; currency: string; card: CardFacts | null; part?: RecapPart | null }>;
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
  /** Issue 13 part 7, at the recap's time: open orders expiring within 24 hours (reply EXTEND to keep one open). */
  expiringSoon?: { count: number; items: Array<{ reference: string; amountMinor: number; currency: string; expiresAt: string; customer: string }> };
  /** Issue 13 part 7, at the recap's time: open orders the customer opened and has not paid. */
  openedUnpaid?: { count: number; items: Array<{ reference: string; amountMinor: number; currency: string; viewedAt: string; expiresAt: string; customer: string }> };
  /**
   * Issue 13 part 1/7, at the recap's time: orders partly paid — the next part due within
   * PART_PAID_AHEAD_DAYS, its link open (or expired unpaid), waiting for the merchant, or a part
   * paid on the recapped day — with what was paid, what remains and the next step.
   */
  partPaid?: { count: number; items: RecapPartPaidItem[] };
  /** Payments total per day (oldest first, the recapped day last) in the merchant's currency. */
  chart: { currency: string; days: Array<{ date: string; totalMinor: number; count: number }> };
  csv: { filename: string; content: string };
}

/** A part-paid order in the recap: the next step is `open` (link open until `at`), `expired` (link expired at `at`), `due` (link mailed by itself at `at`) or `ask` (the merchant asks: BALANCE). */
export interface RecapPartPaidItem {
  reference: string;
  currency: string;
  totalMinor: number;
  paidMinor: number;
  partsPaid: number;
  customer: string;
  next: RecapPart & { amountMinor: number; step: 'open' | 'expired' | 'due' | 'ask'; at?: string | null };
}
