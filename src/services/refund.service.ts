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
// writes it) and no longer counts. A process dying between claim and acquirer leaves the amount
// reserved: never an over-refund, at worst a smaller refundable rest until someone looks.
import { nanoid } from 'nanoid';
import { Claim, claimOnce, markApplied } from '../db/claims.ts';
import { type MerchantDoc } from '../db/models/merchant.model.ts';
import { Order, type OrderDoc } from '../db/models/order.model.ts';
import { Refund, type RefundDoc } from '../db/models/refund.model.ts';
import { type Acquirer } from '../domain/acquirer.ts';
import { AppError } from '../domain/errors.ts';
import { type EventsService } from './events.service.ts';

export interface RefundServiceDeps {
  acquirer: Pick<Acquirer, 'refund'>;
  events?: Pick<EventsService, 'refundSucceeded'>;
  now?: () => Date;
  /** How often a refunder that lost a slot re-reads and tries again (default 50). */
  maxSlotTries?: number;
}

export interface RefundInput {
  amountMinor: number;
  /** E-mail address of the back-office user. */
  by: string;
  reason?: string | undefined;
}

interface Reservation {
  amountMinor: number;
  status: 'reserved' | 'succeeded' | 'failed';
}

export const refundClaimKey = (orderId: string, seq: number): string => `refund:${orderId}:${seq}`;
const escapeRegex = (s: string): string => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');

export function createRefundService(deps: RefundServiceDeps) {
  const now = deps.now ?? (() => new Date());
  const maxTries = deps.maxSlotTries ?? 50;

  /** The slots taken for an order: how many, and the amount they hold (failed ones excluded). */
  async function reservations(orderId: string): Promise<{ slots: number; reservedMinor: number }> {
    const claims = await Claim.find({ _id: { $regex: `^${escapeRegex(`refund:${orderId}:`)}\\d+$` } }, { _id: 1, payload: 1 }).lean();
    let reservedMinor = 0;
    for (const c of claims) {
      const r = c.payload as Reservation | undefined;
      if (r && r.status !== 'failed') reservedMinor += r.amountMinor;
    }
    return { slots: claims.length, reservedMinor };
  }

  /** The refunds of an order, oldest first, and their total. */
  async function forOrder(merchant: Pick<MerchantDoc, '_id'>, orderId: string): Promise<{ refunds: RefundDoc[]; refundedMinor: number }> {
    const refunds = await Refund.find({ orderId, merchantId: merchant._id }).sort({ seq: 1 }).lean<RefundDoc[]>();
    return { refunds, refundedMinor: refunds.reduce((s, r) => s + r.amountMinor, 0) };
  }

  async function refund(merchant: MerchantDoc, orderId: string, input: RefundInput): Promise<RefundDoc> {
    // By _id alone, then the tenant check (FerretDB scans any other filter).
    const byId = await Order.findById(orderId).lean<OrderDoc>();
    const order = byId?.merchantId === merchant._id ? byId : null;
    if (!order) throw new AppError('ORDER_NOT_FOUND', 'no such order', { httpStatus: 404 });
    if (order.status !== 'paid' || !order.payment?.authCode) {
      throw new AppError('REFUND_NOT_PAID', `the order is ${order.status}`, { httpStatus: 409 });
    }
    if (!Number.isSafeInteger(input.amountMinor) || input.amountMinor <= 0) {
      throw new AppError('REFUND_AMOUNT_INVALID', 'the amount must be more than zero', { httpStatus: 422 });
    }
    if (!deps.acquirer.refund) throw new AppError('REFUND_UNSUPPORTED', 'the acquirer cannot refund', { httpStatus: 409 });

    for (let attempt = 0; attempt < maxTries; attempt++) {
      const { slots, reservedMinor } = await reservations(order._id);
      const refundable = order.amountMinor - reservedMinor;
      if (input.amountMinor > refundable) {
        throw new AppError('REFUND_EXCEEDS_PAID', `at most ${refundable} can still be refunded`, {
          httpStatus: 409,
          details: { refundableMinor: Math.max(0, refundable) },
        });
      }
      const key = refundClaimKey(order._id, slots);
      const reservation: Reservation = { amountMinor: input.amountMinor, status: 'reserved' };
      const at = now();
      if (!(await claimOnce(key, { kind: 'refund', subject: order._id, owner: input.by, payload: { ...reservation } }, at))) {
        // Another refund took slot n: re-read (its amount now counts) and try the next slot.
        await new Promise((r) => setTimeout(r, 2 + Math.random() * 8));
        continue;
      }
      const result = await deps.acquirer.refund({ authCode: order.payment.authCode, amountMinor: input.amountMinor, currency: order.currency });
      if (!result.ok) {
        await Claim.updateOne({ _id: key }, { $set: { payload: { ...reservation, status: 'failed' }, applied: true } });
        throw new AppError('REFUND_REFUSED', `the acquirer refused the refund: ${result.message}`, { httpStatus: 409, details: { code: result.code } });
      }
      const doc = {
        _id: `rf_${nanoid(16)}`,
        orderId: order._id,
        merchantId: merchant._id,
        seq: slots,
        amountMinor: input.amountMinor,
        currency: order.currency,
        refundId: result.refundId,
        by: input.by,
        at,
        ...(input.reason ? { reason: input.reason } : {}),
      };
      await Refund.create(doc);
      await Claim.updateOne({ _id: key }, { $set: { payload: { ...reservation, status: 'succeeded' } } });
      await markApplied(key);
      await deps.events?.refundSucceeded(order, merchant, { id: doc._id, amountMinor: doc.amountMinor, currency: doc.currency, at });
      return doc as RefundDoc;
    }
    throw new AppError('REFUND_BUSY', 'other refunds of this order are in progress; try again', { httpStatus: 409 });
  }

  return { refund, forOrder, reservations };
}
export type RefundService = ReturnType<typeof createRefundService>;
