// Server API, orders: read one by reference, list with a cursor, cancel, refund. Cancel and refund
// go through the back office's services (src/services/order-admin.service.ts, refund.service.ts),
// so the webhooks, mails and crash repair are the same as for an operator's action.
import { type Router } from '@koa/router';
import { type Context } from 'koa';
import { z } from 'zod';
import { type OrderDoc } from '../../db/orders.repository.ts';
import { AppError } from '../../domain/errors.ts';
import { ORDER_STATUSES } from '../../domain/order-status.ts';
import { caller, validate, writer, jsonBody, type ApiRouterDeps, type Idempotency } from './api.kit.ts';
import { validationFailed } from './problem.ts';
import { orderResource, orderResources } from './order-resource.ts';
import { COMMON_PROBLEMS, idempotencyKeyParam, jsonRequest, jsonResponse, problemResponses, replayedHeader, type OpenApiPaths } from './openapi.ts';
import { requestSchemas, Refund as RefundSchema } from './resources.ts';

export const ORDER_LIST_MAX = 100;
const ORDER_LIST_DEFAULT = 20;

export const RefundRequest = z
  .strictObject({
    amount: z.number().int().positive().describe('In minor units; at most what was paid and not refunded yet.'),
    reason: z.string().max(200).optional(),
    part: z
      .number()
      .int()
      .min(1)
      .max(12)
      .optional()
      .describe(
        "An order paid in parts: the part (its seq) whose payment is refunded, at most that part's amount. Absent: the only paid part, else the latest paid part that can give the whole amount (409 REFUND_PART_REQUIRED, listing each part's refundable amount, when none can).",
      ),
  })
  .register(requestSchemas, { id: 'RefundRequest' });

export const CancelRequest = z
  .strictObject({
    refund: z
      .enum(['all', 'none'])
      .optional()
      .describe('Required for a partially_paid order: `all` refunds every paid part in full (refund.succeeded for each), `none` keeps what was paid. Ignored for a pending order.'),
  })
  .register(requestSchemas, { id: 'CancelRequest' });

export const BalanceRequest = z
  .strictObject({
    days: z.number().int().min(1).max(365).optional().describe("The lifetime of the part's pay-link in days (default: the merchant's link lifetime; capped at the maximum)."),
  })
  .register(requestSchemas, { id: 'BalanceRequest' });

const ListQuery = z.strictObject({
  status: z.enum(ORDER_STATUSES).optional(),
  since: z.iso.datetime({ offset: true }).optional(),
  limit: z
    .string()
    .regex(/^\d{1,3}$/, 'expected an integer from 1 to 100')
    .transform(Number)
    .pipe(z.number().int().min(1).max(ORDER_LIST_MAX))
    .optional(),
  cursor: z.string().max(200).optional(),
});

/** The opaque cursor: the position (createdAt, id) of the last order of a page. */
export const encodeCursor = (o: { _id: string; createdAt?: Date }) =>
  Buffer.from(JSON.stringify([new Date(o.createdAt ?? 0).getTime(), o._id])).toString('base64url');

function decodeCursor(cursor: string): { createdAt: Date; id: string } {
  try {
    const [ms, id] = JSON.parse(Buffer.from(cursor, 'base64url').toString('utf8')) as [unknown, unknown];
    if (typeof ms === 'number' && Number.isSafeInteger(ms) && typeof id === 'string' && id.length > 0 && id.length < 100) {
      return { createdAt: new Date(ms), id };
    }
  } catch {
    // fall through
  }
  throw new AppError('CURSOR_INVALID', 'the cursor is not one this API gave', { httpStatus: 400 });
}

