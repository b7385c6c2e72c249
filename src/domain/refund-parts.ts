// Which payment of an order a refund goes back on (issue 13 part 1), pure: an order paid in parts
// is refunded per part — on that part's payment, at most that part's amount minus what is
// reserved on it — and an order without plan on its one payment (src/services/refund.service.ts
// referees the reservations).
import { AppError } from './errors.ts';
import { hasPlan, partsPaid, type PartPayment, type PlannedOrder } from './order-plan.ts';

/** The fields of an order these helpers read. */
export type RefundableOrder = PlannedOrder & { payment?: (PartPayment & { authCode?: string | null | undefined }) | null | undefined };

/** Orders that can have money to give back (a cancelled one only when parts of it were paid). */
export const REFUNDABLE_STATUSES = new Set(['paid', 'partially_paid', 'cancelled']);

/** The payment a refund goes back on: the part's for an order paid in parts, else the order's. */
export function paymentOf(order: RefundableOrder, part: number | undefined): PartPayment | null | undefined {
  if (part !== undefined && hasPlan(order)) return order.plan!.parts![part - 1]?.payment as PartPayment | null | undefined;
  return order.payment as PartPayment | null | undefined;
}

/** The paid payments of an order and their amounts: each paid part, or the order's one payment. */
export function paidPayments(order: RefundableOrder): Array<{ part?: number; amountMinor: number }> {
  if (hasPlan(order)) return partsPaid(order).map((p) => ({ part: p.seq, amountMinor: p.amountMinor }));
  return order.status === 'paid' && order.payment?.authCode ? [{ amountMinor: order.amountMinor }] : [];
}

/**
 * The payment a refund of `amountMinor` goes back on, and what it can still give: the part asked
 * for; else the only payment; else the latest paid part that can give the whole amount.
 */
export function choosePart(order: RefundableOrder, byPart: Record<number, number>, input: { amountMinor: number; part?: number | undefined }): { part?: number; refundableMinor: number } {
  const paid = paidPayments(order).map((p) => ({ ...p, refundableMinor: p.amountMinor - (byPart[p.part ?? 0] ?? 0) }));
  if (!hasPlan(order)) {
    if (input.part !== undefined && input.part !== 1) throw new AppError('REFUND_PART_INVALID', 'the order is not paid in parts: its only part is 1', { httpStatus: 422 });
    return { refundableMinor: paid[0]?.refundableMinor ?? 0 };
  }
  if (input.part !== undefined) {
    const part = paid.find((p) => p.part === input.part);
    if (!part) {
      throw new AppError('REFUND_PART_INVALID', `part ${input.part} of the order is not paid`, {
        httpStatus: 422,
        details: { parts: paid.map((p) => ({ part: p.part, refundableMinor: Math.max(0, p.refundableMinor) })) },
      });
    }
    return part;
  }
  if (paid.length === 1) return paid[0]!;
  const fits = [...paid].reverse().find((p) => p.refundableMinor >= input.amountMinor);
  if (fits) return fits;
  const total = paid.reduce((s, p) => s + Math.max(0, p.refundableMinor), 0);
  if (input.amountMinor > total) return { refundableMinor: total };
  throw new AppError('REFUND_PART_REQUIRED', 'no single payment of the order can give back that amount: name the part to refund', {
    httpStatus: 409,
    details: { parts: paid.map((p) => ({ part: p.part, refundableMinor: Math.max(0, p.refundableMinor) })) },
  });
}
