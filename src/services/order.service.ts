// Orders: creation (idempotent per source and per open reference), pay-links, and the pay-link mail.
//
// An order's ids are derived from its source (merchant + source key) with a keyed hash: the
// public id is `publicIdFor(...)` and the _id is `ord_<publicId>`. Re-processing a source (a crash
// after the order was created, a redelivered batch) finds the order by primary key, and the
// checkout finds it by primary key from the pay-link: on FerretDB v1 (SQLite) only filters with an
// `_id` equality avoid a scan of the whole collection. The unique indexes stay the referees; a key
// rotation only sends lookups of older orders down the slower path.
import { createHmac } from 'node:crypto';
import { AppError } from '../domain/errors.ts';
import { type OrderDraft } from '../domain/order-draft.ts';
import { newOrderReference, orderIdFor } from '../domain/ids.ts';
import { mapLimit } from '../domain/map-limit.ts';
import { payLinkUrl, type LinkKey } from '../domain/pay-link.ts';
import { reminderSettingsOf, reminderSlots } from '../domain/reminders.ts';
import { localDate } from '../domain/local-day.ts';
import { newPlan, openPart } from '../domain/order-plan.ts';
import { planParts } from '../domain/payment-plan.ts';
import { type MerchantDoc } from '../db/merchants.repository.ts';
import { type NewOrder, type OrderDoc } from '../db/orders.repository.ts';
import { enqueueMail } from '../mail/outbox.ts';
import { orderFacts } from './order-transitions.ts';
import { type Repositories } from '../db/repositories.ts';

export type { OrderDraft } from '../domain/order-draft.ts';

export interface OrderSource {
  /** Idempotency key of the thing that created the order (e.g. "msg:<inboundId>:0"). */
  key: string;
  inboundMessageId?: string;
  messageId?: string;
  subject?: string;
}

export interface CreateResult {
  order: OrderDoc;
  link: string;
  /** false when an order for this source, or an open order with this reference, already existed. */
  created: boolean;
  duplicateOf?: 'source' | 'reference';
}

export interface PayLinkMailOptions {
  inReplyTo?: string;
  dedupeKey?: string;
  /** Copy the merchant on a mail to the customer (default); a batch lists its links in one reply instead. */
  ccMerchant?: boolean;
}

export interface CreateOptions {
  /**
   * 'all' (default): the pay-link mail goes out for every order. 'customer-only': only orders
   * delivered to the customer get one (without the merchant in copy); a batch answers the
   * merchant with ONE reply listing every link instead of one mail per row. 'none': the buyer
   * is already on the way to the checkout (a sealed request from the merchant's website).
   */
  payLinkMail?: 'all' | 'customer-only' | 'none';
}

export interface OrderServiceDeps {
  /** The storage seam (src/db/repositories.ts). */
  repos: Repositories;
  publicUrl: string;
  mailDomain: string;
  maxLinkLifetimeDays: number;
  linkKeys: readonly LinkKey[];
  now?: () => Date;
}

const DAY = 86_400_000;



/** `remindAt` of a new order: its first reminder slot under the merchant's settings and its own plan. */
function firstReminderCheck(merchant: MerchantDoc, draft: OrderDraft, createdAt: Date, expiresAt: Date): { remindAt?: Date } {
  if (!draft.customerEmail) return {};
  const [first] = reminderSlots({ createdAt, expiresAt, plan: draft.reminders }, reminderSettingsOf(merchant));
  return first ? { remindAt: first.at } : {};
}

