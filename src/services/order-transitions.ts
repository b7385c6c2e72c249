// The transitions that close an order — paid, expired, cancelled — run in the same four steps
// whether they run live or in the crash repair:
//   1. decide: record how the order closes (`repos.closes.decide`, src/db/order-closes.repository.ts:
//      one winner across processes; the decision carries everything the next steps need),
//   2. apply the state change (idempotent: from pending, or already in the claim's state),
//   3. queue every side effect under a deterministic dedupe key (receipts and mails in the outbox,
//      webhook events), so queueing twice is queueing once,
//   4. mark the decision done. Only now is the transition finished.
// A crash anywhere before step 4 leaves an unfinished decision, and repair() re-runs steps 2–4 for it:
// whatever was done is found done, whatever was not is done now, nothing happens twice.
//
// The customer's first interaction with the checkout (`viewed`) is no close but runs the same steps
// under its own record (`closes.decideViewed`): viewedAt on a still-pending order, then order.viewed.
//
// Fault points (`faults`) sit at every step boundary so that tests can crash a transition there
// (throw, or kill the process) and check that the repair finishes it exactly once.
// The side effects of step 3 (receipts, mails, webhook events) are queued by
// src/services/order-effects.ts.
import { type OrderDoc } from '../db/orders.repository.ts';
import { type SavedCardDoc } from '../db/customers.repository.ts';
import { type CloseWay } from '../db/order-closes.repository.ts';
import { type Repositories } from '../db/repositories.ts';
import { type CheckedCard } from '../domain/card.ts';
import { createTransitionEffects, type PaidFlow, type TransitionEffectsDeps } from './order-effects.ts';

export { orderFacts, type PaidFlow, type TransitionEvents } from './order-effects.ts';

/** Called at each step boundary with the point's name; a test hook throws or kills there. */
export type FaultHook = (point: string) => void | Promise<void>;

/**
 * Every fault point, in the order the steps run. `pay` and `3ds` close an order as paid (3-D
 * Secure first finishes its challenge); `expire` and `cancel` close it otherwise; `refund` gives
 * money back (src/services/refund.service.ts).
 */
export const FAULT_POINTS = {
  pay: ['pay:authorized', 'pay:claimed', 'pay:applied', 'pay:receipt-customer', 'pay:receipt-merchant', 'pay:event'],
  '3ds': [
    '3ds:challenge-claimed',
    '3ds:completed',
    '3ds:claimed',
    '3ds:applied',
    '3ds:receipt-customer',
    '3ds:receipt-merchant',
    '3ds:event',
    '3ds:finished',
  ],
  expire: ['expire:claimed', 'expire:applied', 'expire:event', 'expire:mail'],
  cancel: ['cancel:claimed', 'cancel:applied', 'cancel:event'],
  refund: ['refund:claimed', 'refund:acquired', 'refund:recorded', 'refund:stored', 'refund:event'],
} as const;

export type StoredCard = Pick<CheckedCard, 'brand' | 'bin' | 'last4' | 'expMonth' | 'expYear' | 'country'>;

/** What a won close claim of a payment applies to the order (stored on the claim; no dotted keys). */
export interface PaidClose {
  payment: {
    receiptNumber: string;
    authCode: string;
    paidAt: Date;
    card: StoredCard;
    moto?: boolean;
    acquirer?: string;
    /** Saved cards (issue 12 part 3): the card paid with or saved, and who started a saved-card charge. */
    savedCardId?: string;
    initiator?: 'customer' | 'merchant';
  };
  customerEmail?: string;
  attempt: Record<string, unknown>;
  holder: string;
  /** The customer whose saved card paid, or who saved the card paying: set on the order. */
  customerCode?: string;
  /** A card saved by this payment: added to the customer when the order is paid (also by the repair). */
  savedCard?: { customerCode: string; card: SavedCardDoc };
  /** The part of a plan order this payment pays (issue 13 part 1); absent: the whole order. */
  part?: { seq: number; of: number; nextDueAt?: Date };
}

// The stored keys of the decisions, for tests that look at the journal itself.
export { closeClaimKey, partCloseClaimKey, viewedClaimKey } from '../db/order-closes.repository.ts';

