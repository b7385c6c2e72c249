// Refunds of paid orders, in full or in part, through the acquirer. The one rule: the refunds of
// an order never add up to more than was paid, even when two operators (or two instances) refund
// at the same moment.
//
// FerretDB updates are not atomic (src/db/claims.ts), so neither a counter on the order nor a
// conditional update can referee. Refunds are numbered per order instead: a refunder reads the
// claims `refund:<orderId>:0..n-1` already taken (each carries its amount), checks that its amount
// still fits, and inserts claim `refund:<orderId>:<n>`. Inserts under a unique _id are atomic, so
// of two refunders that saw the same n exactly one takes slot n; the other re-reads (now seeing
// the winner's amount) and tries slot n+1 or is refused. Slots are taken in order (slot n is only
// tried after seeing 0..n-1), so the claims read are all the reservations there are.
//
// A reservation whose acquirer call fails is marked failed on its own claim (only its winner ever
// writes it) and no longer counts.
//
// Crash safety (as for the order transitions, src/services/order-transitions.ts): a refund is
// finished when its claim is marked applied, after the acquirer's answer is kept on the claim,
// the refund document stored under an id derived from the claim, and refund.succeeded queued.
// repairInterrupted() runs the unfinished ones again: the acquirer call carries the claim as its
// idempotency key, so asking again gets the first answer, never a second refund.
//
// An order paid in parts (issue 13 part 1) is refunded per part: each reservation names the part
// (`part`, the paid part's seq) whose payment it gives money back on, the acquirer is asked on
// that part's authorisation, and the limit is that part's amount minus what is reserved on it.
// The slots stay per order, so the referee above is unchanged; the repair reads the part from the
// reservation.
import { createHash } from 'node:crypto';
import { type MerchantDoc } from '../db/merchants.repository.ts';
import { type OrderDoc } from '../db/orders.repository.ts';
import { type RefundDoc } from '../db/refunds.repository.ts';
import { type Acquirer } from '../domain/acquirer.ts';
import { LEGACY_ACQUIRER, type AcquirerDirectory } from './acquirer/directory.ts';
import { AppError, isAppError } from '../domain/errors.ts';
import { hasPlan } from '../domain/order-plan.ts';
import { choosePart, paidPayments, paymentOf, REFUNDABLE_STATUSES } from '../domain/refund-parts.ts';
import { type EventsService } from './events.service.ts';
import { type FaultHook } from './order-transitions.ts';
import { type Repositories } from '../db/repositories.ts';

export interface RefundServiceDeps {
  /** The storage seam (src/db/repositories.ts). */
  repos: Repositories;
  /** The acquirer used when there is no directory (tests may give one with only `refund`). */
  acquirer: Pick<Acquirer, 'refund'>;
  /** Per-merchant acquirers: a refund goes to the acquirer named on the payment. */
  acquirers?: AcquirerDirectory;
  events?: Pick<EventsService, 'refundSucceeded'>;
  now?: () => Date;
  /** Test hook at every step boundary of a refund (FAULT_POINTS.refund). */
  faults?: FaultHook;
  /** How often a refunder that lost a slot re-reads and tries again (default 50). */
  maxSlotTries?: number;
}

export interface RefundInput {
  amountMinor: number;
  /** E-mail address of the back-office user. */
  by: string;
  reason?: string | undefined;
  /**
   * The part (its seq) of an order paid in parts whose payment is refunded. Absent: the only paid
   * part, else the latest paid part that can still give back the amount (REFUND_PART_REQUIRED when
   * none can). An order without plan is part 1.
   */
  part?: number | undefined;
}

/** Kept on the refund's claim: what was asked, and the acquirer's answer once it came. */
interface Reservation {
  amountMinor: number;
  status: 'reserved' | 'succeeded' | 'failed';
  by?: string;
  reason?: string;
  at?: Date;
  /** The acquirer's id of the refund, once it accepted. */
  refundId?: string;
  /** The part of an order paid in parts whose payment this refunds (absent without plan). */
  part?: number;
}

export const refundClaimKey = (orderId: string, seq: number): string => `refund:${orderId}:${seq}`;
/** Our id of the refund stored for claim `key`: the same on every run of the same refund. */
const refundDocId = (key: string): string => `rf_${createHash('sha256').update(key).digest('base64url').slice(0, 22)}`;

