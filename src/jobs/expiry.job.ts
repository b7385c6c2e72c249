// Expiry and reminders, by query on (status, expiresAt): FerretDB has no TTL index, and an order
// must change state (and tell people) rather than vanish.
// - Expire: a pending order whose expiresAt has passed becomes 'expired'. The order's close claim
//   (`order:<id>:close`, shared with payment and cancellation) decides, so an order that is being
//   paid at the same moment closes exactly once. Then order.expired fires and the merchant is
//   mailed (template order-expired). A crash after the claim is finished by the next run.
// - Remind: once, 24 hours before expiry, the customer gets a reminder with the link when their
//   address is known and the order is still pending. The outbox dedupe key `reminder:<orderId>`
//   makes it exactly once across runs and instances.
import { updateByIdIf } from '../db/by-id.ts';
import { claimOnce, markApplied, unappliedClaims } from '../db/claims.ts';
import { Merchant, type MerchantDoc } from '../db/models/merchant.model.ts';
import { Order, type OrderDoc } from '../db/models/order.model.ts';
import { Outbox } from '../db/models/outbox.model.ts';
import { type Logger } from '../logger.ts';
import { enqueueMail } from '../mail/outbox.ts';
import { type EventsService } from '../services/events.service.ts';
import { closeClaimKey } from '../services/checkout.service.ts';
import { createPollLoop } from './poll-loop.ts';

export const REMINDER_LEAD_MS = 24 * 3600_000;
const BATCH = 200;

export interface ExpiryJobDeps {
  events: EventsService;
  mailDomain: string;
  /** The pay-link of an order, for the reminder. */
  linkFor: (order: OrderDoc) => string;
  logger: Logger;
  intervalMs?: number;
  now?: () => Date;
  owner?: string;
}

export interface ExpiryRun {
  expired: number;
  reminded: number;
}

export const reminderKey = (orderId: string): string => `reminder:${orderId}`;

/** What both mails tell about the order (raw values: the renderer formats them). */
function orderFacts(order: OrderDoc, merchant: MerchantDoc) {
  return {
    merchantName: merchant.name,
    reference: order.reference,
    amountMinor: order.amountMinor,
    currency: order.currency,
    description: order.description ?? '',
    customerName: order.customer?.name ?? '',
    expiresAt: order.expiresAt.toISOString(),
    timeZone: merchant.timezone,
  };
}

export function createExpiryJob(deps: ExpiryJobDeps) {
  const now = deps.now ?? (() => new Date());
  const log = deps.logger.child({ component: 'expiry-job' });
  const merchants = new Map<string, MerchantDoc | null>();

  async function merchantOf(id: string): Promise<MerchantDoc | null> {
    // Per run only: a merchant's address or webhook may change between runs.
    if (!merchants.has(id)) merchants.set(id, await Merchant.findById(id).lean<MerchantDoc>());
    return merchants.get(id) ?? null;
  }

  /** Applies an expiry whose close claim we hold, then notifies (idempotent: dedupe keys). */
  async function applyExpiry(orderId: string, expiredAt: Date): Promise<boolean> {
    // By _id alone (src/db/by-id.ts); the close claim we hold referees.
    const order = await updateByIdIf<OrderDoc>(
      Order,
      orderId,
      (o) => o.status === 'pending',
      // Closing frees the reference for a new order (see openReference in the order model).
      { $set: { status: 'expired', openReference: orderId, expiredAt } },
    );
    if (!order) return false;
    const merchant = await merchantOf(order.merchantId);
    if (!merchant) return true;
    await deps.events.orderExpired(order, merchant);
    await enqueueMail(
      {
        dedupeKey: `order-expired:${order._id}`,
        template: 'order-expired',
        locale: merchant.locale,
        to: [merchant.email],
        merchantId: merchant._id,
        orderId: order._id,
        data: { ...orderFacts(order, merchant), customerEmail: order.customer?.email ?? '' },
      },
      deps.mailDomain,
    );
    return true;
  }

  async function expireDue(at: Date): Promise<number> {
    let expired = 0;
    // Claims won by a run that crashed before applying them.
    for (const c of await unappliedClaims('order-expire', 60_000, at)) {
      if (await applyExpiry(String(c.subject), new Date(c.at))) expired++;
      await markApplied(String(c._id));
    }
    const due = await Order.find({ status: 'pending', expiresAt: { $lte: at } }, { _id: 1 })
      .sort({ expiresAt: 1 })
      .limit(BATCH)
      .lean<Array<{ _id: string }>>();
    for (const { _id } of due) {
      const key = closeClaimKey(_id);
      // Lost: a payment, a cancellation or another instance closed this order first.
      if (!(await claimOnce(key, { kind: 'order-expire', subject: _id, ...(deps.owner ? { owner: deps.owner } : {}) }, at))) continue;
      if (await applyExpiry(_id, at)) expired++;
      await markApplied(key);
    }
    return expired;
  }

  async function remindDue(at: Date): Promise<number> {
    const candidates = await Order.find({
      status: 'pending',
      'customer.email': { $nin: [null, ''] },
      expiresAt: { $gt: at, $lte: new Date(at.getTime() + REMINDER_LEAD_MS) },
    })
      .sort({ expiresAt: 1 })
      .limit(BATCH)
      .lean<OrderDoc[]>();
    // Only orders that existed at the reminder moment: a link made to last under a day gets
    // none (its pay-link mail is the reminder).
    const eligible = candidates.filter((o) => {
      const created = (o as { createdAt?: Date }).createdAt;
      return !created || created.getTime() <= o.expiresAt.getTime() - REMINDER_LEAD_MS;
    });
    if (eligible.length === 0) return 0;
    const done = new Set(
      (await Outbox.find({ dedupeKey: { $in: eligible.map((o) => reminderKey(o._id)) } }, { dedupeKey: 1 }).lean()).map((d) => d.dedupeKey),
    );
    let reminded = 0;
    for (const order of eligible) {
      if (done.has(reminderKey(order._id))) continue;
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
      );
      reminded++;
    }
    return reminded;
  }

  /** One pass: expire what is due, then remind. */
  async function runOnce(): Promise<ExpiryRun> {
    merchants.clear();
    const at = now();
    const expired = await expireDue(at);
    const reminded = await remindDue(at);
    if (expired || reminded) log.info({ expired, reminded }, 'expiry pass');
    return { expired, reminded };
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