export interface OrderTransitionsDeps extends TransitionEffectsDeps {
  /** The storage seam (src/db/repositories.ts). */
  repos: Repositories;
  faults?: FaultHook | undefined;
  now?: (() => Date) | undefined;
}

export interface RepairCounts {
  paid: number;
  expired: number;
  cancelled: number;
}

export function createOrderTransitions(deps: OrderTransitionsDeps) {
  const now = deps.now ?? (() => new Date());
  const fault = async (point: string) => {
    if (deps.faults) await deps.faults(point);
  };
  const merchantOf = (id: string) => deps.repos.merchants.findById(id);
  const { orders, closes } = deps.repos;

  const { queueReceipts, queueExpired } = createTransitionEffects(deps, fault);

  /** Records the payment on a still-pending order (only the holder of its close claim calls this). */
  function applyPaid(orderId: string, p: PaidClose): Promise<OrderDoc | null> {
    return orders.markPaid(orderId, {
      payment: { ...p.payment },
      customerEmail: p.customerEmail,
      attempt: p.attempt,
      customerCode: p.customerCode,
      ...(p.part ? { part: { seq: p.part.seq, of: p.part.of, ...(p.part.nextDueAt ? { nextDueAt: new Date(p.part.nextDueAt) } : {}) } } : {}),
    });
  }

  /** The order when it is (now) in `status` by this very transition; null when something else closed it. */
  async function closedBy(orderId: string, applied: OrderDoc | null, status: OrderDoc['status'], mine: (o: OrderDoc) => boolean) {
    if (applied) return applied;
    const current = await orders.byId(orderId);
    return current && current.status === status && mine(current) ? current : null;
  }

  /**
   * Steps 2–4 of a payment whose close claim `p` was won: the order paid, the receipts and
   * payment.succeeded queued, the claim marked applied. Returns the paid order, or null when the
   * order was not closed by this payment (nothing to do but mark the claim).
   */
  async function finishPaid(orderId: string, p: PaidClose, flow: PaidFlow): Promise<OrderDoc | null> {
    const applied = await applyPaid(orderId, p);
    const seq = p.part?.seq ?? 1;
    const order = p.part
      ? applied ?? (await paidPart(orderId, seq, p.payment.receiptNumber))
      : await closedBy(orderId, applied, 'paid', (o) => o.payment?.receiptNumber === p.payment.receiptNumber);
    await fault(`${flow}:applied`);
    if (order) {
      // Before the receipts, which carry the link that removes it; adding it again is a no-op.
      if (p.savedCard) await deps.repos.customers.addCard(p.savedCard.customerCode, p.savedCard.card);
      const merchant = await merchantOf(order.merchantId);
      if (merchant) await queueReceipts(order, merchant, p.holder, flow, seq);
    }
    await closes.done(orderId, seq);
    return order;
  }

  /** The plan order when its part `seq` is paid by the payment with this receipt (now or before a crash). */
  async function paidPart(orderId: string, seq: number, receiptNumber: string): Promise<OrderDoc | null> {
    const current = await orders.byId(orderId);
    return current?.plan?.parts?.[seq - 1]?.payment?.receiptNumber === receiptNumber ? current : null;
  }

  /** Steps 2–4 of an expiry whose close claim was won: expired, order.expired, the merchant's mail. */
  async function finishExpired(orderId: string, expiredAt: Date): Promise<OrderDoc | null> {
    const applied = await orders.markExpired(orderId, expiredAt);
    const order = await closedBy(orderId, applied, 'expired', () => true);
    await fault('expire:applied');
    const merchant = order ? await merchantOf(order.merchantId) : null;
    if (order && merchant) await queueExpired(order, merchant);
    await closes.done(orderId, 1);
    return order;
  }

  /** Steps 2–4 of a cancellation whose close claim (of part `seq`) was won: cancelled, then order.cancelled. */
  async function finishCancelled(orderId: string, cancelledAt: Date, seq = 1): Promise<OrderDoc | null> {
    const applied = await orders.markCancelled(orderId, cancelledAt);
    const order = await closedBy(orderId, applied, 'cancelled', () => true);
    await fault('cancel:applied');
    if (order) {
      const merchant = await merchantOf(order.merchantId);
      if (merchant) await deps.events?.orderCancelled?.(order, merchant);
      await fault('cancel:event');
    }
    await closes.done(orderId, seq);
    return order;
  }

  /**
   * Steps 2–4 of a won viewed claim: viewedAt on the still-pending order, order.viewed, the claim
   * applied. Returns the order when viewed at `viewedAt` (now or before a crash); null when it was
   * viewed before or closed (a paid, cancelled or expired order is never viewed).
   */
  async function finishViewed(orderId: string, viewedAt: Date): Promise<OrderDoc | null> {
    const applied = await orders.markViewed(orderId, viewedAt);
    const current = applied ?? (await orders.byId(orderId));
    const order = current?.viewedAt && new Date(current.viewedAt).getTime() === viewedAt.getTime() ? current : null;
    if (order) {
      const merchant = await merchantOf(order.merchantId);
      if (merchant) await deps.events?.orderViewed?.(order, merchant);
    }
    await closes.viewedDone(orderId);
    return order;
  }

  /** The customer's first interaction: the order when this call recorded it, else null. */
  async function recordViewed(orderId: string, at: Date): Promise<OrderDoc | null> {
    if (!(await closes.decideViewed(orderId, at))) return null;
    return finishViewed(orderId, at);
  }

  /** Step 1 of an expiry: true when this caller closes the order. */
  async function claimExpiry(orderId: string, at: Date, owner?: string): Promise<boolean> {
    const won = await closes.decide(orderId, 1, 'expired', { expiredAt: at }, at, owner);
    if (won) await fault('expire:claimed');
    return won;
  }

  /**
   * Step 1 of a cancellation: decides the close of part `seq` for `owner` unless it was decided.
   * Returns the decision: a cancellation (by `owner`, now or before a crash, or by someone else) may
   * be finished with finishCancelled(); any other way means the order closed otherwise.
   */
  async function claimCancel(orderId: string, owner: string, at: Date, seq = 1): Promise<{ way?: CloseWay; owner?: string; cancelledAt: Date }> {
    if (await closes.decide(orderId, seq, 'cancelled', { cancelledAt: at, seq }, at, owner)) {
      await fault('cancel:claimed');
      return { way: 'cancelled', owner, cancelledAt: at };
    }
    const held = await closes.decision<{ cancelledAt?: Date }>(orderId, seq);
    const cancelledAt = held?.payload?.cancelledAt;
    return {
      ...(held?.way ? { way: held.way } : {}),
      ...(held?.owner ? { owner: held.owner } : {}),
      cancelledAt: cancelledAt ? new Date(cancelledAt) : at,
    };
  }

  /**
   * Finishes every close transition not marked applied whose claim is older than `olderThanMs`
   * (a process died in it, or its last write failed). Safe to run beside live transitions: every
   * step is idempotent.
   */
  async function repair(olderThanMs = 60_000): Promise<RepairCounts> {
    const counts: RepairCounts = { paid: 0, expired: 0, cancelled: 0 };
    const at = now();
    for (const c of await closes.unfinished<PaidClose>('paid', olderThanMs, at)) {
      if (await finishPaid(c.orderId, c.payload!, 'pay')) counts.paid++;
    }
    for (const c of await closes.unfinished<{ expiredAt?: Date }>('expired', olderThanMs, at)) {
      if (await finishExpired(c.orderId, new Date(c.payload?.expiredAt ?? c.at))) counts.expired++;
    }
    for (const c of await closes.unfinished<{ cancelledAt?: Date; seq?: number }>('cancelled', olderThanMs, at)) {
      if (await finishCancelled(c.orderId, new Date(c.payload?.cancelledAt ?? c.at), c.payload?.seq ?? 1)) counts.cancelled++;
    }
    // Not a close, so not counted: an interrupted `viewed` is finished all the same.
    for (const c of await closes.unfinishedViews(olderThanMs, at)) {
      await finishViewed(c.orderId, new Date(c.payload?.viewedAt ?? c.at));
    }
    return counts;
  }

  return { queueReceipts, applyPaid, finishPaid, finishExpired, finishCancelled, finishViewed, recordViewed, claimExpiry, claimCancel, repair, fault };
}
export type OrderTransitions = ReturnType<typeof createOrderTransitions>;
