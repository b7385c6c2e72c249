// `BALANCE <ref> [<duration>]` (issue 13 part 1): the merchant asks for the next part of an order
// paid in parts — the balance after the deposit, or the next instalment — through the plan
// service (src/services/plan.service.ts), which opens the part and mails its link once. Keyed by
// the command's inbound message like every command: the claim `command:<inbound id>:balance`
// fixes, at the first processing, the link lifetime and whether the part's link was open already,
// so processing the same mail again answers the same and mails nothing more.
import { type MerchantDoc } from '../db/merchants.repository.ts';
import { type OrderDoc } from '../db/orders.repository.ts';
import { type Repositories } from '../db/repositories.ts';
import { parseExpiry } from '../domain/duration.ts';
import { hasPlan, openPart, partCount } from '../domain/order-plan.ts';
import { type PlanService } from './plan.service.ts';

const DAY = 86_400_000;

export interface BalancePart {
  seq: number;
  of: number;
  kind: string;
  amountMinor: number;
}

export type BalanceResult =
  | { code: 'COMMAND_BALANCE_SENT' | 'COMMAND_BALANCE_OPEN'; capped: boolean; resentTo: string; part: BalancePart }
  | { code: 'COMMAND_DEPOSIT_UNPAID'; part: BalancePart }
  | { code: 'COMMAND_BALANCE_DURATION_INVALID'; message: string }
  | { code: 'COMMAND_ALREADY_PAID' | 'COMMAND_ALREADY_CANCELLED' | 'COMMAND_ORDER_EXPIRED' | 'COMMAND_NO_PLAN' | 'COMMAND_DEPOSIT_UNPAID' };

interface Decided {
  days?: number;
  capped: boolean;
  /** The part's link was open (and valid) before this message: nothing was mailed. */
  already: boolean;
}

/** Status as the merchant sees it: a pending order past its expiry is expired. */
const shownStatus = (o: OrderDoc, at: Date) => (o.status === 'pending' && o.expiresAt <= at ? 'expired' : o.status);

const partOf = (order: OrderDoc, seq: number): BalancePart | undefined => {
  const p = order.plan?.parts?.find((x) => x.seq === seq);
  return p ? { seq, of: partCount(order), kind: String(p.kind), amountMinor: p.amountMinor } : undefined;
};

/** Why there is nothing to ask for, by the order's state as the merchant sees it. */
function nothingToAsk(order: OrderDoc, at: Date): BalanceResult {
  const status = shownStatus(order, at);
  if (status === 'paid') return { code: 'COMMAND_ALREADY_PAID' };
  if (status === 'cancelled') return { code: 'COMMAND_ALREADY_CANCELLED' };
  if (status === 'expired') return { code: 'COMMAND_ORDER_EXPIRED' };
  if (!hasPlan(order)) return { code: 'COMMAND_NO_PLAN' };
  // Pending: the deposit (the first part) is not paid yet; the reply names its amount.
  const first = partOf(order, 1);
  return first ? { code: 'COMMAND_DEPOSIT_UNPAID', part: first } : { code: 'COMMAND_DEPOSIT_UNPAID' };
}

export async function balance(
  deps: { repos: Repositories; plans: Pick<PlanService, 'requestNext'>; maxLinkLifetimeDays: number },
  order: OrderDoc,
  argument: string | undefined,
  ctx: { inboundId: string },
  merchant: MerchantDoc,
  at: Date,
): Promise<BalanceResult> {
  if (shownStatus(order, at) !== 'partially_paid') return nothingToAsk(order, at);
  const { claims, orders } = deps.repos;
  const key = `command:${ctx.inboundId}:balance`;
  let decided = (await claims.get(key))?.payload as Decided | undefined;
  if (!decided) {
    let days: number | undefined;
    let capped = false;
    if (argument) {
      // The same reader as EXTEND's: "10 days", "48h", "2 weeks", or a date.
      const r = parseExpiry(argument, { now: at, maxLifetimeDays: deps.maxLinkLifetimeDays, timeZone: merchant.timezone });
      if (!r.ok) return { code: 'COMMAND_BALANCE_DURATION_INVALID', message: r.message };
      days = (r.expiresAt.getTime() - at.getTime()) / DAY;
      capped = r.capped;
    }
    decided = { ...(days !== undefined ? { days } : {}), capped, already: !!openPart(order) && order.expiresAt > at };
    if (!(await claims.once(key, { kind: 'command-balance', subject: order._id, payload: { ...decided } }, at))) {
      decided = (await claims.get(key))!.payload as unknown as Decided;
    }
  }
  // Idempotent by itself (one claim per part): a redelivery finds the part open and mails nothing.
  const r = await deps.plans.requestNext(order, merchant, `merchant:command:${ctx.inboundId}`, decided.days);
  await claims.markApplied(key);
  if (r.outcome !== 'requested') return nothingToAsk((await orders.byId(order._id)) ?? order, at);
  const toCustomer = r.order.delivery === 'customer' && !!r.order.customer?.email;
  return {
    code: decided.already ? 'COMMAND_BALANCE_OPEN' : 'COMMAND_BALANCE_SENT',
    capped: decided.capped && !decided.already,
    resentTo: toCustomer ? r.order.customer!.email! : merchant.email,
    part: partOf(r.order, r.seq) ?? { seq: r.seq, of: partCount(r.order), kind: 'balance', amountMinor: 0 },
  };
}
