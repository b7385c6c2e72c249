// Merchant-initiated charges of a saved card ("a scadenza", issue 12 part 3): the merchant charges
// a customer's saved card without the customer present — from the back office (operator) or the
// server API (POST /api/v1/customers/{code}/charges).
//
// Each charge is an order, created like the back office's "new pay-link" form (the order
// service's create(), source key `charge:<reference>`, so one order per merchant and reference;
// no pay-link mail, no reminders), and is charged once, refereed by a claim like every
// transition (src/services/order-transitions.ts):
//   1. claim `charge:<orderId>` (its payload names the customer and the card),
//   2. ask the acquirer with the claim key as idempotency key (a repeat is the same charge) and
//      settle the answer through the checkout's settle() (close claim, receipts, payment.succeeded;
//      or the declined attempt, recorded once under the claim key, and payment.failed),
//   3. mark the claim applied.
// A repeat of the request (same merchant and reference) answers what the first one did, without
// charging again; a crash before step 3 is finished by repairInterrupted() (or by the repeat).
import { type DeclineCode } from '../domain/acquirer.ts';
import { AppError } from '../domain/errors.ts';
import { isCurrency } from '../domain/money.ts';
import { cardExpired } from '../domain/saved-card.ts';
import { type MerchantDoc } from '../db/merchants.repository.ts';
import { type OrderDoc } from '../db/orders.repository.ts';
import { type Repositories } from '../db/repositories.ts';
import { type CheckoutService } from './checkout.service.ts';
import { type FaultHook } from './order-transitions.ts';
import { type OrderDraft, type OrderService } from './order.service.ts';

/** The claim of a merchant charge: one per order, the acquirer's idempotency key too. */
export const chargeClaimKey = (orderId: string): string => `charge:${orderId}`;
export const CHARGE_KIND = 'saved-card-charge';
/** Fault points of a merchant charge (tests crash there). */
export const CHARGE_FAULT_POINTS = ['charge:claimed', 'charge:settled'] as const;

export interface MerchantChargeInput {
  amountMinor: number;
  currency: string;
  reference: string;
  description?: string | undefined;
}

export type MerchantChargeResult =
  | { outcome: 'approved'; order: OrderDoc; customerCode: string }
  | { outcome: 'declined'; code: DeclineCode; order: OrderDoc; customerCode: string };

interface ChargePayload {
  customerCode: string;
  cardId: string;
}

export interface SavedCardChargeDeps {
  repos: Repositories;
  orders: Pick<OrderService, 'create'>;
  checkout: Pick<CheckoutService, 'chargeSaved'>;
  now?: () => Date;
  faults?: FaultHook;
}

