// The Stripe acquirer: the Acquirer port over Stripe's PaymentIntents with the official `stripe`
// package. The card typed on paymail's checkout reaches Stripe as a PaymentMethod created
// server-side from the raw card data (allowed to PCI DSS-compliant operators; README "Acquirers").
// - authorize: PaymentMethod + PaymentIntent (capture_method automatic, confirm=true): the
//   authorisation code paymail keeps is the PaymentIntent id (refunds and voids use it);
//   requires_action with a redirect → a challenge whose redirectUrl is Stripe's 3-D Secure page,
//   which sends the buyer back to `returnUrl`; completeChallenge then reads the PaymentIntent.
// - void: cancel (or refund, once captured); refund: a Refund of the PaymentIntent.
// - saved cards: a Customer per saved card, the PaymentMethod attached by the payment itself
//   (setup_future_usage off_session); the token is "cus_…/pm_…"; later charges are PaymentIntents
//   with customer + payment_method (off_session for merchant-initiated ones); remove = detach.
// Every POST carries an idempotency key; card errors map to paymail's decline codes, network and
// API failures to ACQUIRER_UNAVAILABLE (the customer may retry).
import { randomUUID } from 'node:crypto';
import Stripe from 'stripe';
import {
  type Acquirer,
  type AuthorizeRequest,
  type AuthorizeResult,
  type ChallengeCompletion,
  type DeclineCode,
  type RefundRequest,
  type RefundResult,
  type SavedCardCharge,
} from '../../domain/acquirer.ts';

export interface StripeExchange {
  method: string;
  path: string;
  status: number;
  requestId?: string;
  elapsedMs: number;
}

export interface StripeAcquirerOptions {
  secretKey: string;
  /** Another API base (stripe-mock, a proxy): http(s)://host[:port]. Absent: api.stripe.com. */
  apiBase?: string;
  /** Per request (default 20 s: a buyer is waiting). */
  timeoutMs?: number;
  /** Retries of network failures and 409/5xx answers, with the same idempotency key (default 2). */
  maxNetworkRetries?: number;
  /** Every answer Stripe gave (logging, metrics, tests); never carries card data. */
  onResponse?: (e: StripeExchange) => void;
}

/** Stripe's decline codes (and card error codes) → paymail's. Unlisted ones are a plain decline. */
const DECLINES: Readonly<Record<string, DeclineCode>> = {
  insufficient_funds: 'INSUFFICIENT_FUNDS',
  lost_card: 'LOST_OR_STOLEN',
  stolen_card: 'LOST_OR_STOLEN',
  pickup_card: 'LOST_OR_STOLEN',
  card_velocity_exceeded: 'OVER_LIMIT',
  withdrawal_count_limit_exceeded: 'OVER_LIMIT',
  authentication_required: 'AUTHENTICATION_REQUIRED',
  payment_intent_authentication_failure: 'THREE_DS_FAILED',
};
/** Card errors that are the issuer's or Stripe's trouble, not a refusal: the customer may retry. */
const UNAVAILABLE = new Set(['processing_error', 'try_again_later', 'issuer_not_available', 'reenter_transaction']);

interface CardErrorLike {
  code?: string | null;
  decline_code?: string | null;
  message?: string | null;
}

/** A card error (thrown, or a PaymentIntent's last_payment_error) as paymail's outcome. */
export function mapCardError(e: CardErrorLike): AuthorizeResult {
  const key = e.decline_code || e.code || '';
  const message = `card declined${key ? ` (${key})` : ''}`;
  if (UNAVAILABLE.has(key)) return { outcome: 'error', code: 'ACQUIRER_UNAVAILABLE', message: `acquirer processing error (${key})` };
  return { outcome: 'declined', code: DECLINES[key] ?? DECLINES[e.code ?? ''] ?? 'DECLINED', message };
}

const unavailable = (why: string): AuthorizeResult => ({ outcome: 'error', code: 'ACQUIRER_UNAVAILABLE', message: `Stripe unavailable: ${why}` });

/** A thrown error as an outcome: card errors are declines; everything else is ACQUIRER_UNAVAILABLE. */
function mapThrown(e: unknown): AuthorizeResult {
  if (e instanceof Stripe.errors.StripeCardError) return mapCardError(e);
  if (e instanceof Stripe.errors.StripeError) return unavailable(`${e.type}${e.code ? ` ${e.code}` : ''}${e.statusCode ? ` (HTTP ${e.statusCode})` : ''}`);
  throw e;
}