export function registerOrderRoutes(router: Router, deps: ApiRouterDeps, idempotency: Idempotency): void {
  /** The merchant's order with this reference (the newest, when a closed one shares it). */
  async function byReference(ctx: Context): Promise<OrderDoc> {
    const { merchant } = caller(ctx);
    const reference = String(ctx.params['reference'] ?? '');
    const order = reference ? await deps.repos.orders.newestByReference(merchant._id, reference) : null;
    if (!order) throw new AppError('ORDER_NOT_FOUND', `no order with reference ${reference}`, { httpStatus: 404 });
    return order;
  }

  const one = async (merchantId: string, order: OrderDoc) => (await orderResources(deps, merchantId, [order]))[0]!;

  router.get('/orders', async (ctx) => {
    const { merchant } = caller(ctx);
    const q = validate(ListQuery, ctx.query);
    const limit = q.limit ?? ORDER_LIST_DEFAULT;
    const page = await deps.repos.orders.page(
      merchant._id,
      { status: q.status, since: q.since ? new Date(q.since) : undefined, after: q.cursor ? decodeCursor(q.cursor) : undefined },
      limit + 1,
    );
    const more = page.length > limit;
    const shown = page.slice(0, limit);
    ctx.body = { data: await orderResources(deps, merchant._id, shown), nextCursor: more ? encodeCursor(shown[shown.length - 1]!) : null };
  });

  router.get('/orders/:reference', async (ctx) => {
    const order = await byReference(ctx);
    ctx.body = await one(caller(ctx).merchant._id, order);
  });

  router.post('/orders/:reference/cancel', async (ctx) => {
    const { merchant, key } = writer(ctx);
    const input = validate(CancelRequest, await jsonBody(ctx));
    await idempotency.answer(ctx, async (takeover, tag) => {
      const order = await byReference(ctx);
      const by = `api:${key.id}${tag ? `#${tag}` : ''}`;
      // Taken over after a crash: the cancellation it had made is the answer (its refunds finished).
      if (takeover && order.status === 'cancelled') {
        if (input.refund === 'all') await deps.orderAdmin.refundCancelled(merchant, order._id, by);
        return { status: 200, body: await one(merchant._id, (await deps.repos.orders.byId(order._id)) ?? order) };
      }
      // A partly paid order (issue 13 part 1): what was paid is refunded or kept, as the caller says.
      if (order.status === 'partially_paid' && !input.refund) {
        throw validationFailed([{ field: 'refund', message: 'required for a partially_paid order: "all" refunds what was paid, "none" keeps it' }]);
      }
      const cancelled = await deps.orderAdmin.cancel(merchant, order._id, `api:${key.id}`, { refund: input.refund, by });
      return { status: 200, body: await one(merchant._id, cancelled) };
    });
  });

  // The next part of an order paid in parts (issue 13 part 1): the balance after the deposit, or
  // the next instalment, opened and its pay-link mailed. Asking again while it is open mails nothing.
  router.post('/orders/:reference/balance', async (ctx) => {
    const { merchant, key } = writer(ctx);
    const input = validate(BalanceRequest, await jsonBody(ctx));
    await idempotency.answer(ctx, async () => {
      const order = await byReference(ctx);
      // Opening a part is idempotent by itself (one claim per part): a takeover asks again safely.
      const r = await deps.plans.requestNext(order, merchant, `merchant:api:${key.id}`, input.days);
      if (r.outcome !== 'requested') {
        throw new AppError('ORDER_NOT_PARTLY_PAID', `the order is ${r.order.status}${r.order.plan?.parts?.length ? '' : ' and not paid in parts'}: there is no part to ask for`, { httpStatus: 409 });
      }
      return { status: 200, body: await one(merchant._id, r.order) };
    });
  });

  router.post('/orders/:reference/refunds', async (ctx) => {
    const { merchant, key } = writer(ctx);
    const input = validate(RefundRequest, await jsonBody(ctx));
    await idempotency.answer(ctx, async (takeover, tag) => {
      const order = await byReference(ctx);
      // Marked with the Idempotency-Key's tag: a request that died mid-way is never refunded twice.
      const by = `api:${key.id}${tag ? `#${tag}` : ''}`;
      const earlier = takeover ? await deps.refunds.madeBy(merchant, order._id, by) : undefined;
      if (earlier?.pending) {
        throw new AppError('IDEMPOTENCY_IN_PROGRESS', 'the refund of the first request is being finished; try again in a minute', { httpStatus: 409, details: { retryAfterSec: 60 } });
      }
      const refund = earlier?.refund ?? (await deps.refunds.refund(merchant, order._id, { amountMinor: input.amount, by, reason: input.reason, part: input.part }));
      const body: z.output<typeof RefundSchema> = {
        id: refund._id,
        amount: refund.amountMinor,
        currency: refund.currency,
        createdAt: new Date(refund.at).toISOString(),
        part: refund.part ?? null,
      };
      return { status: 201, body };
    });
  });
}

const referenceParam = { name: 'reference', in: 'path', required: true, description: "The merchant's reference of the order.", schema: { type: 'string' } };

export const orderPaths: OpenApiPaths = {
  '/orders': {
    get: {
      operationId: 'listOrders',
      summary: 'List orders, newest first',
      parameters: [
        { name: 'status', in: 'query', schema: { type: 'string', enum: [...ORDER_STATUSES] } },
        { name: 'since', in: 'query', description: 'Only orders created at or after this instant (RFC 3339).', schema: { type: 'string', format: 'date-time' } },
        { name: 'limit', in: 'query', schema: { type: 'integer', minimum: 1, maximum: ORDER_LIST_MAX, default: ORDER_LIST_DEFAULT } },
        { name: 'cursor', in: 'query', description: '`nextCursor` of the previous page (opaque).', schema: { type: 'string' } },
      ],
      responses: { '200': jsonResponse('OrderList', 'A page of orders.'), ...problemResponses(400, 422, ...COMMON_PROBLEMS) },
    },
  },
  '/orders/{reference}': {
    get: {
      operationId: 'getOrder',
      summary: 'An order by its reference',
      parameters: [referenceParam],
      responses: { '200': jsonResponse('Order', 'The order.'), ...problemResponses(404, ...COMMON_PROBLEMS) },
    },
  },
  '/orders/{reference}/cancel': {
    post: {
      operationId: 'cancelOrder',
      summary: 'Cancel an unpaid or partly paid order (order.cancelled webhook); a partly paid one says whether what was paid is refunded',
      parameters: [referenceParam, idempotencyKeyParam],
      requestBody: { ...jsonRequest('CancelRequest'), required: false },
      responses: { '200': jsonResponse('Order', 'The cancelled order.', replayedHeader), ...problemResponses(400, 403, 404, 409, 415, 422, ...COMMON_PROBLEMS) },
    },
  },
  '/orders/{reference}/balance': {
    post: {
      operationId: 'requestBalance',
      summary: 'Ask for the next part of an order paid in parts (the balance, or the next instalment): its pay-link is mailed; asking again while it is open mails nothing',
      parameters: [referenceParam, idempotencyKeyParam],
      requestBody: { ...jsonRequest('BalanceRequest'), required: false },
      responses: { '200': jsonResponse('Order', 'The order, its next part open.', replayedHeader), ...problemResponses(400, 403, 404, 409, 415, 422, ...COMMON_PROBLEMS) },
    },
  },
  '/orders/{reference}/refunds': {
    post: {
      operationId: 'refundOrder',
      summary: 'Refund a paid order, in full or in part (refund.succeeded webhook)',
      parameters: [referenceParam, idempotencyKeyParam],
      requestBody: jsonRequest('RefundRequest'),
      responses: { '201': jsonResponse('Refund', 'The refund.', replayedHeader), ...problemResponses(400, 403, 404, 409, 415, 422, ...COMMON_PROBLEMS) },
    },
  },
};
