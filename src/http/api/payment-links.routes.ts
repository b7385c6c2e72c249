// Server API, pay-links: POST /payment-links creates an order through the order service (the one
// mail intake and the back office's "New pay-link" use) and, for delivery customer or merchant,
// queues the pay-link mail through the outbox as mail intake does. One order per merchant and
// reference: the order's source is `api:<reference>`, so a repeated reference (or two racing
// requests) finds the first order and answers 409 ORDER_REFERENCE_EXISTS, unless it is the same
// request again under its Idempotency-Key (then the stored 201).
import { type Router } from '@koa/router';
import { z } from 'zod';
import { parseExpiry } from '../../domain/duration.ts';
import { AppError } from '../../domain/errors.ts';
import { localDate } from '../../domain/local-day.ts';
import { isCurrency, MAX_MAJOR_AMOUNT, minorUnits } from '../../domain/money.ts';
import { type OrderDraft } from '../../domain/order-draft.ts';
import { ORDER_STATUSES } from '../../domain/order-status.ts';
import { MAX_INSTALMENTS, MIN_INSTALMENTS, parseBalanceDue, planParts, type PlanSpec } from '../../domain/payment-plan.ts';
import { SUPPORTED_LOCALES } from '../../services/merchant.service.ts';
import { jsonBody, validate, writer, type ApiRouterDeps, type Idempotency } from './api.kit.ts';
import { COMMON_PROBLEMS, idempotencyKeyParam, jsonRequest, jsonResponse, problemResponses, replayedHeader, type OpenApiPaths } from './openapi.ts';
import { validationFailed } from './problem.ts';
import { requestSchemas, responseSchemas } from './resources.ts';

export const DELIVERIES = ['none', 'customer', 'merchant'] as const;
const printable = /^[^\p{Cc}]*$/u;

export const PaymentLinkRequest = z
  .strictObject({
    reference: z.string().min(1).max(100).regex(printable, 'no control characters').describe('Unique per merchant: one order per reference.'),
    amount: z.number().int().positive().describe('In minor units (12990 is 129.90 EUR).'),
    currency: z.string().regex(/^[A-Z]{3}$/, 'expected an ISO 4217 code in capitals, such as EUR'),
    description: z.string().min(1).max(500).regex(printable, 'no control characters').optional(),
    customer: z
      .strictObject({
        email: z.email('expected an e-mail address').max(254).optional(),
        name: z.string().min(1).max(200).regex(printable, 'no control characters').optional(),
      })
      .optional(),
    language: z.enum(SUPPORTED_LOCALES).optional().describe("The checkout's and the mails' language; the merchant's by default."),
    expiresAt: z.iso.datetime({ offset: true }).optional().describe('When the pay-link expires (capped at MAX_LINK_LIFETIME_DAYS). Not with lifetime.'),
    lifetime: z
      .string()
      .regex(/^\d{1,4} ?[a-z]+$/, 'expected a lifetime such as 48h, 7d or 2w')
      .optional()
      .describe("How long the pay-link is valid: 48h, 7d, 2w (capped at MAX_LINK_LIFETIME_DAYS). Default: the merchant's link lifetime."),
    delivery: z
      .enum(DELIVERIES)
      .optional()
      .describe('none (default): paymail mails nothing, the caller passes the url on; customer: the pay-link is mailed to customer.email (merchant in copy); merchant: to the merchant.'),
    deposit: z
      .union([
        z.strictObject({ percent: z.number().gt(0).lt(100).multipleOf(0.01).describe('A share of the amount, more than 0 and less than 100 (rounded half up to a minor unit).') }),
        z.strictObject({ amount: z.number().int().positive().describe('In minor units of the order\'s currency, less than the amount.') }),
      ])
      .optional()
      .describe('A deposit: the pay-link collects it first; the balance follows on balanceDue or when the merchant asks. Not with instalments.'),
    balanceDue: z.iso
      .date()
      .optional()
      .describe("With a deposit: the day (YYYY-MM-DD, the merchant's time zone, from today on) the balance's pay-link is mailed by itself."),
    instalments: z
      .strictObject({
        count: z.number().int().min(MIN_INSTALMENTS).max(MAX_INSTALMENTS).describe(`${MIN_INSTALMENTS} to ${MAX_INSTALMENTS} parts of (nearly) equal amounts.`),
        every: z.enum(['month', 'week']).optional().describe('The time between two parts; month by default. The first part is due now.'),
      })
      .optional()
      .describe('The amount in instalments, each with its own due date. Not with a deposit.'),
  })
  .register(requestSchemas, { id: 'PaymentLinkRequest' });

export const PaymentLinkCreated = z
  .looseObject({
    orderId: z.string(),
    reference: z.string(),
    url: z.string().describe('The pay-link.'),
    expiresAt: z.iso.datetime(),
    status: z.enum(ORDER_STATUSES),
  })
  .register(responseSchemas, { id: 'PaymentLinkCreated' });

