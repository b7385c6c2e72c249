// Hosted checkout use cases: resolve a pay-link to the state of its order, and pay an order with a
// card. The pending → paid transition is one conditional update, so of two racing payments exactly
// one wins; the loser's authorisation is voided. Only brand, BIN, last four and expiry are stored.
//
// FerretDB (dev and tests) applies updates as read-modify-write of the whole document, so
// concurrent updates of one order can overwrite each other and the conditional update alone is not
// a referee there. Payments for one order are therefore also serialised within the process; on
// MongoDB (production, several instances) the conditional update is atomic by itself.
//
// 3-D Secure: a `challenge` answer stores a pending challenge (stored card fields only, with an
// expiry) and sends the customer to the ACS page; completing it is refereed by a claim, so a
// challenge finishes once, and an authentication that passes closes the order through the same
// claim-refereed path as a direct approval. Card testing: every decline is one inserted
// `payment_failures` document; before asking the acquirer, failures in the last hour are counted
// per order and per client address (inserts + countDocuments: FerretDB loses concurrent $inc).
import { nanoid } from 'nanoid';
import { z } from 'zod';
import { type Acquirer, type AuthorizeResult, type DeclineCode } from '../domain/acquirer.ts';
import { checkCard, type CheckedCard } from '../domain/card.ts';
import { type FieldProblem } from '../domain/errors.ts';
import { newReceiptNumber, orderIdFor } from '../domain/ids.ts';
import { verifyLink, type LinkKey, type LinkParams } from '../domain/pay-link.ts';
import { updateByIdIf } from '../db/by-id.ts';
import { Claim, claimOnce, markApplied, unappliedClaims } from '../db/claims.ts';
import { Challenge, type ChallengeDoc } from '../db/models/challenge.model.ts';
import { Merchant, type MerchantDoc } from '../db/models/merchant.model.ts';
import { Order, type OrderDoc } from '../db/models/order.model.ts';
import { PaymentFailure } from '../db/models/rate-limit.model.ts';
import { enqueueMail } from '../mail/outbox.ts';
import { type EventsService } from './events.service.ts';
import { type ReceiptProofs } from './receipt-proof.service.ts';

export interface CheckoutServiceDeps {
  acquirer: Acquirer;
  /** Verifying keys for pay-links (all of them: old key ids keep verifying after a rotation). */
  linkKeys: readonly LinkKey[];
  mailDomain: string;
  /** The pay-link of an order (it shows the receipt once paid); goes into the receipt mails. */
  linkFor: (order: OrderDoc) => string;
  /** Card-testing defence; defaults: 5 failures per order and per client address per hour. */
  limits?: Partial<RateLimits>;
  /** How long a 3-D Secure challenge stays open (default 10 minutes). */
  challengeTtlMs?: number;
  now?: () => Date;
  /** Webhook events (payment.succeeded / payment.failed); none when absent. */
  events?: EventsService;
  /** Signs the payment proof carried by the receipts and the receipt page; none when absent. */
  proofs?: ReceiptProofs;
}

export interface RateLimits {
  /** Declined attempts allowed per order within the window; the next attempt gets 429. */
  failuresPerOrder: number;
  /** Declined attempts allowed per client address (all orders) within the window. */
  failuresPerClient: number;
  windowMs: number;
}

export const DEFAULT_RATE_LIMITS: RateLimits = { failuresPerOrder: 5, failuresPerClient: 5, windowMs: 3_600_000 };
const DEFAULT_CHALLENGE_TTL_MS = 10 * 60_000;

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
  /** The issuer wants 3-D Secure: send the customer to the challenge page. */
  | { kind: 'challenge'; challengeId: string }
  /** Too many declined attempts for this order or from this address; nothing was asked. */
  | { kind: 'rate-limited'; scope: 'order' | 'client'; retryAfterSec: number }
  /** The 3-D Secure challenge is unknown for this order, expired, or already finished. */
  | { kind: 'challenge-gone'; reason: 'unknown' | 'expired' | 'used' }
  /** Authorised, but the order was no longer pending (paid by a racing request, or expired). */
  | { kind: 'lost-race'; order: OrderDoc | null }
  /** By the time this attempt's turn came, the order was no longer payable; nothing was authorised. */
  | { kind: 'closed'; order: OrderDoc | null };

type StoredCard = Pick<CheckedCard, 'brand' | 'bin' | 'last4' | 'expMonth' | 'expYear' | 'country'>;

export type ChallengeState =
  | { kind: 'pending'; challenge: ChallengeDoc }
  | { kind: 'unknown' }
  | { kind: 'expired' }
  | { kind: 'used' };

