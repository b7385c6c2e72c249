// The payment-plan lines of an order (issue 13 part 1) — `Deposit:`, `Balance due:`,
// `Instalments:` in any of the five languages — read for order mails and batch rows
// (src/domain/order-mail.ts readOrderFields) with src/domain/payment-plan.ts.
import { localDate } from './local-day.ts';
import { type FieldValue } from './order-mail-labels.ts';
import { parseBalanceDue, parseDeposit, parseInstalments, planParts, type PlanSpec } from './payment-plan.ts';

type PlanField = 'deposit' | 'balanceDue' | 'instalments';

export interface PlanProblem {
  field: PlanField;
  code: string;
  message: string;
  /** The value as given, and where: the field's own line or row. */
  at?: FieldValue | undefined;
}

/**
 * Each value read by payment-plan.ts, then the whole plan checked against the amount with planParts
 * (a deposit not less than the total, a deposit with instalments, a balance date without a
 * deposit), each problem on the line of the field it names. "Today" is the merchant's local date
 * (`timeZone`, as for an expiry date); the deposit is read in the order's currency. No plan line:
 * no plan; no amount (a problem of its own): the values are checked alone.
 */
export function readPlan(
  given: Readonly<Record<PlanField, FieldValue | undefined>>,
  order: { amountMinor?: number | undefined; currency?: string | undefined },
  currency: string,
  ctx: { now: Date; timeZone?: string | undefined },
): { plan?: PlanSpec; problems: PlanProblem[] } {
  const problems: PlanProblem[] = [];
  if (!given.deposit && !given.balanceDue && !given.instalments) return { problems };
  const today = localDate(ctx.now, ctx.timeZone ?? 'UTC');
  const spec: PlanSpec = {};
  const take = <T>(field: PlanField, r: { ok: true; value: T } | { ok: false; problem: { code: string; message: string } }): T | undefined => {
    if (r.ok) return r.value;
    problems.push({ field, code: r.problem.code, message: r.problem.message, at: given[field] });
    return undefined;
  };
  if (given.deposit) spec.deposit = take('deposit', parseDeposit(given.deposit.value, order.currency ?? currency));
  if (given.balanceDue) spec.balanceDue = take('balanceDue', parseBalanceDue(given.balanceDue.value, today));
  if (given.instalments) spec.instalments = take('instalments', parseInstalments(given.instalments.value));
  if (problems.length > 0 || order.amountMinor === undefined) return { problems };
  const parts = planParts(order.amountMinor, spec, today);
  if (!parts.ok) {
    const field = parts.problem.field as PlanField;
    return { problems: [{ field, code: parts.problem.code, message: parts.problem.message, at: given[field] }] };
  }
  return { plan: spec, problems };
}
