// Expiry and reminders, by query on the orders: FerretDB has no TTL index, and an order must
// change state (and tell people) rather than vanish. ONE indexed query per pass (pendingDue: an
// $or of {status, expiresAt} and {status, remindAt}) serves both: on FerretDB every such filter
// reads the whole orders collection, so a second one would double the pass's cost.
// - Expire: a pending order whose expiresAt has passed becomes 'expired'. The order's close claim
//   (`order:<id>:close`, shared with payment and cancellation) decides, so an order that is being
//   paid at the same moment closes exactly once. Then order.expired fires and the merchant is
//   mailed (template order-expired). A crash after the claim is finished by the next run.
// - Remind (issue 13 part 3): an order whose `remindAt` has come is looked at with the merchant's
//   settings of now (src/domain/reminders.ts): the due slot's reminder goes to the customer, at most
//   one per order per local day (claim `reminder-day:<orderId>:<date>`, one winner across
//   instances), each slot once (outbox dedupe key `reminder:<orderId>:<slot>`, and the slot recorded
//   on the order), then `remindAt` moves to the next slot. A crash between the claim and the record
//   is finished by a later pass (the claim names the slot). Never after payment, cancellation or
//   expiry (only pending orders are read), never without the customer's address or after the
//   customer unsubscribed (the link and List-Unsubscribe header in every reminder).
import { type MerchantDoc } from '../db/merchants.repository.ts';
import { type OrderDoc } from '../db/orders.repository.ts';
import { localDate } from '../domain/local-day.ts';
import { openPart } from '../domain/order-plan.ts';
import { decideReminder, reminderSettingsOf, type Slot } from '../domain/reminders.ts';
import { type Logger } from '../logger.ts';
import { enqueueMail } from '../mail/outbox.ts';
import { type EventsService } from '../services/events.service.ts';
import { createOrderTransitions, orderFacts, type FaultHook } from '../services/order-transitions.ts';
import { createPollLoop } from './poll-loop.ts';
import { type Repositories } from '../db/repositories.ts';

const BATCH = 200;
/** A reminder claim unfinished this long is taken to be a crash, and finished by whoever meets it. */
const REMINDER_REPAIR_MS = 60_000;

export interface ExpiryJobDeps {
  /** The storage seam (src/db/repositories.ts). */
  repos: Repositories;
  events: EventsService;
  mailDomain: string;
  /** The pay-link of an order, for the reminder. */
  linkFor: (order: OrderDoc) => string;
  /** The customer's stop-reminders link of an order (src/domain/reminder-link.ts); none when absent. */
  remindersOffFor?: (order: OrderDoc) => string;
  logger: Logger;
  intervalMs?: number;
  now?: () => Date;
  owner?: string;
  /** Orders expired, and reminders queued, per pass (default 200). */
  batch?: number;
  /** Test hook at every step boundary of an expiry (FAULT_POINTS.expire) and of a reminder ('remind:claimed', 'remind:queued'). */
  faults?: FaultHook;
}

export interface ExpiryRun {
  expired: number;
  reminded: number;
}

/** The outbox dedupe key of one reminder slot of an order: each slot is mailed once. */
export const reminderKey = (orderId: string, slot: string): string => `reminder:${orderId}:${slot}`;
/** The claim of an order's one reminder of a local day (across instances). */
export const reminderDayKey = (orderId: string, day: string): string => `reminder-day:${orderId}:${day}`;
export const REMINDER_DAY_KIND = 'reminder-day';

