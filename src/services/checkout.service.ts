// Hosted checkout use cases: resolve a pay-link to the state of its order, and pay an order with a
// card. The pending → paid transition is one conditional update, so of two racing payments exactly
// one wins; the loser's authorisation is voided. Only brand, BIN, last four and expiry are stored.
//
// FerretDB (dev and tests) applies updates as read-modify-write of the whole document, so
// concurrent updates of one order can overwrite each other and the conditional update alone is not
// a referee there. Payments for one order are therefore also serialised within the process; on
// MongoDB (production, several instances) the conditional update is atomic by itself.
import { z } from 'zod';
import { type Acquirer, type DeclineCode } from '../domain/acquirer.ts';
import { checkCard, type CheckedCard } from '../domain/card.ts';
import { type FieldProblem } from '../domain/errors.ts';
import { newReceiptNumber } from '../domain/ids.ts';
import { verifyLink, type LinkKey, type LinkParams } from '../domain/pay-link.ts';
import { claimOnce, markApplied, unappliedClaims } from '../db/claims.ts';
import { Merchant, type MerchantDoc } from '../db/models/merchant.model.ts';
import { Order, type OrderDoc } from '../db/models/order.model.ts';
import { enqueueMail } from '../mail/outbox.ts';

export interface CheckoutServiceDeps {
  acquirer: Acquirer;
  /** Verifying keys for pay-links (all of them: old key ids keep verifying after a rotation). */
  linkKeys: readonly LinkKey[];
  mailDomain: string;
  /** The pay-link of an order (it shows the receipt once paid); goes into the receipt mails. */
  linkFor: (order: OrderDoc) => string;
  now?: () => Date;
}

/** What the customer typed. The number and CVC live only as long as the request. */
export interface CheckoutForm {
  number: string;
  expiry: string;
  cvc: string;
  holder: string;
  email?: string | undefined;
}

export interface OpenOrder {
  order: OrderDoc;
  merchant: MerchantDoc;
}

export type LinkState =
  | { kind: 'not-found'; reason: 'malformed' | 'unknown-key' | 'bad-signature' | 'unknown-order' | 'claims-mismatch' }
  | ({ kind: 'payable' | 'paid' | 'cancelled' | 'expired' } & OpenOrder);

export type PayResult =
  | { kind: 'invalid'; problems: FieldProblem[] }
  | { kind: 'paid'; order: OrderDoc }
  /** The card was refused ('declined') or the acquirer failed ('error'); the order stays payable. */
  | { kind: 'refused'; outcome: 'declined' | 'error'; code: DeclineCode }
  | { kind: 'challenge' }
  /** Authorised, but the order was no longer pending (paid by a racing request, or expired). */
  | { kind: 'lost-race'; order: OrderDoc | null }
  /** By the time this attempt's turn came, the order was no longer payable; nothing was authorised. */
  | { kind: 'closed'; order: OrderDoc | null };

type StoredCard = Pick<CheckedCard, 'brand' | 'bin' | 'last4' | 'expMonth' | 'expYear'>;

const Email = z.email();

/** The only card fields that ever reach the database. */
function storedCard(card: CheckedCard): StoredCard {
  return { brand: card.brand, bin: card.bin, last4: card.last4, expMonth: card.expMonth, expYear: card.expYear };
}

/** Runs tasks with the same key one after another (a per-order queue within this process). */
function createKeyedQueue() {
  const tails = new Map<string, Promise<void>>();
  return async function run<T>(key: string, task: () => Promise<T>): Promise<T> {
    const previous = tails.get(key) ?? Promise.resolve();
    let release!: () => void;
    const mine = new Promise<void>((resolve) => (release = resolve));
    const tail = previous.then(() => mine);
    tails.set(key, tail);
    await previous;
    try {
      return await task();
    } finally {
      release();
      if (tails.get(key) === tail) tails.delete(key);
    }
  };
}

/** What a won close claim applies to the order (stored on the claim; no dotted keys). */
interface PaidClose {
  payment: { receiptNumber: string; authCode: string; paidAt: Date; card: StoredCard };
  customerEmail?: string;
  attempt: Record<string, unknown>;
  holder: string;
}

/** The claim that closes an order (paid now; expired and cancelled use it too). */
export const closeClaimKey = (orderId: string): string => `order:${orderId}:close`;

