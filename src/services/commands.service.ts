// Reply commands (STATUS, CANCEL, RESEND, EXTEND, BALANCE) mailed by an authenticated merchant. Intake
// recognises them (src/domain/commands.ts) and calls `execute` with the stored message's id; every
// effect is keyed by that id, so processing the same message again (a crash, a redelivery) does
// not cancel, resend or extend twice, and the answer (template command-reply) is queued once.
import { parseExpiry } from '../domain/duration.ts';
import { type ParsedCommand } from '../domain/commands.ts';
import { type MerchantDoc } from '../db/merchants.repository.ts';
import { type OrderDoc } from '../db/orders.repository.ts';
import { enqueueMail } from '../mail/outbox.ts';
import { createOrderTransitions } from './order-transitions.ts';
import { type OrderEvents } from './order-admin.service.ts';
import { type OrderService } from './order.service.ts';
import { resendTo } from './command-resend.ts';
import { createRenewalService } from './renewal.service.ts';
import { createPlanService } from './plan.service.ts';
import { balance } from './command-balance.ts';
import { type Repositories } from '../db/repositories.ts';
import { hasPlan, nextUnpaid, openPart, paidMinor, payableAt } from '../domain/order-plan.ts';
import { type RefundService } from './refund.service.ts';

/** Stable outcome codes; the reply's wording is chosen by them (templates/locales/<lc>/mail.json). */
export const COMMAND_CODES = [
  'COMMAND_STATUS',
  'COMMAND_CANCELLED',
  /** CANCEL of a partly paid order (issue 13 part 1) without REFUND or KEEP: nothing done, the reply asks which. */
  'COMMAND_CANCEL_CHOICE',
  /** CANCEL <ref> REFUND: the partly paid order cancelled and each paid part refunded in full. */
  'COMMAND_CANCELLED_REFUNDED',
  /** CANCEL <ref> KEEP: the partly paid order cancelled, what was paid kept. */
  'COMMAND_CANCELLED_KEPT',
  'COMMAND_RESENT',
  /** RESEND <ref> new@address: the customer's address corrected, the pay-link sent there (issue 13 part 8). */
  'COMMAND_RESENT_TO',
  /** RESEND <ref> <address> whose address is none: the reply names the problem. */
  'COMMAND_EMAIL_INVALID',
  'COMMAND_EXTENDED',
  /** EXTEND asked for an expiry earlier than the current one: extending never shortens a link. */
  'COMMAND_EXPIRY_KEPT',
  'COMMAND_ORDER_NOT_FOUND',
  'COMMAND_ALREADY_PAID',
  'COMMAND_ALREADY_CANCELLED',
  'COMMAND_ORDER_EXPIRED',
  'COMMAND_DURATION_INVALID',
  /** EXTEND on an expired order: open again with the new expiry, the customer mailed the new link (issue 13 part 4). */
  'COMMAND_RENEWED',
  /** BALANCE (issue 13 part 1): the next part of an order paid in parts opened, its link mailed. */
  'COMMAND_BALANCE_SENT',
  /** BALANCE when the next part's link is open already: nothing mailed again. */
  'COMMAND_BALANCE_OPEN',
  /** BALANCE while the deposit (the first part) is not paid yet. */
  'COMMAND_DEPOSIT_UNPAID',
  /** BALANCE of an order not paid in parts. */
  'COMMAND_NO_PLAN',
  /** BALANCE <ref> <duration> whose duration cannot be read. */
  'COMMAND_BALANCE_DURATION_INVALID',
] as const;
export type CommandCode = (typeof COMMAND_CODES)[number];

export interface CommandServiceDeps {
  /** The storage seam (src/db/repositories.ts). */
  repos: Repositories;
  orders: OrderService;
  mailDomain: string;
  maxLinkLifetimeDays: number;
  /** Webhooks: order.cancelled (deduplicated per order by the events service). */
  events?: OrderEvents;
  /** CANCEL <ref> REFUND of a partly paid order: each paid part refunded in full. */
  refunds?: Pick<RefundService, 'refundAll'>;
  now?: () => Date;
}

export interface CommandContext {
  /** The stored inbound message carrying the command: the idempotency key of its effects. */
  inboundId: string;
  messageId?: string | undefined;
  subject: string;
}

export interface CommandResult {
  code: CommandCode;
  orderId?: string;
}

