// What every back-office area shares: the paths and cookies, the per-request page language, the
// session/CSRF/permission guard, and rendering a page (with the navigation and the notices).
import { AsyncLocalStorage } from 'node:async_hooks';
import { type RouterContext } from '@koa/router';
import { type BrandingService } from '../../services/branding.service.ts';
import { type RenewalService } from '../../services/renewal.service.ts';
import { type PlanService } from '../../services/plan.service.ts';
import { AppError } from '../../domain/errors.ts';
import { type AuthContext, type BackofficeAuthService } from '../../services/backoffice-auth.service.ts';
import { type AcquirerSettings } from '../../services/acquirer/acquirer-settings.ts';
import { createCsrf } from '../middleware/csrf.ts';
import { type OrderAdminService } from '../../services/order-admin.service.ts';
import { type CheckoutService } from '../../services/checkout.service.ts';
import { type SavedCardChargeService } from '../../services/saved-card-charge.service.ts';
import { type MerchantAdminService } from '../../services/merchant-admin.service.ts';
import { type RefundService } from '../../services/refund.service.ts';
import { type ReceiptDocuments } from '../../services/receipt-document.service.ts';
import { DEFAULT_LOCALE, resolvePageLocale, type PageLocale } from '../page-strings.ts';
import { type BackofficeViews } from './backoffice.views.ts';
import { orderIdParam } from './backoffice.validators.ts';
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
/**
 * The language of the page being built: the browser's until the user is known, then the
 * merchant's locale (a per-user language would go first, once users have one). Held per request
 * in async context so t() and the render helpers below need not pass it along.
 */
export const requestLocale = new AsyncLocalStorage<{ locale: PageLocale }>();

/** The first candidate that is one of the five page languages ("it-IT" → "it"). */
export function pageLocale(...candidates: Array<string | null | undefined>): PageLocale {
  return resolvePageLocale(...candidates);
}

export const DAY = 86_400_000;

/** Notices shown after a redirect (?done=…); anything else in the query is ignored. */
const NOTICES = [
  // A partly paid order cancelled, what was paid refunded or kept (issue 13 part 1).
  'cancelledRefunded', 'cancelledKept',
  'cancelled', 'resent', 'resentTo', 'extended', 'extendedCapped', 'created', 'passwordChanged',
  'refunded', 'motoPaid', 'charged', 'settingsSaved', 'roleChanged', 'userRemoved', 'replayed', 'languageSaved', 'brandSaved', 'remindersSaved', 'renewed',
  // The next part of an order paid in parts asked for (issue 13 part 1).
  'balanceRequested',
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
  /** Charging a customer's saved card from the order page (issue 12 part 3); no form without it. */
  savedCardCharges?: Pick<SavedCardChargeService, 'chargeSavedCard'>;
  /** The PDF receipt of a paid order, downloadable from its detail page. */
  receipts: ReceiptDocuments;
  /** Renewing an expired link from its order page (issue 13 part 4); no button when absent. */
  renewals?: Pick<RenewalService, 'renew'>;
  /** Asking for the next part of an order paid in parts (issue 13 part 1); no button when absent. */
  plans?: Pick<PlanService, 'requestNext'>;
  /** The merchant's look (settings); built from `repos` when not given. */
  branding?: BrandingService;
  views: BackofficeViews;
  /** The merchant's acquirer and its secrets (issue 12 part 4); no acquirer page without it. */
  acquirerSettings?: AcquirerSettings;
  /** Key of the CSRF tokens: the checkout's one scheme (deriveCsrfKey from the link-signing secret). */
  csrfKey: Buffer;
  /** Secure cookies in production (HTTPS). */
  production: boolean;
  maxLinkLifetimeDays: number;
  now?: () => Date;
}

export type Ctx = RouterContext;
export type Handler = (ctx: Ctx, auth: AuthContext) => Promise<void>;

export function createBackofficeKit(deps: BackofficeRouterDeps) {
  const { auth: authService, views } = deps;
  const now = deps.now ?? (() => new Date());
  const locale = (): PageLocale => requestLocale.getStore()?.locale ?? DEFAULT_LOCALE;
  const t = (key: string, vars?: Record<string, unknown>) => views.t(locale(), key, vars);
  // The one CSRF scheme (src/http/middleware/csrf.ts): HMAC of the browser's CSRF cookie and a scope —
  // the log-in form, or the session (its server-side secret), so a token only serves its own session.
  const csrf = createCsrf(deps.csrfKey);
  const csrfScope = (auth: AuthContext | undefined): string => (auth ? `backoffice:session:${auth.csrfToken}` : 'backoffice:login');

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
      { href: '/backoffice/api-keys', label: t('nav.apiKeys'), key: 'apiKeys', permission: 'apiKeys' },
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
              csrf: csrf.token(ctx, csrfScope(auth)),
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
      if (store) store.locale = pageLocale(auth.user.locale, auth.merchant.locale);
      if (ctx.method === 'POST') {
        const token = body(ctx)['_csrf'];
        if (!csrf.verify(ctx, csrfScope(auth), token)) {
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

  const orderId = (ctx: Ctx): string => {
    const id = orderIdParam.parse(ctx.params['id'] ?? '');
    if (!id) throw new AppError('ORDER_NOT_FOUND', 'no such order', { httpStatus: 404 });
    return id;
  };

  return { now, locale, t, setCookie, page, toLogin, body, guarded, redirect, orderId, csrf, csrfScope };
}
export type BackofficeKit = ReturnType<typeof createBackofficeKit>;
