// Back-office use cases on orders: search with paging, detail with its history, cancel, resend,
// extend, create a link by form, and the streamed CSV export. Every query is scoped to the
// merchant of the logged-in user (tenant isolation lives here, not in the routes).
import { Readable } from 'node:stream';
import * as orderPlan from '../domain/order-plan.ts';
import { nanoid } from 'nanoid';
import { type MerchantDoc } from '../db/merchants.repository.ts';
import { type OrderDoc, type OrderSearch } from '../db/orders.repository.ts';
import { localDate, localTime } from '../domain/local-day.ts';
import { AppError } from '../domain/errors.ts';
import { toMajorString } from '../domain/money.ts';
import { type OrderDraft } from '../domain/order-draft.ts';
import { nextUnpaid, paidMinor } from '../domain/order-plan.ts';
import { type OrderStatus } from '../domain/order-status.ts';
import { createOrderTransitions, type FaultHook } from './order-transitions.ts';
import { type OrderService } from './order.service.ts';
import { type RefundService } from './refund.service.ts';
import { commandAddress } from './command-resend.ts';
import { type Repositories } from '../db/repositories.ts';
import { csvCell, csvLine } from '../domain/csv.ts';

const DAY = 86_400_000;
export const PAGE_SIZE = 25;

export interface OrderFilters {
  status?: OrderStatus | undefined;
  /** Local dates (YYYY-MM-DD) in the merchant's time zone, both inclusive. */
  from?: string | undefined;
  to?: string | undefined;
  minAmountMinor?: number | undefined;
  maxAmountMinor?: number | undefined;
  reference?: string | undefined;
  /** Part of the customer's name or e-mail address. */
  customer?: string | undefined;
}

export interface OrderPage {
  orders: OrderDoc[];
  total: number;
  page: number;
  pages: number;
  pageSize: number;
}

/** Minimal view of the events service (webhooks), optional so the back office works without it. */
export interface OrderEvents {
  orderCancelled(order: OrderDoc, merchant: MerchantDoc): Promise<unknown>;
  /** order.renewed (issue 13 part 4); optional so older fakes still fit. */
  orderRenewed?(order: OrderDoc, merchant: MerchantDoc, renewal: { generation: number; by: string }): Promise<unknown>;
}

export interface OrderAdminDeps {
  /** The storage seam (src/db/repositories.ts). */
  repos: Repositories;
  orders: Pick<OrderService, 'create' | 'linkFor' | 'queuePayLinkMail'>;
  maxLinkLifetimeDays: number;
  events?: OrderEvents;
  now?: () => Date;
  /** Test hook at every step boundary of a cancellation (FAULT_POINTS.cancel). */
  faults?: FaultHook;
  /** Refunds what a partly paid order was paid when its cancellation asks for it (issue 13 part 1). */
  refunds?: Pick<RefundService, 'refundAll'>;
}

/**
 * What becomes of the money of a partly paid order that is cancelled (issue 13 part 1): `all`
 * refunds every paid part in full, `none` keeps it. Required for such an order, ignored otherwise.
 */
export type CancelRefund = 'all' | 'none';
export const CANCEL_REFUNDS: readonly CancelRefund[] = ['all', 'none'];

export interface CancelOptions {
  refund?: CancelRefund | undefined;
  /** Who the refunds are made by (the back-office user's address, the API key); default the actor. */
  by?: string | undefined;
}

/** The instant a local day (YYYY-MM-DD) starts in `tz`, DST changes included. */
export function zonedDayStart(day: string, tz: string): Date {
  if (!/^\d{4}-\d{2}-\d{2}$/.test(day)) throw new AppError('DATE_INVALID', `expected YYYY-MM-DD, got "${day}"`, { httpStatus: 422 });
  return localTime(day, 0, tz);
}

/** The local date (YYYY-MM-DD) of an instant in `tz`. */
export const zonedDay = (date: Date, tz: string): string => localDate(date, tz);