export function registerPaymentLinkRoutes(router: Router, deps: ApiRouterDeps, idempotency: Idempotency): void {
  const now = deps.now ?? (() => new Date());

  router.post('/payment-links', async (ctx) => {
    const { merchant } = writer(ctx);
    const input = validate(PaymentLinkRequest, await jsonBody(ctx));
    // Checks across fields, every problem at once.
    const problems: Array<{ field: string; message: string }> = [];
    if (!isCurrency(input.currency)) problems.push({ field: 'currency', message: 'expected an ISO 4217 currency code, such as EUR' });
    else if (input.amount > MAX_MAJOR_AMOUNT * 10 ** minorUnits(input.currency)) problems.push({ field: 'amount', message: `at most ${MAX_MAJOR_AMOUNT} ${input.currency}` });
    if (input.expiresAt && input.lifetime) problems.push({ field: 'lifetime', message: 'give expiresAt or lifetime, not both' });
    const delivery = input.delivery ?? 'none';
    if (delivery === 'customer' && !input.customer?.email) problems.push({ field: 'customer.email', message: 'required for delivery customer' });
    const at = now();
    let expiresAt: Date | undefined;
    if (input.expiresAt) {
      expiresAt = new Date(input.expiresAt);
      if (expiresAt.getTime() <= at.getTime()) problems.push({ field: 'expiresAt', message: 'in the past' });
    } else if (input.lifetime) {
      const r = parseExpiry(input.lifetime, { now: at, maxLifetimeDays: deps.maxLinkLifetimeDays, timeZone: merchant.timezone });
      if (r.ok) expiresAt = r.expiresAt;
      else problems.push({ field: 'lifetime', message: r.message });
    }
    const plan = planOf(input, localDate(at, merchant.timezone), problems);
    if (problems.length) throw validationFailed(problems);
    if (merchant.status === 'suspended') {
      throw new AppError('MERCHANT_SUSPENDED', 'this merchant account is suspended: paymail accepts no orders for it at the moment', { httpStatus: 403 });
    }

    await idempotency.answer(ctx, async (takeover) => {
      const draft: OrderDraft = {
        amountMinor: input.amount,
        currency: input.currency,
        reference: input.reference,
        description: input.description,
        customerEmail: input.customer?.email,
        customerName: input.customer?.name,
        locale: input.language,
        delivery: delivery === 'customer' ? 'customer' : 'merchant',
        expiresAt,
        plan,
      };
      const result = await deps.orders.create(merchant, draft, { key: `api:${input.reference}` }, { payLinkMail: delivery === 'none' ? 'none' : 'all' });
      // A takeover re-runs a request that died after creating its order: that order is its answer.
      if (result.duplicateOf && !(takeover && result.duplicateOf === 'source')) {
        throw new AppError('ORDER_REFERENCE_EXISTS', `an order with reference ${input.reference} exists (${result.order._id})`, { httpStatus: 409 });
      }
      const body: z.output<typeof PaymentLinkCreated> = {
        orderId: result.order._id,
        reference: result.order.reference,
        url: result.link,
        expiresAt: new Date(result.order.expiresAt).toISOString(),
        status: result.order.status,
      };
      return { status: 201, body, headers: { Location: `${deps.publicUrl}/api/v1/orders/${encodeURIComponent(result.order.reference)}` } };
    });
  });
}

/**
 * The request's payment plan (issue 13 part 1), checked against the amount with planParts as an
 * order mail's is (src/domain/order-mail-plan.ts); each problem is pushed naming its field.
 */
function planOf(input: z.output<typeof PaymentLinkRequest>, today: string, problems: Array<{ field: string; message: string }>): PlanSpec | undefined {
  if (!input.deposit && !input.balanceDue && !input.instalments) return undefined;
  const spec: PlanSpec = {};
  if (input.deposit) spec.deposit = 'percent' in input.deposit ? { percent: input.deposit.percent } : { amountMinor: input.deposit.amount, currency: input.currency };
  if (input.instalments) spec.instalments = { count: input.instalments.count, every: input.instalments.every ?? 'month' };
  if (input.balanceDue) {
    const due = parseBalanceDue(input.balanceDue, today);
    if (!due.ok) {
      problems.push({ field: 'balanceDue', message: due.problem.message });
      return undefined;
    }
    spec.balanceDue = due.value;
  }
  const parts = planParts(input.amount, spec, today);
  if (!parts.ok) {
    // planParts names its fields as this API does (deposit, balanceDue, instalments); "deposit.amount"/"deposit.percent" for a deposit's.
    const field = parts.problem.field === 'deposit' && input.deposit ? `deposit.${'percent' in input.deposit ? 'percent' : 'amount'}` : parts.problem.field;
    problems.push({ field, message: parts.problem.message });
    return undefined;
  }
  return spec;
}

export const paymentLinkPaths: OpenApiPaths = {
  '/payment-links': {
    post: {
      operationId: 'createPaymentLink',
      summary: 'Create an order and its pay-link',
      parameters: [idempotencyKeyParam],
      requestBody: jsonRequest('PaymentLinkRequest'),
      responses: {
        '201': jsonResponse('PaymentLinkCreated', 'The order was created.', { Location: { description: 'The order in this API.', schema: { type: 'string' } }, ...replayedHeader }),
        ...problemResponses(400, 403, 409, 413, 415, 422, ...COMMON_PROBLEMS),
      },
    },
  },
};
