// Retention: deletes what only matters for a while, so no collection grows without bound
// (src/jobs/retention.job.ts runs it hourly; ages in config, RETENTION_* in the README).
// - claims: applied ones of the kinds below, older than `claimsDays`. Other kinds stay: the close
//   claims of orders and the numbered refund slots are the journal of money transitions (they
//   grow with the orders, which are kept). Recap claims must outlive the recap look-back
//   (RECAP_LOOKBACK_DAYS), or a pruned day could be recapped again: the config's minimum sees to it.
// - sessions `sessionsDays` after they expired; login failures (back office and SMTP AUTH) and
//   rate-limit records (payment failures, reply slots) after their ages — well past the windows
//   the limits look at.
// - the server API's Idempotency-Key records after the 24 hours they answer for, and its per-request
//   rate-limit records an hour after their one-minute window.
// - sent outbox mails keep their row (its dedupe key is what stops a second send) but lose their
//   body (`data`, the mail's content) `outboxBodyDays` after they were sent.
import { Claim } from './claims.ts';
import { ApiIdempotency, ApiRateHit } from './models/api-key.model.ts';
import { LoginFailure } from './models/login-attempt.model.ts';
import { Outbox } from './models/outbox.model.ts';
import { PaymentFailure } from './models/rate-limit.model.ts';
import { ReplySlot } from './models/reply-brake.model.ts';
import { Session } from './models/session.model.ts';
import { SmtpAuthFailure } from './models/smtp-auth-failure.model.ts';

/** Claim kinds that only referee a one-off (a recap day, a queued reminder, a 3-D Secure completion, …). */
export const PRUNABLE_CLAIM_KINDS = ['recap', 'recap-resend', 'reminder-queued', '3ds', 'command-extend', 'command-balance', 'merchant-rotation'] as const;

export interface RetentionAges {
  claimsDays: number;
  sessionsDays: number;
  loginAttemptsDays: number;
  rateLimitDays: number;
  outboxBodyDays: number;
}

const DAY = 86_400_000;
/** Idempotency-Key records answer for 24 hours (src/http/api/api.kit.ts); API rate-limit records for a minute. */
const IDEMPOTENCY_MS = DAY;
const API_RATE_HIT_MS = 3_600_000;

export function createRetentionRepository() {
  return {
    /** One pass: deletes (or, for sent mails, empties) what is older than its age; counts by kind. */
    async prune(ages: RetentionAges, now: Date): Promise<Record<string, number>> {
      const before = (days: number) => new Date(now.getTime() - days * DAY);
      const loginBefore = before(ages.loginAttemptsDays);
      const limitBefore = before(ages.rateLimitDays);
      const [claims, sessions, loginFailures, smtpAuthFailures, paymentFailures, replySlots, outboxBodies, idempotencyKeys, apiRateHits] = await Promise.all([
        Claim.deleteMany({ kind: { $in: [...PRUNABLE_CLAIM_KINDS] }, applied: true, at: { $lt: before(ages.claimsDays) } }),
        Session.deleteMany({ expiresAt: { $lt: before(ages.sessionsDays) } }),
        LoginFailure.deleteMany({ at: { $lt: loginBefore } }),
        SmtpAuthFailure.deleteMany({ at: { $lt: loginBefore } }),
        PaymentFailure.deleteMany({ at: { $lt: limitBefore } }),
        ReplySlot.deleteMany({ at: { $lt: limitBefore } }),
        // The driver, not the model: `data` is required in the schema, and the marker is not in it.
        Outbox.collection.updateMany(
          { status: 'sent', sentAt: { $lt: before(ages.outboxBodyDays) }, bodyPrunedAt: { $exists: false } },
          { $set: { data: {}, bodyPrunedAt: now } },
        ),
        ApiIdempotency.deleteMany({ at: { $lt: new Date(now.getTime() - IDEMPOTENCY_MS) } }),
        ApiRateHit.deleteMany({ at: { $lt: new Date(now.getTime() - API_RATE_HIT_MS) } }),
      ]);
      return {
        claims: claims.deletedCount,
        sessions: sessions.deletedCount,
        loginFailures: loginFailures.deletedCount + smtpAuthFailures.deletedCount,
        rateLimits: paymentFailures.deletedCount + replySlots.deletedCount + apiRateHits.deletedCount,
        outboxBodies: outboxBodies.modifiedCount,
        idempotencyKeys: idempotencyKeys.deletedCount,
      };
    },
  };
}

export type RetentionRepository = ReturnType<typeof createRetentionRepository>;
