// Webhooks to the merchant's server: the event shape, the `Paymail-Signature` header and one
// bounded HTTP attempt. Queueing (events.service.ts) and retries (jobs/webhook-worker.ts) live
// elsewhere; this file is what a merchant's verifier mirrors (see README, "Verifying webhooks").
import { createHmac } from 'node:crypto';
import http from 'node:http';
import https from 'node:https';
import { type LookupAddress } from 'node:dns';
import { type LookupFunction } from 'node:net';
import { isAppError } from '../domain/errors.ts';
import { paidMinor } from '../domain/order-plan.ts';
import { planJson } from '../domain/plan-view.ts';
import { type OrderDoc } from '../db/orders.repository.ts';
import { type WebhookEventType } from '../db/webhooks.repository.ts';
import { checkWebhookTarget, type ResolvedAddress, type WebhookTargetPolicy } from './webhook-target.ts';

export const SIGNATURE_HEADER = 'Paymail-Signature';
export const DEFAULT_WEBHOOK_TIMEOUT_MS = 10_000;
/** A 2xx within this budget acknowledges; anything longer is a failed attempt, retried later. */
export const MAX_WEBHOOK_TIMEOUT_MS = 30_000;

export interface WebhookEvent {
  id: string;
  type: WebhookEventType;
  /** Unix seconds at which the event happened (not the attempt: that is `t` in the signature). */
  created: number;
  data: { order: WebhookOrder } & Record<string, unknown>;
}

/** The order as merchants see it: never the card number, the BIN or the client address. */
export interface WebhookOrder {
  id: string;
  reference: string;
  status: string;
  amountMinor: number;
  currency: string;
  description: string | null;
  customer: { email: string | null; name: string | null };
  locale: string;
  expiresAt: string;
  createdAt: string | null;
  payment: {
    receiptNumber: string | null;
    authCode: string | null;
    paidAt: string | null;
    card: { brand: string | null; last4: string | null; expMonth: number | null; expYear: number | null; country: string | null } | null;
  } | null;
  cancelledAt: string | null;
  expiredAt: string | null;
  viewedAt: string | null;
  /** The customer whose saved card paid, or who saved the card paying (`cus_…`); null otherwise. */
  customerCode: string | null;
  /** What was paid so far, in minor units (an order paid in parts: the parts paid; issue 13 part 1). */
  paidMinor: number;
  /** An order paid in parts: each part's state (src/domain/plan-view.ts); null without plan. */
  plan: ReturnType<typeof planJson>;
}

const iso = (d: Date | null | undefined): string | null => (d ? new Date(d).toISOString() : null);

export function webhookOrder(order: OrderDoc): WebhookOrder {
  const p = order.payment;
  const card = p?.card;
  return {
    id: order._id,
    reference: order.reference,
    status: order.status,
    amountMinor: order.amountMinor,
    currency: order.currency,
    description: order.description ?? null,
    customer: { email: order.customer?.email ?? null, name: order.customer?.name ?? null },
    locale: order.locale,
    expiresAt: new Date(order.expiresAt).toISOString(),
    createdAt: iso((order as { createdAt?: Date }).createdAt),
    payment: p?.receiptNumber
      ? {
          receiptNumber: p.receiptNumber ?? null,
          authCode: p.authCode ?? null,
          paidAt: iso(p.paidAt),
          card: card
            ? {
                brand: card.brand ?? null,
                last4: card.last4 ?? null,
                expMonth: card.expMonth ?? null,
                expYear: card.expYear ?? null,
                country: card.country ?? null,
              }
            : null,
        }
      : null,
    cancelledAt: iso(order.cancelledAt),
    expiredAt: iso(order.expiredAt),
    /** The customer's first interaction with the checkout (order.viewed); null until then. */
    viewedAt: iso(order.viewedAt),
    customerCode: order.customerCode ?? null,
    paidMinor: paidMinor(order),
    plan: planJson(order),
  };
}

/**
 * `t=<unix>,v1=<hex HMAC-SHA256(secret, "<t>.<body>")>`: t is the attempt time, so a retry is
 * re-signed. During the grace period after a secret rotation a second `v1=` signed with the
 * previous secret follows, so a verifier still holding the old secret keeps accepting.
 */
