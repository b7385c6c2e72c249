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
//
// The parts live in src/services/checkout/: opening a pay-link (open.ts), paying (payment.ts),
// 3-D Secure challenges (challenge.ts), the sweep and the repair (repair.ts); this file composes
// them over one deps object.
import { closeClaimKey } from './order-transitions.ts';
import { type OrderDoc } from '../db/orders.repository.ts';
import { createCheckoutChallenges } from './checkout/challenge.ts';
import { createCheckoutCore } from './checkout/core.ts';
import { createCheckoutOpen } from './checkout/open.ts';
import { createCheckoutPayments } from './checkout/payment.ts';
import { createCheckoutRepair } from './checkout/repair.ts';
import { createCheckoutSavedCards } from './checkout/saved-card.ts';
import { type CheckoutServiceDeps } from './checkout/types.ts';

export { closeClaimKey };
export { type OneClickForm, type SavedCardChargeRequest, type SavedCardOffer } from './checkout/saved-card.ts';
export {
  DEFAULT_RATE_LIMITS,
  type ChallengeState,
  type CheckoutForm,
  type CheckoutServiceDeps,
  type LinkState,
  type OpenOrder,
  type PayResult,
  type RateLimits,
} from './checkout/types.ts';

export function createCheckoutService(deps: CheckoutServiceDeps) {
  const core = createCheckoutCore(deps);
  const { open, markViewed, proofFor } = createCheckoutOpen(deps, core);
  const payments = createCheckoutPayments(deps, core);
  const { pay } = payments;
  const challengeFlow = createCheckoutChallenges(deps, core, payments);
  const { findChallenge, completeChallenge } = challengeFlow;
  const { sweep, repairInterrupted } = createCheckoutRepair(deps, core, challengeFlow);
  // Saved cards (issue 12 part 3): one-click offers and payments, merchant-initiated charges.
  const { savedCardsFor, payWithSavedCard, chargeSaved, savedCardVault } = createCheckoutSavedCards(deps, core, payments);
  /** The link removing the saved card an order was paid with or saved (the receipt page shows it too). */
  const cardRemovalUrl = (order: OrderDoc): string | undefined => deps.cardRemovalUrl?.(order);
  return { open, pay, markViewed, findChallenge, completeChallenge, sweep, repairInterrupted, proofFor, savedCardsFor, payWithSavedCard, chargeSaved, savedCardVault, cardRemovalUrl };
}
export type CheckoutService = ReturnType<typeof createCheckoutService>;
