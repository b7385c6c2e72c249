// POST /webhooks/stripe/:merchantId — Stripe's event deliveries for a merchant on Stripe. The
// signature covers the exact bytes, so the body is read raw here (the app's body parser only
// parses forms). Answers 200 with what was done, 400 when the signature (or secret) does not fit;
// Stripe retries anything else, which the idempotent reconciliation tolerates.
import { Router } from '@koa/router';
import { isAppError } from '../../domain/errors.ts';
import { type StripeWebhooks } from '../../services/acquirer/stripe-webhooks.ts';

export const STRIPE_WEBHOOK_PATH = '/webhooks/stripe/:merchantId';
/** Stripe's events are a few kB; this bounds what an anonymous sender can make us buffer. */
const MAX_BYTES = 512 * 1024;

async function readRaw(req: NodeJS.ReadableStream): Promise<string | undefined> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req) {
    size += (chunk as Buffer).length;
    if (size > MAX_BYTES) return undefined;
    chunks.push(chunk as Buffer);
  }
  return Buffer.concat(chunks).toString('utf8');
}

export function createStripeWebhookRouter(deps: { webhooks: StripeWebhooks }): Router {
  const router = new Router();
  router.post(STRIPE_WEBHOOK_PATH, async (ctx) => {
    ctx.set('Cache-Control', 'no-store');
    const parsed = (ctx.request as { rawBody?: unknown }).rawBody;
    const raw = typeof parsed === 'string' ? parsed : await readRaw(ctx.req);
    if (raw === undefined) {
      ctx.status = 413;
      ctx.body = { error: { code: 'BODY_TOO_LARGE' } };
      return;
    }
    try {
      ctx.body = { received: true, ...(await deps.webhooks.handle(ctx.params['merchantId'] ?? '', raw, ctx.get('stripe-signature') || undefined)) };
    } catch (e) {
      if (!isAppError(e, 'STRIPE_WEBHOOK_INVALID')) throw e;
      ctx.state.log.warn({ merchantId: ctx.params['merchantId'], reason: e.message }, 'stripe webhook refused');
      ctx.status = 400;
      ctx.body = { error: { code: e.code, message: 'signature verification failed' } };
    }
  });
  return router;
}