const REFERENCE = /^[\p{L}\p{N}][\p{L}\p{N} ._\/#:-]{0,99}$/u;

export function createSavedCardChargeService(deps: SavedCardChargeDeps) {
  const now = deps.now ?? (() => new Date());
  const { claims, customers, orders } = deps.repos;
  const fault = async (point: string) => {
    if (deps.faults) await deps.faults(point);
  };

  function validate(input: MerchantChargeInput): void {
    const problems: Array<{ field: string; code: string; message: string }> = [];
    if (!Number.isSafeInteger(input.amountMinor) || input.amountMinor <= 0) problems.push({ field: 'amount', code: 'AMOUNT_INVALID', message: 'expected a positive integer in minor units' });
    if (!isCurrency(input.currency)) problems.push({ field: 'currency', code: 'CURRENCY_INVALID', message: 'expected an ISO 4217 currency code' });
    if (!REFERENCE.test(input.reference)) problems.push({ field: 'reference', code: 'REFERENCE_INVALID', message: 'expected 1 to 100 letters, digits, spaces and . _ / # : -' });
    if ((input.description ?? '').length > 500) problems.push({ field: 'description', code: 'DESCRIPTION_TOO_LONG', message: 'at most 500 characters' });
    if (problems.length) throw new AppError('CHARGE_INVALID', problems.map((p) => `${p.field}: ${p.message}`).join('; '), { httpStatus: 422, details: { problems } });
  }

  /** What an applied charge answered: the paid order, or the decline its attempt recorded. */
  async function outcomeOf(orderId: string, customerCode: string): Promise<MerchantChargeResult> {
    const order = await orders.byId(orderId);
    if (order?.status === 'paid') return { outcome: 'approved', order, customerCode };
    const attempt = order?.attempts.find((a) => a.key === chargeClaimKey(orderId));
    if (order && attempt?.declineCode) return { outcome: 'declined', code: attempt.declineCode as DeclineCode, order, customerCode };
    throw new AppError('ORDER_NOT_PAYABLE', `the order is ${order?.status ?? 'gone'}`, { httpStatus: 409 });
  }

  /** Steps 2 and 3 under a won (or interrupted) claim; idempotent. */
  async function finish(orderId: string, payload: ChargePayload): Promise<MerchantChargeResult> {
    const key = chargeClaimKey(orderId);
    const order = await orders.byId(orderId);
    const merchant = order ? await deps.repos.merchants.findById(order.merchantId) : null;
    const customer = merchant ? await customers.byCode(merchant._id, payload.customerCode) : null;
    const card = customer?.cards.find((c) => c.id === payload.cardId);
    if (!order || !merchant || !card) {
      // Gone meanwhile (the customer removed the card before the charge reached the acquirer).
      await claims.markApplied(key);
      if (order?.status === 'paid') return outcomeOf(orderId, payload.customerCode);
      throw new AppError('SAVED_CARD_NOT_FOUND', 'the saved card was removed', { httpStatus: 409 });
    }
    const result = await deps.checkout.chargeSaved(order, merchant, {
      customerCode: payload.customerCode,
      card,
      initiator: 'merchant',
      idempotencyKey: key,
      attemptKey: key,
      clientIp: `merchant:${merchant._id}`,
    });
    await fault('charge:settled');
    if (result.kind === 'suspended') throw new AppError('MERCHANT_SUSPENDED', 'the merchant is suspended', { httpStatus: 403 });
    await claims.markApplied(key);
    if (result.kind === 'paid') return { outcome: 'approved', order: result.order, customerCode: payload.customerCode };
    if (result.kind === 'refused') return { outcome: 'declined', code: result.code, order: (await orders.byId(orderId)) ?? order, customerCode: payload.customerCode };
    // closed / lost-race: paid by this charge before a crash, or closed some other way.
    return outcomeOf(orderId, payload.customerCode);
  }

  /**
   * Charges the newest usable saved card of customer `customerCode` for a new order `reference`.
   * The same merchant and reference again answers the first charge's outcome, never charging twice.
   */
  async function chargeSavedCard(merchant: MerchantDoc, customerCode: string, input: MerchantChargeInput): Promise<MerchantChargeResult> {
    validate(input);
    if (await deps.repos.merchants.isSuspended(merchant._id)) throw new AppError('MERCHANT_SUSPENDED', 'the merchant is suspended', { httpStatus: 403 });
    const customer = await customers.byCode(merchant._id, customerCode);
    if (!customer) throw new AppError('CUSTOMER_NOT_FOUND', 'no such customer', { httpStatus: 404 });
    const created = await deps.orders.create(
      merchant,
      {
        amountMinor: input.amountMinor,
        currency: input.currency,
        reference: input.reference,
        description: input.description || undefined,
        customerEmail: customer.email,
        delivery: 'merchant',
        // Nobody pays this order on its link: no reminders (the order's own plan, where orders have one).
        ...({ reminders: { off: true } } as unknown as Partial<OrderDraft>),
      },
      { key: `charge:${input.reference}` },
      { payLinkMail: 'none' },
    );
    if (created.duplicateOf === 'reference') throw new AppError('ORDER_REFERENCE_TAKEN', 'an open order has this reference', { httpStatus: 409 });
    const order = created.order;
    if (order.amountMinor !== input.amountMinor || order.currency !== input.currency) {
      throw new AppError('CHARGE_CONFLICT', 'this reference was charged with another amount', { httpStatus: 409 });
    }
    const key = chargeClaimKey(order._id);
    let claim = await claims.get(key);
    if (!claim) {
      if (order.status !== 'pending') throw new AppError('ORDER_NOT_PAYABLE', `the order is ${order.status}`, { httpStatus: 409 });
      const at = now();
      const card = [...customer.cards].reverse().find((c) => !cardExpired(c, at));
      if (!card) throw new AppError('SAVED_CARD_NOT_FOUND', 'the customer has no saved card that can be charged', { httpStatus: 409 });
      const payload: ChargePayload = { customerCode, cardId: card.id };
      if (await claims.once(key, { kind: CHARGE_KIND, subject: order._id, payload: { ...payload } }, at)) await fault('charge:claimed');
      claim = await claims.get(key);
    }
    const payload = claim?.payload as ChargePayload | undefined;
    if (!payload) throw new AppError('ORDER_NOT_PAYABLE', 'the charge could not be started', { httpStatus: 409 });
    if (payload.customerCode !== customerCode) throw new AppError('CHARGE_CONFLICT', 'this reference was charged to another customer', { httpStatus: 409 });
    if (claim?.applied) return outcomeOf(order._id, customerCode);
    return finish(order._id, payload);
  }

  /** Finishes the charges a crash interrupted (claims older than `olderThanMs` not applied); how many. */
  async function repairInterrupted(olderThanMs = 60_000): Promise<number> {
    let n = 0;
    for (const c of await claims.unapplied(CHARGE_KIND, olderThanMs, now())) {
      const payload = c.payload as ChargePayload | undefined;
      if (!payload) {
        await claims.markApplied(String(c._id));
        continue;
      }
      await finish(String(c.subject), payload).then(
        () => n++,
        (e: unknown) => {
          if (!(e instanceof AppError)) throw e;
        },
      );
    }
    return n;
  }

  return { chargeSavedCard, repairInterrupted };
}
export type SavedCardChargeService = ReturnType<typeof createSavedCardChargeService>;
