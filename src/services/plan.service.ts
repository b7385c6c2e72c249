// The next part of an order paid in parts (issue 13 part 1): the balance after a deposit, or the
// next instalment. It is asked for when its date comes (the plan job, src/jobs/plan.job.ts) or
// when the merchant asks (reply `BALANCE <ref>`, the back office, the server API): the part opens
// with a new link expiry and its pay-link goes out.
//
// The same four steps as an order transition (src/services/order-transitions.ts): the claim
// `order:<id>:open:<seq>` (one opener across processes, carrying the new expiry), the conditional
// update that opens the part (only from partially_paid with no part open), the pay-link mail under
// its dedupe key `paylink:<id>:<seq>`, the claim marked applied. A crash between them is finished by
// repair(): nothing happens twice.
import { type MerchantDoc } from '../db/merchants.repository.ts';
import { type OrderDoc } from '../db/orders.repository.ts';
import { type Repositories } from '../db/repositories.ts';
import { AppError } from '../domain/errors.ts';
import { nextUnpaid, openPart } from '../domain/order-plan.ts';
import { type FaultHook } from './order-transitions.ts';

const DAY = 86_400_000;
export const PART_OPEN_KIND = 'order-part-open';
export const partOpenClaimKey = (orderId: string, seq: number): string => `order:${orderId}:open:${seq}`;
/** Opening part `seq` again after its link expired at `expiredAt` (once per expired link). */
export const partReopenClaimKey = (orderId: string, seq: number, expiredAt: Date): string => `order:${orderId}:open:${seq}:${Math.floor(expiredAt.getTime() / 1000)}`;

export interface PlanServiceDeps {
  repos: Repositories;
  /** Queues the pay-link mail of the order's open part (src/services/order.service.ts). */
  payLinks: { queuePayLinkMail(order: OrderDoc, merchant: MerchantDoc, opts?: { dedupeKey?: string }): Promise<void> };
  maxLinkLifetimeDays: number;
  now?: () => Date;
  faults?: FaultHook;
}

export type RequestOutcome =
  /** The part is open now (by this call, or it was already) and its link was mailed. */
  | { outcome: 'requested'; order: OrderDoc; seq: number; already: boolean }
  /** Nothing to ask for: the order is not paid in parts, not partly paid (pending, paid, closed). */
  | { outcome: 'not-partly-paid'; order: OrderDoc };

interface OpenPayload {
  seq: number;
  at: Date;
  expiresAt: Date;
  by: string;
  /** Opening again a part whose link expired unpaid: the expiry it had. */
  expiredAt?: Date;
}

export function createPlanService(deps: PlanServiceDeps) {
  const now = deps.now ?? (() => new Date());
  const { orders, claims } = deps.repos;
  const fault = async (point: string) => {
    if (deps.faults) await deps.faults(point);
  };

  /** Steps 2–4 for a won (or found) open claim: the part opened, its link mailed, the claim applied. */
  async function finishOpen(orderId: string, p: OpenPayload): Promise<OrderDoc | null> {
    const expiresAt = new Date(p.expiresAt);
    const applied = p.expiredAt
      ? await orders.reopenPart(orderId, p.seq, new Date(p.expiredAt), new Date(p.at), expiresAt)
      : await orders.openPart(orderId, p.seq, new Date(p.at), expiresAt);
    const opened = applied ?? (await orders.byId(orderId));
    await fault('part:opened');
    const part = opened?.plan?.parts?.[p.seq - 1];
    // Mailed when the part is open with this very expiry (now, or before a crash).
    const isOpen = opened && opened.plan?.openSeq === p.seq && !part?.payment?.paidAt && opened.expiresAt.getTime() === expiresAt.getTime();
    if (opened && isOpen) {
      const merchant = await deps.repos.merchants.findById(opened.merchantId);
      const dedupeKey = p.expiredAt ? `paylink:${orderId}:${p.seq}:r${Math.floor(expiresAt.getTime() / 1000)}` : undefined;
      if (merchant) await deps.payLinks.queuePayLinkMail(opened, merchant, dedupeKey ? { dedupeKey } : {});
      await fault('part:mailed');
    }
    await claims.markApplied(p.expiredAt ? partReopenClaimKey(orderId, p.seq, new Date(p.expiredAt)) : partOpenClaimKey(orderId, p.seq));
    return opened;
  }

  /**
   * Opens the order's next part and mails its link (`by`: who asked: `merchant:<who>` or `date`).
   * `days`: the link's lifetime (default the merchant's), capped at the maximum. Asking again for
   * a part already open mails nothing new and answers `already`.
   */
  async function requestNext(order: OrderDoc, merchant: MerchantDoc, by: string, days?: number): Promise<RequestOutcome> {
    if (order.status !== 'partially_paid') return { outcome: 'not-partly-paid', order };
    const at = now();
    const open = openPart(order);
    // An open part whose link is still valid: nothing new to send.
    if (open && order.expiresAt > at) return { outcome: 'requested', order, seq: open.seq, already: true };
    const next = open ?? nextUnpaid(order);
    if (!next) return { outcome: 'not-partly-paid', order };
    const lifetime = Math.min(days ?? merchant.linkLifetimeDays, deps.maxLinkLifetimeDays);
    if (!(lifetime > 0)) throw new AppError('ORDER_EXPIRY_PAST', 'the link lifetime must be more than zero', { httpStatus: 400 });
    const payload: OpenPayload = { seq: next.seq, at, expiresAt: new Date(at.getTime() + lifetime * DAY), by, ...(open ? { expiredAt: order.expiresAt } : {}) };
    const key = open ? partReopenClaimKey(order._id, next.seq, order.expiresAt) : partOpenClaimKey(order._id, next.seq);
    let mine = payload;
    if (!(await claims.once(key, { kind: PART_OPEN_KIND, subject: order._id, owner: by, payload: { ...payload } }, at))) {
      // Opened by someone else (now, or before a crash): finish theirs, which is idempotent.
      const held = await claims.get(key);
      mine = (held?.payload as OpenPayload | undefined) ?? payload;
    }
    await fault('part:claimed');
    const opened = await finishOpen(order._id, mine);
    return { outcome: 'requested', order: opened ?? order, seq: next.seq, already: mine !== payload };
  }

  /** The plan job's pass: every part whose date came is asked for. Returns how many were opened. */
  async function openDue(limit = 200): Promise<number> {
    let opened = 0;
    for (const order of await orders.partsDue(now(), limit)) {
      const merchant = await deps.repos.merchants.findById(order.merchantId);
      if (!merchant) continue;
      const r = await requestNext(order, merchant, 'date');
      if (r.outcome === 'requested' && !r.already) opened++;
    }
    return opened;
  }

  /** Finishes the openings a crash interrupted (claims older than `olderThanMs` not applied). */
  async function repair(olderThanMs = 60_000): Promise<number> {
    let n = 0;
    for (const c of await claims.unapplied(PART_OPEN_KIND, olderThanMs, now())) {
      await finishOpen(String(c.subject), c.payload as unknown as OpenPayload);
      n++;
    }
    return n;
  }

  return { requestNext, openDue, repair };
}
export type PlanService = ReturnType<typeof createPlanService>;
