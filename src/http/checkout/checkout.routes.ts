// GET and POST /pay/:publicId — the hosted checkout. Thin edge: the service resolves the link
// (signature first) and pays; this file picks the page and status for each outcome. The form posts
// back to the very same URL (query included), and a successful payment redirects there (303).
import { Router, type RouterContext } from '@koa/router';
import { type FieldProblem } from '../../domain/errors.ts';
import { PAY_PATH } from '../../domain/pay-link.ts';
import { type CheckoutService, type LinkState, type OpenOrder } from '../../services/checkout.service.ts';
import { type Views } from '../views.ts';
import { parseCheckoutForm } from './checkout.validators.ts';
import { formFields, langLinks, orderSummary, receiptView, type FormValues } from './checkout.view-model.ts';

export interface CheckoutRoutesDeps {
  service: CheckoutService;
}

type Ctx = RouterContext;

export function createCheckoutRouter(deps: CheckoutRoutesDeps & { views: Views }): Router {
  const { service, views } = deps;
  const router = new Router();

  function page(ctx: Ctx, status: number, name: string, locale: string, titleKey: string, data: Record<string, unknown>) {
    ctx.status = status;
    ctx.type = 'html';
    // Pages show payment details behind a capability URL: keep them out of every cache.
    ctx.set('Cache-Control', 'no-store');
    ctx.body = views.render(name, {
      ...data,
      locale,
      title: views.t(locale, titleKey, data['titleVars'] as Record<string, unknown> | undefined),
      langLinks: langLinks(views, ctx.path, ctx.querystring, locale),
    });
  }

  function localeFor(ctx: Ctx, orderLocale?: string): string {
    const locale = views.resolveLocale(ctx.query['lang'], orderLocale);
    ctx.state.locale = locale;
    return locale;
  }

  function renderForm(
    ctx: Ctx,
    open: OpenOrder,
    status: number,
    extra: { problems?: FieldProblem[]; values?: FormValues; refusal?: string } = {},
  ) {
    const locale = localeFor(ctx, open.order.locale);
    const summary = orderSummary(open.order, open.merchant, locale);
    const problems = extra.problems ?? [];
    const fields = formFields(views, locale, { needEmail: !open.order.customer?.email, values: extra.values ?? {}, problems });
    page(ctx, status, 'checkout', locale, 'checkout.title', {
      titleVars: { merchant: summary.merchantName },
      summary,
      fields,
      problems: fields.filter((f) => f.error).map((f) => ({ field: f.name, message: f.error })),
      refusal: extra.refusal,
      action: ctx.originalUrl,
      payLabel: views.t(locale, 'form.pay', { amount: summary.amountText }),
    });
  }

  /** Every state but `payable` has its own page, the same for GET and POST. */
  function renderState(ctx: Ctx, state: LinkState): void {
    if (state.kind === 'not-found') {
      ctx.state.log.info({ reason: state.reason }, 'pay-link refused');
      page(ctx, 404, 'not-found', localeFor(ctx), 'notFound.title', {});
      return;
    }
    const { order, merchant } = state;
    const locale = localeFor(ctx, order.locale);
    const vars = { merchant: merchant.name, reference: order.reference };
    switch (state.kind) {
      case 'paid':
        page(ctx, 200, 'receipt', locale, 'receipt.title', { receipt: receiptView(order, merchant, locale), vars });
        return;
      case 'cancelled':
        page(ctx, 410, 'cancelled', locale, 'cancelled.title', { vars });
        return;
      case 'expired':
        page(ctx, 410, 'expired', locale, 'expired.title', { vars });
        return;
      case 'payable':
        renderForm(ctx, state, 200);
        return;
    }
  }

  const path = `${PAY_PATH}/:publicId`;

  router.get(path, async (ctx) => {
    renderState(ctx, await service.open(ctx.params['publicId'] ?? '', ctx.query));
  });

  router.post(path, async (ctx) => {
    const state = await service.open(ctx.params['publicId'] ?? '', ctx.query);
    if (state.kind !== 'payable') return renderState(ctx, state);
    const form = parseCheckoutForm(ctx.request.body);
    const values: FormValues = { expiry: form.expiry, holder: form.holder, email: form.email };
    const result = await service.pay(state, form, ctx.ip);
    const log = ctx.state.log.child({ orderId: state.order._id });
    const locale = localeFor(ctx, state.order.locale);
    switch (result.kind) {
      case 'invalid':
        log.info({ problems: result.problems.map((p) => p.code) }, 'card form refused');
        return renderForm(ctx, state, 422, { problems: result.problems, values });
      case 'refused':
        log.info({ outcome: result.outcome, code: result.code }, 'payment refused');
        return renderForm(ctx, state, 402, { values, refusal: views.t(locale, `decline.${result.code}`) });
      case 'challenge':
        log.info({ outcome: 'challenge' }, 'payment needs 3-D Secure');
        return page(ctx, 402, 'challenge', locale, 'challenge.title', { action: ctx.originalUrl });
      case 'lost-race':
        log.warn({ status: result.order?.status }, 'payment lost the race; authorisation voided');
        break;
      case 'closed':
        log.info({ status: result.order?.status }, 'order no longer payable when its turn came');
        break;
      case 'paid':
        log.info({ receiptNumber: result.order.payment?.receiptNumber }, 'payment approved');
        break;
    }
    // Post/redirect/get: the same link now shows the receipt (or why it cannot be paid).
    ctx.status = 303;
    ctx.redirect(ctx.originalUrl);
  });

  return router;
}
