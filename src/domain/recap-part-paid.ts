// The daily recap's "Part-paid orders" (issue 13 parts 1 and 7): the orders paid in parts that
// are partly paid at the recap's time and ask for attention — the next part's link open (or
// expired unpaid), the next part waiting for the merchant (reply BALANCE <ref>), the next part due
// within PART_PAID_AHEAD_DAYS, or a part paid on the recapped day — with what was paid, what
// remains and the next step. Pure: the orders come from the recap's read of its merchants' orders.
import { type RecapOrderFacts, type RecapPartPaidItem } from './recap-data.ts';
import { recapPaidMinor } from './recap-day.ts';

/** A partly paid order whose next part is due by itself is listed from this many days before. */
export const PART_PAID_AHEAD_DAYS = 7;
export const PART_PAID_AHEAD_MS = PART_PAID_AHEAD_DAYS * 86_400_000;

const STEP_RANK: Record<RecapPartPaidItem['next']['step'], number> = { ask: 0, expired: 1, open: 2, due: 3 };

const customerOf = (o: RecapOrderFacts) => (o.customer?.name && o.customer.email ? `${o.customer.name} <${o.customer.email}>` : (o.customer?.name ?? o.customer?.email ?? ''));

/** The order's state as the section shows it, or undefined when it is not partly paid. */
export function partPaidItem(o: RecapOrderFacts, now: Date): RecapPartPaidItem | undefined {
  const parts = o.plan?.parts ?? [];
  if (o.status !== 'partially_paid' || parts.length < 2) return undefined;
  const next = parts.find((p) => !p.payment?.paidAt);
  if (!next) return undefined;
  const openSeq = o.plan?.openSeq ?? 0;
  let step: RecapPartPaidItem['next']['step'];
  let at: Date | null | undefined;
  if (openSeq > 0 && openSeq === next.seq) {
    at = o.expiresAt ?? null;
    step = at && new Date(at).getTime() > now.getTime() ? 'open' : 'expired';
  } else if (o.plan?.nextDueAt) {
    step = 'due';
    at = o.plan.nextDueAt;
  } else step = 'ask';
  return {
    reference: o.reference,
    currency: o.currency,
    totalMinor: o.amountMinor,
    paidMinor: recapPaidMinor(o),
    partsPaid: parts.filter((p) => p.payment?.paidAt).length,
    customer: customerOf(o),
    next: { seq: next.seq, of: parts.length, kind: next.kind, amountMinor: next.amountMinor, step, at: at ? new Date(at).toISOString() : null },
  };
}

/**
 * The section of one recap: the merchant's partly paid orders (from the pass) that ask for
 * attention at `now`, or had a part paid in [dayStart, dayEnd); `limit` items, the count of all.
 */
export function partPaidSection(orders: RecapOrderFacts[], now: Date, day: { start: number; end: number }, limit: number): { count: number; items: RecapPartPaidItem[] } {
  const items: RecapPartPaidItem[] = [];
  for (const o of orders) {
    const item = partPaidItem(o, now);
    if (!item) continue;
    const paidToday = (o.plan?.parts ?? []).some((p) => {
      const t = p.payment?.paidAt ? new Date(p.payment.paidAt).getTime() : NaN;
      return t >= day.start && t < day.end;
    });
    const soon = item.next.step !== 'due' || new Date(item.next.at!).getTime() <= now.getTime() + PART_PAID_AHEAD_MS;
    if (paidToday || soon) items.push(item);
  }
  const atOf = (i: RecapPartPaidItem) => (i.next.at ? Date.parse(i.next.at) : 0);
  items.sort((a, b) => STEP_RANK[a.next.step] - STEP_RANK[b.next.step] || atOf(a) - atOf(b) || (a.reference < b.reference ? -1 : a.reference > b.reference ? 1 : 0));
  return { count: items.length, items: items.slice(0, limit) };
}
