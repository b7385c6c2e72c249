// Pending 3-D Secure challenges (src/db/models/challenge.model.ts): what the checkout needs to
// finish a payment after the customer has been to the ACS page. Finishing one is refereed by a
// claim (src/services/checkout.service.ts); `status` is informative.
import { Challenge, type ChallengeDoc } from './models/challenge.model.ts';

export type { ChallengeDoc } from './models/challenge.model.ts';

export type NewChallenge = Omit<ChallengeDoc, 'status'> & { status: 'pending' };

export function createChallengesRepository() {
  return {
    async insert(doc: NewChallenge): Promise<void> {
      await Challenge.create(doc);
    },

    byId: (id: string) => Challenge.findById(id).lean<ChallengeDoc>(),

    /** The challenge `id` when it belongs to order `orderId`. */
    ofOrder: (orderId: string, id: string) => Challenge.findOne({ _id: id, orderId }).lean<ChallengeDoc>(),

    /** pending → passed or failed; false when it was finished before (a repair settling again). */
    async finish(id: string, outcome: 'passed' | 'failed'): Promise<boolean> {
      return (await Challenge.updateOne({ _id: id, status: 'pending' }, { $set: { status: outcome } })).modifiedCount > 0;
    },

    /** Deletes challenges that expired before `before`; how many. */
    async deleteExpiredBefore(before: Date): Promise<number> {
      return (await Challenge.deleteMany({ expiresAt: { $lt: before } })).deletedCount;
    },
  };
}

export type ChallengesRepository = ReturnType<typeof createChallengesRepository>;
