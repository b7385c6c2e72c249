// Claims: once-only markers refereed by a unique _id, and the journal of state transitions
// (claim → apply → queue side effects → mark applied) the crash repair replays (src/db/claims.ts).
import { claimLease, claimOnce, markApplied, unappliedClaims } from './claims.ts';

export function createClaimsRepository() {
  return {
    /** Inserts the claim `key`; true for exactly one caller across all processes. */
    once: claimOnce,
    /** A claim that can be taken over after `leaseMs` (see claimLease). */
    lease: claimLease,
    markApplied,
    /** Claims of `kind` older than `olderThanMs` whose effect was never marked applied. */
    unapplied: unappliedClaims,
  };
}

export type ClaimsRepository = ReturnType<typeof createClaimsRepository>;
