// Server API, saved cards (issue 12 part 3): POST /customers/{code}/charges charges the saved card
// of customer `code` (the customer code of an order paid with "Save my card") without the
// customer present — a merchant-initiated charge, "a scadenza". Each charge is an order of its
// own, one per merchant and reference: the same reference again answers the first charge's
// outcome and never charges twice (src/services/saved-card-charge.service.ts). Approved: 201 with
// the paid order; declined: 402 PAYMENT_DECLINED with the decline code in `declineCode`.
import { type Router } from '@koa/router';
import { z } from 'zod';
import { DECLINE_CODES } from '../../domain/acquirer.ts';
import { AppError } from '../../domain/errors.ts';
import { jsonBody, validate, writer, type ApiRouterDeps, type Idempotency } from './api.kit.ts';
import { orderResource } from './order-resource.ts';
import { COMMON_PROBLEMS, idempotencyKeyParam, jsonRequest, jsonResponse, problemResponses, type OpenApiPaths } from './openapi.ts';
import { requestSchemas } from './resources.ts';

const printable = /^[^\p{Cc}]*$/u;

export const SavedCardChargeRequest = z
  .strictObject({
    amount: z.number().int().positive().describe('In minor units (2500 is 25.00 EUR).'),
    currency: z.string().regex(/^[A-Z]{3}$/, 'expected an ISO 4217 code in capitals, such as EUR'),
    reference: z.string().min(1).max(100).regex(printable, 'no control characters').describe('Unique per merchant: the same reference is charged once.'),
    description: z.string().min(1).max(500).regex(printable, 'no control characters').optional(),
  })
  .register(requestSchemas, { id: 'SavedCardChargeRequest' });

const CUSTOMER_CODE = /^cus_[A-Za-z0-9_-]{1,40}$/;

export function registerCustomerRoutes(router: Router, deps: ApiRouterDeps, idempotency: Idempotency): void {
  const charges = deps.savedCardCharges;
  if (!charges) return;

  router.post('/customers/:code/charges', async (ctx) => {
    const { merchant } = writer(ctx);
    const code = String(ctx.params['code'] ?? '');
    const input = validate(SavedCardChargeRequest, await jsonBody(ctx));
    if (!CUSTOMER_CODE.test(code)) throw new AppError('CUSTOMER_NOT_FOUND', 'no such customer', { httpStatus: 404 });
    await idempotency.answer(ctx, async () => {
      const r = await charges.chargeSavedCard(merchant, code, {
        amountMinor: input.amount,
        currency: input.currency,
        reference: input.reference,
        description: input.description,
      });
      ctx.state.log?.info({ orderId: r.order._id, outcome: r.outcome }, 'saved card charged through the API');
      if (r.outcome === 'declined') {
        throw new AppError('PAYMENT_DECLINED', `the card was declined (${r.code}); order ${r.order._id} stays unpaid`, { httpStatus: 402, details: { declineCode: r.code } });
      }
      return {
        status: 201,
        body: orderResource(r.order, [], null),
        headers: { Location: `${deps.publicUrl}/api/v1/orders/${encodeURIComponent(r.order.reference)}` },
      };
    });
  });
}

export const customerPaths: OpenApiPaths = {
  '/customers/{code}/charges': {
    post: {
      operationId: 'chargeSavedCard',
      summary: "Charge a customer's saved card (merchant-initiated)",
      description:
        'Charges the saved card of the customer (the `customerCode` of an order paid with "Save my card") for a new order, ' +
        'without the customer present. One charge per reference: the same reference again answers the first outcome. ' +
        `A decline is 402 PAYMENT_DECLINED with \`declineCode\` (${DECLINE_CODES.join(', ')}).`,
      parameters: [{ name: 'code', in: 'path', required: true, description: 'The customer code (cus_…).', schema: { type: 'string' } }, idempotencyKeyParam],
      requestBody: jsonRequest('SavedCardChargeRequest'),
      responses: {
        '201': jsonResponse('Order', 'Charged: the new order, paid.', { Location: { description: 'The order in this API.', schema: { type: 'string' } } }),
        ...problemResponses(400, 402, 403, 404, 409, 413, 415, 422, ...COMMON_PROBLEMS),
      },
    },
  },
};
