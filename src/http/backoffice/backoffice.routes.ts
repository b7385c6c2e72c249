// The merchant back office under /backoffice: log-in, orders (list, detail, actions, new link),
// CSV export, password change. Thin edge: each route checks the session, the CSRF token (every
// POST) and its one permission from permissions.ts, calls one service, and picks the page.
//
// Anonymous requests are sent to the log-in page (303); a logged-in role without the permission
// gets 403; a POST without the session's CSRF token gets 403. The log-in form itself has no
// session yet, so it uses a double-submit token (a cookie that the form must echo).
import { AsyncLocalStorage } from 'node:async_hooks';
import { Router, type RouterContext } from '@koa/router';
import { nanoid } from 'nanoid';
import { z } from 'zod';
import { type MerchantDoc } from '../../db/merchants.repository.ts';
import { ORDER_STATUSES } from '../../domain/order-status.ts';
import { AppError, isAppError } from '../../domain/errors.ts';
import { isCurrency, parseAmount } from '../../domain/money.ts';
import { type OrderDraft } from '../../domain/order-draft.ts';
import { newToken, tokensEqual, type AuthContext, type BackofficeAuthService } from '../../services/backoffice-auth.service.ts';
import { SUPPORTED_LOCALES } from '../../services/merchant.service.ts';
import { zonedDay, zonedDayEnd, type OrderAdminService, type OrderFilters } from '../../services/order-admin.service.ts';
import { type CheckoutService } from '../../services/checkout.service.ts';
import { type MerchantAdminService } from '../../services/merchant-admin.service.ts';
import { type RefundService } from '../../services/refund.service.ts';
import { type ReceiptDocuments } from '../../services/receipt-document.service.ts';
import { sendReceiptPdf } from '../receipt-download.ts';
import { formatMoney, toMajorString } from '../../domain/money.ts';
import { DELIVERY_MODES, ROLES } from '../../domain/merchant.ts';
import { acceptedLanguages, DEFAULT_LOCALE, PAGE_LOCALES, type PageLocale } from '../views.ts';
import { type BackofficeViews } from './backoffice.views.ts';
import { orderRow, orderSummary, pager, shortDate, timeline } from './backoffice.view-model.ts';
import {
  ExportQuery,
  ExtendForm,
  LoginForm,
  MotoForm,
  NewOrderForm,
  OrderFilterQuery,
  PasswordForm,
  RefundForm,
  RoleForm,
  SettingsForm,
  UserForm,
  eventIdParam,
  orderIdParam,
  parse,
  userIdParam,
} from './backoffice.validators.ts';
import { can, type Permission } from './permissions.ts';
import { type Repositories } from '../../db/repositories.ts';

declare module 'koa' {
  interface DefaultState {
    /** The resolved back-office session, once a guarded route has checked it. */
    backoffice?: AuthContext;
  }
}

export const BACKOFFICE_PREFIX = '/backoffice';
export const SESSION_COOKIE = 'pm_bo_session';
export const LOGIN_CSRF_COOKIE = 'pm_bo_login';
/**
 * The language of the page being built: the browser's until the user is known, then the
 * merchant's locale (a per-user language would go first, once users have one). Held per request
 * in async context so t() and the render helpers below need not pass it along.
 */
const requestLocale = new AsyncLocalStorage<{ locale: PageLocale }>();

/** The first candidate that is one of the five page languages ("it-IT" → "it"). */
function pageLocale(...candidates: Array<string | null | undefined>): PageLocale {
  const lc = candidates.map((c) => c?.trim().toLowerCase().slice(0, 2)).find((c) => (PAGE_LOCALES as readonly string[]).includes(c ?? ''));
  return (lc as PageLocale | undefined) ?? DEFAULT_LOCALE;
}

const DAY = 86_400_000;

/** Notices shown after a redirect (?done=…); anything else in the query is ignored. */
const NOTICES = [
  'cancelled', 'resent', 'extended', 'extendedCapped', 'created', 'passwordChanged',
  'refunded', 'motoPaid', 'settingsSaved', 'roleChanged', 'userRemoved', 'replayed',
] as const;