const nextDay = (day: string): string => new Date(Date.parse(`${day}T00:00:00Z`) + DAY).toISOString().slice(0, 10);

/** The instant local day `day` ends in `tz` (the next day's midnight): "valid until 31 May" means all of it. */
export const zonedDayEnd = (day: string, tz: string): Date => zonedDayStart(nextDay(day), tz);

/** [start of `from`, start of the day after `to`) in the merchant's time zone. */
export function dayRange(from: string | undefined, to: string | undefined, tz: string): { $gte?: Date; $lt?: Date } | undefined {
  if (!from && !to) return undefined;
  return {
    ...(from ? { $gte: zonedDayStart(from, tz) } : {}),
    ...(to ? { $lt: zonedDayEnd(to, tz) } : {}),
  };
}

const notFound = () => new AppError('ORDER_NOT_FOUND', 'no such order', { httpStatus: 404 });

// ---- CSV -------------------------------------------------------------------------------------

export const CSV_COLUMNS = [
  'created_at', 'order_id', 'reference', 'status', 'amount', 'currency', 'description', 'customer_name', 'customer_email',
  'expires_at', 'paid_at', 'receipt_number', 'card_brand', 'card_last4', 'card_country', 'auth_code', 'cancelled_at', 'source',
  // Issue 13 part 1: `amount` is the order's total; what was paid of it so far, and for an order
  // paid in parts how many parts (`1/2`; paid_at, receipt and card are then the latest part's).
  'paid_so_far', 'parts_paid',
] as const;

// The one CSV writer (quoting and the spreadsheet formula guard): src/domain/csv.ts.
export { csvCell, csvLine };

function csvRow(o: OrderDoc & { createdAt?: Date }): unknown[] {
  const card = o.payment?.card;
  return [
    o.createdAt, o._id, o.reference, o.status, toMajorString(o.amountMinor, o.currency), o.currency, o.description,
    o.customer?.name, o.customer?.email, o.expiresAt, o.payment?.paidAt, o.payment?.receiptNumber, card?.brand, card?.last4,
    card?.country, o.payment?.authCode, o.cancelledAt, o.sourceKey?.startsWith('bo:') ? 'backoffice' : 'email',
    toMajorString(orderPlan.paidMinor(o), o.currency), orderPlan.hasPlan(o) ? `${orderPlan.partsPaid(o).length}/${orderPlan.partCount(o)}` : '',
  ];
}

// ---- service ---------------------------------------------------------------------------------