export function createExpiryJob(deps: ExpiryJobDeps) {
  const now = deps.now ?? (() => new Date());
  const log = deps.logger.child({ component: 'expiry-job' });
  const batch = deps.batch ?? BATCH;
  const merchants = new Map<string, MerchantDoc | null>();
  const transitions = createOrderTransitions({ repos: deps.repos, events: deps.events, mailDomain: deps.mailDomain, faults: deps.faults, now });
  const { orders, claims } = deps.repos;
  const fault = async (point: string) => {
    if (deps.faults) await deps.faults(point);
  };

  async function merchantOf(id: string): Promise<MerchantDoc | null> {
    // Per run only: a merchant's address or settings may change between runs.
    if (!merchants.has(id)) merchants.set(id, await deps.repos.merchants.findById(id));
    return merchants.get(id) ?? null;
  }

  async function expireDue(at: Date, due: OrderDoc[]): Promise<number> {
    let expired = 0;
    // Expiries a run left unfinished (it crashed, or a write failed): finished now, each side
    // effect once (src/services/order-transitions.ts).
    for (const c of await deps.repos.closes.unfinished<{ expiredAt?: Date }>('expired', 60_000, at)) {
      if (await transitions.finishExpired(c.orderId, new Date(c.payload?.expiredAt ?? c.at))) expired++;
    }
    for (const { _id } of due.slice(0, batch)) {
      // Lost: a payment, a cancellation or another instance closed this order first.
      if (!(await transitions.claimExpiry(_id, at, deps.owner))) continue;
      if (await transitions.finishExpired(_id, at)) expired++;
    }
    return expired;
  }

  /** Queues the reminder of `slot`, records it on the order with the next check, marks the day's claim. */
  async function sendReminder(order: OrderDoc, merchant: MerchantDoc, slot: Pick<Slot, 'slot' | 'kind' | 'days'> & { at: Date }, dayKey: string, next: Date | undefined, at: Date) {
    const offLink = deps.remindersOffFor?.(order);
    await enqueueMail(
      {
        dedupeKey: reminderKey(order._id, slot.slot),
        template: 'reminder',
        locale: order.locale,
        to: [order.customer!.email!],
        replyTo: merchant.email,
        merchantId: merchant._id,
        orderId: order._id,
        ...(offLink ? { listUnsubscribe: offLink } : {}),
        data: {
          ...orderFacts(order, merchant),
          link: deps.linkFor(order),
          kind: slot.kind,
          ...(slot.days ? { daysBefore: slot.days } : {}),
          ...(offLink ? { remindersOffLink: offLink } : {}),
        },
      },
      deps.mailDomain,
      deps.repos.outbox,
    );
    await fault('remind:queued');
    await orders.recordReminder(order._id, { slot: slot.slot, slotAt: slot.at, at }, next);
    await claims.markApplied(dayKey);
  }

  /** Looks at one order whose reminder check has come; true when a reminder was queued. */
  async function remindOne(order: OrderDoc, at: Date): Promise<boolean> {
    const merchant = await merchantOf(order.merchantId);
    if (!merchant) return false;
    // Paid in parts (issue 13 part 1): only an open part's link, still valid, is reminded of.
    const part = order.status === 'partially_paid' ? openPart(order) : undefined;
    if (order.status === 'partially_paid' && (!part || order.expiresAt.getTime() <= at.getTime())) {
      await orders.setRemindAt(order._id, order.remindAt, undefined);
      return false;
    }
    // A renewed order's slots count from its last renewal (its link was just mailed then); an open
    // part's from when its link went out.
    const renewed = part?.requestedAt ?? order.renewals?.at(-1)?.at;
    const created = renewed ? new Date(renewed) : ((order as { createdAt?: Date }).createdAt ?? at);
    const decision = decideReminder(
      {
        createdAt: created,
        expiresAt: order.expiresAt,
        viewedAt: order.viewedAt,
        customerEmail: order.customer?.email,
        plan: order.reminderPlan,
        sent: order.reminders,
        unsubscribedAt: order.remindersOffAt,
      },
      reminderSettingsOf(merchant),
      at,
      merchant.timezone,
    );
    if (!decision.send) {
      await orders.setRemindAt(order._id, order.remindAt, decision.next);
      return false;
    }
    const slot = decision.send;
    const dayKey = reminderDayKey(order._id, localDate(at, merchant.timezone));
    if (!(await claims.once(dayKey, { kind: REMINDER_DAY_KIND, subject: order._id, ...(deps.owner ? { owner: deps.owner } : {}), payload: { slot: slot.slot, slotAt: slot.at, kind: slot.kind, days: slot.days ?? null } }, at))) {
      const held = await claims.get(dayKey);
      const p = held?.payload as { slot?: string } | undefined;
      if (held && !held.applied && p?.slot === slot.slot) {
        // Another instance is sending this very reminder now; if it crashed, finish it after a while.
        if (at.getTime() - new Date(held.at).getTime() < REMINDER_REPAIR_MS) return false;
        await sendReminder(order, merchant, { ...slot }, dayKey, decision.next, at);
        return true;
      }
      // Today's reminder went out already (another slot): this one waits for the next day.
      const later = decideReminder(
        { createdAt: created, expiresAt: order.expiresAt, viewedAt: order.viewedAt, customerEmail: order.customer?.email, plan: order.reminderPlan, sent: [...(order.reminders ?? []), { slot: String(p?.slot ?? ''), slotAt: new Date(0), at }], unsubscribedAt: order.remindersOffAt },
        reminderSettingsOf(merchant),
        at,
        merchant.timezone,
      );
      await orders.setRemindAt(order._id, order.remindAt, later.next);
      return false;
    }
    await fault('remind:claimed');
    await sendReminder(order, merchant, slot, dayKey, decision.next, at);
    return true;
  }

  async function remindDue(at: Date, due: OrderDoc[]): Promise<number> {
    let queued = 0;
    for (const order of due) {
      // The batch bounds the mails queued per pass; the rest are met by the next pass.
      if (queued >= batch) break;
      try {
        if (await remindOne(order, at)) queued++;
      } catch (err) {
        log.error({ err, orderId: order._id }, 'reminder failed');
      }
    }
    return queued;
  }

  /** Orders from before reminder checks existed: scheduled once per process start. */
  let legacyScheduled = false;

  /** One pass: one query, then expire what is due and remind. */
  async function runOnce(): Promise<ExpiryRun> {
    merchants.clear();
    const at = now();
    if (!legacyScheduled) {
      await orders.scheduleUnscheduled(at, 24 * 3_600_000);
      legacyScheduled = true;
    }
    const found = await orders.pendingDue(at);
    const expiring = found.filter((o) => o.status === 'pending' && o.expiresAt.getTime() <= at.getTime());
    // A partly paid order is never expired here: its open part's link lapses, the order stays.
    const reminding = found.filter((o) => !expiring.includes(o) && o.remindAt && o.remindAt.getTime() <= at.getTime());
    const expired = await expireDue(at, expiring);
    const remindedNow = await remindDue(at, reminding);
    if (expired || remindedNow) log.info({ expired, reminded: remindedNow }, 'expiry pass');
    return { expired, reminded: remindedNow };
  }

  const loop = createPollLoop(
    async () => {
      await runOnce();
    },
    deps.intervalMs ?? 30_000,
    (err) => log.error({ err }, 'expiry pass failed'),
  );

  return { runOnce, start: () => loop.start(), stop: () => loop.stop() };
}
export type ExpiryJob = ReturnType<typeof createExpiryJob>;