export interface BackofficeRouterDeps {
  /** The storage seam (src/db/repositories.ts). */
  repos: Repositories;
  auth: BackofficeAuthService;
  orderAdmin: OrderAdminService;
  refunds: RefundService;
  merchantAdmin: MerchantAdminService;
  /** The checkout's payment path, reused for cards taken over the phone (MoTo). */
  checkout: Pick<CheckoutService, 'pay'>;
  /** The PDF receipt of a paid order, downloadable from its detail page. */
  receipts: ReceiptDocuments;
  views: BackofficeViews;
  /** Secure cookies in production (HTTPS). */
  production: boolean;
  maxLinkLifetimeDays: number;
  now?: () => Date;
}

type Ctx = RouterContext;
type Handler = (ctx: Ctx, auth: AuthContext) => Promise<void>;

/** Only a path inside the back office may be a post-log-in destination (no open redirect). */
function safeNext(next: string | undefined): string {
  if (next && /^\/backoffice(\/[\w\-./?=&%~+:@]*)?$/.test(next) && !next.includes('//') && !next.includes('/..')) return next;
  return `${BACKOFFICE_PREFIX}/orders`;
}

export function createBackofficeRouter(deps: BackofficeRouterDeps): Router {
  const { auth: authService, orderAdmin, refunds, merchantAdmin, views } = deps;
  const now = deps.now ?? (() => new Date());
  const router = new Router({ prefix: BACKOFFICE_PREFIX });
  const locale = (): PageLocale => requestLocale.getStore()?.locale ?? DEFAULT_LOCALE;
  const t = (key: string, vars?: Record<string, unknown>) => views.t(locale(), key, vars);

  function setCookie(ctx: Ctx, name: string, value: string, maxAgeSec?: number): void {
    const parts = [`${name}=${value}`, `Path=${BACKOFFICE_PREFIX}`, 'HttpOnly', 'SameSite=Lax'];
    if (deps.production) parts.push('Secure');
    if (maxAgeSec !== undefined) parts.push(`Max-Age=${maxAgeSec}`);
    ctx.append('Set-Cookie', parts.join('; '));
  }

  function nav(auth: AuthContext, current: string) {
    const items: Array<{ href: string; label: string; key: string; permission: Permission }> = [
      { href: '/backoffice/orders', label: t('nav.orders'), key: 'orders', permission: 'orders.read' },
      { href: '/backoffice/orders/new', label: t('nav.newLink'), key: 'new', permission: 'orders.create' },
      { href: '/backoffice/export', label: t('nav.export'), key: 'export', permission: 'orders.export' },
      { href: '/backoffice/settings', label: t('nav.settings'), key: 'settings', permission: 'settings' },
      { href: '/backoffice/users', label: t('nav.users'), key: 'users', permission: 'users' },
      { href: '/backoffice/webhooks', label: t('nav.webhooks'), key: 'webhooks', permission: 'settings' },
      { href: '/backoffice/password', label: t('nav.account'), key: 'account', permission: 'account' },
    ];
    return items.filter((i) => can(auth.user.role, i.permission)).map((i) => ({ ...i, current: i.key === current }));
  }

  function page(ctx: Ctx, status: number, name: string, data: Record<string, unknown> & { title: string; navKey?: string }) {
    const auth = ctx.state.backoffice;
    ctx.status = status;
    ctx.type = 'html';
    const done = typeof ctx.query['done'] === 'string' ? ctx.query['done'] : '';
    ctx.body = views.render(name, {
      ...data,
      locale: locale(),
      notice: (NOTICES as readonly string[]).includes(done) ? t(`notice.${done}`) : undefined,
      ...(auth
        ? {
            session: {
              email: auth.user.email,
              role: t(`role.${auth.user.role}`),
              merchantName: auth.merchant.name,
              // The operator suspended the account: every page says so (and why, when told).
              suspended:
                auth.merchant.status === 'suspended'
                  ? { text: t('suspended.banner'), reason: auth.merchant.suspendedReason ? t('suspended.reason', { reason: auth.merchant.suspendedReason }) : '' }
                  : undefined,
              csrf: auth.csrfToken,
              nav: nav(auth, data.navKey ?? ''),
            },
          }
        : {}),
    });
  }

  function toLogin(ctx: Ctx): void {
    ctx.status = 303;
    const next = ctx.method === 'GET' ? `?next=${encodeURIComponent(ctx.originalUrl)}` : '';
    ctx.redirect(`${BACKOFFICE_PREFIX}/login${next}`);
  }

  const body = (ctx: Ctx): Record<string, unknown> => (ctx.request.body && typeof ctx.request.body === 'object' ? ctx.request.body : {}) as Record<string, unknown>;

  /** Session, then CSRF (POST), then the permission; only then the handler. */
  function guarded(permission: Permission, handler: Handler) {
    return async (ctx: Ctx) => {
      const auth = await authService.resolve(ctx.cookies.get(SESSION_COOKIE));
      if (!auth) return toLogin(ctx);
      ctx.state.backoffice = auth;
      // From here on the merchant's language, also for the error page should the checks below refuse.
      const store = requestLocale.getStore();
      if (store) store.locale = pageLocale(auth.merchant.locale);
      if (ctx.method === 'POST') {
        const token = body(ctx)['_csrf'];
        if (!tokensEqual(typeof token === 'string' ? token : undefined, auth.csrfToken)) {
          throw new AppError('CSRF_INVALID', 'the form has expired; reload the page and try again', { httpStatus: 403 });
        }
      }
      if (!can(auth.user.role, permission)) {
        ctx.state.log.info({ userId: auth.user.id, role: auth.user.role, permission }, 'back-office access denied');
        throw new AppError('FORBIDDEN', 'your role does not allow this', { httpStatus: 403 });
      }
      await handler(ctx, auth);
    };
  }

  const redirect = (ctx: Ctx, to: string) => {
    ctx.status = 303;
    ctx.redirect(to);
  };

  router.use((ctx, next) => requestLocale.run({ locale: pageLocale(...acceptedLanguages(ctx.get('accept-language'))) }, next));

  // Client errors inside the back office get a back-office page (with the navigation when logged in).
  router.use(async (ctx, next) => {
    ctx.set('Cache-Control', 'no-store');
    try {
      await next();
    } catch (err) {
      if (!isAppError(err) || err.httpStatus >= 500) throw err;
      ctx.state.log.info({ status: err.httpStatus, code: err.code }, 'back-office request refused');
      page(ctx, err.httpStatus, 'error', { title: t('error.title'), code: err.code, message: t(`problem.${err.code}`), status: err.httpStatus });
    }
  });

  // ---- log-in, log-out, password -------------------------------------------------------------

  function renderLogin(ctx: Ctx, status: number, data: { email?: string; next?: string; problem?: string }) {
    let token = ctx.cookies.get(LOGIN_CSRF_COOKIE);
    if (!token || !/^[\w-]{43}$/.test(token)) {
      token = newToken();
      setCookie(ctx, LOGIN_CSRF_COOKIE, token);
    }
    page(ctx, status, 'login', { title: t('login.title'), csrf: token, email: data.email ?? '', next: data.next ?? '', problem: data.problem });
  }

  router.get('/login', async (ctx) => {
    if (await authService.resolve(ctx.cookies.get(SESSION_COOKIE))) return redirect(ctx, `${BACKOFFICE_PREFIX}/orders`);
    renderLogin(ctx, 200, { next: typeof ctx.query['next'] === 'string' ? ctx.query['next'] : '' });
  });

  router.post('/login', async (ctx) => {
    const form = parse(LoginForm, ctx.request.body);
    if (!tokensEqual(form._csrf, ctx.cookies.get(LOGIN_CSRF_COOKIE))) {
      throw new AppError('CSRF_INVALID', 'the form has expired; reload the page and try again', { httpStatus: 403 });
    }
    try {
      const token = await authService.login(form.email, form.password, { ip: ctx.ip, userAgent: ctx.get('user-agent') });
      setCookie(ctx, SESSION_COOKIE, token);
      ctx.state.log.info({ email: form.email.trim().toLowerCase() }, 'back-office log-in');
      return redirect(ctx, safeNext(form.next));
    } catch (e) {
      if (isAppError(e, 'AUTH_INVALID_CREDENTIALS')) {
        ctx.state.log.info({ code: e.code }, 'back-office log-in refused');
        return renderLogin(ctx, 401, { email: form.email, next: form.next, problem: t('problem.AUTH_INVALID_CREDENTIALS') });
      }
      if (isAppError(e, 'AUTH_LOCKED')) {
        const retryAfterSec = (e.details as { retryAfterSec: number }).retryAfterSec;
        ctx.state.log.warn({ code: e.code, retryAfterSec }, 'back-office log-in locked');
        ctx.set('Retry-After', String(retryAfterSec));
        const minutes = Math.max(1, Math.ceil(retryAfterSec / 60));
        return renderLogin(ctx, 429, { email: form.email, next: form.next, problem: t('problem.AUTH_LOCKED', { minutes }) });
      }
      throw e;
    }
  });

  router.post(
    '/logout',
    guarded('account', async (ctx, auth) => {
      await authService.logout(auth);
      setCookie(ctx, SESSION_COOKIE, '', 0);
      ctx.state.backoffice = undefined;
      redirect(ctx, `${BACKOFFICE_PREFIX}/login`);
    }),
  );

  const renderPassword = (ctx: Ctx, status: number, problem?: string) =>
    page(ctx, status, 'password', { title: t('password.title'), navKey: 'account', problem, min: authService.minPasswordLength });

  router.get('/password', guarded('account', async (ctx) => renderPassword(ctx, 200)));

  router.post(
    '/password',
    guarded('account', async (ctx, auth) => {
      const form = parse(PasswordForm, ctx.request.body);
      try {
        await authService.changePassword(auth, form, ctx.ip);
      } catch (e) {
        if (isAppError(e) && (e.httpStatus === 422 || e.httpStatus === 429)) {
          return renderPassword(ctx, e.httpStatus, t(`problem.${e.code}`, { min: authService.minPasswordLength, minutes: 1 }));
        }
        throw e;
      }
      redirect(ctx, `${BACKOFFICE_PREFIX}/password?done=passwordChanged`);
    }),
  );

  router.get('/', guarded('account', async (ctx) => redirect(ctx, `${BACKOFFICE_PREFIX}/orders`)));

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

  function newOrderValues(m: MerchantDoc, form?: z.infer<typeof NewOrderForm>) {
    const expiresDefault = zonedDay(new Date(now().getTime() + m.linkLifetimeDays * DAY), m.timezone);
    return {
      values: form ?? { currency: m.currency, locale: m.locale, delivery: m.delivery, expires: expiresDefault },
      formKey: form?.formKey || nanoid(),
      maxExpires: zonedDay(new Date(now().getTime() + deps.maxLinkLifetimeDays * DAY), m.timezone),
      locales: SUPPORTED_LOCALES.map((lc) => ({ value: lc, selected: lc === (form?.locale || m.locale) })),
      customerDelivery: (form?.delivery ?? m.delivery) === 'customer',
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
      const render = (status: number, extra: Record<string, unknown> = {}) =>
        page(ctx, status, 'new-order', { title: t('newOrder.title'), navKey: 'new', ...newOrderValues(m, form), problems, ...extra });
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
      };
      const result = await orderAdmin.createLink(m, draft, form.formKey || undefined);
      if (result.duplicateOf === 'reference') {
        return render(409, { duplicate: { href: `${BACKOFFICE_PREFIX}/orders/${result.order._id}`, reference: result.order.reference } });
      }
      ctx.state.log.info({ orderId: result.order._id, created: result.created }, 'back-office link created');
      redirect(ctx, `${BACKOFFICE_PREFIX}/orders/${encodeURIComponent(result.order._id)}?done=created`);
    }),
  );

  const orderId = (ctx: Ctx): string => {
    const id = orderIdParam.parse(ctx.params['id'] ?? '');
    if (!id) throw new AppError('ORDER_NOT_FOUND', 'no such order', { httpStatus: 404 });
    return id;
  };

  async function renderDetail(ctx: Ctx, auth: AuthContext, id: string, status: number, problem?: string) {
    const m = auth.merchant;
    const { order, mails, link } = await orderAdmin.detail(m, id);
    const { refunds: refundList, refundedMinor } = await refunds.forOrder(m, order._id);
    const refundableMinor = order.status === 'paid' ? Math.max(0, order.amountMinor - refundedMinor) : 0;
    const open = order.status === 'pending' && order.expiresAt.getTime() > now().getTime();
    const role = auth.user.role;
    const actions = {
      cancel: order.status === 'pending' && can(role, 'orders.cancel'),
      resend: open && can(role, 'orders.resend'),
      extend: open && can(role, 'orders.extend'),
      refund: refundableMinor > 0 && can(role, 'orders.refund'),
      moto: open && can(role, 'orders.moto'),
    };
    page(ctx, status, 'order', {
      title: t('order.title', { reference: order.reference }),
      navKey: 'orders',
      order: orderSummary(views, order, locale(), m.timezone),
      receiptPdf: order.status === 'paid' ? `${BACKOFFICE_PREFIX}/orders/${encodeURIComponent(order._id)}/receipt.pdf` : undefined,
      timeline: timeline(views, order, mails, locale(), m.timezone, refundList),
      link,
      problem,
      actions: { ...actions, any: actions.cancel || actions.resend || actions.extend || actions.refund || actions.moto },
      refunded:
        refundedMinor > 0
          ? {
              total: formatMoney(refundedMinor, order.currency, locale()),
              label: refundableMinor === 0 ? t('refund.full') : t('refund.partial'),
              refundable: refundableMinor > 0 ? formatMoney(refundableMinor, order.currency, locale()) : undefined,
            }
          : undefined,
      refundDefault: toMajorString(refundableMinor, order.currency),
      refundMax: formatMoney(refundableMinor, order.currency, locale()),
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
      const pdf = await deps.receipts.pdfFor(await orderAdmin.order(auth.merchant, orderId(ctx)), auth.merchant, locale());
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

  router.post(
    '/orders/:id/cancel',
    orderAction('orders.cancel', async (_ctx, auth, id) => {
      await orderAdmin.cancel(auth.merchant, id, `user:${auth.user.id}`);
      return 'cancelled';
    }),
  );

  router.post(
    '/orders/:id/resend',
    orderAction('orders.resend', async (_ctx, auth, id) => {
      await orderAdmin.resend(auth.merchant, id);
      return 'resent';
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

  router.post(
    '/orders/:id/refund',
    orderAction('orders.refund', async (ctx, auth, id) => {
      const form = parse(RefundForm, ctx.request.body);
      const { order } = await orderAdmin.detail(auth.merchant, id);
      const amount = parseAmount(form.amount, order.currency);
      if (!amount.ok || amount.money.currency !== order.currency) {
        throw new AppError('REFUND_AMOUNT_INVALID', 'expected an amount in the currency of the order', { httpStatus: 422 });
      }
      const refund = await refunds.refund(auth.merchant, id, { amountMinor: amount.money.amountMinor, by: auth.user.email, reason: form.reason.trim() || undefined });
      ctx.state.log.info({ orderId: id, refund: refund._id, amountMinor: refund.amountMinor }, 'refund done');
      return 'refunded';
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

  // ---- settings, users, webhook log (admin) --------------------------------------------------

  function settingsValues(m: MerchantDoc) {
    return {
      delivery: String(m.delivery),
      linkLifetimeDays: String(m.linkLifetimeDays),
      locale: m.locale,
      timezone: m.timezone,
      recapHour: String(m.recapHour ?? 7),
      senderDomains: (m.senderDomains ?? []).join('\n'),
      webhookUrl: m.webhookUrl ?? '',
    };
  }

  function renderSettings(ctx: Ctx, auth: AuthContext, status: number, extra: { values?: ReturnType<typeof settingsValues>; problems?: Array<{ field: string; message: string }>; newSecret?: string; graceUntil?: string } = {}) {
    const m = auth.merchant;
    const values = extra.values ?? settingsValues(m);
    page(ctx, status, 'settings', {
      title: t('settings.title'),
      navKey: 'settings',
      values,
      problems: extra.problems,
      newSecret: extra.newSecret,
      graceUntil: extra.graceUntil,
      maxDays: deps.maxLinkLifetimeDays,
      deliveries: DELIVERY_MODES.map((d) => ({ value: d, label: t(`delivery.${d}`), selected: d === values.delivery })),
      locales: SUPPORTED_LOCALES.map((lc) => ({ value: lc, selected: lc === values.locale })),
      previousValid:
        m.previousWebhookSecret && m.previousSecretUntil && m.previousSecretUntil > now()
          ? shortDate(m.previousSecretUntil, locale(), m.timezone)
          : undefined,
    });
  }

  router.get('/settings', guarded('settings', async (ctx, auth) => renderSettings(ctx, auth, 200)));

  router.post(
    '/settings',
    guarded('settings', async (ctx, auth) => {
      const form = parse(SettingsForm, ctx.request.body);
      try {
        await merchantAdmin.updateSettings(auth.merchant, form);
      } catch (e) {
        if (isAppError(e, 'SETTINGS_INVALID')) {
          const problems = (e.details as { problems: Array<{ field: string; code: string; message: string }> }).problems;
          return renderSettings(ctx, auth, 422, { values: { ...form }, problems: problems.map((p) => ({ field: p.field, message: t(`settings.problem.${p.code}`, { max: deps.maxLinkLifetimeDays, reason: p.message }) })) });
        }
        throw e;
      }
      ctx.state.log.info({ userId: auth.user.id }, 'settings changed');
      redirect(ctx, `${BACKOFFICE_PREFIX}/settings?done=settingsSaved`);
    }),
  );

  router.post(
    '/settings/webhook-secret',
    guarded('settings', async (ctx, auth) => {
      const { secret, previousValidUntil } = await merchantAdmin.rotateWebhookSecret(auth.merchant);
      ctx.state.log.info({ userId: auth.user.id }, 'webhook secret rotated');
      // Shown once, on this answer only (no redirect: the secret must not travel in a URL).
      const fresh = { ...auth, merchant: { ...auth.merchant, webhookSecret: secret, previousSecretUntil: previousValidUntil } } as AuthContext;
      renderSettings(ctx, fresh, 200, { newSecret: secret, graceUntil: shortDate(previousValidUntil, locale(), auth.merchant.timezone) });
    }),
  );

  async function renderUsers(ctx: Ctx, auth: AuthContext, status: number, extra: { created?: { email: string; password: string }; problem?: string; values?: { email: string; role: string } } = {}) {
    const users = await merchantAdmin.listUsers(auth.merchant);
    const roleOptions = (current: string) => ROLES.map((r) => ({ value: r, label: t(`role.${r}`), selected: r === current }));
    page(ctx, status, 'users', {
      title: t('users.title'),
      navKey: 'users',
      users: users.map((u) => ({ ...u, roleLabel: t(`role.${u.role}`), self: u.id === auth.user.id, roles: roleOptions(u.role) })),
      newRoles: roleOptions(extra.values?.role ?? 'viewer'),
      values: extra.values ?? { email: '', role: 'viewer' },
      created: extra.created,
      problem: extra.problem,
    });
  }

  router.get('/users', guarded('users', async (ctx, auth) => renderUsers(ctx, auth, 200)));

  router.post(
    '/users',
    guarded('users', async (ctx, auth) => {
      const form = parse(UserForm, ctx.request.body);
      try {
        const { user, password } = await merchantAdmin.addUser(auth.merchant, form.email, form.role);
        ctx.state.log.info({ userId: auth.user.id, added: user.id, role: user.role }, 'user added');
        // The temporary password is shown on this answer only.
        return renderUsers(ctx, auth, 201, { created: { email: user.email, password } });
      } catch (e) {
        if (isAppError(e) && (e.httpStatus === 409 || e.httpStatus === 422)) {
          return renderUsers(ctx, auth, e.httpStatus, { problem: t(`problem.${e.code}`), values: { email: form.email, role: form.role } });
        }
        throw e;
      }
    }),
  );

  /** A change to one user: done → the list (303); refused → the list with why. */
  function userAction(run: (ctx: Ctx, auth: AuthContext, userId: string) => Promise<string>) {
    return guarded('users', async (ctx, auth) => {
      const userId = userIdParam.parse(ctx.params['userId'] ?? '');
      if (!userId) throw new AppError('USER_NOT_FOUND', 'no such user', { httpStatus: 404 });
      let notice: string;
      try {
        notice = await run(ctx, auth, userId);
      } catch (e) {
        if (isAppError(e) && (e.httpStatus === 409 || e.httpStatus === 422)) return renderUsers(ctx, auth, e.httpStatus, { problem: t(`problem.${e.code}`) });
        throw e;
      }
      ctx.state.log.info({ userId: auth.user.id, target: userId, action: notice }, 'user changed');
      redirect(ctx, `${BACKOFFICE_PREFIX}/users?done=${notice}`);
    });
  }

  router.post(
    '/users/:userId/role',
    userAction(async (ctx, auth, userId) => {
      await merchantAdmin.changeRole(auth.merchant, auth.user.id, userId, parse(RoleForm, ctx.request.body).role);
      return 'roleChanged';
    }),
  );

  router.post(
    '/users/:userId/remove',
    userAction(async (_ctx, auth, userId) => {
      await merchantAdmin.removeUser(auth.merchant, auth.user.id, userId);
      return 'userRemoved';
    }),
  );

  router.get(
    '/webhooks',
    guarded('settings', async (ctx, auth) => {
      const tz = auth.merchant.timezone;
      const log = await merchantAdmin.webhookLog(auth.merchant);
      page(ctx, 200, 'webhooks', {
        title: t('webhooks.title'),
        navKey: 'webhooks',
        webhookUrl: auth.merchant.webhookUrl ?? '',
        deliveries: log.map((d) => ({
          id: d._id,
          type: d.type,
          orderId: d.orderId ?? '',
          created: shortDate(d.createdAt, locale(), tz),
          status: d.status,
          statusLabel: t(`webhooks.status.${d.status}`),
          attempts: d.attempts,
          lastStatusCode: d.lastStatusCode ?? '',
          lastError: d.lastError ?? '',
          canReplay: d.status !== 'sending',
          attemptList: d.attemptList.map((a) => ({ n: a.attempt, when: shortDate(a.at, locale(), tz), ok: a.ok, statusCode: a.statusCode ?? '', error: a.error ?? '', ms: a.durationMs })),
        })),
      });
    }),
  );

  router.post(
    '/webhooks/:eventId/replay',
    guarded('settings', async (ctx, auth) => {
      const eventId = eventIdParam.parse(ctx.params['eventId'] ?? '');
      if (!eventId) throw new AppError('WEBHOOK_NOT_FOUND', 'no such webhook delivery', { httpStatus: 404 });
      await merchantAdmin.replayWebhook(auth.merchant, eventId);
      ctx.state.log.info({ userId: auth.user.id, eventId }, 'webhook replay queued');
      redirect(ctx, `${BACKOFFICE_PREFIX}/webhooks?done=replayed`);
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

  return router;
}
