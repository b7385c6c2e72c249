// Abuse brakes: rate-limit records, SMTP AUTH failures, reply brakes, sealed-request nonces.
// All database access for this aggregate; callers get it injected (src/db/repositories.ts).
//
// Everything here is counted in inserted documents, never in counters: FerretDB applies $inc as
// read-modify-write and loses concurrent increments, while an insert (under a unique _id where
// once-only matters) is atomic on FerretDB and MongoDB alike. Old records are deleted by query
// (no TTL index on FerretDB).
import { nanoid } from 'nanoid';
import { PaymentFailure } from './models/rate-limit.model.ts';
import { ReplySlot } from './models/reply-brake.model.ts';
import { SealNonce } from './models/seal-nonce.model.ts';
import { SmtpAuthFailure, SmtpAuthKnown } from './models/smtp-auth-failure.model.ts';

const isDuplicate = (e: unknown) => (e as { code?: number }).code === 11000;

const knownKey = (user: string, ip: string) => `${user} ${ip}`;

export function createLimitsRepository() {
  return {
    // ---- declined payments (card-testing defence) ---------------------------------------------

    /** One record per declined attempt; `key` (the attempt's) makes a repeat a no-op. */
    async recordPaymentFailure(key: string, f: { orderId: string; clientIp: string; code: string; at: Date }): Promise<void> {
      try {
        await PaymentFailure.create({ _id: key, ...f });
      } catch (e) {
        if (!isDuplicate(e)) throw e;
      }
    },

    /**
     * When the window starting at `since` frees up below `max` failures matching `by`: the time of
     * the failure that makes the count reach `max` (null if it vanished meanwhile); undefined while
     * fewer than `max` are recorded.
     */
    async paymentFailureLimitedSince(by: { orderId: string } | { clientIp: string }, since: Date, max: number): Promise<Date | null | undefined> {
      const q = { ...by, at: { $gt: since } };
      const count = await PaymentFailure.countDocuments(q);
      if (count < max) return undefined;
      const oldest = await PaymentFailure.find(q, { at: 1 }).sort({ at: 1 }).skip(count - max).limit(1).lean<Array<{ at: Date }>>();
      return oldest[0]?.at ?? null;
    },

    async prunePaymentFailures(before: Date): Promise<number> {
      return (await PaymentFailure.deleteMany({ at: { $lt: before } })).deletedCount;
    },

    // ---- SMTP AUTH (submission door) -----------------------------------------------------------

    async recordSmtpAuthFailure(user: string, ip: string, at: Date): Promise<void> {
      await SmtpAuthFailure.create({ _id: nanoid(), user, ip, at });
    },

    /** Failures by address or user name since `since`, counted up to `cap`. */
    countSmtpAuthFailures: (by: { ip: string } | { user: string }, since: Date, cap: number) =>
      SmtpAuthFailure.countDocuments({ ...by, at: { $gt: since } }, { limit: cap }).exec(),

    async pruneSmtpAuthFailures(before: Date): Promise<number> {
      return (await SmtpAuthFailure.deleteMany({ at: { $lt: before } })).deletedCount;
    },

    /** When `ip` last logged in as `user` (read by _id alone), if it ever did. */
    async smtpAuthKnownAt(user: string, ip: string): Promise<Date | undefined> {
      const known = await SmtpAuthKnown.findById(knownKey(user, ip)).lean<{ at: Date }>();
      return known ? new Date(known.at) : undefined;
    },

    /** Remembers that `ip` logged in as `user` at `at` (one write by _id). */
    async recordSmtpAuthKnown(user: string, ip: string, at: Date): Promise<void> {
      const key = knownKey(user, ip);
      try {
        await SmtpAuthKnown.replaceOne({ _id: key }, { _id: key, at }, { upsert: true });
      } catch (e) {
        // Two logins recording the same fact at once: both upserts insert, one loses on the unique
        // _id (FerretDB, and MongoDB in some cases). The record exists: bring its time forward.
        if (!isDuplicate(e)) throw e;
        await SmtpAuthKnown.updateOne({ _id: key }, { $max: { at } });
      }
    },

    // ---- the mail-loop brake (RFC 3834) --------------------------------------------------------

    /**
     * Takes one of `limit` answer slots of `sender` for the clock hour of `at`; false when all are
     * taken (the brake holds). Each slot is an insert under `<sender> <hour> <n>`, so instances
     * share the count. Fixed hours: at most 2 × limit answers can fall in any 60 minutes.
     */
    async takeReplySlot(sender: string, limit: number, inboundId: string, at: Date): Promise<boolean> {
      const hour = Math.floor(at.getTime() / 3_600_000);
      for (let n = 0; n < limit; n++) {
        try {
          await ReplySlot.create({ _id: `${sender} ${hour} ${n}`, inboundId, at });
          return true;
        } catch (e) {
          if (!isDuplicate(e)) throw e;
        }
      }
      return false;
    },

    /** Deletes slots of past hours. */
    async sweepReplySlots(at: Date): Promise<void> {
      await ReplySlot.deleteMany({ at: { $lt: new Date(at.getTime() - 2 * 3_600_000) } });
    },

    // ---- sealed-request nonces -----------------------------------------------------------------

    /** Records `nonce` for `merchantId`; false when it was seen before (by any instance). */
    async recordNonce(merchantId: string, nonce: string, at: Date): Promise<boolean> {
      try {
        await SealNonce.create({ _id: `${merchantId}:${nonce}`, at });
        return true;
      } catch (e) {
        if (isDuplicate(e)) return false;
        throw e;
      }
    },

    /** Deletes nonces recorded before `before`; how many. */
    async pruneNonces(before: Date): Promise<number> {
      return (await SealNonce.deleteMany({ at: { $lt: before } })).deletedCount;
    },
  };
}

export type LimitsRepository = ReturnType<typeof createLimitsRepository>;
