// A way back from an expired link (issue 13, part 4).
//
// The customer asks for a new link on the expired page (`request`): once per expiry of the order
// (claim `renewal-request:<orderId>:<generation>`, generation = renewals so far), so the form cannot
// be used to flood the merchant. Then either the merchant is mailed (template link-request: the
// order, `EXTEND <ref> 7 days`, the back-office link) or, when the merchant chose automatic renewal
// (settings: N days) and this order was not renewed automatically before, the link is renewed at
// once.
//
// `renew` is the transition expired -> pending, in the steps of every transition here:
//   1. claim `order:<id>:renew:<generation>` (one winner; the payload fixes the new expiry),
//   2. free the order's close claim (`order:<id>:close`, kind order-expire) so a payment, a
//      cancellation or the next expiry can take it again,
//   3. the conditional update expired -> pending from the expiry that was read (reference open again),
//   4. the customer's renewed link (outbox key `renewed:<orderId>:<generation>`) and `order.renewed`
//      (event key `order.renewed:<orderId>:<generation>`),
//   5. mark the claim applied.
// A crash between steps leaves an unapplied claim; running `renew` again for the same generation
// (another EXTEND, the button, the customer's next request, or `repair`) finishes it: each step
// finds its work done or does it, nothing happens twice.
import { type MerchantDoc } from '../db/merchants.repository.ts';
import { type OrderDoc } from '../db/orders.repository.ts';
import { type Repositories } from '../db/repositories.ts';
import { AppError } from '../domain/errors.ts';
import { isCollecting } from '../domain/order-plan.ts';
import { reminderSettingsOf, reminderSlots } from '../domain/reminders.ts';
import { enqueueMail } from '../mail/outbox.ts';
import { inboundAddress } from './merchant.service.ts';
import { orderFacts } from './order-transitions.ts';

const DAY = 86_400_000;
export const RENEW_KIND = 'order-renew';

/** Webhooks of a renewal (the events service has it). */
export interface RenewalEvents {
  orderRenewed?(order: OrderDoc, merchant: MerchantDoc, renewal: { generation: number; by: string }): Promise<unknown>;
}

export interface RenewalServiceDeps {
  repos: Repositories;
  mailDomain: string;
  /** PUBLIC_URL, for the back-office link in the merchant's mail (needed by `request` only). */
  publicUrl?: string;
  maxLinkLifetimeDays: number;
  /** The pay-link of an order (src/services/order.service.ts linkFor). */
  linkFor: (order: OrderDoc) => string;
  events?: RenewalEvents | undefined;
  now?: () => Date;
}

export type RequestOutcome =
  /** The merchant was mailed; `email` is where the renewed link will go. */
  | { kind: 'asked'; email: string }
  /** Renewed at once (the merchant's automatic renewal); the link was mailed to `email`. */
  | { kind: 'renewed'; email: string; order: OrderDoc }
  /** Asked before for this expiry. */
  | { kind: 'already-asked'; email: string }
  /** The order is open again (renewed meanwhile), paid or cancelled: nothing to ask. */
  | { kind: 'not-expired'; order: OrderDoc };

export type RenewOutcome = { kind: 'renewed'; order: OrderDoc; generation: number } | { kind: 'not-expired'; order: OrderDoc } | { kind: 'reference-taken' };

export const renewClaimKey = (orderId: string, generation: number): string => `order:${orderId}:renew:${generation}`;
export const renewalRequestKey = (orderId: string, generation: number): string => `renewal-request:${orderId}:${generation}`;
const generationOf = (o: Pick<OrderDoc, 'renewals'>): number => o.renewals?.length ?? 0;

