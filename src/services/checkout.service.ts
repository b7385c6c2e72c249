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
import { newReceiptNumber } from '../domain/ids.ts';
import { verifyLink, type LinkKey, type LinkParams } from '../domain/pay-link.ts';
import { type ChallengeDoc } from '../db/challenges.repository.ts';
import { type MerchantDoc } from '../db/merchants.repository.ts';
import { type OrderDoc } from '../db/orders.repository.ts';
import { type EventsService } from './events.service.ts';
import {
  closeClaimKey,
  CLOSE_KINDS,
  createOrderTransitions,
  type FaultHook,
  type PaidClose,
  type StoredCard,
} from './order-transitions.ts';
import { type ReceiptProofs } from './receipt-proof.service.ts';
import { type Repositories } from '../db/repositories.ts';

export { closeClaimKey };

export interface CheckoutServiceDeps {
  /** The storage seam (src/db/repositories.ts). */
  repos: Repositories;
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
  /** Test hook at every step boundary of a payment (src/services/order-transitions.ts). */
  faults?: FaultHook;
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
  /** `suspended`: a payable order whose merchant the operator suspended: no card form. */
  | ({ kind: 'payable' | 'paid' | 'cancelled' | 'expired' | 'suspended' } & OpenOrder);

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
  | { kind: 'closed'; order: OrderDoc | null }
  /** The merchant is suspended (read fresh, not from the page's cached merchant); nothing was authorised. */
  | { kind: 'suspended' };

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

/** The claim that finishes a 3-D Secure challenge (once, whatever the customer clicks twice). */
const challengeClaimKey = (challengeId: string): string => `3ds:${challengeId}`;

/** What the customer did on the challenge page (kept on the challenge's claim for the repair). */
interface ChallengeChoice {
  challengeId: string;
  authenticated: boolean;
  clientIp: string;
}

const MERCHANT_CACHE_MS = 5_000;
const MERCHANT_CACHE_MAX = 1_000;

export function createCheckoutService(deps: CheckoutServiceDeps) {
  const now = deps.now ?? (() => new Date());
  const serialised = createKeyedQueue();
  const limits: RateLimits = { ...DEFAULT_RATE_LIMITS, ...deps.limits };
  const challengeTtlMs = deps.challengeTtlMs ?? DEFAULT_CHALLENGE_TTL_MS;
  const { orders, challenges, claims } = deps.repos;
  const transitions = createOrderTransitions({ repos: deps.repos,
    events: deps.events,
    mailDomain: deps.mailDomain,
    linkFor: deps.linkFor,
    proofs: deps.proofs,
    faults: deps.faults,
    now,
  });
  const fault = transitions.fault;

  // Merchants read by the checkout, kept for a few seconds: every page view needs its merchant,
  // and a second database round trip per view halved the checkout's throughput (bench P2). A
  // settings change reaches the checkout pages within MERCHANT_CACHE_MS; the order itself is
  // always read fresh.
  const merchantCache = new Map<string, { until: number; merchant: MerchantDoc | null }>();
  async function merchantOf(id: string): Promise<MerchantDoc | null> {
    const at = Date.now();
    const hit = merchantCache.get(id);
    if (hit && hit.until > at) return hit.merchant;
    const merchant = await deps.repos.merchants.findById(id);
    if (merchantCache.size >= MERCHANT_CACHE_MAX) merchantCache.delete(merchantCache.keys().next().value!);
    merchantCache.set(id, { until: at + MERCHANT_CACHE_MS, merchant });
    return merchant;
  }

  /** Signature first (no database work for a forged link), then the order and its merchant. */
  async function open(publicId: string, query: Partial<Record<keyof LinkParams, unknown>>): Promise<LinkState> {
    const link = verifyLink(deps.linkKeys, publicId, query);
    if (!link.ok) return { kind: 'not-found', reason: link.reason };
    const order = await orders.forCheckout(publicId);
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
    if (merchant.status === 'suspended') return { kind: 'suspended', order, merchant };
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
  async function pay(target: OpenOrder, form: CheckoutForm, clientIp: string, opts: { moto?: boolean } = {}): Promise<PayResult> {
    const valid = validate(target.order, form);
    if (!valid.ok) return { kind: 'invalid', problems: valid.problems };
    return serialised(target.order._id, async () => {
      // The snapshot may be stale once our turn comes (a double-submitted form): check again, so
      // the second submission sees the payment instead of authorising the card a second time.
      const order = await orders.byId(target.order._id);
      if (!order || order.status !== 'pending' || order.expiresAt <= now()) return { kind: 'closed', order };
      // The page's merchant may be up to MERCHANT_CACHE_MS old: a suspension must stop payments now.
      if (await deps.repos.merchants.isSuspended(order.merchantId)) return { kind: 'suspended' };
      const limited = await rateLimit(order._id, clientIp);
      if (limited) return limited;
      return authorizeAndRecord(order, target.merchant, valid.card, valid.email, clientIp, opts.moto === true);
    });
  }

  /** The challenge `challengeId` of this order, for the challenge page. */
  async function findChallenge(target: OpenOrder, challengeId: string): Promise<ChallengeState> {
    const challenge = await challenges.ofOrder(target.order._id, challengeId);
    if (!challenge) return { kind: 'unknown' };
    if (challenge.status !== 'pending') return { kind: 'used' };
    if (challenge.expiresAt <= now()) return { kind: 'expired' };
    return { kind: 'pending', challenge };
  }

  /**
   * The customer passed (`authenticated`) or failed the 3-D Secure challenge: the acquirer then
   * approves or declines the authorisation it held back, and the outcome is settled like any other.
   * The challenge's claim carries what the customer chose, and stays unapplied until the outcome is
   * settled (order paid and receipts queued, or the decline recorded): a crash in between is
   * finished by repairInterrupted(), asking the acquirer again (completion is idempotent per
   * challenge, so it answers the same authorisation).
   */
  async function completeChallenge(target: OpenOrder, challengeId: string, authenticated: boolean, clientIp: string): Promise<PayResult> {
    return serialised(target.order._id, async () => {
      const state = await findChallenge(target, challengeId);
      if (state.kind !== 'pending') return { kind: 'challenge-gone', reason: state.kind };
      const order = await orders.byId(target.order._id);
      if (!order || order.status !== 'pending' || order.expiresAt <= now()) return { kind: 'closed', order };
      if (await deps.repos.merchants.isSuspended(order.merchantId)) return { kind: 'suspended' };
      const payload: ChallengeChoice = { challengeId, authenticated, clientIp };
      if (!(await claims.once(challengeClaimKey(challengeId), { kind: '3ds', subject: order._id, payload: { ...payload } }, now()))) {
        return { kind: 'challenge-gone', reason: 'used' };
      }
      await fault('3ds:challenge-claimed');
      return finishChallenge(order, target.merchant, state.challenge, payload);
    });
  }

  /** Everything after the challenge's claim; idempotent, so the repair can run it again. */
  async function finishChallenge(order: OrderDoc, merchant: MerchantDoc, challenge: ChallengeDoc, choice: ChallengeChoice): Promise<PayResult> {
    const result = await deps.acquirer.completeChallenge({
      challengeId: challenge._id,
      orderId: order._id,
      amountMinor: order.amountMinor,
      currency: order.currency,
      authenticated: choice.authenticated,
    });
    await fault('3ds:completed');
    await challenges.finish(challenge._id, result.outcome === 'approved' ? 'passed' : 'failed');
    const outcome = await settle(order, merchant, result, {
      kept: { ...challenge.card } as StoredCard,
      holder: challenge.holder,
      email: challenge.customerEmail ?? undefined,
      clientIp: choice.clientIp,
      challengeId: challenge._id,
      // One attempt (and one payment.failed) per challenge, however often this runs.
      attemptKey: challengeClaimKey(challenge._id),
    });
    await fault('3ds:finished');
    await claims.markApplied(challengeClaimKey(challenge._id));
    return outcome;
  }

  /** Deletes rate-limit records older than the window and long-expired challenges (no TTL index). */
  async function sweep(): Promise<{ failures: number; challenges: number }> {
    const at = now().getTime();
    const failures = await deps.repos.limits.prunePaymentFailures(new Date(at - limits.windowMs));
    const expired = await challenges.deleteExpiredBefore(new Date(at - 86_400_000));
    return { failures, challenges: expired };
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
    // A crash here leaves an authorisation nobody captures; it lapses at the acquirer.
    if (result.outcome === 'approved') await fault('pay:authorized');
    return settle(order, merchant, result, { kept: storedCard(card), holder: card.holder, email, clientIp, ...(moto ? { moto } : {}) });
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
      /** Makes a declined attempt's records idempotent (the 3-D Secure repair settles again). */
      attemptKey?: string;
    },
  ): Promise<PayResult> {
    const { kept, clientIp } = ctx;
    const at = now();
    const base = { at, card: kept, clientIp, ...(ctx.challengeId ? { challengeId: ctx.challengeId } : {}), ...(ctx.moto ? { moto: true } : {}) };

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
        holder: ctx.holder,
        ...(ctx.email ? { customerEmail: ctx.email } : {}),
        status: 'pending',
        createdAt: at,
        expiresAt: new Date(at.getTime() + challengeTtlMs),
      });
      await recordAttempt(order._id, { ...base, challengeId: result.challengeId, outcome: 'challenge', message: result.message });
      return { kind: 'challenge', challengeId: result.challengeId };
    }

    const flow = ctx.challengeId ? '3ds' : 'pay';
    let close: PaidClose = {
      payment: { receiptNumber: newReceiptNumber(), authCode: result.authCode, paidAt: at, card: kept, ...(ctx.moto ? { moto: true } : {}) },
      ...(ctx.email ? { customerEmail: ctx.email } : {}),
      attempt: { ...base, outcome: 'approved', authCode: result.authCode },
      holder: ctx.holder,
    };
    // One terminal transition per order, refereed by a claim (FerretDB's conditional updates are
    // not atomic; see src/db/claims.ts). The claim carries the update, so a crash after it is
    // finished by the repair instead of leaving a charged card on an unpaid order
    // (src/services/order-transitions.ts).
    const key = closeClaimKey(order._id);
    let won = await claims.once(key, { kind: CLOSE_KINDS.paid, subject: order._id, payload: { ...close } }, at);
    if (!won) {
      // The repair settling a 3-D Secure payment again finds its own claim from before the crash:
      // the same authorisation, so the same payment.
      const held = await claims.get(key);
      const mine = held?.kind === CLOSE_KINDS.paid ? (held.payload as PaidClose | undefined) : undefined;
      if (mine?.payment?.authCode === result.authCode) [close, won] = [mine, true];
    }
    if (won) {
      await fault(`${flow}:claimed`);
      const paid = await transitions.finishPaid(order._id, close, flow);
      if (paid) return { kind: 'paid', order: paid };
    }
    await deps.acquirer.void(result.authCode);
    await recordAfterClose(order._id, key, { ...base, outcome: 'lost-race', authCode: result.authCode, message: 'authorisation voided' });
    return { kind: 'lost-race', order: await orders.byId(order._id) };
  }

  /**
   * A payment that lost the close claim records its attempt only once the winner has applied the
   * close: on FerretDB an update is a read-modify-write of the whole order, so a $push racing the
   * winner's update could put the order back to pending. Should a third writer still have done
   * that, re-applying the winner's payment from its claim (it carries it) heals the order.
   */
  async function recordAfterClose(orderId: string, key: string, attempt: Record<string, unknown>): Promise<void> {
    const deadline = Date.now() + 3000;
    let claim = await claims.get(key);
    while (claim && !claim.applied && Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, 20));
      claim = await claims.get(key);
    }
    await recordAttempt(orderId, attempt);
    const winner = claim?.kind === CLOSE_KINDS.paid ? (claim.payload as PaidClose | undefined) : undefined;
    if (winner?.payment) {
      const order = await orders.stateOf(orderId);
      if (order?.status === 'pending') await transitions.applyPaid(orderId, winner);
    }
  }

  /**
   * Finishes what a crash (or a failed write) interrupted: 3-D Secure completions not settled,
   * and every close transition (paid, expired, cancelled) whose side effects were not all queued.
   * Returns how many it finished. Runs at start-up and from a periodic sweep; idempotent.
   */
  async function repairInterrupted(olderThanMs = 60_000): Promise<number> {
    let repaired = 0;
    for (const c of await claims.unapplied('3ds', olderThanMs, now())) {
      const choice = c.payload as ChallengeChoice | undefined;
      const challenge = choice ? await challenges.byId(choice.challengeId) : null;
      const order = challenge ? await orders.byId(challenge.orderId) : null;
      const merchant = order ? await deps.repos.merchants.findById(order.merchantId) : null;
      if (!choice || !challenge || !order || !merchant) {
        await claims.markApplied(String(c._id));
        continue;
      }
      await serialised(order._id, () => finishChallenge(order, merchant, challenge, choice));
      repaired++;
    }
    const closed = await transitions.repair(olderThanMs);
    return repaired + closed.paid + closed.expired + closed.cancelled;
  }

  /**
   * The customer's first interaction with a payable order's checkout (its beacon, or the form
   * submitted): records `viewed` once (src/services/order-transitions.ts). Opening the link never
   * comes here: mail scanners open links. True when this call recorded it.
   */
  async function markViewed(target: OpenOrder): Promise<boolean> {
    if (target.order.viewedAt || target.order.status !== 'pending') return false;
    return Boolean(await transitions.recordViewed(target.order._id, now()));
  }

  /** The signed payment proof of a paid order, for the receipt page. */
  const proofFor = (order: OrderDoc, merchant: MerchantDoc) => {
    const token = deps.proofs?.tokenFor(order, merchant);
    return token ? { token, verifyUrl: deps.proofs!.verifyUrl(token, merchant.timezone) } : undefined;
  };

  return { open, pay, markViewed, findChallenge, completeChallenge, sweep, repairInterrupted, proofFor };
}
export type CheckoutService = ReturnType<typeof createCheckoutService>;