const Email = z.email();

/** The only card fields that ever reach the database. */
function storedCard(card: CheckedCard): StoredCard {
  const kept: StoredCard = { brand: card.brand, bin: card.bin, last4: card.last4, expMonth: card.expMonth, expYear: card.expYear };
  if (card.country) kept.country = card.country;
  return kept;
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
  payment: { receiptNumber: string; authCode: string; paidAt: Date; card: StoredCard; moto?: boolean };
  customerEmail?: string;
  attempt: Record<string, unknown>;
  holder: string;
}

/** The claim that closes an order (paid now; expired and cancelled use it too). */
export const closeClaimKey = (orderId: string): string => `order:${orderId}:close`;
/** The claim that finishes a 3-D Secure challenge (once, whatever the customer clicks twice). */
const challengeClaimKey = (challengeId: string): string => `3ds:${challengeId}`;

const MERCHANT_CACHE_MS = 5_000;
const MERCHANT_CACHE_MAX = 1_000;

export function createCheckoutService(deps: CheckoutServiceDeps) {
  const now = deps.now ?? (() => new Date());
  const serialised = createKeyedQueue();
  const limits: RateLimits = { ...DEFAULT_RATE_LIMITS, ...deps.limits };
  const challengeTtlMs = deps.challengeTtlMs ?? DEFAULT_CHALLENGE_TTL_MS;

  // Merchants read by the checkout, kept for a few seconds: every page view needs its merchant,
  // and a second database round trip per view halved the checkout's throughput (bench P2). A
  // settings change reaches the checkout pages within MERCHANT_CACHE_MS; the order itself is
  // always read fresh.
  const merchantCache = new Map<string, { until: number; merchant: MerchantDoc | null }>();
  async function merchantOf(id: string): Promise<MerchantDoc | null> {
    const at = Date.now();
    const hit = merchantCache.get(id);
    if (hit && hit.until > at) return hit.merchant;
    const merchant = await Merchant.findById(id).lean<MerchantDoc>();
    if (merchantCache.size >= MERCHANT_CACHE_MAX) merchantCache.delete(merchantCache.keys().next().value!);
    merchantCache.set(id, { until: at + MERCHANT_CACHE_MS, merchant });
    return merchant;
  }

  /** Signature first (no database work for a forged link), then the order and its merchant. */
  async function open(publicId: string, query: Partial<Record<keyof LinkParams, unknown>>): Promise<LinkState> {
    const link = verifyLink(deps.linkKeys, publicId, query);
    if (!link.ok) return { kind: 'not-found', reason: link.reason };
    // By primary key (orders are `ord_<publicId>`, src/services/order.service.ts); orders stored
    // before ids were derived that way are found by their publicId (a collection scan on FerretDB).
    const byId = await Order.findById(orderIdFor(publicId)).lean<OrderDoc>();
    const order = byId?.publicId === publicId ? byId : await Order.findOne({ publicId }).lean<OrderDoc>();
    if (!order) return { kind: 'not-found', reason: 'unknown-order' };
    if (order.amountMinor !== link.claims.amountMinor || order.currency !== link.claims.currency) {
      return { kind: 'not-found', reason: 'claims-mismatch' };
    }
    const merchant = await merchantOf(order.merchantId);
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

  async function recordFailure(orderId: string, clientIp: string, code: DeclineCode, at: Date): Promise<void> {
    await PaymentFailure.create({ _id: nanoid(), orderId, clientIp, code, at });
  }

  /** Seconds until the window holds fewer than `max` failures matching `filter` (0: not limited). */
  async function limitedFor(filter: Record<string, unknown>, max: number, at: Date): Promise<number> {
    const since = new Date(at.getTime() - limits.windowMs);
    const q = { ...filter, at: { $gt: since } };
    const count = await PaymentFailure.countDocuments(q);
    if (count < max) return 0;
    // The window frees up when the failure that makes the count reach `max` leaves it.
    const oldest = await PaymentFailure.find(q).sort({ at: 1 }).skip(count - max).limit(1).lean();
    const leavesAt = (oldest[0]?.at.getTime() ?? at.getTime()) + limits.windowMs;
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

  async function queueReceipts(order: OrderDoc, merchant: MerchantDoc, holder: string): Promise<void> {
    const payment = order.payment!;
    const customerEmail = order.customer?.email ?? '';
    const proof = deps.proofs?.tokenFor(order, merchant);
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
      ...(proof ? { proof, verifyUrl: deps.proofs!.verifyUrl(proof) } : {}),
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
    // Every path that pays an order (direct, 3-D Secure, crash repair) ends here; once per order.
    await deps.events?.paymentSucceeded(order, merchant, { proof });
  }

  /**
   * Checks the card, asks the acquirer, and records the outcome on the order. `moto`: keyed in by
   * an operator in the back office (mail/telephone order); marked on the attempt and the payment.
   */
  async function pay(target: OpenOrder, form: CheckoutForm, clientIp: string, opts: { moto?: boolean } = {}): Promise<PayResult> {
    const valid = validate(target.order, form);
    if (!valid.ok) return { kind: 'invalid', problems: valid.problems };
    return serialised(target.order._id, async () => {
      // The snapshot may be stale once our turn comes (a double-submitted form): check again, so
      // the second submission sees the payment instead of authorising the card a second time.
      const order = await Order.findById(target.order._id).lean<OrderDoc>();
      if (!order || order.status !== 'pending' || order.expiresAt <= now()) return { kind: 'closed', order };
      const limited = await rateLimit(order._id, clientIp);
      if (limited) return limited;
      return authorizeAndRecord(order, target.merchant, valid.card, valid.email, clientIp, opts.moto === true);
    });
  }

  /** The challenge `challengeId` of this order, for the challenge page. */
  async function findChallenge(target: OpenOrder, challengeId: string): Promise<ChallengeState> {
    const challenge = await Challenge.findOne({ _id: challengeId, orderId: target.order._id }).lean<ChallengeDoc>();
    if (!challenge) return { kind: 'unknown' };
    if (challenge.status !== 'pending') return { kind: 'used' };
    if (challenge.expiresAt <= now()) return { kind: 'expired' };
    return { kind: 'pending', challenge };
  }

  /**
   * The customer passed (`authenticated`) or failed the 3-D Secure challenge: the acquirer then
   * approves or declines the authorisation it held back, and the outcome is settled like any other.
   */
  async function completeChallenge(target: OpenOrder, challengeId: string, authenticated: boolean, clientIp: string): Promise<PayResult> {
    return serialised(target.order._id, async () => {
      const state = await findChallenge(target, challengeId);
      if (state.kind !== 'pending') return { kind: 'challenge-gone', reason: state.kind };
      const { challenge } = state;
      const order = await Order.findById(target.order._id).lean<OrderDoc>();
      if (!order || order.status !== 'pending' || order.expiresAt <= now()) return { kind: 'closed', order };
      const claim = challengeClaimKey(challengeId);
      if (!(await claimOnce(claim, { kind: '3ds', subject: order._id }, now()))) return { kind: 'challenge-gone', reason: 'used' };
      // Nothing to repair for this claim: an unfinished challenge simply expires.
      await markApplied(claim);
      const result = await deps.acquirer.completeChallenge({
        challengeId,
        orderId: order._id,
        amountMinor: order.amountMinor,
        currency: order.currency,
        authenticated,
      });
      await Challenge.updateOne({ _id: challengeId }, { $set: { status: result.outcome === 'approved' ? 'passed' : 'failed' } });
      const card = { ...challenge.card } as StoredCard;
      return settle(order, target.merchant, result, {
        kept: card,
        holder: challenge.holder,
        email: challenge.customerEmail ?? undefined,
        clientIp,
        challengeId,
      });
    });
  }

  /** Deletes rate-limit records older than the window and long-expired challenges (no TTL index). */
  async function sweep(): Promise<{ failures: number; challenges: number }> {
    const at = now().getTime();
    const failures = await PaymentFailure.deleteMany({ at: { $lt: new Date(at - limits.windowMs) } });
    const challenges = await Challenge.deleteMany({ expiresAt: { $lt: new Date(at - 86_400_000) } });
    return { failures: failures.deletedCount, challenges: challenges.deletedCount };
  }

  async function authorizeAndRecord(
    order: OrderDoc,
    merchant: MerchantDoc,
    card: CheckedCard,
    email: string | undefined,
    clientIp: string,
    moto = false,
  ): Promise<PayResult> {
    const result = await deps.acquirer.authorize({
      orderId: order._id,
      amountMinor: order.amountMinor,
      currency: order.currency,
      card: { number: card.number, cvc: card.cvc, expMonth: card.expMonth, expYear: card.expYear, holder: card.holder },
    });
    return settle(order, merchant, result, { kept: storedCard(card), holder: card.holder, email, clientIp, ...(moto ? { moto } : {}) });
  }

  /** Records what the acquirer answered (first request or after a challenge) and acts on it. */
  async function settle(
    order: OrderDoc,
    merchant: MerchantDoc,
    result: AuthorizeResult,
    ctx: { kept: StoredCard; holder: string; email: string | undefined; clientIp: string; challengeId?: string; moto?: boolean },
  ): Promise<PayResult> {
    const { kept, clientIp } = ctx;
    const at = now();
    const base = { at, card: kept, clientIp, ...(ctx.challengeId ? { challengeId: ctx.challengeId } : {}), ...(ctx.moto ? { moto: true } : {}) };

    if (result.outcome === 'declined' || result.outcome === 'error') {
      await recordAttempt(order._id, { ...base, outcome: result.outcome, declineCode: result.code, message: result.message });
      await deps.events?.paymentFailed(order, merchant, { outcome: result.outcome, code: result.code, at });
      // Only declines count towards the card-testing limits: an acquirer outage is not the customer's doing.
      if (result.outcome === 'declined') await recordFailure(order._id, clientIp, result.code, at);
      return { kind: 'refused', outcome: result.outcome, code: result.code };
    }
    if (result.outcome === 'challenge') {
      if (ctx.challengeId) {
        // An acquirer asking for a second challenge after the first one: treat as a processing error.
        await recordAttempt(order._id, { ...base, outcome: 'error', declineCode: 'ACQUIRER_UNAVAILABLE', message: result.message });
        return { kind: 'refused', outcome: 'error', code: 'ACQUIRER_UNAVAILABLE' };
      }
      await Challenge.create({
        _id: result.challengeId,
        orderId: order._id,
        publicId: order.publicId,
        clientIp,
        card: kept,
        holder: ctx.holder,
        ...(ctx.email ? { customerEmail: ctx.email } : {}),
        status: 'pending',
        createdAt: at,
        expiresAt: new Date(at.getTime() + challengeTtlMs),
      });
      await recordAttempt(order._id, { ...base, challengeId: result.challengeId, outcome: 'challenge', message: result.message });
      return { kind: 'challenge', challengeId: result.challengeId };
    }

    const close: PaidClose = {
      payment: { receiptNumber: newReceiptNumber(), authCode: result.authCode, paidAt: at, card: kept, ...(ctx.moto ? { moto: true } : {}) },
      ...(ctx.email ? { customerEmail: ctx.email } : {}),
      attempt: { ...base, outcome: 'approved', authCode: result.authCode },
      holder: ctx.holder,
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
      await recordAfterClose(order._id, key, { ...base, outcome: 'lost-race', authCode: result.authCode, message: 'authorisation voided' });
      return { kind: 'lost-race', order: await Order.findById(order._id).lean<OrderDoc>() };
    }
    await queueReceipts(paid, merchant, ctx.holder);
    return { kind: 'paid', order: paid };
  }

  /**
   * A payment that lost the close claim records its attempt only once the winner has applied the
   * close: on FerretDB an update is a read-modify-write of the whole order, so a $push racing the
   * winner's update could put the order back to pending. Should a third writer still have done
   * that, re-applying the winner's payment from its claim (it carries it) heals the order.
   */
  async function recordAfterClose(orderId: string, key: string, attempt: Record<string, unknown>): Promise<void> {
    const deadline = Date.now() + 3000;
    let claim = await Claim.findById(key).lean();
    while (claim && !claim.applied && Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, 20));
      claim = await Claim.findById(key).lean();
    }
    await recordAttempt(orderId, attempt);
    const winner = claim?.kind === 'order-close' ? (claim.payload as PaidClose | undefined) : undefined;
    if (winner?.payment) {
      const order = await Order.findById(orderId, { status: 1 }).lean<OrderDoc>();
      if (order?.status === 'pending') await applyPaid(orderId, winner);
    }
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
    // Read and written by _id alone (src/db/by-id.ts): the close claim referees, not the filter.
    return updateByIdIf<OrderDoc>(Order, orderId, (o) => o.status === 'pending', { $set: set, $push: { attempts: p.attempt } });
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

  /** The signed payment proof of a paid order, for the receipt page. */
  const proofFor = (order: OrderDoc, merchant: MerchantDoc) => {
    const token = deps.proofs?.tokenFor(order, merchant);
    return token ? { token, verifyUrl: deps.proofs!.verifyUrl(token) } : undefined;
  };

  return { open, pay, findChallenge, completeChallenge, sweep, queueReceipts, repairInterrupted, proofFor };
}
export type CheckoutService = ReturnType<typeof createCheckoutService>;
