// Stripe's webhooks to POST /webhooks/stripe/<merchant id>: verified with the library
// (Stripe.webhooks.constructEvent) and the merchant's webhook signing secret, then used to
// reconcile outcomes that arrive late. A PaymentIntent that succeeded or failed while its order is
// still pending with its 3-D Secure challenge open (the buyer closed the tab on Stripe's page, or
// has not come back yet) is finished through the checkout's challenge completion, the same path as
// the buyer's return: the challenge's claim makes the two idempotent (whichever comes first
// settles; the other finds the challenge used). A PaymentIntent that succeeded after its challenge
// was given up (expired before anyone completed it, failed, or its order paid by another card or
// cancelled meanwhile) is refunded at once: the buyer was told the payment did not go through, or
// would pay twice. Anything
// else is acknowledged and logged.
import Stripe from 'stripe';
import { AppError } from '../../domain/errors.ts';
import { type Repositories } from '../../db/repositories.ts';
import { type Logger } from '../../logger.ts';
import { type CheckoutService } from '../checkout.service.ts';
import { challengeClaimKey } from '../checkout/challenge.ts';
import { type AcquirerSettings } from './acquirer-settings.ts';
import { type AcquirerDirectory } from './directory.ts';

/** How long after its timestamp a signed event is accepted (the library's default: 5 minutes). */
const TOLERANCE_SEC = 300;

export type StripeWebhookOutcome = 'settled' | 'already-settled' | 'voided' | 'no-open-challenge' | 'not-ours' | 'ignored';

export interface StripeWebhookDeps {
  repos: Pick<Repositories, 'merchants' | 'orders' | 'challenges' | 'claims'>;
  settings: Pick<AcquirerSettings, 'stripeCredentials'>;
  checkout: Pick<CheckoutService, 'completeChallenge'>;
  /** To refund a payment whose challenge was given up (the acquirer named on the challenge). */
  acquirers: AcquirerDirectory;
  now?: () => Date;
  logger?: Pick<Logger, 'info' | 'warn'>;
}

const RECONCILED = new Set(['payment_intent.succeeded', 'payment_intent.payment_failed', 'payment_intent.canceled']);

export function createStripeWebhooks(deps: StripeWebhookDeps) {
  const { merchants, orders, challenges, claims } = deps.repos;
  const now = deps.now ?? (() => new Date());

  /** Verifies and applies one delivery; throws STRIPE_WEBHOOK_INVALID (400) when it is not Stripe's. */
  async function handle(merchantId: string, rawBody: string, signature: string | undefined): Promise<{ event: string; type: string; outcome: StripeWebhookOutcome }> {
    const merchant = await merchants.findById(merchantId);
    const secret = merchant ? deps.settings.stripeCredentials(merchant)?.webhookSecret : undefined;
    // Same answer for an unknown merchant and one without a secret: nothing to learn by probing.
    if (!merchant || !secret) throw new AppError('STRIPE_WEBHOOK_INVALID', 'no Stripe webhook secret for this endpoint', { httpStatus: 400 });
    let event: Stripe.Event;
    try {
      event = Stripe.webhooks.constructEvent(rawBody, signature ?? '', secret, TOLERANCE_SEC);
    } catch (e) {
      throw new AppError('STRIPE_WEBHOOK_INVALID', `signature refused: ${(e as Error).message.split('\n')[0]}`, { httpStatus: 400 });
    }
    const done = (outcome: StripeWebhookOutcome) => {
      deps.logger?.info({ merchantId, event: event.id, type: event.type, outcome }, 'stripe webhook');
      return { event: event.id, type: event.type, outcome };
    };
    if (!RECONCILED.has(event.type)) return done('ignored');
    const pi = event.data.object as Stripe.PaymentIntent;
    const orderId = pi.metadata?.['paymail_order'];
    const order = orderId ? await orders.byId(orderId) : null;
    if (!order || order.merchantId !== merchant._id) return done('not-ours');
    if (order.payment?.authCode === pi.id) return done('already-settled');
    const challenge = await challenges.ofOrder(order._id, pi.id);
    if (!challenge) {
      // A payment answered at once is settled (or refused) by the request that made it, which may
      // still be running: nothing to do here.
      if (event.type === 'payment_intent.succeeded' && order.status === 'pending') {
        deps.logger?.warn({ merchantId, orderId: order._id, paymentIntent: pi.id }, 'stripe: a PaymentIntent succeeded for a pending order without a challenge');
      }
      return done('no-open-challenge');
    }
    const open = challenge.status === 'pending' && challenge.expiresAt > now();
    if (open && order.status === 'pending') {
      // The buyer's address from the challenge (its declines count for that client, not for Stripe).
      const result = await deps.checkout.completeChallenge({ order, merchant }, challenge._id, true, challenge.clientIp);
      if (result.kind !== 'challenge-gone') return done('settled');
    }
    // Given up: expired, failed, or its order closed since (paid with another card, cancelled), and
    // nobody completing it now (no claim: a completion in progress settles, or voids, it itself).
    // A success of such a payment charged a buyer who was told otherwise, or charged them twice.
    const givenUp = challenge.status === 'failed' || challenge.expiresAt <= now() || order.status !== 'pending';
    if (event.type === 'payment_intent.succeeded' && givenUp && !(await claims.get(challengeClaimKey(challenge._id)))) {
      const acquirer = await deps.acquirers.forMerchant(merchant, challenge.acquirer ?? 'stripe');
      await acquirer.void(pi.id);
      deps.logger?.warn({ merchantId, orderId: order._id, paymentIntent: pi.id }, 'stripe: payment succeeded after its 3-D Secure challenge was given up; refunded');
      return done('voided');
    }
    return done(order.status === 'pending' ? 'no-open-challenge' : 'already-settled');
  }

  return { handle };
}
export type StripeWebhooks = ReturnType<typeof createStripeWebhooks>;