/**
 * The amount a reply shows, and when it was paid: the order's amount (due, or paid); for an
 * order paid in parts (issue 13 part 1) the part due now, or what was paid so far while the next
 * part waits.
 */
function replyAmount(order: OrderDoc): { amountMinor: number; paidAt?: string } {
  const paidAt = order.payment?.paidAt ? { paidAt: order.payment.paidAt.toISOString() } : {};
  if (!hasPlan(order) || order.status === 'paid') return { amountMinor: order.amountMinor, ...paidAt };
  const open = openPart(order);
  if (open) return { amountMinor: open.amountMinor };
  return order.status === 'partially_paid' ? { amountMinor: paidMinor(order), ...paidAt } : { amountMinor: order.amountMinor, ...paidAt };
}

/** What the STATUS reply shows of an order's payment attempts. */
function attemptsSummary(order: OrderDoc) {
  const attempts = (order.attempts ?? []).filter((a) => a.outcome !== 'lost-race');
  const last = attempts.reduce<(typeof attempts)[number] | undefined>((l, a) => (!l || a.at > l.at ? a : l), undefined);
  return {
    total: attempts.length,
    declined: attempts.filter((a) => a.outcome === 'declined').length,
    ...(last ? { lastOutcome: last.outcome, lastAt: last.at.toISOString() } : {}),
  };
}

