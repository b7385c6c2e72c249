// Retention (src/jobs/retention.job.ts, src/db/retention.ts): old records go — applied claims of
// one-off kinds, expired sessions, login failures, rate-limit records, the bodies of sent mails —
// while recent ones, unapplied claims, the journal kinds (close claims, refund slots) and the rows
// of sent mails (their dedupe keys) stay.
import assert from 'node:assert/strict';
import { Claim } from '../../src/db/claims.ts';
import { ApiIdempotency, ApiRateHit } from '../../src/db/models/api-key.model.ts';
import { LoginFailure } from '../../src/db/models/login-attempt.model.ts';
import { Outbox } from '../../src/db/models/outbox.model.ts';
import { PaymentFailure } from '../../src/db/models/rate-limit.model.ts';
import { ReplySlot } from '../../src/db/models/reply-brake.model.ts';
import { Session } from '../../src/db/models/session.model.ts';
import { SmtpAuthFailure } from '../../src/db/models/smtp-auth-failure.model.ts';
import { loadConfig } from '../../src/config.ts';
import { createRetentionJob } from '../../src/jobs/retention.job.ts';
import { createLogger } from '../../src/logger.ts';
import { repos, useTestDatabase } from '../helpers/db.ts';

const DAY = 86_400_000;

describe('retention job', function () {
  this.timeout(30_000);
  useTestDatabase();
  const now = new Date('2026-06-01T03:00:00Z');
  const ago = (days: number) => new Date(now.getTime() - days * DAY);
  const ids = async (m: { collection: { find: (q: object) => { toArray: () => Promise<Array<{ _id: unknown }>> } } }) =>
    (await m.collection.find({}).toArray()).map((d) => String(d._id)).sort();

  it('prunes what is older than its configured age and keeps the rest', async () => {
    const ages = loadConfig({ NODE_ENV: 'test', RETENTION_CLAIMS_DAYS: '30', RETENTION_SESSIONS_DAYS: '2', RETENTION_LOGIN_ATTEMPTS_DAYS: '10', RETENTION_RATE_LIMIT_DAYS: '3', RETENTION_OUTBOX_BODY_DAYS: '20' }).retention;
    assert.deepEqual({ ...ages }, { claimsDays: 30, sessionsDays: 2, loginAttemptsDays: 10, rateLimitDays: 3, outboxBodyDays: 20 });

    await Claim.collection.insertMany([
      { _id: 'recap:m1:2026-04-01', kind: 'recap', applied: true, at: ago(60) }, // goes
      { _id: 'recap:m1:2026-05-25', kind: 'recap', applied: true, at: ago(7) }, // recent
      { _id: 'recap:m2:2026-04-01', kind: 'recap', applied: false, at: ago(60) }, // unapplied: its mail may still be due
      { _id: 'reminder:o1', kind: 'reminder-queued', applied: true, at: ago(45) }, // goes
      { _id: 'close:o1', kind: 'paid', applied: true, at: ago(400) }, // journal: stays
      { _id: 'refund:o1:0', kind: 'refund', applied: true, at: ago(400) }, // refund slot: stays
    ] as never[]);
    const session = (id: string, expiresAt: Date) => ({ _id: id, userId: 'u1', merchantId: 'm1', csrfToken: 'x', createdAt: ago(40), lastSeenAt: ago(40), expiresAt });
    await Session.collection.insertMany([session('s-old', ago(3)), session('s-just-expired', ago(1)), session('s-live', new Date(now.getTime() + DAY))] as never[]);
    await LoginFailure.collection.insertMany([
      { _id: 'lf-old', email: 'a@x', ip: '1.1.1.1', at: ago(11) },
      { _id: 'lf-new', email: 'a@x', ip: '1.1.1.1', at: ago(9) },
    ] as never[]);
    await SmtpAuthFailure.collection.insertMany([
      { _id: 'sf-old', user: 'u', ip: '1.1.1.1', at: ago(11) },
      { _id: 'sf-new', user: 'u', ip: '1.1.1.1', at: ago(1) },
    ] as never[]);
    await PaymentFailure.collection.insertMany([
      { _id: 'pf-old', orderId: 'o1', clientIp: '1.1.1.1', at: ago(4), code: 'declined' },
      { _id: 'pf-new', orderId: 'o1', clientIp: '1.1.1.1', at: ago(2), code: 'declined' },
    ] as never[]);
    await ReplySlot.collection.insertMany([
      { _id: 'rs-old', at: ago(4) },
      { _id: 'rs-new', at: ago(0.1) },
    ] as never[]);
    const mail = (id: string, status: string, sentAt?: Date) => ({ _id: id, dedupeKey: `k:${id}`, template: 'receipt', locale: 'en', to: ['c@x'], data: { orderId: 'o1', secret: 'body' }, messageId: `<${id}@x>`, status, attempts: 1, nextAttemptAt: ago(30), ...(sentAt ? { sentAt } : {}) });
    await Outbox.collection.insertMany([mail('m-old', 'sent', ago(21)), mail('m-new', 'sent', ago(19)), mail('m-dead', 'dead'), mail('m-pending', 'pending')] as never[]);

    // The server API: Idempotency-Key records answer for 24 hours, rate-limit records for a minute.
    await ApiIdempotency.collection.insertMany([
      { _id: 'm1 idem-old', merchantId: 'm1', requestHash: 'h', state: 'done', status: 201, body: {}, at: new Date(now.getTime() - 25 * 3_600_000) },
      { _id: 'm1 idem-new', merchantId: 'm1', requestHash: 'h', state: 'done', status: 201, body: {}, at: new Date(now.getTime() - 23 * 3_600_000) },
    ] as never[]);
    await ApiRateHit.collection.insertMany([
      { _id: 'ah-old', keyId: 'ak_1', at: new Date(now.getTime() - 2 * 3_600_000) },
      { _id: 'ah-new', keyId: 'ak_1', at: new Date(now.getTime() - 30_000) },
    ] as never[]);

    const job = createRetentionJob({ repos, ages, logger: createLogger('silent'), now: () => now });
    const pruned = await job.runOnce();
    assert.deepEqual(pruned, { claims: 2, sessions: 1, loginFailures: 2, rateLimits: 3, outboxBodies: 1, idempotencyKeys: 1 });

    assert.deepEqual(await ids(Claim), ['close:o1', 'recap:m1:2026-05-25', 'recap:m2:2026-04-01', 'refund:o1:0']);
    assert.deepEqual(await ids(Session), ['s-just-expired', 's-live']);
    assert.deepEqual(await ids(LoginFailure), ['lf-new']);
    assert.deepEqual(await ids(SmtpAuthFailure), ['sf-new']);
    assert.deepEqual(await ids(PaymentFailure), ['pf-new']);
    assert.deepEqual(await ids(ReplySlot), ['rs-new']);
    assert.deepEqual(await ids(ApiIdempotency), ['m1 idem-new']);
    assert.deepEqual(await ids(ApiRateHit), ['ah-new']);
    // Every mail row stays (its dedupe key stops a second send); only the old sent one lost its body.
    const mails = new Map((await Outbox.collection.find({}).toArray()).map((m) => [String(m._id), m as { data?: object; dedupeKey?: string }]));
    assert.equal(mails.size, 4);
    assert.deepEqual(mails.get('m-old')!.data, {});
    assert.equal(mails.get('m-old')!.dedupeKey, 'k:m-old');
    for (const id of ['m-new', 'm-dead', 'm-pending']) assert.deepEqual(mails.get(id)!.data, { orderId: 'o1', secret: 'body' }, id);

    // Idempotent: a second pass finds nothing more.
    assert.deepEqual(await job.runOnce(), { claims: 0, sessions: 0, loginFailures: 0, rateLimits: 0, outboxBodies: 0, idempotencyKeys: 0 });
  });

  it('refuses a claims age inside the daily recap look-back', () => {
    assert.throws(() => loadConfig({ NODE_ENV: 'test', RETENTION_CLAIMS_DAYS: '7' }), /RETENTION_CLAIMS_DAYS/);
  });
});
