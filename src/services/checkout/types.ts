// The checkout's public types: its dependencies, what the customer typed, and the answers of
// opening a pay-link, paying and finding a 3-D Secure challenge (src/services/checkout.service.ts).
import { type DeclineCode } from '../../domain/acquirer.ts';
import { type AcquirerDeps } from '../acquirer/directory.ts';
import { type FieldProblem } from '../../domain/errors.ts';
import { type LinkKey } from '../../domain/pay-link.ts';
import { type ChallengeDoc } from '../../db/challenges.repository.ts';
import { type MerchantDoc } from '../../db/merchants.repository.ts';
import { type OrderDoc } from '../../db/orders.repository.ts';
import { type Repositories } from '../../db/repositories.ts';
import { type EventsService } from '../events.service.ts';
import { type FaultHook } from '../order-transitions.ts';
import { type ReceiptProofs } from '../receipt-proof.service.ts';

export interface CheckoutServiceDeps extends AcquirerDeps {
  /** The storage seam (src/db/repositories.ts). */
  repos: Repositories;
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
  /** The signed link removing the saved card an order was paid with or saved, for its receipt (issue 12 part 3). */
  cardRemovalUrl?: (order: OrderDoc) => string | undefined;
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
export const DEFAULT_CHALLENGE_TTL_MS = 10 * 60_000;

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
