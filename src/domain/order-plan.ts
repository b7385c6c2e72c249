// An order paid in parts (issue 13 part 1): a deposit and its balance, or up to 12 instalments.
// The order keeps its total in `amountMinor`; `plan.parts` holds each part's amount, due date and,
// once paid, its payment; `plan.openSeq` is the part the pay-link collects now (0: none — the
// next part waits for its date or for the merchant). Pure views of a stored order used by the
// checkout, the receipts, refunds, the recap and the API alike.
import { localTime } from './local-day.ts';
import { type PlanPart, type PlanPartKind } from './payment-plan.ts';

/** The local hour at which a part's link goes out on its due date. */
export const PART_DUE_HOUR = 9;

/** The instant a part due on `dueDate` (local) is asked for: 09:00 that day in the merchant's zone. */
export const partDueAt = (dueDate: string, timeZone: string): Date => localTime(dueDate, PART_DUE_HOUR, timeZone);

export interface PartPayment {
  receiptNumber?: string | null | undefined;
  authCode?: string | null | undefined;
  paidAt?: Date | null | undefined;
  acquirer?: string | null | undefined;
  [k: string]: unknown;
}

export interface StoredPart {
  seq: number;
  kind: PlanPartKind | string;
  amountMinor: number;
  dueDate?: string | null | undefined;
  /** When the part's link went out (the merchant asked, or its date came). */
  requestedAt?: Date | null | undefined;
  payment?: PartPayment | null | undefined;
}

export interface StoredPlan {
  parts?: readonly StoredPart[] | null | undefined;
  openSeq?: number | null | undefined;
  nextDueAt?: Date | null | undefined;
}

/** A plan as stored by a new order. */
export interface NewPlan {
  parts: StoredPart[];
  openSeq: number;
}

/** The fields of an order these views read. */
export interface PlannedOrder {
  amountMinor: number;
  status: string;
  plan?: StoredPlan | null | undefined;
  payment?: PartPayment | null | undefined;
}

/** What a payment's documents (receipt, PDF, webhook) say about the part it paid. */
export interface PartInfo {
  seq: number;
  of: number;
  kind: string;
  totalMinor: number;
}

export const hasPlan = (o: Pick<PlannedOrder, 'plan'>): boolean => (o.plan?.parts?.length ?? 0) > 1;

/** The plan to store for new parts: the first part open at once. */
export function newPlan(parts: PlanPart[], at: Date): NewPlan {
  return {
    parts: parts.map((p) => ({ seq: p.seq, kind: p.kind, amountMinor: p.amountMinor, ...(p.dueDate ? { dueDate: p.dueDate } : {}), ...(p.seq === 1 ? { requestedAt: at } : {}) })),
    openSeq: 1,
  };
}

/** The parts paid so far. */
export const partsPaid = (o: PlannedOrder): StoredPart[] => (o.plan?.parts ?? []).filter((p) => p.payment?.paidAt);

/** The amount paid so far: every part's payment, or the order's one payment. */
export function paidMinor(o: PlannedOrder): number {
  if (hasPlan(o)) return partsPaid(o).reduce((s, p) => s + p.amountMinor, 0);
  return o.status === 'paid' || o.payment?.paidAt ? o.amountMinor : 0;
}

/** The part the pay-link collects now, or undefined (none open, or no plan). */
export function openPart(o: Pick<PlannedOrder, 'plan'>): StoredPart | undefined {
  if (!hasPlan(o) || !o.plan!.openSeq) return undefined;
  return o.plan!.parts!.find((p) => p.seq === o.plan!.openSeq && !p.payment?.paidAt);
}

/** The first part not paid yet (the next one to ask for), or undefined when all are paid. */
export const nextUnpaid = (o: PlannedOrder): StoredPart | undefined => (o.plan?.parts ?? []).find((p) => !p.payment?.paidAt);

/**
 * What the customer pays now: the open part's amount for a plan order (undefined while no part is
 * open), the order's amount otherwise.
 */
export function amountDueMinor(o: PlannedOrder): number | undefined {
  if (!hasPlan(o)) return o.amountMinor;
  return openPart(o)?.amountMinor;
}

/** The sequence number of the part a payment made now pays: the open part, or 1 for an order without plan. */
export function payingSeq(o: PlannedOrder): number | undefined {
  if (!hasPlan(o)) return 1;
  return openPart(o)?.seq;
}

export function partInfo(o: PlannedOrder, seq: number): PartInfo | undefined {
  if (!hasPlan(o)) return undefined;
  const part = o.plan!.parts!.find((p) => p.seq === seq);
  return part ? { seq, of: o.plan!.parts!.length, kind: part.kind, totalMinor: o.amountMinor } : undefined;
}

/**
 * The order as the documents of one payment see it: the part's amount and payment, and `part`
 * saying which. An order without plan is returned as it is (seq 1).
 */
export function partView<T extends PlannedOrder>(o: T, seq: number): T & { part?: PartInfo } {
  const info = partInfo(o, seq);
  if (!info) return o;
  const part = o.plan!.parts!.find((p) => p.seq === seq)!;
  return { ...o, amountMinor: part.amountMinor, payment: part.payment ?? undefined, part: info };
}

/** How many parts the order is paid in (1 without plan). */
export const partCount = (o: PlannedOrder): number => (hasPlan(o) ? o.plan!.parts!.length : 1);

/**
 * Whether the order is collecting a payment: pending, or partially paid with a part open (its
 * link may have lapsed: see payableAt). A partly paid order between parts, and every closed order,
 * is not: it has no pay-link to show, resend, extend or renew.
 */
export function isCollecting(o: Pick<PlannedOrder, 'status' | 'plan'>): boolean {
  return o.status === 'pending' || (o.status === 'partially_paid' && openPart(o) !== undefined);
}

/**
 * Whether the order takes a payment at `at`: collecting (isCollecting), with an amount due now
 * and a link not expired.
 */
export function payableAt(o: PlannedOrder & { expiresAt: Date }, at: Date): boolean {
  return isCollecting(o) && amountDueMinor(o) !== undefined && o.expiresAt > at;
}