/** The vault token of a saved card: Stripe's Customer and PaymentMethod ids. */
export function savedCardToken(customerId: string, paymentMethodId: string): string {
  return `${customerId}/${paymentMethodId}`;
}
function parseToken(token: string): { customer: string; paymentMethod: string } | undefined {
  const m = /^(cus_[A-Za-z0-9]+)\/(pm_[A-Za-z0-9]+)$/.exec(token);
  return m ? { customer: m[1]!, paymentMethod: m[2]! } : undefined;
}

const idOf = (v: string | { id: string } | null | undefined): string | undefined => (typeof v === 'string' ? v : v?.id);

/** A PaymentIntent's state as paymail's outcome (`save`: answer the vault token on approval). */
export function mapIntent(pi: Stripe.PaymentIntent, save = false): AuthorizeResult {
  switch (pi.status) {
    case 'succeeded':
    case 'requires_capture': {
      const customer = idOf(pi.customer);
      const pm = idOf(pi.payment_method);
      return { outcome: 'approved', authCode: pi.id, ...(save && customer && pm ? { savedCard: { token: savedCardToken(customer, pm) } } : {}) };
    }
    case 'requires_action': {
      const url = pi.next_action?.type === 'redirect_to_url' ? pi.next_action.redirect_to_url?.url : undefined;
      if (url) return { outcome: 'challenge', challengeId: pi.id, message: '3-D Secure authentication required', redirectUrl: url };
      return unavailable(`unsupported next action ${pi.next_action?.type ?? 'none'}`);
    }
    case 'requires_payment_method':
      return pi.last_payment_error ? mapCardError(pi.last_payment_error) : { outcome: 'declined', code: 'DECLINED', message: 'card not accepted' };
    case 'canceled':
      return { outcome: 'declined', code: 'DECLINED', message: 'payment cancelled' };
    default:
      // processing, requires_confirmation: no decision yet (a webhook may bring it later).
      return unavailable(`payment ${pi.status}`);
  }
}

export function createStripeClient(opts: StripeAcquirerOptions): Stripe {
  const base = opts.apiBase ? new URL(opts.apiBase) : undefined;
  const client = new Stripe(opts.secretKey, {
    maxNetworkRetries: opts.maxNetworkRetries ?? 2,
    timeout: opts.timeoutMs ?? 20_000,
    telemetry: false,
    ...(base
      ? {
          host: base.hostname,
          port: base.port || (base.protocol === 'https:' ? 443 : 80),
          protocol: base.protocol === 'https:' ? ('https' as const) : ('http' as const),
        }
      : {}),
  });
  if (opts.onResponse) {
    const report = opts.onResponse;
    client.on('response', (e: { method: string; path: string; status: number; request_id?: string; elapsed: number }) =>
      report({ method: e.method, path: e.path, status: e.status, ...(e.request_id ? { requestId: e.request_id } : {}), elapsedMs: e.elapsed }),
    );
  }
  return client;
}