export function createCheckoutService(deps: CheckoutServiceDeps) {
  const now = deps.now ?? (() => new Date());
  const serialised = createKeyedQueue();

  /** Signature first (no database work for a forged link), then the order and its merchant. */
  async function open(publicId: string, query: Partial<Record<keyof LinkParams, unknown>>): Promise<LinkState> {
    const link = verifyLink(deps.linkKeys, publicId, query);
    if (!link.ok) return { kind: 'not-found', reason: link.reason };
    const order = await Order.findOne({ publicId }).lean<OrderDoc>();
    if (!order) return { kind: 'not-found', reason: 'unknown-order' };
    if (order.amountMinor !== link.claims.amountMinor || order.currency !== link.claims.currency) {
      return { kind: 'not-found', reason: 'claims-mismatch' };
    }
    const merchant = await Merchant.findById(order.merchantId).lean<MerchantDoc>();
    if (!merchant) return { kind: 'not-found', reason: 'unknown-order' };
    const at = now().getTime();
    // A paid order shows its receipt even after the link's expiry: that is the payment proof.
    if (order.status === 'paid') return { kind: 'paid', order, merchant };
    if (order.status === 'cancelled') return { kind: 'cancelled', order, merchant };
    if (order.status === 'expired' || order.expiresAt.getTime() <= at || link.claims.expiresAt * 1000 <= at) {
      return { kind: 'expired', order, merchant };
    }
    return { kind: 'payable', order, merchant };
  }

  function validate(order: OrderDoc, form: CheckoutForm) {
    const checked = checkCard(form, now());
    const problems = checked.ok ? [] : [...checked.problems];
    let email: string | undefined;
    if (!order.customer?.email) {
      const given = (form.email ?? '').trim().toLowerCase();
      if (!given) problems.push({ field: 'email', code: 'EMAIL_REQUIRED', message: 'Enter your e-mail address for the receipt.' });
      else if (!Email.safeParse(given).success) {
        problems.push({ field: 'email', code: 'EMAIL_INVALID', message: 'Enter an e-mail address such as name@example.com.' });
      } else email = given;
    }
    return checked.ok && problems.length === 0 ? { ok: true as const, card: checked.card, email } : { ok: false as const, problems };
  }

  async function recordAttempt(orderId: string, attempt: Record<string, unknown>): Promise<void> {
    await Order.updateOne({ _id: orderId }, { $push: { attempts: attempt } });
  }

  async function queueReceipts(order: OrderDoc, merchant: MerchantDoc, holder: string): Promise<void> {
    const payment = order.payment!;
    const customerEmail = order.customer?.email ?? '';
    const data = {
      receiptNumber: payment.receiptNumber,
      merchantName: merchant.name,
      reference: order.reference,
      amountMinor: order.amountMinor,
      currency: order.currency,
      description: order.description ?? '',
      card: {
        brand: payment.card?.brand,
        last4: payment.card?.last4,
        expMonth: payment.card?.expMonth,
        expYear: payment.card?.expYear,
        ...(payment.card?.country ? { country: payment.card.country } : {}),
      },
      authCode: payment.authCode,
      paidAt: payment.paidAt!.toISOString(),
      customerEmail,
      customerName: order.customer?.name || holder,
      link: deps.linkFor(order),
      timeZone: merchant.timezone,
    };
    const common = { merchantId: merchant._id, orderId: order._id, data };
    if (customerEmail) {
      await enqueueMail(
        {
          ...common,
          dedupeKey: `receipt:${order._id}:customer`,
          template: 'receipt-customer',
          locale: order.locale,
          to: [customerEmail],
          replyTo: merchant.email,
        },
        deps.mailDomain,
      );
    }
    await enqueueMail(
      {
        ...common,
        dedupeKey: `receipt:${order._id}:merchant`,
        template: 'receipt-merchant',
        locale: merchant.locale,
        to: [merchant.email],
        ...(customerEmail ? { replyTo: customerEmail } : {}),
      },
      deps.mailDomain,
    );
  }

  /** Checks the card, asks the acquirer, and records the outcome on the order. */
  async function pay(target: OpenOrder, form: CheckoutForm, clientIp: string): Promise<PayResult> {
    const valid = validate(target.order, form);
    if (!valid.ok) return { kind: 'invalid', problems: valid.problems };
    return serialised(target.order._id, async () => {
      // The snapshot may be stale once our turn comes (a double-submitted form): check again, so
      // the second submission sees the payment instead of authorising the card a second time.
      const order = await Order.findById(target.order._id).lean<OrderDoc>();
      if (!order || order.status !== 'pending' || order.expiresAt <= now()) return { kind: 'closed', order };
      return authorizeAndRecord(order, target.merchant, valid.card, valid.email, clientIp);
    });
  }

  async function authorizeAndRecord(
    order: OrderDoc,
    merchant: MerchantDoc,
    card: CheckedCard,
    email: string | undefined,
    clientIp: string,
  ): Promise<PayResult> {
    const kept = storedCard(card);
    const result = await deps.acquirer.authorize({
      orderId: order._id,
      amountMinor: order.amountMinor,
      currency: order.currency,
      card: { number: card.number, cvc: card.cvc, expMonth: card.expMonth, expYear: card.expYear, holder: card.holder },
    });
    const at = now();
    const base = { at, card: kept, clientIp };

    if (result.outcome === 'declined' || result.outcome === 'error') {
      await recordAttempt(order._id, { ...base, outcome: result.outcome, declineCode: result.code, message: result.message });
      return { kind: 'refused', outcome: result.outcome, code: result.code };
    }
    if (result.outcome === 'challenge') {
      await recordAttempt(order._id, { ...base, outcome: 'challenge', message: result.message });
      return { kind: 'challenge' };
    }

    const close: PaidClose = {
      payment: { receiptNumber: newReceiptNumber(), authCode: result.authCode, paidAt: at, card: kept },
      ...(email ? { customerEmail: email } : {}),
      attempt: { ...base, outcome: 'approved', authCode: result.authCode },
      holder: card.holder,
    };
    // One terminal transition per order, refereed by a claim (FerretDB's conditional updates are
    // not atomic; see src/db/claims.ts). The claim carries the update so a crash right after it
    // is repaired by repairInterrupted() instead of leaving a charged card on an unpaid order.
    const key = closeClaimKey(order._id);
    const won = await claimOnce(key, { kind: 'order-close', subject: order._id, payload: { ...close } }, at);
    const paid = won ? await applyPaid(order._id, close) : null;
    if (won) await markApplied(key);
    if (!paid) {
      await deps.acquirer.void(result.authCode);
      await recordAttempt(order._id, { ...base, outcome: 'lost-race', authCode: result.authCode, message: 'authorisation voided' });
      return { kind: 'lost-race', order: await Order.findById(order._id).lean<OrderDoc>() };
    }
    await queueReceipts(paid, merchant, card.holder);
    return { kind: 'paid', order: paid };
  }

  /** Records the payment on a still-pending order (only the holder of its close claim calls this). */
  async function applyPaid(orderId: string, p: PaidClose): Promise<OrderDoc | null> {
    const set: Record<string, unknown> = {
      status: 'paid',
      // Closing the order frees its reference for a new order (see openReference in the model).
      openReference: orderId,
      payment: p.payment,
    };
    if (p.customerEmail) set['customer.email'] = p.customerEmail;
    return Order.findOneAndUpdate(
      { _id: orderId, status: 'pending' },
      { $set: set, $push: { attempts: p.attempt } },
      { returnDocument: 'after' },
    ).lean<OrderDoc>();
  }

  /**
   * Finishes payments whose process died between winning the order's close claim and recording
   * the payment (the card was authorised: the order must end paid and the receipts go out).
   * Returns how many orders it repaired. Runs at start-up and from a periodic sweep.
   */
  async function repairInterrupted(olderThanMs = 60_000): Promise<number> {
    let repaired = 0;
    for (const c of await unappliedClaims('order-close', olderThanMs, now())) {
      const p = c.payload as PaidClose;
      const order = await applyPaid(String(c.subject), p);
      if (order) {
        const merchant = await Merchant.findById(order.merchantId).lean<MerchantDoc>();
        if (merchant) await queueReceipts(order, merchant, p.holder);
        repaired++;
      }
      await markApplied(String(c._id));
    }
    return repaired;
  }

  return { open, pay, queueReceipts, repairInterrupted };
}
export type CheckoutService = ReturnType<typeof createCheckoutService>;