export function createRenewalService(deps: RenewalServiceDeps) {
  const now = deps.now ?? (() => new Date());
  const { orders, claims } = deps.repos;
  const backofficeLink = (o: OrderDoc) => `${(deps.publicUrl ?? '').replace(/\/+$/, '')}/backoffice/orders/${encodeURIComponent(o._id)}`;

  /**
   * An expired order (or a pending one past its expiry that the expiry job has not closed yet), or
   * a partly paid order whose open part's link lapsed (issue 13 part 1: the order itself never
   * expires; its part is extended in place like a pending order).
   */
  const isExpired = (o: OrderDoc, at: Date) => o.status === 'expired' || (isCollecting(o) && o.expiresAt.getTime() <= at.getTime());

  /**
   * The renewal of `order` to `expiresAt` (capped at the maximum link lifetime). `by` says who
   * renewed it ('merchant:<user>', 'command:<inboundId>', 'auto'). An order still pending (not yet
   * closed by the expiry job) is extended instead, and its link mailed the same way.
   */
  async function renew(order: OrderDoc, merchant: MerchantDoc, expiresAt: Date, by: string): Promise<RenewOutcome> {
    const at = now();
    const max = new Date(at.getTime() + deps.maxLinkLifetimeDays * DAY);
    const wanted = expiresAt > max ? max : expiresAt;
    if (wanted.getTime() <= at.getTime()) throw new AppError('ORDER_EXPIRY_PAST', 'the new expiry is in the past', { httpStatus: 422 });
    if (!isExpired(order, at)) return { kind: 'not-expired', order };
    const generation = generationOf(order);
    const key = renewClaimKey(order._id, generation);
    type Decided = { expiresAt: Date; previousExpiredAt: Date | null; by: string; previousStatus: string; previousExpiresAt: Date };
    if (!(await claims.once(key, { kind: RENEW_KIND, subject: order._id, payload: { expiresAt: wanted, previousExpiredAt: order.expiredAt ?? null, by, previousStatus: order.status, previousExpiresAt: order.expiresAt } }, at))) {
      const held = await claims.get(key);
      // Finished before: the order as it is now.
      if (held?.applied) {
        const current = await orders.byId(order._id);
        return current ? { kind: 'not-expired', order: current } : { kind: 'reference-taken' };
      }
    }
    const d = (await claims.get(key))!.payload as unknown as Decided;
    return finish(order._id, merchant, generation, { ...d, expiresAt: new Date(d.expiresAt), previousExpiresAt: new Date(d.previousExpiresAt), previousExpiredAt: d.previousExpiredAt ? new Date(d.previousExpiredAt) : null });
  }

  /** Steps 2-5 of a renewal whose claim is taken (live, or again after a crash). */
  async function finish(orderId: string, merchant: MerchantDoc, generation: number, d: { expiresAt: Date; previousExpiredAt: Date | null; by: string; previousStatus: string; previousExpiresAt: Date }): Promise<RenewOutcome> {
    const key = renewClaimKey(orderId, generation);
    const at = now();
    let order = await orders.byId(orderId);
    if (!order) return { kind: 'reference-taken' };
    const renewal = { at, expiresAt: d.expiresAt, ...(d.previousExpiredAt ? { previousExpiredAt: d.previousExpiredAt } : {}), by: d.by };
    const firstReminder = (o: OrderDoc) =>
      o.customer?.email ? reminderSlots({ createdAt: at, expiresAt: d.expiresAt, viewedAt: o.viewedAt, plan: o.reminderPlan }, reminderSettingsOf(merchant))[0]?.at : undefined;
    const open = (s: string) => s === 'pending' || s === 'partially_paid';
    const applied = () => open(order!.status) && order!.expiresAt.getTime() === d.expiresAt.getTime();
    if (!applied()) {
      if (open(d.previousStatus)) {
        // Not closed yet by the expiry job: extended in place (the expiry job then leaves it open).
        order = (await orders.extendExpiry(orderId, { expiresAt: d.previousExpiresAt }, d.expiresAt, at)) ?? (await orders.byId(orderId));
        if (order?.status === 'expired') return finish(orderId, merchant, generation, { ...d, previousStatus: 'expired', previousExpiredAt: order.expiredAt ?? null });
      } else if (order.status === 'expired') {
        // Step 2: the expiry is undone, so the order can close again.
        await deps.repos.closes.undoExpiry(orderId);
        try {
          order = (await orders.reopenExpired({ _id: orderId, reference: order.reference, expiredAt: d.previousExpiredAt }, renewal, firstReminder(order))) ?? (await orders.byId(orderId));
        } catch (e) {
          // Another open order has this reference now: the merchant sends a new order instead.
          if ((e as { code?: number }).code !== 11000) throw e;
          await claims.markApplied(key);
          return { kind: 'reference-taken' };
        }
      }
    }
    if (!order || !applied()) {
      // Something else happened first (paid, cancelled, changed): nothing more to do.
      await claims.markApplied(key);
      return order ? { kind: 'not-expired', order } : { kind: 'reference-taken' };
    }
    const email = order.customer?.email ?? order.renewalRequest?.email ?? undefined;
    await enqueueMail(
      {
        dedupeKey: `renewed:${orderId}:${generation}`,
        template: 'link-renewed',
        locale: order.locale,
        to: [email ?? merchant.email],
        ...(email ? { cc: [merchant.email] } : {}),
        replyTo: merchant.email,
        merchantId: merchant._id,
        orderId,
        data: { ...orderFacts(order, merchant), link: deps.linkFor(order) },
      },
      deps.mailDomain,
      deps.repos.outbox,
    );
    await deps.events?.orderRenewed?.(order, merchant, { generation, by: d.by });
    await claims.markApplied(key);
    return { kind: 'renewed', order, generation };
  }

  /** The customer's "Ask for a new link" on the expired page. */
  async function request(order: OrderDoc, merchant: MerchantDoc, email: string | undefined): Promise<RequestOutcome> {
    const at = now();
    if (!isExpired(order, at)) return { kind: 'not-expired', order };
    const to = order.customer?.email ?? email;
    if (!to) throw new AppError('RENEWAL_EMAIL_REQUIRED', 'an e-mail address is needed to send the new link', { httpStatus: 422 });
    const generation = generationOf(order);
    if (!(await claims.once(renewalRequestKey(order._id, generation), { kind: 'renewal-request', subject: order._id, payload: { email: to } }, at))) {
      const held = await claims.get(renewalRequestKey(order._id, generation));
      if (held?.applied) return { kind: 'already-asked', email: String((held.payload as { email?: string } | undefined)?.email ?? to) };
      // A request interrupted by a crash: finished now (each step below is idempotent).
    }
    const recorded = (await orders.recordRenewalRequest(order._id, { at, email: to, generation })) ?? order;
    // The merchant's settings as they are now (the caller's copy may come from a cache).
    const autoDays = (await deps.repos.merchants.findById(merchant._id))?.autoRenewDays ?? 0;
    const autoBefore = (order.renewals ?? []).some((r) => r.by === 'auto');
    if (autoDays > 0 && !autoBefore) {
      const r = await renew(recorded, merchant, new Date(at.getTime() + autoDays * DAY), 'auto');
      await claims.markApplied(renewalRequestKey(order._id, generation));
      if (r.kind === 'renewed') return { kind: 'renewed', email: to, order: r.order };
      if (r.kind === 'not-expired') return { kind: 'not-expired', order: r.order };
      // The reference is taken by another open order: the merchant decides after all.
    }
    await enqueueMail(
      {
        dedupeKey: `link-request:${order._id}:${generation}`,
        template: 'link-request',
        locale: merchant.locale,
        to: [merchant.email],
        // The merchant's reply ("EXTEND <ref> 7 days") goes to the merchant's order address, where
        // reply commands are read (src/domain/commands.ts).
        replyTo: inboundAddress(merchant.alias, deps.mailDomain),
        merchantId: merchant._id,
        orderId: order._id,
        data: { ...orderFacts(recorded, merchant), customerEmail: to, backofficeLink: backofficeLink(order) },
      },
      deps.mailDomain,
      deps.repos.outbox,
    );
    await claims.markApplied(renewalRequestKey(order._id, generation));
    return { kind: 'asked', email: to };
  }

  /** Renewals a crash left unfinished (claims older than a minute): finished now. */
  async function repair(): Promise<number> {
    let n = 0;
    for (const c of await claims.unapplied(RENEW_KIND, 60_000, now())) {
      const m = /^order:(.+):renew:(\d+)$/.exec(String(c._id));
      const order = m ? await orders.byId(m[1]!) : null;
      const merchant = order ? await deps.repos.merchants.findById(order.merchantId) : null;
      if (!order || !merchant) continue;
      const d = c.payload as { expiresAt: Date; previousExpiredAt: Date | null; by: string; previousStatus: string; previousExpiresAt: Date };
      const r = await finish(order._id, merchant, Number(m![2]), { ...d, expiresAt: new Date(d.expiresAt), previousExpiresAt: new Date(d.previousExpiresAt), previousExpiredAt: d.previousExpiredAt ? new Date(d.previousExpiredAt) : null });
      if (r.kind === 'renewed') n++;
    }
    return n;
  }

  return { renew, request, repair, isExpired };
}
export type RenewalService = ReturnType<typeof createRenewalService>;
