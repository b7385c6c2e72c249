// Expiry and reminders, by query on (status, expiresAt): FerretDB has no TTL index, and an order
// must change state (and tell people) rather than vanish.
// - Expire: a pending order whose expiresAt has passed becomes 'expired'. The order's close claim
//   (`order:<id>:close`, shared with payment and cancellation) decides, so an order that is being
//   paid at the same moment closes exactly once. Then order.expired fires and the merchant is
//   mailed (template order-expired). A crash after the claim is finished by the next run.
// - Remind: once, 24 hours before expiry, the customer gets a reminder with the link when their
//   address is known and the order is still pending. The outbox dedupe key `reminder:<orderId>`
//   makes it exactly once across runs and instances.
import { type MerchantDoc } from '../db/merchants.repository.ts';
import { type OrderDoc } from '../db/orders.repository.ts';
import { type Logger } from '../logger.ts';
import { enqueueMail } from '../mail/outbox.ts';
import { type EventsService } from '../services/events.service.ts';
import { CLOSE_KINDS, createOrderTransitions, orderFacts, type FaultHook } from '../services/order-transitions.ts';
import { createPollLoop } from './poll-loop.ts';
import { type Repositories } from '../db/repositories.ts';

export const REMINDER_LEAD_MS = 24 * 3600_000;
const BATCH = 200;

export interface ExpiryJobDeps {
  /** The storage seam (src/db/repositories.ts). */
  repos: Repositories;
  events: EventsService;
  mailDomain: string;
  /** The pay-link of an order, for the reminder. */
  linkFor: (order: OrderDoc) => string;
  logger: Logger;
  intervalMs?: number;
  now?: () => Date;
  owner?: string;
  /** Orders expired, and reminders looked at, per pass (default 200). */
  batch?: number;
  /** Test hook at every step boundary of an expiry (FAULT_POINTS.expire). */
  faults?: FaultHook;
}

export interface ExpiryRun {
  expired: number;
  reminded: number;
}

export const reminderKey = (orderId: string): string => `reminder:${orderId}`;
/** Claim document marking a reminder as queued (the outbox itself is not searchable by _id). */
const reminderMarker = (orderId: string): string => `reminder-queued:${orderId}`;

export function createExpiryJob(deps: ExpiryJobDeps) {
  const now = deps.now ?? (() => new Date());
  const log = deps.logger.child({ component: 'expiry-job' });
  const batch = deps.batch ?? BATCH;
  const merchants = new Map<string, MerchantDoc | null>();
  const transitions = createOrderTransitions({ repos: deps.repos, events: deps.events, mailDomain: deps.mailDomain, faults: deps.faults, now });
  const { orders, claims } = deps.repos;

  async function merchantOf(id: string): Promise<MerchantDoc | null> {
    // Per run only: a merchant's address or webhook may change between runs.
    if (!merchants.has(id)) merchants.set(id, await deps.repos.merchants.findById(id));
    return merchants.get(id) ?? null;
  }

  /**
   * Pending orders that expire by the end of the reminder window, soonest first: ONE read serves
   * both expiry and reminders (on FerretDB every such filter reads the whole orders collection).
   */
  async function pendingSoon(at: Date): Promise<OrderDoc[]> {
    return orders.pendingExpiringBy(new Date(at.getTime() + REMINDER_LEAD_MS));
  }

  async function expireDue(at: Date, soon: OrderDoc[]): Promise<number> {
    let expired = 0;
    // Expiries a run left unfinished (it crashed, or a write failed): finished now, each side
    // effect once (src/services/order-transitions.ts).
    for (const c of await claims.unapplied(CLOSE_KINDS.expired, 60_000, at)) {
      const p = c.payload as { expiredAt?: Date } | undefined;
      if (await transitions.finishExpired(String(c.subject), new Date(p?.expiredAt ?? c.at))) expired++;
    }
    const due = soon.filter((o) => o.expiresAt.getTime() <= at.getTime()).slice(0, batch);
    for (const { _id } of due) {
      // Lost: a payment, a cancellation or another instance closed this order first.
      if (!(await transitions.claimExpiry(_id, at, deps.owner))) continue;
      if (await transitions.finishExpired(_id, at)) expired++;
    }
    return expired;
  }

  /** Orders whose reminder is known to be queued (this process; the marker claims say it for all). */
  const reminded = new Set<string>();

  async function remindDue(at: Date, soon: OrderDoc[]): Promise<number> {
    // Only orders that existed at the reminder moment: a link made to last under a day gets
    // none (its pay-link mail is the reminder). Already reminded ones are skipped BEFORE the
    // batch limit, so a window with more than BATCH orders still reaches all of them.
    const eligible = soon.filter((o) => {
      if (o.expiresAt.getTime() <= at.getTime() || !o.customer?.email || reminded.has(o._id)) return false;
      const created = (o as { createdAt?: Date }).createdAt;
      return !created || created.getTime() <= o.expiresAt.getTime() - REMINDER_LEAD_MS;
    });
    let queued = 0;
    for (const order of eligible) {
      // The batch bounds the mails queued per pass; skipping reminded orders costs a primary-key
      // read each (once per process), so it does not count.
      if (queued >= batch) break;
      // The marker is written after the mail is queued: a crash in between queues it again,
      // which the outbox dedupe key absorbs. Read by _id (cheap on FerretDB).
      if (await claims.exists(reminderMarker(order._id))) {
        reminded.add(order._id);
        continue;
      }
      const merchant = await merchantOf(order.merchantId);
      if (!merchant) continue;
      await enqueueMail(
        {
          dedupeKey: reminderKey(order._id),
          template: 'reminder',
          locale: order.locale,
          to: [order.customer!.email!],
          replyTo: merchant.email,
          merchantId: merchant._id,
          orderId: order._id,
          data: { ...orderFacts(order, merchant), link: deps.linkFor(order) },
        },
        deps.mailDomain,
        deps.repos.outbox,
      );
      await claims.once(reminderMarker(order._id), { kind: 'reminder-queued', subject: order._id }, at);
      reminded.add(order._id);
      queued++;
    }
    if (reminded.size > 50_000) reminded.clear();
    return queued;
  }

  /** One pass: expire what is due, then remind. */
  async function runOnce(): Promise<ExpiryRun> {
    merchants.clear();
    const at = now();
    const soon = await pendingSoon(at);
    const expired = await expireDue(at, soon);
    const remindedNow = await remindDue(at, soon);
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
