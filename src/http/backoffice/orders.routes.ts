// Back office: the order list, an order's detail page and PDF receipt, the actions on one order
// (cancel, resend, extend) and the CSV export.
import { type Router } from '@koa/router';
import { ORDER_STATUSES } from '../../domain/order-status.ts';
import { AppError, isAppError } from '../../domain/errors.ts';
import { formatMoney, parseAmount, toMajorString } from '../../domain/money.ts';
import { type AuthContext } from '../../services/backoffice-auth.service.ts';
import { zonedDay, type OrderFilters } from '../../services/order-admin.service.ts';
import { sendReceiptPdf } from '../receipt-download.ts';
import { orderRow, orderSummary, pager, timeline } from './backoffice.view-model.ts';
import { ExportQuery, ExtendForm, OrderFilterQuery, RenewForm, parse } from './backoffice.validators.ts';
import { CancelForm } from './backoffice.validators.ts';
import { paidMinor, payableAt } from '../../domain/order-plan.ts';
import { CANCEL_REFUNDS, type CancelRefund } from '../../services/order-admin.service.ts';
import { ResendToForm } from './backoffice.validators.ts';
import { planPanel } from './plan-parts.view.ts';
import { can, type Permission } from './permissions.ts';
import { savedCardPanel } from './saved-cards.routes.ts';
import { BACKOFFICE_PREFIX, DAY, type BackofficeKit, type BackofficeRouterDeps, type Ctx } from './backoffice.kit.ts';

