// Stripe's webhooks to POST /webhooks/stripe/<merchant id>: verified with the library
// (Stripe.webhooks.constructEvent) and the merchant's webhook signing secret, then used to
// reconcile outcomes that arrive late. A PaymentIntent that succeeded or failed while its order is
// still pending with its 3-D Secure challenge open (the buyer closed the tab on Stripe's page, or
// has not come back yet) is finished through the checkout's challenge completion, the same path as
// the buyer's return: the challenge's claim makes the two idempotent (whichever comes first
// settles; the other finds the challenge used). Anything else is acknowledged and logged.
import Stripe from 'stripe';
import { AppError } from '../../domain/errors.ts';
import { type Repositories } from '../../db/repositories.ts';
import { type Logger } from '../../logger.ts';
import { type CheckoutService } from '../checkout.service.ts';
import { type AcquirerSettings } from './acquirer-settings.ts';

/** How long after its timestamp a signed event is accepted (the library's default: 5 minutes). */
const TOLERANCE_SEC = 300;

export type StripeWebhookOutcome = 'settled' | 'already-settled' | 'no-open-challenge' | 'not-ours' | 'ignored';

export interface StripeWebhookDeps {
  repos: Pick<Repositories, 'merchants' | 'orders' | 'challenges'>;
  settings: Pick<AcquirerSettings, 'stripeCredentials'>;
  checkout: Pick<CheckoutService, 'completeChallenge'>;
  logger?: Pick<Logger, 'info' | 'warn'>;
}

const RECONCILED = new Set(['payment_intent.succeeded', 'payment_intent.payment_failed', 'payment_intent.canceled']);

export function createStripeWebhooks(deps: StripeWebhookDeps) {
  const { merchants, orders, challenges } = deps.repos;

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
    if (order.status !== 'pending') return done('already-settled');
    const challenge = await challenges.ofOrder(order._id, pi.id);
    if (!challenge || challenge.status !== 'pending') {
      // A payment answered at once was settled (or refused) when it was made.
      if (event.type === 'payment_intent.succeeded' && !challenge) {
        deps.logger?.warn({ merchantId, orderId: order._id, paymentIntent: pi.id }, 'stripe: a PaymentIntent succeeded for a pending order without an open challenge');
      }
      return done('no-open-challenge');
    }
    // The buyer's address from the challenge (its declines count for that client, not for Stripe).
    const result = await deps.checkout.completeChallenge({ order, merchant }, challenge._id, true, challenge.clientIp);
    return done(result.kind === 'challenge-gone' ? 'no-open-challenge' : 'settled');
  }

  return { handle };
}
export type StripeWebhooks = ReturnType<typeof createStripeWebhooks>;
