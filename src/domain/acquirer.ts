// The port through which checkout asks a card acquirer for an authorisation. The sandbox acquirer
// implements it for development and tests; a real acquirer adapter implements the same interface.
// Only the authorisation request carries the full card number and CVC, and only in memory.

/** Stable decline/error codes; pages and attempts use these, never the acquirer's free text. */
export const DECLINE_CODES = [
  'DECLINED',
  'INSUFFICIENT_FUNDS',
  'LOST_OR_STOLEN',
  'OVER_LIMIT',
  'ACQUIRER_UNAVAILABLE',
  /** The customer failed (or abandoned) the issuer's 3-D Secure challenge. */
  'THREE_DS_FAILED',
] as const;
export type DeclineCode = (typeof DECLINE_CODES)[number];

export interface AuthorizeCard {
  /** Digits only. Never persisted, never logged. */
  number: string;
  /** Never persisted, never logged. */
  cvc: string;
  expMonth: number;
  expYear: number;
  holder: string;
}

export interface AuthorizeRequest {
  orderId: string;
  amountMinor: number;
  currency: string;
  card: AuthorizeCard;
}

export type AuthorizeResult =
  | { outcome: 'approved'; authCode: string }
  | { outcome: 'declined'; code: DeclineCode; message: string }
  /** The acquirer could not decide (network, processing error): the customer may retry. */
  | { outcome: 'error'; code: DeclineCode; message: string }
  /** The issuer wants 3-D Secure: the customer must pass a challenge first. */
  | { outcome: 'challenge'; challengeId: string; message: string };

/**
 * The outcome of a 3-D Secure challenge, handed back to the acquirer for the authorisation it
 * held back. No card data: the acquirer knows the card by its challenge id (as a real one knows
 * it by its transaction id), so nothing card-like needs to outlive the first request.
 */
export interface ChallengeCompletion {
  challengeId: string;
  orderId: string;
  amountMinor: number;
  currency: string;
  /** True when the customer passed the issuer's authentication. */
  authenticated: boolean;
}

export interface Acquirer {
  readonly name: string;
  authorize(req: AuthorizeRequest): Promise<AuthorizeResult>;
  /**
   * Finishes an authorisation that answered `challenge`: approved, or declined (THREE_DS_FAILED).
   * Idempotent per challenge id: asked again (the crash repair does), it answers the same outcome
   * and the same authorisation code, never a second authorisation.
   */
  completeChallenge(req: ChallengeCompletion): Promise<AuthorizeResult>;
  /** Releases an authorisation that will not be captured (e.g. it lost a race for the order). */
  void(authCode: string): Promise<void>;
  /**
   * Gives back (part of) a captured payment. Optional so that test doubles of the authorisation
   * path need not implement it; the refund service refuses refunds without it.
   */
  refund?(req: RefundRequest): Promise<RefundResult>;
}

export interface RefundRequest {
  /** The authorisation code of the payment being refunded. */
  authCode: string;
  /**
   * The same key asks for the same refund: a repeat (the crash repair) answers the first
   * request's result instead of refunding again, as acquirers' idempotency keys do.
   */
  idempotencyKey: string;
  amountMinor: number;
  currency: string;
}

export type RefundResult = { ok: true; refundId: string } | { ok: false; code: string; message: string };