export function createRefundService(deps: RefundServiceDeps) {
  const now = deps.now ?? (() => new Date());
  const maxTries = deps.maxSlotTries ?? 50;
  const { orders, refunds, claims } = deps.repos;
  const fault = async (point: string) => {
    if (deps.faults) await deps.faults(point);
  };

  /** The acquirer that took the payment (of part `part`, for an order paid in parts). */
  async function refunder(merchant: MerchantDoc, order: OrderDoc, part?: number): Promise<Pick<Acquirer, 'refund'>> {
    return deps.acquirers ? deps.acquirers.forMerchant(merchant, paymentOf(order, part)?.acquirer ?? LEGACY_ACQUIRER) : deps.acquirer;
  }

  /**
   * Everything after the slot's claim, idempotent: the acquirer (asked under the claim as its
   * idempotency key, unless its answer is already kept), the refund document, refund.succeeded,
   * and the claim marked applied.
   */
  async function finish(
    key: string,
    seq: number,
    order: OrderDoc,
    merchant: MerchantDoc,
    reservation: Reservation,
  ): Promise<{ ok: true; refund: RefundDoc } | { ok: false; code: string; message: string }> {
    let kept = reservation;
    if (kept.status === 'failed') {
      await claims.markApplied(key);
      return { ok: false, code: 'REFUND_REFUSED', message: 'refused earlier' };
    }
    if (kept.status === 'reserved' || !kept.refundId) {
      const result = await (await refunder(merchant, order, kept.part)).refund!({ authCode: paymentOf(order, kept.part)!.authCode!, amountMinor: kept.amountMinor, currency: order.currency, idempotencyKey: key });
      await fault('refund:acquired');
      if (!result.ok) {
        await claims.setPayload(key, { ...kept, status: 'failed' }, { applied: true });
        return { ok: false, code: result.code, message: result.message };
      }
      kept = { ...kept, status: 'succeeded', refundId: result.refundId };
      await claims.setPayload(key, { ...kept });
      await fault('refund:recorded');
    }
    const at = kept.at ? new Date(kept.at) : now();
    const doc = {
      _id: refundDocId(key),
      orderId: order._id,
      merchantId: merchant._id,
      seq,
      ...(kept.part !== undefined ? { part: kept.part } : {}),
      amountMinor: kept.amountMinor,
      currency: order.currency,
      refundId: kept.refundId!,
      by: kept.by ?? 'unknown',
      at,
      ...(kept.reason ? { reason: kept.reason } : {}),
    };
    await refunds.record(doc);
    await fault('refund:stored');
    const part = kept.part !== undefined && hasPlan(order) ? order.plan!.parts![kept.part - 1] : undefined;
    await deps.events?.refundSucceeded(order, merchant, {
      id: doc._id,
      amountMinor: doc.amountMinor,
      currency: doc.currency,
      at,
      part: part ? { seq: part.seq, of: order.plan!.parts!.length, kind: part.kind, amountMinor: part.amountMinor } : null,
    });
    await fault('refund:event');
    await claims.markApplied(key);
    return { ok: true, refund: doc };
  }

  /**
   * Finishes refunds whose claim is older than `olderThanMs` and not marked applied (a crash or a
   * failed write interrupted them). Returns how many ended refunded.
   */
  async function repairInterrupted(olderThanMs = 60_000): Promise<number> {
    let repaired = 0;
    for (const c of await claims.unapplied('refund', olderThanMs, now())) {
      const key = String(c._id);
      const seq = Number(/:(\d+)$/.exec(key)?.[1] ?? NaN);
      const order = await orders.byId(String(c.subject));
      const merchant = order ? await deps.repos.merchants.findById(order.merchantId) : null;
      const reservation = { by: c.owner ?? undefined, at: c.at, ...(c.payload as Reservation) } as Reservation;
      if (!order || !paymentOf(order, reservation.part)?.authCode || !merchant || !Number.isInteger(seq) || !(await refunder(merchant, order, reservation.part)).refund) {
        await claims.markApplied(key);
        continue;
      }
      if ((await finish(key, seq, order, merchant, reservation)).ok) repaired++;
    }
    return repaired;
  }

  /**
   * The slots taken for an order: how many, and the amount they hold (failed ones excluded), in
   * all and per part (`byPart[seq]`; reservations without part under 0).
   */
  async function reservations(orderId: string): Promise<{ slots: number; reservedMinor: number; byPart: Record<number, number> }> {
    const slots = await claims.numbered(`refund:${orderId}:`);
    let reservedMinor = 0;
    const byPart: Record<number, number> = {};
    for (const c of slots) {
      const r = c.payload as Reservation | undefined;
      if (!r || r.status === 'failed') continue;
      reservedMinor += r.amountMinor;
      byPart[r.part ?? 0] = (byPart[r.part ?? 0] ?? 0) + r.amountMinor;
    }
    return { slots: slots.length, reservedMinor, byPart };
  }

  /** What each paid payment of an order can still give back (`part` absent without plan). */
  async function refundable(order: OrderDoc): Promise<Array<{ part?: number; refundableMinor: number }>> {
    const { byPart } = await reservations(order._id);
    return paidPayments(order).map((p) => ({ ...(p.part !== undefined ? { part: p.part } : {}), refundableMinor: Math.max(0, p.amountMinor - (byPart[p.part ?? 0] ?? 0)) }));
  }

  /** The refunds of an order, oldest first, and their total. */
  async function forOrder(merchant: Pick<MerchantDoc, '_id'>, orderId: string): Promise<{ refunds: RefundDoc[]; refundedMinor: number }> {
    const list = await refunds.forOrder(merchant._id, orderId);
    return { refunds: list, refundedMinor: list.reduce((s, r) => s + r.amountMinor, 0) };
  }

  /**
   * The refund of an order that `by` asked for, if one was made; else whether one of its
   * reservations is still unfinished (the crash repair will finish it). For a caller that must not
   * refund twice when it asks again after dying mid-way (the server API's Idempotency-Key).
   */
  async function madeBy(merchant: Pick<MerchantDoc, '_id'>, orderId: string, by: string): Promise<{ refund?: RefundDoc; pending: boolean }> {
    const made = (await refunds.forOrder(merchant._id, orderId)).find((r) => r.by === by);
    if (made) return { refund: made, pending: false };
    const slots = await claims.numbered(`refund:${orderId}:`);
    const pending = slots.some((c) => {
      const r = c.payload as Reservation | undefined;
      return r?.by === by && r.status !== 'failed';
    });
    return { pending };
  }

  async function refund(merchant: MerchantDoc, orderId: string, input: RefundInput): Promise<RefundDoc> {
    const order = await orders.ofMerchant(merchant._id, orderId);
    if (!order) throw new AppError('ORDER_NOT_FOUND', 'no such order', { httpStatus: 404 });
    if (!REFUNDABLE_STATUSES.has(order.status) || paidPayments(order).length === 0) {
      throw new AppError('REFUND_NOT_PAID', `the order is ${order.status}`, { httpStatus: 409 });
    }
    if (!Number.isSafeInteger(input.amountMinor) || input.amountMinor <= 0) {
      throw new AppError('REFUND_AMOUNT_INVALID', 'the amount must be more than zero', { httpStatus: 422 });
    }
    if (!(await refunder(merchant, order, input.part)).refund) throw new AppError('REFUND_UNSUPPORTED', 'the acquirer cannot refund', { httpStatus: 409 });

    for (let attempt = 0; attempt < maxTries; attempt++) {
      const { slots, byPart } = await reservations(order._id);
      // Chosen again after each lost slot: the winner's reservation now counts on its part.
      const { part, refundableMinor } = choosePart(order, byPart, input);
      if (input.amountMinor > refundableMinor) {
        throw new AppError('REFUND_EXCEEDS_PAID', `at most ${refundableMinor} can still be refunded`, {
          httpStatus: 409,
          details: { refundableMinor: Math.max(0, refundableMinor), ...(part !== undefined ? { part } : {}) },
        });
      }
      const key = refundClaimKey(order._id, slots);
      const at = now();
      const reservation: Reservation = {
        amountMinor: input.amountMinor,
        status: 'reserved',
        by: input.by,
        at,
        ...(input.reason ? { reason: input.reason } : {}),
        ...(part !== undefined ? { part } : {}),
      };
      if (!(await claims.once(key, { kind: 'refund', subject: order._id, owner: input.by, payload: { ...reservation } }, at))) {
        // Another refund took slot n: re-read (its amount now counts) and try the next slot.
        await new Promise((r) => setTimeout(r, 2 + Math.random() * 8));
        continue;
      }
      await fault('refund:claimed');
      const done = await finish(key, slots, order, merchant, reservation);
      if (!done.ok) {
        throw new AppError('REFUND_REFUSED', `the acquirer refused the refund: ${done.message}`, { httpStatus: 409, details: { code: done.code } });
      }
      return done.refund;
    }
    throw new AppError('REFUND_BUSY', 'other refunds of this order are in progress; try again', { httpStatus: 409 });
  }

  /**
   * Gives back everything still refundable on every paid payment of the order (each part in full,
   * minus what was refunded of it): the refund chosen when a partly paid order is cancelled. Asked
   * again (a retry after a crash), it refunds only what is left. Returns the refunds made now.
   */
  async function refundAll(merchant: MerchantDoc, orderId: string, input: Omit<RefundInput, 'amountMinor' | 'part'>): Promise<RefundDoc[]> {
    const order = await orders.ofMerchant(merchant._id, orderId);
    if (!order) throw new AppError('ORDER_NOT_FOUND', 'no such order', { httpStatus: 404 });
    const made: RefundDoc[] = [];
    for (const { part } of paidPayments(order)) {
      // A refund of the same part racing this one: read again what is left, a few times.
      for (let attempt = 0; attempt < 5; attempt++) {
        const left = (await refundable(order)).find((p) => p.part === part)?.refundableMinor ?? 0;
        if (left <= 0) break;
        try {
          made.push(await refund(merchant, orderId, { ...input, amountMinor: left, ...(part !== undefined ? { part } : {}) }));
          break;
        } catch (e) {
          if (!isAppError(e, 'REFUND_EXCEEDS_PAID')) throw e;
        }
      }
    }
    return made;
  }

  return { refund, refundAll, refundable, forOrder, reservations, madeBy, repairInterrupted };
}
export type RefundService = ReturnType<typeof createRefundService>;