export function createOrderAdminService(deps: OrderAdminDeps) {
  const now = deps.now ?? (() => new Date());
  const transitions = createOrderTransitions({ repos: deps.repos, events: deps.events, faults: deps.faults, now });

  function search(merchant: MerchantDoc, f: OrderFilters): OrderSearch {
    const created = dayRange(f.from, f.to, merchant.timezone);
    return {
      status: f.status,
      createdFrom: created?.$gte,
      createdBefore: created?.$lt,
      minAmountMinor: f.minAmountMinor,
      maxAmountMinor: f.maxAmountMinor,
      reference: f.reference,
      customer: f.customer,
    };
  }

  /** Newest first; two queries (count, then the page) because FerretDB has no $facet. */
  async function list(merchant: MerchantDoc, filters: OrderFilters, page = 1): Promise<OrderPage> {
    const q = search(merchant, filters);
    const total = await deps.repos.orders.count(merchant._id, q);
    const pages = Math.max(1, Math.ceil(total / PAGE_SIZE));
    const current = Math.min(Math.max(1, Math.floor(page)), pages);
    const orders = await deps.repos.orders.search(merchant._id, q, { skip: (current - 1) * PAGE_SIZE, limit: PAGE_SIZE });
    return { orders, total, page: current, pages, pageSize: PAGE_SIZE };
  }

  async function find(merchant: MerchantDoc, orderId: string): Promise<OrderDoc> {
    const order = await deps.repos.orders.ofMerchant(merchant._id, orderId);
    if (!order) throw notFound();
    return order;
  }

  /** The order and the mails sent about it (pay-links, receipts), oldest first. */
  async function detail(merchant: MerchantDoc, orderId: string) {
    const order = await find(merchant, orderId);
    const mails = await deps.repos.outbox.forOrder(order._id, merchant._id);
    // The link while it collects something: pending, or a part of an order paid in parts open (issue 13 part 1).
    return { order, mails, link: orderPlan.isCollecting(order) ? deps.orders.linkFor(order) : undefined };
  }

  /**
   * Cancels an unpaid or partly paid order. The order's close claim (the one a payment takes; for
   * a partly paid order, the claim of its next unpaid part) is the referee: whoever inserts it
   * first decides, so a cancel racing a payment never leaves both applied. A partly paid order
   * needs `opts.refund`: with `all`, each paid part is refunded in full once it is cancelled.
   */
  async function cancel(merchant: MerchantDoc, orderId: string, actor: string, opts: CancelOptions = {}): Promise<OrderDoc> {
    const order = await find(merchant, orderId);
    if (order.status !== 'pending' && order.status !== 'partially_paid') {
      throw new AppError('ORDER_NOT_CANCELLABLE', `the order is ${order.status}`, { httpStatus: 409 });
    }
    const partly = order.status === 'partially_paid';
    if (partly && !opts.refund) {
      throw new AppError('CANCEL_REFUND_CHOICE_REQUIRED', 'the order is partly paid: say whether what was paid is refunded (refund: all) or kept (refund: none)', {
        httpStatus: 422,
        details: { field: 'refund', paidMinor: paidMinor(order), currency: order.currency },
      });
    }
    if (partly && opts.refund === 'all' && !deps.refunds) throw new AppError('REFUND_UNSUPPORTED', 'refunds are not available here', { httpStatus: 409 });
    const seq = nextUnpaid(order)?.seq ?? 1;
    // Ours, or another cancellation (finishing it is idempotent); anything else closed it first.
    const held = await transitions.claimCancel(order._id, actor, now(), seq);
    if (held.way !== 'cancelled') throw new AppError('ORDER_NOT_CANCELLABLE', 'the order was closed meanwhile', { httpStatus: 409 });
    const cancelled = await transitions.finishCancelled(order._id, held.cancelledAt, seq);
    if (!cancelled) throw new AppError('ORDER_NOT_CANCELLABLE', 'the order was closed meanwhile', { httpStatus: 409 });
    if (partly && opts.refund === 'all') await refundCancelled(merchant, cancelled._id, opts.by ?? actor);
    return cancelled;
  }

  /**
   * Refunds what is still refundable of a cancelled order's paid parts (the `all` of a cancellation,
   * or its retry after a crash between the cancellation and the refunds).
   */
  async function refundCancelled(merchant: MerchantDoc, orderId: string, by: string) {
    if (!deps.refunds) throw new AppError('REFUND_UNSUPPORTED', 'refunds are not available here', { httpStatus: 409 });
    return deps.refunds.refundAll(merchant, orderId, { by, reason: 'order cancelled' });
  }

  function assertPayable(order: OrderDoc, code: string): void {
    // Pending, or a partly paid order's open part (issue 13 part 1), with a link still valid.
    if (!orderPlan.payableAt(order, now())) {
      const state = order.status === 'pending' ? 'expired' : order.status;
      throw new AppError(code, `the order is ${state}`, { httpStatus: 409 });
    }
  }

  /** Mails the pay-link again; each resend is its own outbox mail (new dedupe key). */
  async function resend(merchant: MerchantDoc, orderId: string): Promise<OrderDoc> {
    const order = await find(merchant, orderId);
    assertPayable(order, 'ORDER_NOT_PAYABLE');
    await deps.orders.queuePayLinkMail(order, merchant, { dedupeKey: `paylink:${order._id}:resend:${nanoid(12)}` });
    return order;
  }

  /**
   * Sends the pay-link to a corrected customer address (issue 13 part 8, the back office's
   * `RESEND <ref> new@address`): the order keeps the address and is delivered to the customer.
   */
  async function resendTo(merchant: MerchantDoc, orderId: string, email: string): Promise<OrderDoc> {
    const address = commandAddress(email);
    if (!address) throw new AppError('CUSTOMER_EMAIL_INVALID', 'expected an e-mail address', { httpStatus: 422 });
    const order = await find(merchant, orderId);
    assertPayable(order, 'ORDER_NOT_PAYABLE');
    // Over the address shown: a change made meanwhile (a RESEND by mail) is not overwritten.
    const changed = await deps.repos.orders.changeCustomerEmail(order._id, { email: order.customer?.email ?? null }, address);
    if (!changed) throw new AppError('ORDER_NOT_PAYABLE', 'the order changed meanwhile', { httpStatus: 409 });
    await deps.orders.queuePayLinkMail(changed, merchant, { dedupeKey: `paylink:${order._id}:resend:${nanoid(12)}` });
    return changed;
  }

  /**
   * Moves the expiry of an open order to the end of local day `day`, capped at
   * MAX_LINK_LIFETIME_DAYS from now. The link is re-signed with the new expiry (the old one keeps
   * its own, earlier expiry), so the caller typically resends it.
   */
  async function extend(merchant: MerchantDoc, orderId: string, day: string): Promise<{ order: OrderDoc; capped: boolean }> {
    const order = await find(merchant, orderId);
    assertPayable(order, 'ORDER_NOT_EXTENDABLE');
    const at = now();
    const wanted = zonedDayEnd(day, merchant.timezone);
    if (wanted.getTime() <= at.getTime()) throw new AppError('ORDER_EXPIRY_PAST', 'the new expiry is in the past', { httpStatus: 422 });
    const max = new Date(at.getTime() + deps.maxLinkLifetimeDays * DAY);
    const capped = wanted > max;
    const expiresAt = capped ? max : wanted;
    // Only over the expiry read above: a payment, cancellation or other extension meanwhile wins.
    const updated = await deps.repos.orders.extendExpiry(order._id, { expiresAt: order.expiresAt, merchantId: merchant._id }, expiresAt);
    if (!updated) throw new AppError('ORDER_NOT_EXTENDABLE', 'the order was closed or changed meanwhile', { httpStatus: 409 });
    return { order: updated, capped };
  }

  /** A new order from the back-office form (its own source key, so a double submit makes two only if typed twice). */
  function createLink(merchant: MerchantDoc, draft: OrderDraft, formKey?: string) {
    return deps.orders.create(merchant, draft, { key: `bo:${formKey ?? nanoid()}` });
  }

  /** The CSV of the merchant's orders created on local days [from, to], streamed from a cursor. */
  function exportCsv(merchant: MerchantDoc, from: string, to: string): Readable {
    const [start, end] = [zonedDayStart(from, merchant.timezone), zonedDayEnd(to, merchant.timezone)];
    async function* lines() {
      // A UTF-8 byte-order mark first, so spreadsheet programs read accented names correctly.
      yield `\uFEFF${csvLine([...CSV_COLUMNS])}`;
      const cursor = deps.repos.orders.createdBetween(merchant._id, start, end);
      try {
        // Lines are grouped into ~16 kB chunks: one write per row would cost more than the rows.
        let chunk = '';
        for await (const o of cursor) {
          chunk += csvLine(csvRow(o));
          if (chunk.length >= 16_384) {
            yield chunk;
            chunk = '';
          }
        }
        if (chunk) yield chunk;
      } finally {
        await cursor.close();
      }
    }
    return Readable.from(lines(), { objectMode: false });
  }

  return { list, detail, order: find, cancel, refundCancelled, resend, resendTo, extend, createLink, exportCsv };
}
export type OrderAdminService = ReturnType<typeof createOrderAdminService>;
