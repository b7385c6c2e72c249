// The customer's pages around reminders and expired links (issue 13, parts 3 and 4):
// - POST /pay/:publicId/new-link (the expired page's "Ask <merchant> for a new link"): the signed
//   pay-link query and the checkout's CSRF token, like the payment form; works without JavaScript.
//   Once per expiry of an order (src/services/renewal.service.ts), so it cannot flood the merchant.
//   A GET of it only goes back to the pay-link.
// - GET /reminders/off/:publicId?k&s: a confirmation page with a button; nothing changes (mail
//   link scanners open URLs). POST to the same URL stops the order's reminders: the page's button,
//   or a mail client's RFC 8058 one-click POST (body List-Unsubscribe=One-Click, no cookie, so no
//   CSRF token: the signed URL is the authority, and all it can do is stop reminders).
import { Router, type RouterContext } from '@koa/router';
import { type OrderDoc } from '../../db/orders.repository.ts';
import { type Repositories } from '../../db/repositories.ts';
import { isAppError } from '../../domain/errors.ts';
import { payableAt } from '../../domain/order-plan.ts';
import { type LinkKey, PAY_PATH } from '../../domain/pay-link.ts';
import { REMINDERS_OFF_PATH, verifyRemindersOff } from '../../domain/reminder-link.ts';
import { type CheckoutService } from '../../services/checkout.service.ts';
import { type RenewalService } from '../../services/renewal.service.ts';
import { brandView } from '../../services/branding.service.ts';
import { sendPage } from './checkout.view-model.ts';
import { createCsrf, CSRF_FIELD } from '../middleware/csrf.ts';
import { acceptedLanguages, type Views } from '../views.ts';

/** Under a pay-link: the customer's request for a new link. */
export const NEW_LINK_LEAF = 'new-link';

/** The expired page's "Ask for a new link": the form (`form()` gives its action and token), or that it was asked or renewed already. */
export function newLinkView(order: Pick<OrderDoc, 'status' | 'amountMinor' | 'plan' | 'expiresAt' | 'renewals' | 'renewalRequest' | 'customer'>, form: () => { action: string; csrf: string; csrfField: string }, now = new Date()) {
  // This link's order was renewed meanwhile: a new link went out by mail.
  if (payableAt(order, now)) return { renewed: true };
  if (order.renewalRequest?.generation === (order.renewals?.length ?? 0)) return { asked: true };
  return { ...form(), needEmail: !order.customer?.email };
}

export interface RenewalRoutesDeps {
  repos: Repositories;
  checkout: CheckoutService;
  renewals: RenewalService;
  views: Views;
  csrfKey: Buffer;
  linkKeys: readonly LinkKey[];
}

type Ctx = RouterContext;
const EMAIL = /^[^\s@<>]{1,64}@[^\s@<>]{1,190}\.[^\s@<>]{2,}$/;