export function createCommandService(deps: CommandServiceDeps) {
  const now = deps.now ?? (() => new Date());
  const transitions = createOrderTransitions({ repos: deps.repos, events: deps.events, now });
  const { orders, claims } = deps.repos;
  const renewals = createRenewalService({ repos: deps.repos, mailDomain: deps.mailDomain, maxLinkLifetimeDays: deps.maxLinkLifetimeDays, linkFor: (o) => deps.orders.linkFor(o), events: deps.events, now });
  const plans = createPlanService({ repos: deps.repos, payLinks: deps.orders, maxLinkLifetimeDays: deps.maxLinkLifetimeDays, now });

  /** The order a reference names: the open one, else the newest with it; also by order id. */
  async function findOrder(merchantId: string, ref: string): Promise<OrderDoc | null> {
    const open = await orders.openByReference(merchantId, ref);
    if (open) return open;
    // Merchants retype references from memory: "ord-12" finds "ORD-12".
    return (
      (await orders.newestByReference(merchantId, ref)) ??
      (await orders.newestByReference(merchantId, ref, { anyCase: true })) ??
      (await orders.ofMerchant(merchantId, ref))
    );
  }

  /** Status as the merchant sees it: a pending order past its expiry is expired. */
  const shownStatus = (o: OrderDoc, at: Date) => (o.status === 'pending' && o.expiresAt <= at ? 'expired' : o.status);

  /**
   * CANCEL <ref> [REFUND|KEEP]. A partly paid order (issue 13 part 1) is cancelled only with REFUND
   * (each paid part refunded in full, the refunds made by `command:<message>`) or KEEP; its close
   * claim is the one of its next unpaid part, which that part's payment would take.
   */
  async function cancel(order: OrderDoc, argument: string | undefined, ctx: CommandContext, merchant: MerchantDoc, at: Date): Promise<CommandCode> {
    if (order.status === 'paid') return 'COMMAND_ALREADY_PAID';
    if (order.status === 'expired') return 'COMMAND_ORDER_EXPIRED';
    const paidParts = paidMinor(order) > 0;
    if (order.status === 'partially_paid' && !argument) return 'COMMAND_CANCEL_CHOICE';
    const owner = `inbound:${ctx.inboundId}`;
    const seq = nextUnpaid(order)?.seq ?? 1;
    // The same referee as a payment: whoever inserts the close claim first decides the order. A
    // claim of ours is this message's (now, or before a crash): finishing it is idempotent.
    const held = await transitions.claimCancel(order._id, owner, at, seq);
    if (held.owner !== owner) {
      const current = await orders.byId(order._id);
      if (current?.status === 'cancelled') return 'COMMAND_ALREADY_CANCELLED';
      // The claim belongs to a payment (possibly still being recorded) or to the expiry.
      return current?.status === 'expired' ? 'COMMAND_ORDER_EXPIRED' : 'COMMAND_ALREADY_PAID';
    }
    await transitions.finishCancelled(order._id, held.cancelledAt, seq);
    if (!paidParts) return 'COMMAND_CANCELLED';
    // Run again on a redelivery: only what is still refundable is refunded.
    if (argument === 'REFUND' && deps.refunds) await deps.refunds.refundAll(merchant, order._id, { by: `command:${ctx.inboundId}`, reason: 'order cancelled' });
    return argument === 'REFUND' ? 'COMMAND_CANCELLED_REFUNDED' : 'COMMAND_CANCELLED_KEPT';
  }

  /** EXTEND of an expired order: renewed (expired -> pending), the customer mailed the new link. */
  async function renewExpired(order: OrderDoc, argument: string | undefined, ctx: CommandContext, merchant: MerchantDoc, at: Date) {
    const r = parseExpiry(argument ?? '', { now: at, maxLifetimeDays: deps.maxLinkLifetimeDays, timeZone: merchant.timezone });
    if (!r.ok) return { code: 'COMMAND_DURATION_INVALID', message: r.message } as const;
    const out = await renewals.renew(order, merchant, r.expiresAt, `command:${ctx.inboundId}`);
    if (out.kind === 'renewed') return { code: 'COMMAND_RENEWED', capped: r.capped } as const;
    const current = out.kind === 'not-expired' ? out.order : order;
    // Renewed before by this very message (a redelivery), or closed otherwise meanwhile.
    if (current.status === 'pending' && current.expiresAt > at) return { code: 'COMMAND_RENEWED', capped: false } as const;
    return { code: current.status === 'paid' ? 'COMMAND_ALREADY_PAID' : current.status === 'cancelled' ? 'COMMAND_ALREADY_CANCELLED' : 'COMMAND_ORDER_EXPIRED' } as const;
  }

  async function extend(order: OrderDoc, argument: string | undefined, ctx: CommandContext, merchant: MerchantDoc, at: Date) {
    if (order.status === 'expired') return renewExpired(order, argument, ctx, merchant, at);
    if (order.status !== 'pending' && !(order.status === 'partially_paid' && payableAt(order, at))) {
      return { code: order.status === 'paid' ? 'COMMAND_ALREADY_PAID' : order.status === 'cancelled' ? 'COMMAND_ALREADY_CANCELLED' : 'COMMAND_ORDER_EXPIRED' } as const;
    }
    // The new expiry is fixed by the first processing of this message and replayed after that.
    const key = `command:${ctx.inboundId}:extend`;
    type Decided = { expiresAt: Date; capped: boolean; previousExpiresAt?: Date; kept?: boolean };
    const existing = await claims.get(key);
    let decided = existing?.payload as Decided | undefined;
    if (!decided) {
      const r = parseExpiry(argument ?? '', { now: at, maxLifetimeDays: deps.maxLinkLifetimeDays, timeZone: merchant.timezone });
      if (!r.ok) return { code: 'COMMAND_DURATION_INVALID', message: r.message } as const;
      // Extending never shortens: the later of the current expiry and now + the duration (a
      // shorter expiry is set in the back office).
      const kept = r.expiresAt.getTime() <= order.expiresAt.getTime();
      decided = { expiresAt: kept ? order.expiresAt : r.expiresAt, capped: r.capped && !kept, previousExpiresAt: order.expiresAt, kept };
      if (!(await claims.once(key, { kind: 'command-extend', subject: order._id, payload: { ...decided } }, at))) {
        decided = (await claims.get(key))!.payload as unknown as Decided;
      }
    }
    const expiresAt = new Date(decided.expiresAt);
    const previousExpiresAt = new Date(decided.previousExpiresAt ?? order.expiresAt);
    if (!decided.kept) {
      // Only over the expiry it was decided from: a replay after it was applied, or a change made
      // meanwhile (the back office, a payment), is left as it is.
      await orders.extendExpiry(order._id, { expiresAt: previousExpiresAt }, expiresAt);
    }
    await claims.markApplied(key);
    return { code: decided.kept ? 'COMMAND_EXPIRY_KEPT' : 'COMMAND_EXTENDED', capped: decided.capped, previousExpiresAt } as const;
  }

  async function execute(merchant: MerchantDoc, cmd: ParsedCommand, ctx: CommandContext): Promise<CommandResult> {
    const at = now();
    const found = await findOrder(merchant._id, cmd.reference);
    let code: CommandCode;
    const extra: Record<string, unknown> = {};
    if (!found) code = 'COMMAND_ORDER_NOT_FOUND';
    else if (cmd.verb === 'STATUS') code = 'COMMAND_STATUS';
    else if (cmd.verb === 'CANCEL') code = await cancel(found, cmd.argument, ctx, merchant, at);
    else if (cmd.verb === 'BALANCE') {
      const r = await balance({ repos: deps.repos, plans, maxLinkLifetimeDays: deps.maxLinkLifetimeDays }, found, cmd.argument, ctx, merchant, at);
      code = r.code;
      if ('capped' in r && r.capped) extra.capped = true;
      if ('resentTo' in r) extra.resentTo = r.resentTo;
      if ('part' in r) extra.part = r.part;
      if ('message' in r) extra.message = r.message;
    }
    else if (cmd.verb === 'EXTEND') {
      // A partly paid order with no valid link open: EXTEND sends its next part, as BALANCE does.
      const partLink = found.status === 'partially_paid' && payableAt(found, at);
      const r = found.status === 'partially_paid' && !partLink
        ? await balance({ repos: deps.repos, plans, maxLinkLifetimeDays: deps.maxLinkLifetimeDays }, found, cmd.argument, ctx, merchant, at)
        : await extend(found, cmd.argument, ctx, merchant, at);
      code = r.code;
      if ('capped' in r && r.capped) extra.capped = true;
      if ('previousExpiresAt' in r && r.previousExpiresAt) extra.previousExpiresAt = r.previousExpiresAt.toISOString();
      if ('message' in r) extra.message = r.message;
    } else if (cmd.argument) {
      // An open part of a partly paid order takes a corrected address like a pending order.
      const r = await resendTo(deps, found, merchant, cmd.argument, ctx, payableAt(found, at) ? 'pending' : shownStatus(found, at), at);
      code = r.code;
      if ('resentTo' in r) extra.resentTo = r.resentTo;
      if ('message' in r) extra.message = r.message;
    } else {
      const status = shownStatus(found, at);
      if (status === 'pending') {
        const toCustomer = found.delivery === 'customer' && !!found.customer?.email;
        await deps.orders.queuePayLinkMail(found, merchant, {
          dedupeKey: `paylink:${found._id}:resend:${ctx.inboundId}`,
          ...(ctx.messageId ? { inReplyTo: ctx.messageId } : {}),
        });
        extra.resentTo = toCustomer ? found.customer!.email : merchant.email;
        code = 'COMMAND_RESENT';
      } else code = status === 'paid' ? 'COMMAND_ALREADY_PAID' : status === 'cancelled' ? 'COMMAND_ALREADY_CANCELLED' : 'COMMAND_ORDER_EXPIRED';
    }
    // Re-read: the reply shows the order as the command left it.
    const order = found ? ((await orders.byId(found._id)) ?? found) : undefined;
    await enqueueMail(
      {
        dedupeKey: `command-reply:${ctx.inboundId}`,
        template: 'command-reply',
        locale: merchant.locale,
        to: [merchant.email],
        ...(ctx.messageId ? { inReplyTo: ctx.messageId, references: [ctx.messageId] } : {}),
        merchantId: merchant._id,
        ...(order ? { orderId: order._id } : {}),
        data: {
          subject: ctx.subject,
          command: cmd.verb,
          reference: cmd.reference,
          ...(cmd.argument ? { argument: cmd.argument } : {}),
          code,
          ...extra,
          // What a partly paid order was paid: the CANCEL reply tells it (issue 13 part 1).
          ...(found && paidMinor(found) > 0 && found.status !== 'paid' ? { paidMinor: paidMinor(found) } : {}),
          ...(order
            ? {
                order: {
                  reference: order.reference,
                  status: shownStatus(order, at),
                  ...replyAmount(order),
                  currency: order.currency,
                  // A link only where it can still be paid (a part-paid order's open part included).
                  link: payableAt(order, at) ? deps.orders.linkFor(order) : '',
                  expiresAt: order.expiresAt.toISOString(),
                  attempts: attemptsSummary(order),
                },
              }
            : {}),
          timeZone: merchant.timezone,
        },
      },
      deps.mailDomain,
      deps.repos.outbox,
    );
    return { code, ...(order ? { orderId: order._id } : {}) };
  }

  return { execute, findOrder };
}
export type CommandService = ReturnType<typeof createCommandService>;
