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
  /**
   * A charge without the customer present (merchant-initiated) of a card whose issuer wants 3-D
   * Secure: the customer must pay on the pay-link instead.
   */
  'AUTHENTICATION_REQUIRED',
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
  /**
   * The customer asked to save the card (consent ticked on the checkout): on approval the acquirer
   * keeps it in its vault and answers a token in `savedCard`. Only acquirers with `savedCards`.
   */
  saveCard?: CardToSave;
  /**
   * Where an acquirer with its own 3-D Secure page sends the buyer back (the pay-link's return
   * endpoint, absolute); the acquirer adds its own query parameters.
   */
  returnUrl?: string;
}

/** Who the card is saved for: paymail's customer code (`cus_…`) and the customer's address. */
export interface CardToSave {
  customerCode: string;
  email: string;
}

export type AuthorizeResult =
  /** `savedCard`: the vault token when the request asked to save the card (never the number). */
  | { outcome: 'approved'; authCode: string; savedCard?: { token: string } }
  | { outcome: 'declined'; code: DeclineCode; message: string }
  /** The acquirer could not decide (network, processing error): the customer may retry. */
  | { outcome: 'error'; code: DeclineCode; message: string }
  /** The issuer wants 3-D Secure: the customer must pass a challenge first. */
  | {
      outcome: 'challenge';
      challengeId: string;
      message: string;
      /**
       * Where the buyer authenticates when the challenge is the acquirer's own page (a real 3-D
       * Secure redirect); absent for the sandbox, whose challenge page paymail serves.
       */
      redirectUrl?: string;
    };

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
  /**
   * True when the customer passed the issuer's authentication (the sandbox's page). An acquirer
   * whose own page authenticated the buyer (a `redirectUrl` challenge) decides from its own record
   * of the payment instead: true then only means the buyer came back.
   */
  authenticated: boolean;
}

/** A payment with a card the acquirer keeps in its vault (one-click or merchant-initiated). */
export interface SavedCardCharge {
  orderId: string;
  amountMinor: number;
  currency: string;
  /** The vault token answered when the card was saved. */
  token: string;
  /** One-click: the security code when the acquirer asks for it (`cvcRequired`). Never persisted. */
  cvc?: string;
  /** `customer`: one-click with the buyer present; `merchant`: "a scadenza", without the buyer. */
  initiator: 'customer' | 'merchant';
  /** The same key asks for the same charge (a repeat answers the first result). */
  idempotencyKey: string;
  /** One-click: where the acquirer's own 3-D Secure page sends the buyer back (as AuthorizeRequest). */
  returnUrl?: string;
}

/** The vault side of an acquirer: only the acquirer ever holds the card itself. */
export interface SavedCardVault {
  /** True when a one-click payment must carry the security code again. */
  readonly cvcRequired: boolean;
  charge(req: SavedCardCharge): Promise<AuthorizeResult>;
  /** Deletes the card from the vault; removing an unknown token is not an error. */
  remove(token: string): Promise<void>;
}

export interface Acquirer {
  /** Stored on each payment, so refunds and voids go to the acquirer that took it. */
  readonly name: string;
  /** Present when the acquirer can keep cards for later payments. */
  readonly savedCards?: SavedCardVault;
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
