// 3-D Secure challenges: finding one for the challenge page, and completing it once (refereed by a
// claim that carries the customer's choice, so the repair can finish an interrupted completion).
import { amountDueMinor, payableAt } from '../../domain/order-plan.ts';
import { type ChallengeDoc } from '../../db/challenges.repository.ts';
import { type MerchantDoc } from '../../db/merchants.repository.ts';
import { type OrderDoc } from '../../db/orders.repository.ts';
import { type StoredCard } from '../order-transitions.ts';
import { acquirerFor, LEGACY_ACQUIRER } from '../acquirer/directory.ts';
import { type CheckoutCore } from './core.ts';
import { type CheckoutPayments } from './payment.ts';
import { type ChallengeState, type CheckoutServiceDeps, type OpenOrder, type PayResult } from './types.ts';

/** The claim that finishes a 3-D Secure challenge (once, whatever the customer clicks twice). */
export const challengeClaimKey = (challengeId: string): string => `3ds:${challengeId}`;

/** What the customer did on the challenge page (kept on the challenge's claim for the repair). */
export interface ChallengeChoice {
  challengeId: string;
  authenticated: boolean;
  clientIp: string;
}

export function createCheckoutChallenges(deps: CheckoutServiceDeps, core: CheckoutCore, payments: CheckoutPayments) {
  const { now, serialised, fault } = core;
  const { settle } = payments;
  const { orders, challenges, claims } = deps.repos;

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
      if (!order || !payableAt(order, now())) return { kind: 'closed', order };
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
    const acquirer = await acquirerFor(deps, merchant, challenge.acquirer ?? LEGACY_ACQUIRER);
    const result = await acquirer.completeChallenge({
      challengeId: challenge._id,
      orderId: order._id,
      amountMinor: amountDueMinor(order)!,
      currency: order.currency,
      authenticated: choice.authenticated,
    });
    await fault('3ds:completed');
    await challenges.finish(challenge._id, result.outcome === 'approved' ? 'passed' : 'failed');
    const outcome = await settle(order, merchant, result, {
      kept: { ...challenge.card } as StoredCard,
      holder: challenge.paidWith?.cardId ? (order.customer?.name ?? '') : challenge.holder,
      email: challenge.customerEmail ?? undefined,
      clientIp: choice.clientIp,
      challengeId: challenge._id,
      acquirer: acquirer.name,
      // Saved cards (issue 12 part 3): the consent to save, or the saved card paying, carried by the challenge.
      ...(challenge.saveFor?.customerCode ? { saveFor: { customerCode: challenge.saveFor.customerCode, email: challenge.saveFor.email ?? '' } } : {}),
      ...(challenge.paidWith?.cardId ? { paidWith: { customerCode: challenge.paidWith.customerCode ?? '', cardId: challenge.paidWith.cardId, initiator: 'customer' as const } } : {}),
      // One attempt (and one payment.failed) per challenge, however often this runs.
      attemptKey: challengeClaimKey(challenge._id),
    });
    await fault('3ds:finished');
    await claims.markApplied(challengeClaimKey(challenge._id));
    return outcome;
  }

  return { findChallenge, completeChallenge, finishChallenge };
}
export type CheckoutChallenges = ReturnType<typeof createCheckoutChallenges>;
