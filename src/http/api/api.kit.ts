// What every area of the server API shares: its dependencies, the caller (set by the auth
// middleware), JSON bodies checked against a zod schema (every problem listed), write access
// (read-only keys are refused), and Idempotency-Key handling over src/db/api-keys.repository.ts.
import { createHash } from 'node:crypto';
import { type Context } from 'koa';
import { type z } from 'zod';
import { type Repositories } from '../../db/repositories.ts';
import { AppError } from '../../domain/errors.ts';
import { type ApiCaller, type ApiKeyService } from '../../services/api-key.service.ts';
import { type OrderAdminService } from '../../services/order-admin.service.ts';
import { type OrderService } from '../../services/order.service.ts';
import { type RefundService } from '../../services/refund.service.ts';
import { type PlanService } from '../../services/plan.service.ts';
import { type SavedCardChargeService } from '../../services/saved-card-charge.service.ts';
import { PROBLEM_TYPE, toProblem, validationFailed } from './problem.ts';

export const API_PREFIX = '/api/v1';
/** How long an Idempotency-Key answers with its stored result. */
export const IDEMPOTENCY_WINDOW_MS = 24 * 3600_000;
/**
 * A request holding a key this long without an answer is taken to have died (a crash): longer than
 * Node's own limit on a request (requestTimeout, 5 minutes), so a slow request is never run twice.
 */
const IDEMPOTENCY_STALE_MS = 6 * 60_000;
const MAX_BODY_BYTES = 64 * 1024;


export interface ApiRouterDeps {
  repos: Repositories;
  apiKeys: ApiKeyService;
  orders: Pick<OrderService, 'create' | 'linkFor'>;
  orderAdmin: Pick<OrderAdminService, 'cancel' | 'refundCancelled'>;
  refunds: Pick<RefundService, 'refund' | 'forOrder' | 'madeBy'>;
  /** The next part of an order paid in parts (POST /orders/{reference}/balance; issue 13 part 1). */
  plans: Pick<PlanService, 'requestNext'>;
  publicUrl: string;
  maxLinkLifetimeDays: number;
  /** Requests per API key and minute (API_RATE_LIMIT). */
  rateLimit: number;
  /** How long a duplicate waits for the first request's answer (default 10 s). */
  idempotencyWaitMs?: number;
  now?: () => Date;
  /** Merchant-initiated charges of saved cards (POST /customers/{code}/charges); the route is absent without it. */
  savedCardCharges?: Pick<SavedCardChargeService, 'chargeSavedCard'>;
}

/** An answer as the handlers produce it, and as an Idempotency-Key record stores it. */
export interface ApiAnswer {
  status: number;
  body: unknown;
  headers?: Record<string, string>;
}

export function caller(ctx: Context): ApiCaller {
  const c = ctx.state.apiCaller as ApiCaller | undefined;
  if (!c) throw new AppError('API_KEY_INVALID', 'missing API key', { httpStatus: 401 });
  return c;
}

/** Refuses read-only keys (403) on every request that changes something. */
export function writer(ctx: Context): ApiCaller {
  const c = caller(ctx);
  if (c.key.readOnly) throw new AppError('API_KEY_READ_ONLY', 'this API key is read-only', { httpStatus: 403 });
  return c;
}

/** Problems of a zod parse, one per issue, with dotted field paths. */
export function zodProblems(error: z.ZodError): Array<{ field: string; message: string }> {
  return error.issues.map((i) => {
    const unknownKeys = i.code === 'unrecognized_keys' ? (i as { keys?: string[] }).keys : undefined;
    const base = i.path.map(String).join('.');
    if (unknownKeys) return { field: [base, unknownKeys.join(', ')].filter(Boolean).join('.'), message: 'unknown field' };
    return { field: base || '(body)', message: i.message };
  });
}

/** Checks `value` against `schema`; 422 VALIDATION_FAILED listing every problem. */
export function validate<S extends z.ZodType>(schema: S, value: unknown): z.output<S> {
  const r = schema.safeParse(value);
  if (!r.success) throw validationFailed(zodProblems(r.error));
  return r.data;
}

/** The request's JSON body (read once, at most 64 kB); 400 for anything that is not JSON. */
export async function jsonBody(ctx: Context): Promise<unknown> {
  if (ctx.state.apiBody !== undefined) return ctx.state.apiBody;
  const type = ctx.get('content-type');
  if (type && !ctx.is('application/json', '+json')) {
    throw new AppError('UNSUPPORTED_MEDIA_TYPE', 'send the body as application/json', { httpStatus: 415 });
  }
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of ctx.req) {
    size += (chunk as Buffer).length;
    if (size > MAX_BODY_BYTES) throw new AppError('BODY_TOO_LARGE', `the body is larger than ${MAX_BODY_BYTES} bytes`, { httpStatus: 413 });
    chunks.push(chunk as Buffer);
  }
  const text = Buffer.concat(chunks).toString('utf8');
  let parsed: unknown;
  try {
    parsed = text.trim() === '' ? {} : JSON.parse(text);
  } catch (e) {
    throw new AppError('BODY_INVALID_JSON', `the body is not valid JSON: ${(e as Error).message}`, { httpStatus: 400 });
  }
  ctx.state.apiBody = parsed;
  return parsed;
}