export function registerOrderRoutes(router: Router, deps: BackofficeRouterDeps, kit: BackofficeKit) {
  const { orderAdmin, refunds, views } = deps;
  const { now, locale, t, page, guarded, redirect, orderId } = kit;

  // ---- orders --------------------------------------------------------------------------------

  router.get(
    '/orders',
    guarded('orders.read', async (ctx, auth) => {
      const q = parse(OrderFilterQuery, ctx.query);
      const m = auth.merchant;
      const problems: string[] = [];
      const amount = (text: string, label: string): number | undefined => {
        if (!text.trim()) return undefined;
        const r = parseAmount(text, m.currency);
        if (r.ok) return r.money.amountMinor;
        problems.push(t('orders.amountProblem', { field: label, value: text }));
        return undefined;
      };
      const filters: OrderFilters = {
        status: q.status || undefined,
        from: q.from || undefined,
        to: q.to || undefined,
        minAmountMinor: amount(q.min, t('orders.min')),
        maxAmountMinor: amount(q.max, t('orders.max')),
        reference: q.reference.trim() || undefined,
        customer: q.customer.trim() || undefined,
      };
      const result = await orderAdmin.list(m, filters, q.page);
      const keep = new URLSearchParams();
      for (const k of ['status', 'from', 'to', 'min', 'max', 'reference', 'customer'] as const) if (q[k]) keep.set(k, String(q[k]));
      page(ctx, 200, 'orders', {
        title: t('orders.title'),
        navKey: 'orders',
        filters: q,
        statuses: ORDER_STATUSES.map((s) => ({ value: s, label: t(`status.${s}`), selected: s === q.status })),
        problems,
        rows: result.orders.map((o) => orderRow(views, o, locale(), m.timezone)),
        pager: pager(result, keep),
        countText: result.total === 1 ? t('orders.countOne') : t('orders.count', { count: result.total }),
        filtered: keep.size > 0,
        canCreate: can(auth.user.role, 'orders.create'),
      });
    }),
  );

  async function renderDetail(ctx: Ctx, auth: AuthContext, id: string, status: number, problem?: string) {
    const m = auth.merchant;
    const { order, mails, link } = await orderAdmin.detail(m, id);
    const { refunds: refundList, refundedMinor } = await refunds.forOrder(m, order._id);
    // An order paid in parts has money to refund while partly paid and once cancelled (issue 13 part 1).
    const refundableMinor = ['paid', 'partially_paid', 'cancelled'].includes(order.status) ? Math.max(0, paidMinor(order) - refundedMinor) : 0;
    // Several parts paid: the refund form names the payment it gives back on, the latest with money left first.
    const paidParts = refundableMinor > 0 ? (await refunds.refundable(order)).filter((p) => p.part !== undefined) : [];
    const refundPart = [...paidParts].reverse().find((p) => p.refundableMinor > 0);
    const refundParts =
      paidParts.length > 1
        ? paidParts.map((p) => ({
            value: p.part,
            label: t('refund.partOption', { seq: p.part, of: order.plan?.parts?.length ?? 1, amount: formatMoney(p.refundableMinor, order.currency, locale()) }),
            selected: p.part === refundPart?.part,
            disabled: p.refundableMinor === 0,
          }))
        : undefined;
    // Taking payment now: pending, or a partly paid order's open part, with a valid link.
    const open = payableAt(order, now());
    const role = auth.user.role;
    const actions = {
      cancel: (order.status === 'pending' || order.status === 'partially_paid') && can(role, 'orders.cancel'),
      // A partly paid order: the cancel button opens the step that asks what becomes of what was paid.
      cancelPaid: order.status === 'partially_paid' && can(role, 'orders.cancel'),
      resend: open && can(role, 'orders.resend'),
      extend: open && can(role, 'orders.extend'),
      refund: refundableMinor > 0 && can(role, 'orders.refund'),
      moto: open && can(role, 'orders.moto'),
      // An expired link made payable again, the customer mailed the new one (issue 13 part 4).
      renew: !!deps.renewals && (order.status === 'expired' || (order.status === 'pending' && !open)) && can(role, 'orders.extend'),
    };
    page(ctx, status, 'order', {
      title: t('order.title', { reference: order.reference }),
      navKey: 'orders',
      order: orderSummary(views, order, locale(), m.timezone),
      receiptPdf: order.status === 'paid' ? `${BACKOFFICE_PREFIX}/orders/${encodeURIComponent(order._id)}/receipt.pdf` : undefined,
      timeline: timeline(views, order, mails, locale(), m.timezone, refundList),
      // An order paid in parts (issue 13 part 1): its parts, and the button asking for the next.
      plan: planPanel(order, { locale: locale(), timeZone: m.timezone, t, now: now(), canAsk: !!deps.plans && can(role, 'orders.extend') }),
      link,
      problem,
      actions: { ...actions, any: actions.cancel || actions.resend || actions.extend || actions.refund || actions.moto || actions.renew },
      renewDefault: String(m.linkLifetimeDays),
      renewAsked: order.renewalRequest && order.renewalRequest.generation === (order.renewals?.length ?? 0) ? order.renewalRequest.email : undefined,
      refunded:
        refundedMinor > 0
          ? {
              total: formatMoney(refundedMinor, order.currency, locale()),
              label: refundableMinor === 0 ? t('refund.full') : t('refund.partial'),
              refundable: refundableMinor > 0 ? formatMoney(refundableMinor, order.currency, locale()) : undefined,
            }
          : undefined,
      refundDefault: toMajorString(refundParts ? refundPart!.refundableMinor : refundableMinor, order.currency),
      refundParts,
      refundMax: formatMoney(refundableMinor, order.currency, locale()),
      // Saved cards (issue 12 part 3): the customer code and the "Charge saved card" form.
      ...savedCardPanel(deps, auth, order, t),
      extendDefault: zonedDay(new Date(Math.max(order.expiresAt.getTime(), now().getTime()) + m.linkLifetimeDays * DAY), m.timezone),
      extendMin: zonedDay(now(), m.timezone),
      extendMax: zonedDay(new Date(now().getTime() + deps.maxLinkLifetimeDays * DAY), m.timezone),
    });
  }

  router.get(
    '/orders/:id',
    guarded('orders.read', async (ctx, auth) => renderDetail(ctx, auth, orderId(ctx), 200)),
  );

  // The PDF receipt again, in the merchant's language: the one the receipt mails carried.
  router.get(
    '/orders/:id/receipt.pdf',
    guarded('orders.read', async (ctx, auth) => {
      // ?part=N: one part's receipt of an order paid in parts (issue 13 part 1).
      const part = typeof ctx.query['part'] === 'string' && /^\d{1,2}$/.test(ctx.query['part']) ? Number(ctx.query['part']) : undefined;
      const pdf = await deps.receipts.pdfFor(await orderAdmin.order(auth.merchant, orderId(ctx)), auth.merchant, locale(), part);
      if (!pdf) throw new AppError('RECEIPT_NOT_FOUND', 'the order is not paid', { httpStatus: 404 });
      sendReceiptPdf(ctx, pdf);
    }),
  );

  /** An action on one order: done → back to the order (303); refused (409/422) → the order with why. */
  function orderAction(permission: Permission, run: (ctx: Ctx, auth: AuthContext, id: string) => Promise<string>) {
    return guarded(permission, async (ctx, auth) => {
      const id = orderId(ctx);
      let notice: string;
      try {
        notice = await run(ctx, auth, id);
      } catch (e) {
        if (isAppError(e) && (e.httpStatus === 409 || e.httpStatus === 422)) {
          ctx.state.log.info({ orderId: id, code: e.code }, 'back-office action refused');
          return renderDetail(ctx, auth, id, e.httpStatus, t(`problem.${e.code}`));
        }
        throw e;
      }
      ctx.state.log.info({ orderId: id, action: notice, userId: auth.user.id }, 'back-office action');
      redirect(ctx, `${BACKOFFICE_PREFIX}/orders/${encodeURIComponent(id)}?done=${notice}`);
    });
  }

  /**
   * The confirmation step of cancelling a partly paid order (issue 13 part 1): refund what was
   * paid, or keep it; a radio group the form requires. Any other order goes back to its page.
   */
  async function renderCancel(ctx: Ctx, auth: AuthContext, id: string, status: number, choice?: string, problem?: string) {
    const m = auth.merchant;
    const order = await orderAdmin.order(m, id);
    if (order.status !== 'partially_paid') return redirect(ctx, `${BACKOFFICE_PREFIX}/orders/${encodeURIComponent(id)}`);
    page(ctx, status, 'order-cancel', {
      title: t('cancelPaid.title', { reference: order.reference }),
      navKey: 'orders',
      order: orderSummary(views, order, locale(), m.timezone),
      paid: formatMoney(paidMinor(order), order.currency, locale()),
      choice,
      problem,
    });
  }

  router.get(
    '/orders/:id/cancel',
    guarded('orders.cancel', async (ctx, auth) => renderCancel(ctx, auth, orderId(ctx), 200)),
  );

  router.post(
    '/orders/:id/cancel',
    guarded('orders.cancel', async (ctx, auth) => {
      const id = orderId(ctx);
      const form = parse(CancelForm, ctx.request.body);
      const refund = (CANCEL_REFUNDS as readonly string[]).includes(form.refund) ? (form.refund as CancelRefund) : undefined;
      const order = await orderAdmin.order(auth.merchant, id);
      // Partly paid and no choice (or not one of the two): the step again, saying what is missing.
      if (order.status === 'partially_paid' && !refund) return renderCancel(ctx, auth, id, 422, undefined, t('problem.CANCEL_REFUND_CHOICE_REQUIRED'));
      const partly = order.status === 'partially_paid';
      try {
        await orderAdmin.cancel(auth.merchant, id, `user:${auth.user.id}`, { refund, by: auth.user.email });
      } catch (e) {
        if (isAppError(e) && (e.httpStatus === 409 || e.httpStatus === 422)) {
          ctx.state.log.info({ orderId: id, code: e.code }, 'back-office action refused');
          return renderDetail(ctx, auth, id, e.httpStatus, t(`problem.${e.code}`));
        }
        throw e;
      }
      const notice = !partly ? 'cancelled' : refund === 'all' ? 'cancelledRefunded' : 'cancelledKept';
      ctx.state.log.info({ orderId: id, action: notice, userId: auth.user.id }, 'back-office action');
      redirect(ctx, `${BACKOFFICE_PREFIX}/orders/${encodeURIComponent(id)}?done=${notice}`);
    }),
  );

  router.post(
    '/orders/:id/resend',
    orderAction('orders.resend', async (_ctx, auth, id) => {
      await orderAdmin.resend(auth.merchant, id);
      return 'resent';
    }),
  );

  // A corrected customer address (issue 13 part 8): what `RESEND <ref> new@address` does by mail.
  router.post(
    '/orders/:id/resend-to',
    orderAction('orders.resend', async (ctx, auth, id) => {
      const form = parse(ResendToForm, ctx.request.body);
      await orderAdmin.resendTo(auth.merchant, id, form.email);
      return 'resentTo';
    }),
  );

  router.post(
    '/orders/:id/extend',
    orderAction('orders.extend', async (ctx, auth, id) => {
      const form = parse(ExtendForm, ctx.request.body);
      if (!form.expires) throw new AppError('DATE_INVALID', 'expected a date', { httpStatus: 422 });
      const { capped } = await orderAdmin.extend(auth.merchant, id, form.expires);
      return capped ? 'extendedCapped' : 'extended';
    }),
  );

  // The next part of an order paid in parts (issue 13 part 1): the balance, or the next
  // instalment, opened and its link mailed; what `BALANCE <ref>` does by mail.
  router.post(
    '/orders/:id/balance',
    orderAction('orders.extend', async (_ctx, auth, id) => {
      if (!deps.plans) throw new AppError('ORDER_NOT_PARTLY_PAID', 'no payment plans here', { httpStatus: 409 });
      const order = await orderAdmin.order(auth.merchant, id);
      const r = await deps.plans.requestNext(order, auth.merchant, `merchant:${auth.user.email}`);
      if (r.outcome !== 'requested') throw new AppError('ORDER_NOT_PARTLY_PAID', `the order is ${r.order.status}`, { httpStatus: 409 });
      return 'balanceRequested';
    }),
  );

  router.post(
    '/orders/:id/renew',
    orderAction('orders.extend', async (ctx, auth, id) => {
      const form = parse(RenewForm, ctx.request.body);
      const days = Number(form.days);
      if (!deps.renewals || !/^\d{1,3}$/.test(form.days) || days < 1) throw new AppError('DATE_INVALID', 'expected a number of days', { httpStatus: 422 });
      const order = await orderAdmin.order(auth.merchant, id);
      const r = await deps.renewals.renew(order, auth.merchant, new Date(now().getTime() + days * DAY), `merchant:${auth.user.id}`);
      if (r.kind === 'reference-taken') throw new AppError('ORDER_REFERENCE_TAKEN', 'another open order has this reference', { httpStatus: 409 });
      if (r.kind === 'not-expired') throw new AppError('ORDER_NOT_RENEWABLE', `the order is ${r.order.status}`, { httpStatus: 409 });
      return 'renewed';
    }),
  );

  // ---- export --------------------------------------------------------------------------------

  const renderExport = (ctx: Ctx, auth: AuthContext, status: number, values: { from: string; to: string }, problem?: string) =>
    page(ctx, status, 'export', { title: t('export.title'), navKey: 'export', values, problem, timezone: auth.merchant.timezone });

  router.get(
    '/export',
    guarded('orders.export', async (ctx, auth) => {
      const today = zonedDay(now(), auth.merchant.timezone);
      renderExport(ctx, auth, 200, { from: `${today.slice(0, 8)}01`, to: today });
    }),
  );

  router.get(
    '/export.csv',
    guarded('orders.export', async (ctx, auth) => {
      const q = parse(ExportQuery, ctx.query);
      if (!q.from || !q.to || q.from > q.to) return renderExport(ctx, auth, 422, q, t('problem.EXPORT_RANGE_INVALID'));
      ctx.state.log.info({ from: q.from, to: q.to, userId: auth.user.id }, 'back-office export');
      ctx.type = 'text/csv; charset=utf-8';
      ctx.set('Content-Disposition', `attachment; filename="orders-${q.from}-to-${q.to}.csv"`);
      ctx.body = orderAdmin.exportCsv(auth.merchant, q.from, q.to);
    }),
  );

  return { orderAction, renderDetail };
}
export type OrderAction = ReturnType<typeof registerOrderRoutes>['orderAction'];
