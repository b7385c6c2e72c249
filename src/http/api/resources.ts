// The server API's resources as zod schemas: the one description of what /api/v1 answers, from
// which both the TypeScript types of the route handlers and the OpenAPI document's
// components.schemas (src/http/api/openapi.ts) come, so the two cannot drift apart.
//
// Two registries: `requestSchemas` (bodies the API accepts: strict, unknown fields are refused)
// and `responseSchemas` (what it answers: open, so fields can be added without breaking clients).
// A new resource is one schema registered here (or in its area's file) with its component id.
import { z } from 'zod';
import { ORDER_STATUSES } from '../../domain/order-status.ts';

export interface SchemaMeta {
  id: string;
  description?: string;
}

export const requestSchemas = z.registry<SchemaMeta>();
export const responseSchemas = z.registry<SchemaMeta>();

const instant = z.iso.datetime().describe('An instant in UTC (RFC 3339).');
const nullableString = z.string().nullable();

export const Money = {
  amount: z.number().int().describe('In minor units of the currency (cents for EUR).'),
  currency: z.string().regex(/^[A-Z]{3}$/).describe('ISO 4217 code.'),
};

export const CardSummary = z
  .looseObject({
    brand: nullableString.describe('Visa, Mastercard, American Express, …'),
    last4: nullableString,
  })
  .register(responseSchemas, { id: 'CardSummary', description: 'The card that paid, masked: never the number or the security code.' });

export const Payment = z
  .looseObject({
    card: CardSummary.nullable(),
    authCode: nullableString.describe("The acquirer's authorisation code."),
    paidAt: instant,
    receiptNumber: nullableString,
  })
  .register(responseSchemas, { id: 'Payment' });

export const Refund = z
  .looseObject({
    id: z.string(),
    ...Money,
    createdAt: instant,
    part: z.number().int().nullish().describe('An order paid in parts: the part (its seq) whose payment was refunded; null without plan.'),
  })
  .register(responseSchemas, { id: 'Refund' });

export const Customer = z
  .looseObject({
    email: nullableString,
    name: nullableString,
  })
  .register(responseSchemas, { id: 'Customer' });

export const PlanPart = z
  .looseObject({
    seq: z.number().int().describe('1 for the deposit or the first instalment.'),
    kind: z.enum(['deposit', 'balance', 'instalment']),
    amountMinor: z.number().int().describe("The part's amount, in minor units."),
    dueDate: z.string().nullable().describe("The part's due date (YYYY-MM-DD, the merchant's day): its link is mailed that day. Null: it is asked for by the merchant (POST /orders/{reference}/balance)."),
    status: z.enum(['paid', 'open', 'due', 'waiting']).describe('paid; open (its pay-link collects it now); due (waits for its date); waiting (waits for the merchant to ask for it).'),
    receiptNumber: nullableString.describe("The receipt of the part's payment, once paid."),
    paidAt: instant.nullable(),
  })
  .register(responseSchemas, { id: 'PlanPart', description: 'One part of an order paid in parts (issue 13 part 1).' });

export const Plan = z
  .looseObject({ parts: z.array(PlanPart).describe('In order: the deposit then the balance, or the instalments.') })
  .register(responseSchemas, { id: 'Plan', description: 'An order paid in parts: a deposit and its balance, or up to 12 instalments.' });

export const Order = z
  .looseObject({
    id: z.string().describe("paymail's order id."),
    reference: z.string().describe("The merchant's reference."),
    status: z.enum(ORDER_STATUSES),
    ...Money,
    description: nullableString,
    customer: Customer,
    language: z.string().describe('The language of the checkout page and the mails (en, it, fr, de, es).'),
    url: nullableString.describe('The pay-link while the order is pending or a part of it is open, else null.'),
    expiresAt: instant,
    createdAt: instant,
    cancelledAt: instant.nullable(),
    expiredAt: instant.nullable(),
    payment: Payment.nullable().describe('Null until paid.'),
    refunds: z.array(Refund).describe('Oldest first.'),
    refundedAmount: z.number().int().describe('The sum of the refunds, in minor units.'),
    customerCode: nullableString.describe('The customer (cus_…) whose saved card paid the order, or who saved the card paying it; charge it with POST /customers/{code}/charges.'),
    paidMinor: z.number().int().describe('What was paid so far, in minor units: the amount once paid, the parts paid of an order paid in parts.'),
    plan: Plan.nullable().describe('An order paid in parts: each part and its state; null without plan.'),
  })
  .register(responseSchemas, { id: 'Order' });
export type OrderResource = z.output<typeof Order>;

export const OrderList = z
  .looseObject({
    data: z.array(Order).describe('Newest first.'),
    nextCursor: nullableString.describe('Pass as `cursor` for the next page; null on the last page.'),
  })
  .register(responseSchemas, { id: 'OrderList' });

export const FieldProblem = z
  .looseObject({
    field: z.string().describe('The field, as a dotted path (e.g. customer.email).'),
    message: z.string(),
  })
  .register(responseSchemas, { id: 'FieldProblem' });

export const Problem = z
  .looseObject({
    type: z.string().describe('A URI naming the kind of problem: <PUBLIC_URL>/api/v1/problems/<code>.'),
    title: z.string(),
    status: z.number().int(),
    detail: z.string(),
    instance: z.string().describe('The request path.'),
    code: z.string().describe('The stable error code (the README lists them).'),
    requestId: z.string().optional(),
    errors: z.array(FieldProblem).optional().describe('Every problem of the request, for VALIDATION_FAILED.'),
    declineCode: z.string().optional().describe('Why the card was declined, for PAYMENT_DECLINED (INSUFFICIENT_FUNDS, AUTHENTICATION_REQUIRED, …).'),
  })
  .register(responseSchemas, { id: 'Problem', description: 'RFC 9457 problem details, with the stable `code`.' });
export type ProblemBody = z.output<typeof Problem>;