/** JSON with object keys sorted: two bodies that mean the same hash the same. */
function canonical(v: unknown): string {
  if (Array.isArray(v)) return `[${v.map(canonical).join(',')}]`;
  if (v && typeof v === 'object') {
    return `{${Object.keys(v as object)
      .sort()
      .map((k) => `${JSON.stringify(k)}:${canonical((v as Record<string, unknown>)[k])}`)
      .join(',')}}`;
  }
  return JSON.stringify(v) ?? 'null';
}

export function sendAnswer(ctx: Context, a: ApiAnswer): void {
  ctx.status = a.status;
  for (const [k, v] of Object.entries(a.headers ?? {})) ctx.set(k, v);
  ctx.body = JSON.stringify(a.body);
  ctx.type = a.status >= 400 ? PROBLEM_TYPE : 'application/json';
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

export function createIdempotency(deps: Pick<ApiRouterDeps, 'repos' | 'publicUrl' | 'idempotencyWaitMs'> & { now: () => Date }) {
  const store = deps.repos.apiKeys;

  /**
   * Answers a write request. Without an Idempotency-Key header: `run()` once. With one: the first
   * request with that key (per merchant) runs and its answer — success or client error — is kept
   * for 24 hours; the same request again gets the kept answer (header Idempotent-Replayed: true),
   * while it is still running it waits for it; another request with the key is 409. A server
   * error keeps nothing, so the request can be sent again. `run` gets the key's tag (a short hash,
   * to mark what the request makes) and is told when it takes over a key whose first request died
   * (a crash) without an answer.
   */
  async function answer(ctx: Context, run: (takeover: boolean, tag?: string) => Promise<ApiAnswer>): Promise<void> {
    const header = ctx.get('idempotency-key');
    if (!header) return sendAnswer(ctx, await run(false));
    if (header.length > 255 || !/^[\x21-\x7e]+$/.test(header)) {
      throw new AppError('IDEMPOTENCY_KEY_INVALID', 'Idempotency-Key: 1 to 255 visible ASCII characters', { httpStatus: 400 });
    }
    const { merchant } = caller(ctx);
    const id = `${merchant._id} ${header}`;
    const tag = createHash('sha256').update(id).digest('base64url').slice(0, 12);
    const requestHash = createHash('sha256').update(`${ctx.method} ${ctx.path}\n${canonical(await jsonBody(ctx))}`).digest('hex');
    let takeover = false;
    const waitUntil = Date.now() + (deps.idempotencyWaitMs ?? 10_000);
    for (;;) {
      const at = deps.now();
      const taken = await store.begin(id, merchant._id, requestHash, at);
      if (taken === true) return runAndKeep(ctx, id, at, () => run(takeover, tag));
      if (!taken) continue; // pruned between the insert and the read: try again
      const recordAt = new Date(taken.at);
      if (recordAt.getTime() <= at.getTime() - IDEMPOTENCY_WINDOW_MS) {
        // Older than its 24 hours (not pruned yet): the key is free again.
        await store.abandon(id, recordAt);
        continue;
      }
      if (taken.requestHash !== requestHash) {
        throw new AppError('IDEMPOTENCY_KEY_REUSED', 'this Idempotency-Key was used with another request in the last 24 hours', { httpStatus: 409 });
      }
      if (taken.state === 'done') {
        const kept = (taken.headers ?? {}) as Record<string, string>;
        return sendAnswer(ctx, { status: taken.status ?? 200, body: taken.body, headers: { ...kept, 'Idempotent-Replayed': 'true' } });
      }
      if (at.getTime() - recordAt.getTime() > IDEMPOTENCY_STALE_MS) {
        await store.abandon(id, recordAt);
        takeover = true;
        continue;
      }
      if (Date.now() > waitUntil) {
        throw new AppError('IDEMPOTENCY_IN_PROGRESS', 'a request with this Idempotency-Key is still being answered; try again', {
          httpStatus: 409,
          details: { retryAfterSec: 1 },
        });
      }
      await sleep(50);
    }
  }

  async function runAndKeep(ctx: Context, id: string, at: Date, run: () => Promise<ApiAnswer>): Promise<void> {
    let result: ApiAnswer;
    try {
      result = await run();
    } catch (err) {
      const problem = toProblem(err, ctx, deps.publicUrl);
      if (problem.status >= 500 || problem.code === 'VALIDATION_FAILED' || problem.code === 'IDEMPOTENCY_IN_PROGRESS') {
        // Nothing kept: the same request may be sent again (a validation failure never ran; work in progress is not an answer).
        await store.abandon(id, at).catch(() => {});
        throw err;
      }
      result = { status: problem.status, body: problem };
    }
    await store.finish(id, result.status, result.body, result.headers);
    sendAnswer(ctx, result);
  }

  return { answer };
}
export type Idempotency = ReturnType<typeof createIdempotency>;