export function signatureHeader(secret: string, body: string, t: number, previousSecret?: string): string {
  const sign = (key: string) => createHmac('sha256', key).update(`${t}.${body}`).digest('hex');
  return previousSecret ? `t=${t},v1=${sign(secret)},v1=${sign(previousSecret)}` : `t=${t},v1=${sign(secret)}`;
}

export interface AttemptResult {
  ok: boolean;
  statusCode?: number;
  error?: string;
  durationMs: number;
}

export interface PostOptions {
  url: string;
  secret: string;
  /** The secret before the last rotation, while its grace period lasts. */
  previousSecret?: string | undefined;
  eventId: string;
  body: string;
  now: Date;
  timeoutMs: number;
  /** Which targets are allowed (src/services/webhook-target.ts); refused targets are never contacted. */
  target: WebhookTargetPolicy;
}

/** A `lookup` for http.request that hands out the already checked addresses, never asking DNS again. */
function pinnedLookup(addresses: ResolvedAddress[]): LookupFunction {
  return (_host, options, callback) => {
    const fitting = addresses.filter((a) => !options.family || a.family === options.family);
    const list = fitting.length ? fitting : addresses;
    if (options.all) (callback as (e: null, a: LookupAddress[]) => void)(null, list);
    else callback(null, list[0]!.address, list[0]!.family);
  };
}

/** POSTs to the checked addresses; resolves with the status code once the response headers arrive. */
function send(url: URL, addresses: ResolvedAddress[], headers: Record<string, string>, body: string, signal: AbortSignal): Promise<number> {
  return new Promise((resolve, reject) => {
    const req = (url.protocol === 'https:' ? https : http).request(url, {
      method: 'POST',
      headers: { ...headers, 'content-length': String(Buffer.byteLength(body)) },
      // An IP literal is connected to as is (it was checked); a name goes to its checked addresses.
      lookup: pinnedLookup(addresses),
      // One connection per attempt: a pooled socket would not go through the check above.
      agent: false,
      signal,
    });
    req.on('response', (res) => {
      resolve(res.statusCode ?? 0);
      // The answer's body is of no interest.
      res.destroy();
    });
    req.on('error', reject);
    req.end(body);
  });
}

/**
 * One POST, bounded by `timeoutMs` from connect to the response headers. Redirects are not
 * followed (a 3xx is not an acknowledgement, and following would resend the body elsewhere).
 * The target is checked first (webhook-target.ts); a refused one is reported as the error.
 */
export async function postWebhook(o: PostOptions): Promise<AttemptResult> {
  const started = performance.now();
  const t = Math.floor(o.now.getTime() / 1000);
  const timeoutMs = Math.min(o.timeoutMs, MAX_WEBHOOK_TIMEOUT_MS);
  const signal = AbortSignal.timeout(timeoutMs);
  try {
    // The look-up counts against the attempt's time too (a resolver can hang for long).
    const timedOut = new Promise<never>((_, reject) => signal.addEventListener('abort', () => reject(signal.reason), { once: true }));
    timedOut.catch(() => {});
    const addresses = await Promise.race([checkWebhookTarget(o.url, o.target), timedOut]);
    const status = await send(
      new URL(o.url),
      addresses,
      {
        'content-type': 'application/json',
        'user-agent': 'paymail-webhooks/1',
        'paymail-event-id': o.eventId,
        [SIGNATURE_HEADER]: signatureHeader(o.secret, o.body, t, o.previousSecret),
      },
      o.body,
      signal,
    );
    const ok = status >= 200 && status < 300;
    return { ok, statusCode: status, durationMs: Math.round(performance.now() - started) };
  } catch (err) {
    const e = err as { name?: string; message?: string; code?: string };
    const error = isAppError(err)
      ? `refused: ${err.message}`
      : signal.aborted || e.name === 'TimeoutError' || e.name === 'AbortError'
        ? `timeout after ${o.timeoutMs} ms`
        : [e.code, e.message].filter(Boolean).join(' ');
    return { ok: false, error: error.slice(0, 300) || 'request failed', durationMs: Math.round(performance.now() - started) };
  }
}
