// Housekeeping of the checkout: the sweep of old rate-limit records and challenges, and the repair
// of payments and 3-D Secure completions a crash (or a failed write) interrupted.
import { type CheckoutChallenges, type ChallengeChoice } from './challenge.ts';
import { type CheckoutCore } from './core.ts';
import { type CheckoutServiceDeps } from './types.ts';

export function createCheckoutRepair(deps: CheckoutServiceDeps, core: CheckoutCore, challengeFlow: CheckoutChallenges) {
  const { now, serialised, limits, transitions } = core;
  const { finishChallenge } = challengeFlow;
  const { orders, challenges, claims } = deps.repos;

  /** Deletes rate-limit records older than the window and long-expired challenges (no TTL index). */
  async function sweep(): Promise<{ failures: number; challenges: number }> {
    const at = now().getTime();
    const failures = await deps.repos.limits.prunePaymentFailures(new Date(at - limits.windowMs));
    const expired = await challenges.deleteExpiredBefore(new Date(at - 86_400_000));
    return { failures, challenges: expired };
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

  return { sweep, repairInterrupted };
}