export function createStripeAcquirer(opts: StripeAcquirerOptions): Acquirer {
  const stripe = createStripeClient(opts);
  const once = (key: string) => ({ idempotencyKey: key });

  /** A PaymentIntent confirmed at once, created under the idempotency key `key`; `save`: answer the vault token. */
  async function confirmIntent(params: Stripe.PaymentIntentCreateParams, key: string, save: boolean): Promise<AuthorizeResult> {
    try {
      const pi = await stripe.paymentIntents.create(
        { allowed_payment_method_types: ['card'], capture_method: 'automatic', confirm: true, ...params },
        once(key),
      );
      return mapIntent(pi, save);
    } catch (e) {
      return mapThrown(e);
    }
  }

  const acquirer: Acquirer = {
    name: 'stripe',
    async authorize(req: AuthorizeRequest): Promise<AuthorizeResult> {
      // One key per attempt: a retry of the same request (network) is answered once by Stripe,
      // while the customer's next attempt (another card, after a decline) is a new payment.
      const attempt = `paymail:${req.orderId}:${randomUUID()}`;
      let pm: Stripe.PaymentMethod;
      let customer: string | undefined;
      try {
        pm = await stripe.paymentMethods.create(
          {
            type: 'card',
            card: { number: req.card.number, exp_month: req.card.expMonth, exp_year: req.card.expYear, cvc: req.card.cvc },
            billing_details: { name: req.card.holder },
          },
          once(`${attempt}:pm`),
        );
        if (req.saveCard) {
          const c = await stripe.customers.create(
            { email: req.saveCard.email, metadata: { paymail_customer: req.saveCard.customerCode } },
            once(`${attempt}:customer`),
          );
          customer = c.id;
        }
      } catch (e) {
        return mapThrown(e);
      }
      return confirmIntent(
        {
          amount: req.amountMinor,
          currency: req.currency.toLowerCase(),
          payment_method: pm.id,
          metadata: { paymail_order: req.orderId },
          ...(req.returnUrl ? { return_url: req.returnUrl } : {}),
          // Saving: the successful payment attaches the PaymentMethod to the Customer for later use.
          ...(customer ? { customer, setup_future_usage: 'off_session' as const } : {}),
        },
        `${attempt}:pi`,
        Boolean(customer),
      );
    },

    async completeChallenge(req: ChallengeCompletion): Promise<AuthorizeResult> {
      try {
        let pi = await stripe.paymentIntents.retrieve(req.challengeId);
        if (pi.status === 'requires_action' || pi.status === 'requires_confirmation') {
          // The buyer came back without finishing: cancel, so that no late authentication can
          // charge a card the customer was told was not charged. Should it have succeeded in the
          // meantime, the cancel is refused and the PaymentIntent read again tells.
          pi = await stripe.paymentIntents.cancel(pi.id, {}, once(`paymail:${pi.id}:abandoned`)).catch(() => stripe.paymentIntents.retrieve(req.challengeId));
          if (pi.status === 'canceled') return { outcome: 'declined', code: 'THREE_DS_FAILED', message: '3-D Secure not completed' };
        }
        if (pi.status === 'requires_payment_method' || pi.status === 'canceled') {
          const mapped = pi.last_payment_error ? mapCardError(pi.last_payment_error) : undefined;
          return mapped && mapped.outcome === 'declined' && mapped.code !== 'DECLINED'
            ? mapped
            : { outcome: 'declined', code: 'THREE_DS_FAILED', message: '3-D Secure authentication failed' };
        }
        return mapIntent(pi, pi.setup_future_usage === 'off_session');
      } catch (e) {
        return mapThrown(e);
      }
    },

    async void(authCode: string): Promise<void> {
      const pi = await stripe.paymentIntents.retrieve(authCode);
      if (pi.status === 'canceled') return;
      if (pi.status === 'succeeded') {
        // Captured at once (capture_method automatic): giving the money back is a full refund.
        await stripe.refunds.create({ payment_intent: pi.id, metadata: { paymail_reason: 'void' } }, once(`paymail:${pi.id}:void`));
        return;
      }
      await stripe.paymentIntents.cancel(pi.id, {}, once(`paymail:${pi.id}:void`));
    },

    async refund(req: RefundRequest): Promise<RefundResult> {
      try {
        const r = await stripe.refunds.create({ payment_intent: req.authCode, amount: req.amountMinor }, once(req.idempotencyKey));
        if (r.status === 'failed' || r.status === 'canceled') return { ok: false, code: 'REFUND_REJECTED', message: `Stripe refund ${r.status}` };
        return { ok: true, refundId: r.id };
      } catch (e) {
        // A refusal (already refunded, amount too large): final. Network or Stripe trouble is
        // thrown, so the refund stays reserved and the repair asks again under the same key.
        if (e instanceof Stripe.errors.StripeInvalidRequestError || e instanceof Stripe.errors.StripeCardError) {
          return { ok: false, code: 'REFUND_REJECTED', message: e.code ?? e.message };
        }
        throw e;
      }
    },

    savedCards: {
      cvcRequired: false,
      async charge(req: SavedCardCharge): Promise<AuthorizeResult> {
        const token = parseToken(req.token);
        if (!token) return { outcome: 'declined', code: 'DECLINED', message: 'unknown saved card' };
        return confirmIntent(
          {
            amount: req.amountMinor,
            currency: req.currency.toLowerCase(),
            customer: token.customer,
            payment_method: token.paymentMethod,
            metadata: { paymail_order: req.orderId, paymail_initiator: req.initiator },
            // Without the customer: Stripe applies the exemptions of merchant-initiated payments,
            // and a card that needs authentication fails with authentication_required.
            ...(req.initiator === 'merchant' ? { off_session: true } : req.returnUrl ? { return_url: req.returnUrl } : {}),
          },
          req.idempotencyKey,
          false,
        );
      },
      async remove(token: string): Promise<void> {
        const t = parseToken(token);
        if (!t) return;
        try {
          await stripe.paymentMethods.detach(t.paymentMethod, {}, once(`paymail:${t.paymentMethod}:detach`));
        } catch (e) {
          // Already detached or deleted at Stripe: removing an unknown card is not an error.
          if (e instanceof Stripe.errors.StripeInvalidRequestError && (e.code === 'resource_missing' || e.statusCode === 404)) return;
          throw e;
        }
      },
    },
  };
  return acquirer;
}
