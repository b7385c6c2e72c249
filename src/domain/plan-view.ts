// The parts of an order paid in parts as merchants see them (issue 13 part 1): the server API's
// order resource, the webhooks' `data.order` and the back office's parts table all show the same
// state of each part, from the stored order alone.
import { hasPlan, type PlannedOrder } from './order-plan.ts';
import { type PlanPartKind } from './payment-plan.ts';

/**
 * `paid`: its payment is made; `open`: its pay-link collects it now; `due`: it waits for its due
 * date (its link goes out then by itself); `waiting`: it waits for the merchant to ask for it.
 */
export type PartState = 'paid' | 'open' | 'due' | 'waiting';
export const PART_STATES: readonly PartState[] = ['paid', 'open', 'due', 'waiting'];

export interface PartStatus {
  seq: number;
  kind: PlanPartKind;
  amountMinor: number;
  /** The part's due date (YYYY-MM-DD, the merchant's day), or null. */
  dueDate: string | null;
  status: PartState;
  receiptNumber: string | null;
  paidAt: Date | null;
}

export function partStates(o: PlannedOrder): PartStatus[] | null {
  if (!hasPlan(o)) return null;
  const openSeq = o.plan!.openSeq ?? 0;
  // A closed order (cancelled, expired) has no open part, whatever was stored last.
  const live = o.status === 'pending' || o.status === 'partially_paid';
  return o.plan!.parts!.map((p) => {
    const paidAt = p.payment?.paidAt ? new Date(p.payment.paidAt) : null;
    const status: PartState = paidAt ? 'paid' : live && p.seq === openSeq ? 'open' : p.dueDate ? 'due' : 'waiting';
    return {
      seq: p.seq,
      kind: p.kind as PlanPartKind,
      amountMinor: p.amountMinor,
      dueDate: p.dueDate ?? null,
      status,
      receiptNumber: paidAt ? (p.payment?.receiptNumber ?? null) : null,
      paidAt,
    };
  });
}

/** The JSON shape of the API and the webhooks: `{ parts: [...] }` (instants in UTC), null without plan. */
export function planJson(o: PlannedOrder): { parts: Array<Omit<PartStatus, 'paidAt'> & { paidAt: string | null }> } | null {
  const parts = partStates(o);
  return parts ? { parts: parts.map((p) => ({ ...p, paidAt: p.paidAt ? p.paidAt.toISOString() : null })) } : null;
}