export function createOrderService(deps: OrderServiceDeps) {
  const now = deps.now ?? (() => new Date());
  // Its own key, derived from the current link key: public ids stay unguessable (126 bits).
  const idKey = createHmac('sha256', deps.linkKeys[0]?.secret ?? '').update('paymail-order-id-v1').digest();
  const { orders } = deps.repos;

  /** The unguessable public id of the order a source creates: 21 characters like nanoid's. */
  function publicIdFor(merchantId: string, sourceKey: string): string {
    return createHmac('sha256', idKey).update(`${merchantId}\n${sourceKey}`).digest('base64url').slice(0, 21);
  }

  /** The order this source created, by primary key; null when none (or created under an older key). */
  async function findBySourceFast(merchantId: string, sourceKey: string): Promise<OrderDoc | null> {
    const o = await orders.byId(orderIdFor(publicIdFor(merchantId, sourceKey)));
    return o && o.merchantId === merchantId && o.sourceKey === sourceKey ? o : null;
  }

  function linkFor(order: Pick<OrderDoc, 'publicId' | 'amountMinor' | 'currency' | 'linkExpiresAt'>): string {
    return payLinkUrl(deps.publicUrl, deps.linkKeys, {
      publicId: order.publicId,
      amountMinor: order.amountMinor,
      currency: order.currency,
      expiresAt: order.linkExpiresAt,
    });
  }

  /** Queues the pay-link mail for an order (idempotent per order; a resend passes its own dedupe key). */
  async function queuePayLinkMail(order: OrderDoc, merchant: MerchantDoc, opts: PayLinkMailOptions = {}) {
    const toCustomer = order.delivery === 'customer' && !!order.customer?.email;
    // An order paid in parts mails one link per part: the open one.
    const seq = openPart(order)?.seq ?? 1;
    await enqueueMail(
      {
        dedupeKey: opts.dedupeKey ?? (seq > 1 ? `paylink:${order._id}:${seq}` : `paylink:${order._id}`),
        template: 'paylink',
        locale: toCustomer ? order.locale : merchant.locale,
        to: [toCustomer ? order.customer!.email! : merchant.email],
        cc: toCustomer && opts.ccMerchant !== false ? [merchant.email] : [],
        replyTo: merchant.email,
        ...(opts.inReplyTo && !toCustomer ? { inReplyTo: opts.inReplyTo, references: [opts.inReplyTo] } : {}),
        merchantId: merchant._id,
        orderId: order._id,
        data: { ...orderFacts(order, merchant, seq), link: linkFor(order), toCustomer },
      },
      deps.mailDomain,
      deps.repos.outbox,
    );
  }

  /** The pay-link mail an order gets under `opts` (idempotent per order; nothing in a batch for merchant delivery). */
  async function queueCreatedMail(order: OrderDoc, merchant: MerchantDoc, source: OrderSource, opts: CreateOptions = {}) {
    if (opts.payLinkMail === 'none') return;
    const batch = opts.payLinkMail === 'customer-only';
    if (batch && order.delivery !== 'customer') return;
    await queuePayLinkMail(order, merchant, { ...(source.messageId ? { inReplyTo: source.messageId } : {}), ...(batch ? { ccMerchant: false } : {}) });
  }

  async function create(merchant: MerchantDoc, draft: OrderDraft, source: OrderSource, opts: CreateOptions = {}): Promise<CreateResult> {
    const existing = await findBySourceFast(merchant._id, source.key);
    if (existing) return { order: existing, link: linkFor(existing), created: false, duplicateOf: 'source' };
    const doc = newOrderDoc(merchant, draft, source, now());
    try {
      const order = await orders.insert(doc);
      await queueCreatedMail(order, merchant, source, opts);
      return { order, link: linkFor(order), created: true };
    } catch (e) {
      if ((e as { code?: number }).code !== 11000) throw e;
      // Refused by a unique index: the same source (a racing worker, or created under an older
      // link key), or a reference that is still open. Rare, so the scans are acceptable here.
      const bySource =
        (await findBySourceFast(merchant._id, source.key)) ??
        (await orders.bySource(merchant._id, source.key));
      if (bySource) return { order: bySource, link: linkFor(bySource), created: false, duplicateOf: 'source' };
      const open = await orders.openByReference(merchant._id, doc.reference);
      if (open) return { order: open, link: linkFor(open), created: false, duplicateOf: 'reference' };
      throw e;
    }
  }

  /**
   * Creates the orders of a batch: one read for what these sources already created (a batch
   * processed again after a crash), one insertMany for the rest, and create() one by one only
   * for rows the unique indexes refused (a reference already open). Row by row, each insert
   * and lookup would cost a scan of the merchant's orders on FerretDB.
   */
  async function createMany(
    merchant: MerchantDoc,
    items: ReadonlyArray<{ draft: OrderDraft; source: OrderSource }>,
    opts: CreateOptions = {},
  ): Promise<Array<CreateResult | { error: unknown }>> {
    const results: Array<CreateResult | { error: unknown }> = new Array(items.length);
    // By primary key, a few at a time: `$in` is a scan of the whole collection on FerretDB.
    const found = await mapLimit(items, 8, (i) => findBySourceFast(merchant._id, i.source.key));
    const existing = new Map(found.flatMap((o) => (o ? [[o.sourceKey, o] as const] : [])));
    const at = now();
    const fresh: Array<{ i: number; doc: ReturnType<typeof newOrderDoc> }> = [];
    items.forEach((item, i) => {
      const found = existing.get(item.source.key);
      if (found) results[i] = { order: found, link: linkFor(found), created: false, duplicateOf: 'source' };
      else {
        try {
          fresh.push({ i, doc: newOrderDoc(merchant, item.draft, item.source, at) });
        } catch (e) {
          results[i] = { error: e };
        }
      }
    });
    let inserted = new Set(fresh.map((f) => f.doc._id));
    if (fresh.length > 0) {
      try {
        await orders.insertMany(fresh.map((f) => f.doc));
      } catch (e) {
        if ((e as { code?: number }).code !== 11000 && !(e as { writeErrors?: unknown }).writeErrors) throw e;
        // Which rows made it is read back rather than decoded from the driver's error shape.
        const ids = [...inserted];
        const there = await mapLimit(ids, 8, (id) => orders.exists(id));
        inserted = new Set(ids.filter((_, k) => there[k]));
      }
    }
    for (const { i, doc } of fresh) {
      const item = items[i]!;
      try {
        if (inserted.has(doc._id)) {
          const order = { ...doc, attempts: [] } as unknown as OrderDoc;
          await queueCreatedMail(order, merchant, item.source, opts);
          results[i] = { order, link: linkFor(order), created: true };
        } else results[i] = await create(merchant, item.draft, item.source, opts);
      } catch (e) {
        results[i] = { error: e };
      }
    }
    return results;
  }

  /** The document of a new order; throws ORDER_EXPIRY_PAST for an expiry already gone. */
  function newOrderDoc(merchant: MerchantDoc, draft: OrderDraft, source: OrderSource, at: Date): NewOrder {
    const maxExpiry = new Date(at.getTime() + deps.maxLinkLifetimeDays * DAY);
    let expiresAt = draft.expiresAt ?? new Date(at.getTime() + merchant.linkLifetimeDays * DAY);
    if (expiresAt > maxExpiry) expiresAt = maxExpiry;
    if (expiresAt <= at) {
      throw new AppError('ORDER_EXPIRY_PAST', 'the expiry is in the past', { httpStatus: 400 });
    }
    const delivery = draft.delivery ?? merchant.delivery;
    const reference = draft.reference?.trim() || newOrderReference();
    // A deposit, or instalments (issue 13 part 1): the parts, the first one payable now.
    let plan: NewOrder['plan'];
    if (draft.plan) {
      const parts = planParts(draft.amountMinor, draft.plan, localDate(at, merchant.timezone));
      if (!parts.ok) {
        throw new AppError(parts.problem.code, `${parts.problem.field}: ${parts.problem.message} (${parts.problem.value})`, {
          httpStatus: 422,
          details: { field: parts.problem.field, value: parts.problem.value },
        });
      }
      if (parts.value.length > 1) plan = newPlan(parts.value, at);
    }
    const publicId = publicIdFor(merchant._id, source.key);
    const doc = {
      _id: orderIdFor(publicId),
      publicId,
      merchantId: merchant._id,
      reference,
      openReference: reference,
      sourceKey: source.key,
      amountMinor: draft.amountMinor,
      currency: draft.currency,
      description: draft.description,
      customer: { email: draft.customerEmail?.toLowerCase(), name: draft.customerName },
      locale: draft.locale ?? merchant.locale,
      localeGiven: draft.locale !== undefined,
      delivery: (delivery === 'customer' && draft.customerEmail ? 'customer' : 'merchant') as 'customer' | 'merchant',
      status: 'pending' as const,
      expiresAt,
      linkExpiresAt: Math.floor(expiresAt.getTime() / 1000),
      source: { inboundMessageId: source.inboundMessageId, messageId: source.messageId, subject: source.subject },
      ...(draft.returnUrls ? { returnUrls: draft.returnUrls } : {}),
      ...(draft.reminders ? { reminderPlan: draft.reminders } : {}),
      ...(plan ? { plan } : {}),
      // The first reminder check (src/domain/reminders.ts); none without the customer's address.
      ...firstReminderCheck(merchant, draft, at, expiresAt),
    };
    return doc;
  }

  return { create, createMany, linkFor, queuePayLinkMail, queueCreatedMail };
}
export type OrderService = ReturnType<typeof createOrderService>;
