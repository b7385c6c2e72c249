// Paying an order with a card: card and e-mail checks, the card-testing rate limits, the acquirer,
// and settling its answer (declined, 3-D Secure challenge, or approved: the claim-refereed close;
// a payment that lost the race has its authorisation voided).
import { nanoid } from 'nanoid';
import { z } from 'zod';
import { type AuthorizeResult, type CardToSave, type DeclineCode } from '../../domain/acquirer.ts';
import { checkCard, type CheckedCard } from '../../domain/card.ts';
import { newReceiptNumber } from '../../domain/ids.ts';
import { newSavedCardId, type SavedCardUse } from '../../domain/saved-card.ts';
import { type SavedCardDoc } from '../../db/customers.repository.ts';
import { type MerchantDoc } from '../../db/merchants.repository.ts';
import { type OrderDoc } from '../../db/orders.repository.ts';
import { type PaidClose, type StoredCard } from '../order-transitions.ts';
import { amountDueMinor, hasPlan, partCount, partDueAt, payableAt, payingSeq } from '../../domain/order-plan.ts';
import { PAYABLE_STATUSES } from '../../domain/order-status.ts';
import { acquirerFor } from '../acquirer/directory.ts';
import { acquirerReturnUrl } from '../acquirer/return-url.ts';
import { type CheckoutCore } from './core.ts';
import { type CheckoutForm, type CheckoutServiceDeps, type OpenOrder, type PayResult } from './types.ts';

const Email = z.email();

/** The only card fields that ever reach the database. */
function storedCard(card: CheckedCard): StoredCard {
  const kept: StoredCard = { brand: card.brand, bin: card.bin, last4: card.last4, expMonth: card.expMonth, expYear: card.expYear };
  if (card.country) kept.country = card.country;
  return kept;
}

/** The card an approval saved (the customer consented and the acquirer answered a token), as the customer keeps it. */
function savedCardOf(result: { savedCard?: { token: string } }, ctx: { kept: StoredCard; acquirer: string; saveFor?: CardToSave }, at: Date) {
  if (!result.savedCard || !ctx.saveFor) return undefined;
  const { brand, last4, expMonth, expYear } = ctx.kept;
  const card: SavedCardDoc = { id: newSavedCardId(), token: result.savedCard.token, brand, last4, expMonth, expYear, acquirer: ctx.acquirer, savedAt: at };
  return { customerCode: ctx.saveFor.customerCode, card };
}

