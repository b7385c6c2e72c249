// Delivers queued webhook events (webhook_deliveries) to the merchant's URL: the work runner's
// handler for webhooks (src/jobs/work-runner.ts claims due deliveries under a lease, so a crashed
// worker's event is taken again). Every attempt is recorded as its
// own document; non-2xx, timeouts and network errors back off exponentially (10 s doubling to
// 1 h) until a 2xx or three days after the event. The body and event id never change; the
// signature is recomputed with the attempt time.
import { writeUntilStored } from '../db/durable-write.ts';
import { type WebhookDeliveryDoc } from '../db/webhooks.repository.ts';
import { type Logger } from '../logger.ts';
import { webhookEvents } from '../services/events.service.ts';
import { releaseHeldWebhook } from '../services/merchant-suspension.service.ts';
import { DEFAULT_WEBHOOK_TIMEOUT_MS, postWebhook, type AttemptResult } from '../services/webhook.service.ts';
import { type Resolver } from '../services/webhook-target.ts';
import { backoffDelay } from './outbox-worker.ts';
import { createWorkRunner, newOwnerId, type WorkContext, type WorkRunner } from './work-runner.ts';
import { type Repositories } from '../db/repositories.ts';

export interface WebhookWorkerDeps {
  /** The storage seam (src/db/repositories.ts). */
  repos: Repositories;
  logger: Logger;
  /** Per attempt, connect to end of response. */
  timeoutMs?: number;
  /** Longer than timeoutMs, so a live attempt is never taken over. */
  leaseMs?: number;
  pollMs?: number;
  /** How many deliveries one worker sends at once (different merchants must not wait on a slow one). */
  concurrency?: number;
  ownerId?: string;
  now?: () => Date;
  backoff?: (attempt: number) => number;
  /** WEBHOOK_ALLOW_PRIVATE: deliver to loopback/private addresses too (development, tests). */
  allowPrivateTargets?: boolean;
  /** Resolves webhook hosts (default: the system resolver). */
  resolve?: Resolver;
}

/** runOnce(): claims and sends until nothing is due; returns how many attempts it made. */
export type WebhookWorker = WorkRunner;

export function createWebhookWorker(deps: WebhookWorkerDeps): WebhookWorker {
  const timeoutMs = deps.timeoutMs ?? DEFAULT_WEBHOOK_TIMEOUT_MS;
  const leaseMs = deps.leaseMs ?? timeoutMs + 30_000;
  const concurrency = deps.concurrency ?? 4;
  const ownerId = deps.ownerId ?? newOwnerId();
  const now = deps.now ?? (() => new Date());
  const backoff = deps.backoff ?? ((n: number) => backoffDelay(n));
  const log = deps.logger.child({ component: 'webhook-worker', owner: ownerId });
  const { webhooks } = deps.repos;

  async function settle(
    doc: WebhookDeliveryDoc,
    outcome: Parameters<typeof webhooks.settle>[2],
    extra: Record<string, unknown> = {},
  ): Promise<boolean> {
    return webhooks.settle(doc, ownerId, outcome, extra);
  }

  async function handle(doc: WebhookDeliveryDoc, ctx: WorkContext): Promise<void> {
    const dlog = log.child({ eventId: doc._id, type: doc.type, attempt: doc.attempts });
    const merchant = await deps.repos.merchants.webhookTarget(doc.merchantId);
    // A suspended merchant's events wait, parked out of the queue, for its resume (no attempt recorded).
    if (merchant?.status === 'suspended') {
      await settle(doc, { status: 'held' });
      if (!(await deps.repos.merchants.isSuspended(doc.merchantId))) await releaseHeldWebhook(deps.repos, doc._id, now());
      dlog.info({ merchantId: doc.merchantId }, 'webhook held: merchant suspended');
      return;
    }
    const started = now();
    let result: AttemptResult;
    // The URL and secret are read per attempt: a merchant fixing its endpoint or rotating its
    // secret gets the pending retries at the new place, signed with the new secret.
    if (!merchant?.webhookUrl) result = { ok: false, error: 'merchant has no webhook URL', durationMs: 0 };
    else {
      result = await postWebhook({
        url: merchant.webhookUrl,
        secret: merchant.webhookSecret,
        // Signed with the old secret too while the rotation's grace period lasts.
        previousSecret:
          merchant.previousWebhookSecret && merchant.previousSecretUntil && merchant.previousSecretUntil > started
            ? merchant.previousWebhookSecret
            : undefined,
        eventId: doc._id,
        body: doc.body,
        now: started,
        timeoutMs,
        target: { allowPrivate: deps.allowPrivateTargets ?? false, resolve: deps.resolve },
      });
    }
    await webhooks.recordAttempt({
      deliveryId: doc._id,
      merchantId: doc.merchantId,
      attempt: doc.attempts,
      at: started,
      url: merchant?.webhookUrl,
      ...(result.statusCode !== undefined ? { statusCode: result.statusCode } : {}),
      ...(result.error ? { error: result.error } : {}),
      durationMs: result.durationMs,
      ok: result.ok,
    }).catch((e: unknown) => dlog.error({ err: e }, 'could not record webhook attempt'));
    const outcome = {
      ...(result.statusCode !== undefined ? { lastStatusCode: result.statusCode } : {}),
      lastError: result.error ?? (result.ok ? '' : `HTTP ${result.statusCode}`),
    };
    if (result.ok) {
      // Acknowledged: that fact must reach the database however long it is away, or the lease
      // would run out and the event be delivered again (src/db/durable-write.ts).
      await writeUntilStored(() => settle(doc, { status: 'delivered' }, { deliveredAt: now(), ...outcome }), {
        stopping: () => ctx.closing,
        log: dlog,
        what: 'webhook delivered',
      });
      dlog.info({ statusCode: result.statusCode, ms: result.durationMs }, 'webhook delivered');
      return;
    }
    const next = new Date(now().getTime() + backoff(doc.attempts));
    if (!merchant?.webhookUrl || next > doc.giveUpAt) {
      await settle(doc, { status: 'dead' }, outcome);
      dlog.error({ statusCode: result.statusCode, err: result.error }, 'webhook undeliverable: giving up');
      return;
    }
    await settle(doc, { status: 'pending', nextAttemptAt: next }, outcome);
    dlog.warn({ statusCode: result.statusCode, err: result.error, nextAttemptAt: next }, 'webhook attempt failed: will retry');
  }

  return createWorkRunner<WebhookDeliveryDoc>({
    name: 'webhooks',
    store: webhooks,
    handle,
    logger: deps.logger,
    leaseMs,
    ownerId,
    now,
    ...(deps.pollMs !== undefined ? { pollMs: deps.pollMs } : {}),
    // Different merchants must not wait on a slow one.
    concurrency,
    wake: { emitter: webhookEvents, event: 'queued' },
  });
}
