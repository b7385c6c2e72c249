// The states of an order: created pending, closed once as paid, cancelled or expired. An order
// paid in parts (a deposit and its balance, or instalments: src/domain/order-plan.ts) is
// `partially_paid` between its first and its last payment.
export const ORDER_STATUSES = ['pending', 'partially_paid', 'paid', 'cancelled', 'expired'] as const;
export type OrderStatus = (typeof ORDER_STATUSES)[number];

/** The states in which an order still takes a payment (its open part, for a plan order). */
export const PAYABLE_STATUSES = ['pending', 'partially_paid'] as const;
