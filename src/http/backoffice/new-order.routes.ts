// Back office: a new pay-link typed in by hand, and MoTo (a card taken over the phone, paid through
// the checkout's payment path).
import { type Router } from '@koa/router';
import { nanoid } from 'nanoid';
import { z } from 'zod';
import { type MerchantDoc } from '../../db/merchants.repository.ts';
import { AppError } from '../../domain/errors.ts';
import { isCurrency, parseAmount } from '../../domain/money.ts';
import { type OrderDraft } from '../../domain/order-draft.ts';
import { readPlan } from '../../domain/order-mail-plan.ts';
import { parseReminderDays } from '../../domain/reminders.ts';
import { type AuthContext } from '../../services/backoffice-auth.service.ts';
import { SUPPORTED_LOCALES } from '../../services/merchant.service.ts';
import { zonedDay, zonedDayEnd } from '../../services/order-admin.service.ts';
import { orderSummary } from './backoffice.view-model.ts';
import { MotoForm, NewOrderForm, parse } from './backoffice.validators.ts';
import { BACKOFFICE_PREFIX, DAY, type BackofficeKit, type BackofficeRouterDeps, type Ctx } from './backoffice.kit.ts';

export function registerNewOrderRoutes(router: Router, deps: BackofficeRouterDeps, kit: BackofficeKit): void {
  const { orderAdmin, views } = deps;
  const { now, locale, t, page, guarded, redirect, orderId } = kit;

  function newOrderValues(m: MerchantDoc, form?: z.infer<typeof NewOrderForm>) {
    const expiresDefault = zonedDay(new Date(now().getTime() + m.linkLifetimeDays * DAY), m.timezone);
    return {
      values: form ?? { currency: m.currency, locale: m.locale, delivery: m.delivery, expires: expiresDefault },
      formKey: form?.formKey || nanoid(),
      maxExpires: zonedDay(new Date(now().getTime() + deps.maxLinkLifetimeDays * DAY), m.timezone),
      locales: SUPPORTED_LOCALES.map((lc) => ({ value: lc, selected: lc === (form?.locale || m.locale) })),
      customerDelivery: (form?.delivery ?? m.delivery) === 'customer',
      today: zonedDay(now(), m.timezone),
      weekly: form?.instalmentsEvery === 'week',
    };
  }

  router.get(
    '/orders/new',
    guarded('orders.create', async (ctx, auth) => {
      page(ctx, 200, 'new-order', { title: t('newOrder.title'), navKey: 'new', ...newOrderValues(auth.merchant) });
    }),
  );

  router.post(
    '/orders',
    guarded('orders.create', async (ctx, auth) => {
      const form = parse(NewOrderForm, ctx.request.body);
      const m = auth.merchant;
      const problems: Array<{ field: string; message: string }> = [];
      const currency = form.currency.trim().toUpperCase();
      if (currency && !isCurrency(currency)) problems.push({ field: 'currency', message: t('newOrder.problem.currency') });
      const amount = parseAmount(form.amount, m.currency, currency && isCurrency(currency) ? currency : undefined);
      if (!amount.ok) problems.push({ field: 'amount', message: `${t('newOrder.problem.amount')} ${amount.problem.message}` });
      const email = form.customerEmail.trim();
      if (email && !z.email().safeParse(email).success) problems.push({ field: 'customerEmail', message: t('newOrder.problem.email') });
      if (form.delivery === 'customer' && !email) problems.push({ field: 'customerEmail', message: t('newOrder.problem.emailForDelivery') });
      const locale = (SUPPORTED_LOCALES as readonly string[]).includes(form.locale) ? form.locale : m.locale;
      const expiresAt = form.expires ? zonedDayEnd(form.expires, m.timezone) : undefined;
      if (expiresAt && expiresAt.getTime() <= now().getTime()) problems.push({ field: 'expires', message: t('newOrder.problem.expires') });
      const reminders = form.reminders.trim() ? parseReminderDays(form.reminders) : undefined;
      if (reminders && !reminders.ok) problems.push({ field: 'reminders', message: t('newOrder.problem.reminders') });
      // A payment plan (issue 13 part 1), read and checked against the amount as an order mail's.
      const plan = readPlan(
        {
          deposit: form.deposit.trim() ? { value: form.deposit.trim() } : undefined,
          balanceDue: form.balanceDue ? { value: form.balanceDue } : undefined,
          instalments: form.instalments.trim() ? { value: `${form.instalments.trim()} ${form.instalmentsEvery}` } : undefined,
        },
        amount.ok ? amount.money : {},
        currency && isCurrency(currency) ? currency : m.currency,
        { now: now(), timeZone: m.timezone },
      );
      for (const p of plan.problems) if (!problems.some((q) => q.field === p.field)) problems.push({ field: p.field, message: t(`newOrder.problem.${p.field}`) });
      // Each message next to its field too (aria-describedby), not only in the list at the top.
      const errors = Object.fromEntries(problems.map((p) => [p.field, p.message]));
      const render = (status: number, extra: Record<string, unknown> = {}) =>
        page(ctx, status, 'new-order', { title: t('newOrder.title'), navKey: 'new', ...newOrderValues(m, form), problems, errors, ...extra });
      if (problems.length > 0 || !amount.ok) return render(422);
      const draft: OrderDraft = {
        amountMinor: amount.money.amountMinor,
        currency: amount.money.currency,
        reference: form.reference.trim() || undefined,
        description: form.description.trim() || undefined,
        customerName: form.customerName.trim() || undefined,
        customerEmail: email || undefined,
        locale,
        delivery: form.delivery,
        expiresAt,
        ...(reminders?.ok ? { reminders: reminders.off ? { off: true } : { daysBefore: reminders.days } } : {}),
        ...(plan.plan ? { plan: plan.plan } : {}),
      };
      const result = await orderAdmin.createLink(m, draft, form.formKey || undefined);
      if (result.duplicateOf === 'reference') {
        return render(409, { duplicate: { href: `${BACKOFFICE_PREFIX}/orders/${result.order._id}`, reference: result.order.reference } });
      }
      ctx.state.log.info({ orderId: result.order._id, created: result.created }, 'back-office link created');
      redirect(ctx, `${BACKOFFICE_PREFIX}/orders/${encodeURIComponent(result.order._id)}?done=created`);
    }),
  );

  // ---- MoTo: a card taken over the phone -----------------------------------------------------

  async function motoTarget(auth: AuthContext, id: string) {
    const { order } = await orderAdmin.detail(auth.merchant, id);
    if (order.status !== 'pending' || order.expiresAt.getTime() <= now().getTime()) {
      throw new AppError('ORDER_NOT_PAYABLE', `the order is ${order.status}`, { httpStatus: 409 });
    }
    return order;
  }

  /** The MoTo form; card number and CVC are never put back into the page. */
  function renderMoto(ctx: Ctx, auth: AuthContext, order: Awaited<ReturnType<typeof motoTarget>>, status: number, extra: Record<string, unknown> = {}) {
    page(ctx, status, 'moto', {
      title: t('moto.title', { reference: order.reference }),
      navKey: 'orders',
      order: orderSummary(views, order, locale(), auth.merchant.timezone),
      needsEmail: !order.customer?.email,
      ...extra,
    });
  }

  router.get(
    '/orders/:id/moto',
    guarded('orders.moto', async (ctx, auth) => renderMoto(ctx, auth, await motoTarget(auth, orderId(ctx)), 200, { values: { holder: '', email: '' } })),
  );

  router.post(
    '/orders/:id/moto',
    guarded('orders.moto', async (ctx, auth) => {
      const id = orderId(ctx);
      const order = await motoTarget(auth, id);
      const form = parse(MotoForm, ctx.request.body);
      const values = { holder: form.holder, email: form.email };
      // The rate limits count per operator, not per office address (many operators share one).
      const result = await deps.checkout.pay(
        { order, merchant: auth.merchant },
        { number: form.number, expiry: form.expiry, cvc: form.cvc, holder: form.holder, email: form.email || undefined },
        `moto:${auth.user.id}`,
        { moto: true },
      );
      // Logged: the outcome only, never the card.
      ctx.state.log.info({ orderId: id, userId: auth.user.id, outcome: result.kind }, 'moto payment');
      switch (result.kind) {
        case 'paid':
          return redirect(ctx, `${BACKOFFICE_PREFIX}/orders/${encodeURIComponent(id)}?done=motoPaid`);
        case 'invalid':
          return renderMoto(ctx, auth, order, 422, { values, problems: result.problems.map((p) => ({ field: p.field, message: p.message })) });
        case 'refused':
          return renderMoto(ctx, auth, order, 402, { values, problem: t(`decline.${result.code}`) });
        case 'challenge':
          return renderMoto(ctx, auth, order, 402, { values, problem: t('moto.challenge') });
        case 'rate-limited':
          ctx.set('Retry-After', String(result.retryAfterSec));
          return renderMoto(ctx, auth, order, 429, { values, problem: t('moto.rateLimited', { minutes: Math.max(1, Math.ceil(result.retryAfterSec / 60)) }) });
        case 'suspended':
          return renderMoto(ctx, auth, order, 403, { values, problem: t('suspended.moto') });
        default:
          throw new AppError('ORDER_NOT_PAYABLE', 'the order was closed meanwhile', { httpStatus: 409 });
      }
    }),
  );
}
