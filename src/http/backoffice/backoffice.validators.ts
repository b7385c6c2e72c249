// Back-office forms and query strings at the HTTP boundary (zod). Every field is a bounded
// string; repeated or oversized values become '' so a hostile request cannot reach a service
// with anything but plain, short strings. Business checks (amounts, dates) stay in the routes.
import { z } from 'zod';
import { ORDER_STATUSES } from '../../domain/order-status.ts';

const field = (max: number) => z.string().max(max).catch('');
const day = z.string().regex(/^\d{4}-\d{2}-\d{2}$/).catch('');

export const LoginForm = z.object({ email: field(254), password: field(200), _csrf: field(100), next: field(300) });

export const PasswordForm = z.object({ current: field(200), next: field(250), confirm: field(250), _csrf: field(100) });

export const LanguageForm = z.object({ language: field(10), _csrf: field(100) });

export const BrandingForm = z.object({ accent: field(20), removeLogo: field(1), _csrf: field(100) });

export const OrderFilterQuery = z.object({
  status: z.enum(ORDER_STATUSES).or(z.literal('')).catch(''),
  from: day,
  to: day,
  min: field(30),
  max: field(30),
  reference: field(100),
  customer: field(120),
  page: z.coerce.number().int().min(1).max(100_000).catch(1),
});
export type OrderFilterQuery = z.infer<typeof OrderFilterQuery>;

export const NewOrderForm = z.object({
  amount: field(40),
  currency: field(3),
  reference: field(100),
  description: field(500),
  customerName: field(120),
  customerEmail: field(254),
  locale: field(2),
  delivery: z.enum(['merchant', 'customer']).catch('merchant'),
  expires: day,
  /** Issue 13 part 3: empty (the merchant's settings), "off", or days before expiry ("5, 2"). */
  reminders: field(40),
  /** Issue 13 part 1, a payment plan: a deposit ("30%", "200"), the balance's day, or instalments (count, month|week). */
  deposit: field(40),
  balanceDue: day,
  instalments: field(2),
  instalmentsEvery: z.enum(['month', 'week']).catch('month'),
  /** Idempotency key minted when the form was shown: a double submit creates one order. */
  formKey: z.string().regex(/^[A-Za-z0-9_-]{21}$/).catch(''),
  _csrf: field(100),
});
export type NewOrderForm = z.infer<typeof NewOrderForm>;

export const ExtendForm = z.object({ expires: day, _csrf: field(100) });
export const RenewForm = z.object({ days: field(3), _csrf: field(100) });
/** A corrected customer address for the pay-link (issue 13 part 8). */
export const ResendToForm = z.object({ email: field(254), _csrf: field(100) });

export const RefundForm = z.object({ amount: field(40), reason: field(200), part: field(3), _csrf: field(100) });

/** Cancelling a partly paid order (issue 13 part 1): `refund` is all (refund what was paid) or none (keep it). */
export const CancelForm = z.object({ refund: field(10), _csrf: field(100) });

/** The card typed by the operator: lives only as long as the request, never logged. */
export const MotoForm = z.object({ number: field(40), expiry: field(10), cvc: field(8), holder: field(120), email: field(254), _csrf: field(100) });

export const SettingsForm = z.object({
  delivery: field(20),
  linkLifetimeDays: field(5),
  locale: field(5),
  timezone: field(64),
  recapHour: field(3),
  senderDomains: field(4000),
  webhookUrl: field(2000),
  _csrf: field(100),
});

/** Reminders and renewal (issue 13 parts 3 and 4); an unticked box is absent. */
export const ReminderSettingsForm = z.object({ enabled: field(1), daysBefore: field(40), unopenedHours: field(4), autoRenewDays: field(3), _csrf: field(100) });

export const UserForm = z.object({ email: field(254), role: field(20), _csrf: field(100) });
export const RoleForm = z.object({ role: field(20), _csrf: field(100) });
export const userIdParam = z.string().regex(/^[a-f0-9]{24}$/).catch('');
export const eventIdParam = z.string().regex(/^evt_[A-Za-z0-9_-]{1,40}$/).catch('');

export const ExportQuery = z.object({ from: day, to: day });

export const orderIdParam = z.string().regex(/^ord_[A-Za-z0-9_-]{1,40}$/).catch('');

/** Parses a query or body object (Koa gives `string | string[]`; arrays become ''). */
export function parse<T extends z.ZodType>(schema: T, input: unknown): z.infer<T> {
  return schema.parse(input && typeof input === 'object' ? input : {});
}