export function createRenewalRouter(deps: RenewalRoutesDeps): Router {
  const { views } = deps;
  const csrf = createCsrf(deps.csrfKey);
  const router = new Router();

  function page(ctx: Ctx, status: number, name: string, locale: string, titleKey: string, data: Record<string, unknown>) {
    // Answers to a POST (or pages behind a capability URL): no language links that would re-run them.
    sendPage(ctx, views, { status, name, locale, titleKey, data, langNav: '' });
  }

  function localeFor(ctx: Ctx, order?: { locale: string }, merchant?: { locale: string }): string {
    const locale = views.resolveLocale(ctx.query['lang'], order?.locale, ...acceptedLanguages(ctx.get('accept-language')), merchant?.locale);
    ctx.state.locale = locale;
    return locale;
  }

  const publicIdOf = (ctx: Ctx) => ctx.params['publicId'] ?? '';
  const payLinkOf = (ctx: Ctx) => `${PAY_PATH}/${encodeURIComponent(publicIdOf(ctx))}${ctx.querystring ? `?${ctx.querystring}` : ''}`;
  const newLinkPath = `${PAY_PATH}/:publicId/${NEW_LINK_LEAF}`;

  router.get(newLinkPath, (ctx) => {
    ctx.status = 303;
    ctx.redirect(payLinkOf(ctx));
  });

  router.post(newLinkPath, async (ctx) => {
    const state = await deps.checkout.open(publicIdOf(ctx), ctx.query);
    // Only from a valid link of an expired order; anything else shows the pay-link's own page.
    if (state.kind !== 'expired') {
      ctx.state.log.info({ state: state.kind }, 'new-link request: the link is not expired');
      ctx.status = 303;
      return ctx.redirect(payLinkOf(ctx));
    }
    const { order, merchant } = state;
    const locale = localeFor(ctx, order, merchant);
    ctx.state.brand = brandView(merchant);
    const body = (ctx.request.body ?? {}) as Record<string, unknown>;
    if (!csrf.verify(ctx, order.publicId, body[CSRF_FIELD])) {
      ctx.state.log.warn({ orderId: order._id }, 'new-link request: csrf token refused');
      return page(ctx, 403, 'forbidden', locale, 'csrf.title', { back: payLinkOf(ctx) });
    }
    const vars = { merchant: merchant.name };
    const typed = typeof body['email'] === 'string' ? body['email'].trim().toLowerCase() : '';
    if (!order.customer?.email && !EMAIL.test(typed)) {
      return page(ctx, 422, 'new-link', locale, 'newLink.title', { problem: true, heading: views.t(locale, 'newLink.emailHeading'), text: views.t(locale, 'newLink.emailInvalid'), back: payLinkOf(ctx) });
    }
    try {
      const r = await deps.renewals.request(order, merchant, typed || undefined);
      ctx.state.log.info({ orderId: order._id, outcome: r.kind }, 'new link requested');
      if (r.kind === 'not-expired') {
        ctx.status = 303;
        return ctx.redirect(payLinkOf(ctx));
      }
      const key = r.kind === 'renewed' ? 'renewed' : r.kind === 'asked' ? 'asked' : 'already';
      return page(ctx, r.kind === 'already-asked' ? 409 : 200, 'new-link', locale, 'newLink.title', {
        heading: views.t(locale, `newLink.${key}Heading`),
        text: views.t(locale, `newLink.${key}`, { ...vars, email: r.email }),
      });
    } catch (e) {
      if (!isAppError(e, 'RENEWAL_EMAIL_REQUIRED')) throw e;
      return page(ctx, 422, 'new-link', locale, 'newLink.title', { problem: true, heading: views.t(locale, 'newLink.emailHeading'), text: views.t(locale, 'newLink.emailInvalid'), back: payLinkOf(ctx) });
    }
  });

  /** The order and merchant of a valid stop-reminders link; undefined (and a 404 page) otherwise. */
  async function remindersOffTarget(ctx: Ctx) {
    const publicId = publicIdOf(ctx);
    const order = verifyRemindersOff(deps.linkKeys, publicId, ctx.query) ? await deps.repos.orders.forCheckout(publicId) : null;
    const merchant = order ? await deps.repos.merchants.findById(order.merchantId) : null;
    if (!order || !merchant) {
      ctx.state.log.info('stop-reminders link refused');
      page(ctx, 404, 'not-found', localeFor(ctx), 'notFound.title', {});
      return undefined;
    }
    ctx.state.brand = brandView(merchant);
    return { order, merchant, locale: localeFor(ctx, order, merchant) };
  }

  const offPath = `${REMINDERS_OFF_PATH}/:publicId`;
  router.get(offPath, async (ctx) => {
    const t = await remindersOffTarget(ctx);
    if (!t) return;
    page(ctx, 200, 'reminders-off', t.locale, 'remindersOff.title', {
      merchant: t.merchant.name,
      reference: t.order.reference,
      done: Boolean(t.order.remindersOffAt),
      action: ctx.originalUrl,
    });
  });

  router.post(offPath, async (ctx) => {
    const t = await remindersOffTarget(ctx);
    if (!t) return;
    if (await deps.repos.orders.remindersOff(t.order._id, new Date())) ctx.state.log.info({ orderId: t.order._id }, 'reminders stopped by the customer');
    page(ctx, 200, 'reminders-off', t.locale, 'remindersOff.title', { merchant: t.merchant.name, reference: t.order.reference, done: true });
  });

  return router;
}