export function createCheckoutPayments(deps: CheckoutServiceDeps, core: CheckoutCore) {
  const { now, serialised, limits, challengeTtlMs, transitions, fault } = core;
  const { orders, challenges, closes } = deps.repos;

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

  /** Takes a payment now: pending (or, paid in parts, its open part) and not expired. */
  const isPayable = (order: OrderDoc): boolean => payableAt(order, now());

  /** Appends an attempt; one with a `key` is appended once, however often this runs. */
  async function recordAttempt(orderId: string, attempt: Record<string, unknown>): Promise<void> {
    await orders.addAttempt(orderId, attempt);
  }

  /** One document per declined attempt (its key: recorded once). */
  async function recordFailure(key: string, orderId: string, clientIp: string, code: DeclineCode, at: Date): Promise<void> {
    await deps.repos.limits.recordPaymentFailure(key, { orderId, clientIp, code, at });
  }

  /** Seconds until the window holds fewer than `max` failures matching `filter` (0: not limited). */
  async function limitedFor(filter: { orderId: string } | { clientIp: string }, max: number, at: Date): Promise<number> {
    const since = new Date(at.getTime() - limits.windowMs);
    // The window frees up when the failure that makes the count reach `max` leaves it.
    const reached = await deps.repos.limits.paymentFailureLimitedSince(filter, since, max);
    if (reached === undefined) return 0;
    const leavesAt = (reached?.getTime() ?? at.getTime()) + limits.windowMs;
    return Math.max(1, Math.ceil((leavesAt - at.getTime()) / 1000));
  }

  async function rateLimit(orderId: string, clientIp: string): Promise<PayResult | null> {
    const at = now();
    const perOrder = await limitedFor({ orderId }, limits.failuresPerOrder, at);
    if (perOrder) return { kind: 'rate-limited', scope: 'order', retryAfterSec: perOrder };
    const perClient = await limitedFor({ clientIp }, limits.failuresPerClient, at);
    if (perClient) return { kind: 'rate-limited', scope: 'client', retryAfterSec: perClient };
    return null;
  }

  /**
   * Checks the card, asks the acquirer, and records the outcome on the order. `moto`: keyed in by
   * an operator in the back office (mail/telephone order); marked on the attempt and the payment.
   */
  async function pay(target: OpenOrder, form: CheckoutForm, clientIp: string, opts: { moto?: boolean; saveCard?: boolean } = {}): Promise<PayResult> {
    const valid = validate(target.order, form);
    if (!valid.ok) return { kind: 'invalid', problems: valid.problems };
    return serialised(target.order._id, async () => {
      // The snapshot may be stale once our turn comes (a double-submitted form): check again, so
      // the second submission sees the payment instead of authorising the card a second time.
      const order = await orders.byId(target.order._id);
      if (!order || !isPayable(order)) return { kind: 'closed', order };
      // The page's merchant may be up to MERCHANT_CACHE_MS old: a suspension must stop payments now.
      if (await deps.repos.merchants.isSuspended(order.merchantId)) return { kind: 'suspended' };
      const limited = await rateLimit(order._id, clientIp);
      if (limited) return limited;
      // "Save my card" ticked (issue 12 part 3).
      const save = opts.saveCard ? await consentToSave(order, target.merchant, valid.email) : undefined;
      return authorizeAndRecord(order, target.merchant, valid.card, valid.email, clientIp, opts.moto === true, save);
    });
  }

  async function authorizeAndRecord(
    order: OrderDoc,
    merchant: MerchantDoc,
    card: CheckedCard,
    email: string | undefined,
    clientIp: string,
    moto = false,
    save?: CardToSave,
  ): Promise<PayResult> {
    const acquirer = await acquirerFor(deps, merchant);
    const saveCard = save && acquirer.savedCards ? save : undefined;
    const result = await acquirer.authorize({
      orderId: order._id,
      // An order paid in parts: the part open now (src/domain/order-plan.ts).
      amountMinor: amountDueMinor(order)!,
      currency: order.currency,
      card: { number: card.number, cvc: card.cvc, expMonth: card.expMonth, expYear: card.expYear, holder: card.holder },
      // For an acquirer with its own 3-D Secure page (Stripe): the buyer comes back here.
      returnUrl: acquirerReturnUrl(deps.linkFor(order)),
      ...(saveCard ? { saveCard } : {}),
    });
    // A crash here leaves an authorisation nobody captures; it lapses at the acquirer.
    if (result.outcome === 'approved') await fault('pay:authorized');
    return settle(order, merchant, result, { kept: storedCard(card), holder: card.holder, email, clientIp, acquirer: acquirer.name, ...(moto ? { moto } : {}), ...(saveCard ? { saveFor: saveCard } : {}) });
  }

  /**
   * The customer ticked "Save my card": honoured when the merchant offers saved cards and the
   * order has an address to find the customer by; the customer (code) is created on first use.
   */
  async function consentToSave(order: OrderDoc, merchant: MerchantDoc, typedEmail: string | undefined): Promise<CardToSave | undefined> {
    const email = order.customer?.email ?? typedEmail;
    if (!merchant.savedCardsEnabled || !email) return undefined;
    return { customerCode: await deps.repos.customers.ensure(merchant._id, email, now()), email: email.toLowerCase() };
  }

  /** Records what the acquirer answered (first request or after a challenge) and acts on it. */
  async function settle(
    order: OrderDoc,
    merchant: MerchantDoc,
    result: AuthorizeResult,
    ctx: {
      kept: StoredCard;
      holder: string;
      email: string | undefined;
      clientIp: string;
      challengeId?: string;
      moto?: boolean;
      /** The acquirer that answered `result` (kept on the payment for its refunds). */
      acquirer: string;
      /** Makes a declined attempt's records idempotent (the 3-D Secure repair settles again). */
      attemptKey?: string;
      /** The customer consented to save the card (issue 12 part 3): kept when the acquirer answers a token. */
      saveFor?: CardToSave;
      /** Paid with a saved card: which one, and who started the charge. */
      paidWith?: SavedCardUse;
    },
  ): Promise<PayResult> {
    const { kept, clientIp } = ctx;
    const at = now();
    const base = {
      at,
      card: kept,
      clientIp,
      ...(ctx.challengeId ? { challengeId: ctx.challengeId } : {}),
      ...(ctx.moto ? { moto: true } : {}),
      ...(ctx.paidWith ? { initiator: ctx.paidWith.initiator } : {}),
    };

    if (result.outcome === 'declined' || result.outcome === 'error') {
      const key = ctx.attemptKey ?? `att_${nanoid()}`;
      await recordAttempt(order._id, { ...base, key, outcome: result.outcome, declineCode: result.code, message: result.message });
      await deps.events?.paymentFailed(order, merchant, { outcome: result.outcome, code: result.code, at, key });
      // Only declines count towards the card-testing limits: an acquirer outage is not the customer's doing.
      if (result.outcome === 'declined') await recordFailure(key, order._id, clientIp, result.code, at);
      return { kind: 'refused', outcome: result.outcome, code: result.code };
    }
    if (result.outcome === 'challenge') {
      if (ctx.challengeId) {
        // An acquirer asking for a second challenge after the first one: treat as a processing error.
        await recordAttempt(order._id, { ...base, outcome: 'error', declineCode: 'ACQUIRER_UNAVAILABLE', message: result.message });
        return { kind: 'refused', outcome: 'error', code: 'ACQUIRER_UNAVAILABLE' };
      }
      await challenges.insert({
        _id: result.challengeId,
        orderId: order._id,
        publicId: order.publicId,
        clientIp,
        card: kept,
        // A saved card's payment knows no holder name (the challenge requires one).
        holder: ctx.holder || (ctx.paidWith ? 'saved card' : ctx.holder),
        acquirer: ctx.acquirer,
        ...(result.redirectUrl ? { redirectUrl: result.redirectUrl } : {}),
        ...(ctx.email ? { customerEmail: ctx.email } : {}),
        ...(ctx.saveFor ? { saveFor: { ...ctx.saveFor } } : {}),
        ...(ctx.paidWith ? { paidWith: { customerCode: ctx.paidWith.customerCode, cardId: ctx.paidWith.cardId } } : {}),
        status: 'pending',
        createdAt: at,
        expiresAt: new Date(at.getTime() + challengeTtlMs),
      });
      await recordAttempt(order._id, { ...base, challengeId: result.challengeId, outcome: 'challenge', message: result.message });
      return { kind: 'challenge', challengeId: result.challengeId };
    }

    const flow = ctx.challengeId ? '3ds' : 'pay';
    const saved = savedCardOf(result, ctx, at);
    // The part this payment pays (an order paid in parts); its claim is that part's close claim.
    const seq = payingSeq(order) ?? 1;
    const part = hasPlan(order) ? { seq, of: partCount(order), ...nextDue(order, merchant, seq) } : undefined;
    let close: PaidClose = {
      payment: {
        receiptNumber: newReceiptNumber(),
        authCode: result.authCode,
        paidAt: at,
        card: kept,
        acquirer: ctx.acquirer,
        ...(ctx.moto ? { moto: true } : {}),
        ...(saved ? { savedCardId: saved.card.id } : {}),
        ...(ctx.paidWith ? { savedCardId: ctx.paidWith.cardId, initiator: ctx.paidWith.initiator } : {}),
      },
      ...(ctx.email ? { customerEmail: ctx.email } : {}),
      attempt: { ...base, outcome: 'approved', authCode: result.authCode },
      holder: ctx.holder,
      ...(saved ? { customerCode: saved.customerCode, savedCard: saved } : {}),
      ...(ctx.paidWith ? { customerCode: ctx.paidWith.customerCode } : {}),
      ...(part ? { part } : {}),
    };
    // One terminal transition per order (per part), decided once (src/db/order-closes.repository.ts).
    // The decision carries the update, so a crash after it is finished by the repair instead of
    // leaving a charged card on an unpaid order (src/services/order-transitions.ts).
    let won = await closes.decide(order._id, seq, 'paid', { ...close }, at);
    if (!won) {
      // The repair settling a 3-D Secure payment again finds its own decision from before the
      // crash: the same authorisation, so the same payment.
      const held = await closes.decision<PaidClose>(order._id, seq);
      const mine = held?.way === 'paid' ? held.payload : undefined;
      if (mine?.payment?.authCode === result.authCode) [close, won] = [mine, true];
    }
    if (won) {
      await fault(`${flow}:claimed`);
      const paid = await transitions.finishPaid(order._id, close, flow);
      if (paid) return { kind: 'paid', order: paid };
    }
    const loser = await acquirerFor(deps, merchant, ctx.acquirer);
    await loser.void(result.authCode);
    // A card saved by the payment that lost is not kept either (the customer pays or saves again).
    if (result.savedCard) await loser.savedCards?.remove(result.savedCard.token);
    await recordAfterClose(order._id, seq, { ...base, outcome: 'lost-race', authCode: result.authCode, message: 'authorisation voided' });
    return { kind: 'lost-race', order: await orders.byId(order._id) };
  }

  /**
   * A payment that lost the close records its attempt only once the winner has applied the
   * close: on FerretDB an update is a read-modify-write of the whole order, so a $push racing the
   * winner's update could put the order back to pending. Should a third writer still have done
   * that, re-applying the winner's payment from its decision (it carries it) heals the order.
   */
  async function recordAfterClose(orderId: string, seq: number, attempt: Record<string, unknown>): Promise<void> {
    const deadline = Date.now() + 3000;
    let held = await closes.decision<PaidClose>(orderId, seq);
    while (held && !held.applied && Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, 20));
      held = await closes.decision<PaidClose>(orderId, seq);
    }
    await recordAttempt(orderId, attempt);
    const winner = held?.way === 'paid' ? held.payload : undefined;
    if (winner?.payment) {
      const order = await orders.stateOf(orderId);
      if (order && (PAYABLE_STATUSES as readonly string[]).includes(order.status)) await transitions.applyPaid(orderId, winner);
    }
  }

  /** When the part after `seq` goes out by itself: its due date in the merchant's zone (absent: the merchant asks). */
  function nextDue(order: OrderDoc, merchant: MerchantDoc, seq: number): { nextDueAt?: Date } {
    const next = order.plan?.parts?.[seq];
    const at = next?.dueDate ? partDueAt(next.dueDate, merchant.timezone) : undefined;
    return at ? { nextDueAt: at } : {};
  }

  return { pay, settle, rateLimit, isPayable };
}
export type CheckoutPayments = ReturnType<typeof createCheckoutPayments>;
