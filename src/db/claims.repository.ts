// Once-only decisions under a key, and the journal the crash repairs replay: a decision is recorded
// (with what is about to be done) before it is acted on, and marked applied when all of it is done
// — a 3-D Secure completion, a refund's slot before the acquirer is called, an EXTEND or BALANCE
// command's answer, a renewal, a reminder's day, a plan part's opening, a saved-card charge. Every
// engine needs these: they are idempotency records that outlive a crash, not a work-around.
// Stored as claims (src/db/claims.ts), whose insert under a unique _id has one winner everywhere.
// Two uses of claims stay inside src/db: the lease referees FerretDB alone needs (refereeLease,
// off on MongoDB: src/db/engine.ts) and the order closes (src/db/order-closes.repository.ts).
import { Claim, claimLease, claimOnce, markApplied, unappliedClaims } from './claims.ts';

/** A claim as stored. */
export interface StoredClaim {
  _id: string;
  at: Date;
  owner?: string;
  kind?: string;
  subject?: string;
  payload?: Record<string, unknown>;
  applied?: boolean;
}

export function createClaimsRepository() {
  return {
    /** Inserts the claim `key`; true for exactly one caller across all processes. */
    once: claimOnce,
    /** A claim that can be taken over after `leaseMs` (see claimLease). */
    lease: claimLease,
    markApplied,
    /** Claims of `kind` older than `olderThanMs` whose effect was never marked applied. */
    unapplied: unappliedClaims,
    /** The claim `key` as stored (holder, kind, payload, applied), or null. */
    get: (key: string) => Claim.findById(key).lean<StoredClaim>(),
    exists: async (key: string): Promise<boolean> => (await Claim.exists({ _id: key })) !== null,
    /** Deletes the claim `key` if it is of `kind` (an expired order's close claim, freed by its renewal). */
    async release(key: string, kind: string): Promise<boolean> {
      return (await Claim.deleteOne({ _id: key, kind })).deletedCount > 0;
    },
    /** Replaces the payload of claim `key` (only its holder writes it), marking it applied when asked. */
    async setPayload(key: string, payload: Record<string, unknown>, opts: { applied?: boolean } = {}): Promise<void> {
      await Claim.updateOne({ _id: key }, { $set: { payload, ...(opts.applied ? { applied: true } : {}) } });
    },
    /** The claims `<prefix>0`, `<prefix>1`, … (numbered slots, e.g. the refunds of an order). */
    numbered: (prefix: string) =>
      Claim.find({ _id: { $regex: `^${prefix.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}\\d+$` } }, { _id: 1, payload: 1 }).lean<StoredClaim[]>(),
  };
}

export type ClaimsRepository = ReturnType<typeof createClaimsRepository>;
