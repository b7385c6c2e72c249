// Over 300 lines: every route under a pay-link in one place (pay, 3-D Secure, beacon, receipt PDF, sealed).
// GET and POST /pay/:publicId — the hosted checkout — and GET and POST
// /pay/:publicId/3ds/:challengeId — the sandbox 3-D Secure (ACS) page. Thin edge: the service
// resolves the link (signature first, before any database work) and pays; this file checks the
// CSRF token, picks the page and status for each outcome. Forms post back to their own URL (pay-
// link query included); a finished payment redirects (303) to the pay-link, which shows the receipt.
import { Router, type RouterContext } from '@koa/router';
import { isAppError, type FieldProblem } from '../../domain/errors.ts';
import { PAY_PATH } from '../../domain/pay-link.ts';
import { maskCard } from '../../domain/card.ts';
import { type CheckoutService, type LinkState, type OpenOrder, type PayResult } from '../../services/checkout.service.ts';
import { type SealedRequestService } from '../../services/sealed-request.service.ts';
import { type ReceiptDocuments } from '../../services/receipt-document.service.ts';
import { sendReceiptPdf } from '../receipt-download.ts';
import { createCsrf, CSRF_COOKIE, CSRF_FIELD } from '../middleware/csrf.ts';
import { ACQUIRER_RETURN_LEAF, ACQUIRER_RETURN_PARAMS } from '../../services/acquirer/return-url.ts';
import { brandView } from '../../services/branding.service.ts';
import { acceptedLanguages, type Views } from '../views.ts';
import { parseCheckoutForm } from './checkout.validators.ts';
import { NEW_LINK_LEAF, newLinkView } from './renewal.routes.ts';
import { formatDate, formFields, orderSummary, receiptView, sendPage, type FormValues } from './checkout.view-model.ts';
import { savedCardsView, type PreparedSavedCards } from './saved-cards.view-model.ts';
import { checkoutPlanView, receiptPlanView } from './plan.view-model.ts';
import { partView } from '../../domain/order-plan.ts';

/** One-click payment with a saved card posts here, under the pay-link (issue 12 part 3). */
const SAVED_CARD_LEAF = 'saved-card';

export interface CheckoutRoutesDeps {
  service: CheckoutService;
  /** Key of the CSRF tokens (derive it with deriveCsrfKey from the link-signing secret). */
  csrfKey: Buffer;
  /** Sealed requests from merchant websites (POST /pay/sealed) and the buyer's sealed return; off when absent. */
  sealed?: SealedRequestService;
  /** The paid order's PDF receipt, downloadable from the receipt page; no link when absent. */
  receipts?: ReceiptDocuments;
  /** The expired page offers "Ask <merchant> for a new link" (its POST: renewal.routes.ts). */
  askNewLink?: boolean;
}

/** The one path taken without a CSRF token: merchant websites post to it, the seal authenticates. */
export const SEALED_PATH = `${PAY_PATH}/sealed`;
/** Refusals of a sealed request, shown on their own page (each code has its text in the locales). */
const SEALED_REFUSALS = new Set(['SEAL_INVALID', 'SEAL_STALE', 'SEAL_REPLAYED', 'SEALED_REQUEST_INVALID', 'MERCHANT_SUSPENDED']);

type Ctx = RouterContext;

export function createCheckoutRouter(deps: CheckoutRoutesDeps & { views: Views }): Router {
  const { service, views } = deps;
  const csrf = createCsrf(deps.csrfKey);
  const router = new Router();

  function page(ctx: Ctx, status: number, name: string, locale: string, titleKey: string, data: Record<string, unknown>) {
    sendPage(ctx, views, { status, name, locale, titleKey, data, langNav: (data['langNav'] as string | undefined) ?? views.langNav(ctx.path, ctx.querystring, locale) });
  }

  /**
   * ?lang= (the visible switch), else the language the merchant gave the order, else the browser's
   * Accept-Language (by q-value), else the merchant's locale. Orders stored before `localeGiven`
   * existed keep their locale as if given.
   */
  function localeFor(ctx: Ctx, at?: { order: { locale: string; localeGiven?: boolean | null | undefined }; merchant: { locale: string } }): string {
    const given = at && at.order.localeGiven !== false ? at.order.locale : undefined;
    const locale = views.resolveLocale(ctx.query['lang'], given, ...acceptedLanguages(ctx.get('accept-language')), at?.merchant.locale);
    ctx.state.locale = locale;
    return locale;
  }

  const publicIdOf = (ctx: Ctx) => ctx.params['publicId'] ?? '';
  /** The pay-link of this request (path + the signed query, and ?lang= when chosen). */
  const payLinkOf = (ctx: Ctx) => `${PAY_PATH}/${encodeURIComponent(publicIdOf(ctx))}${ctx.querystring ? `?${ctx.querystring}` : ''}`;
  /**
   * A URL under this pay-link (the receipt PDF, the page's beacon) with the same signed query, so
   * only the link's holder can use it.
   */
  const underLink = (ctx: Ctx, leaf: 'receipt.pdf' | 'viewed' | typeof NEW_LINK_LEAF, part?: number) => {
    // A part's receipt of an order paid in parts: ?part=<seq> (outside the signed fields).
    const q = new URLSearchParams(ctx.querystring);
    if (part !== undefined) q.set('part', String(part));
    const query = part !== undefined ? q.toString() : ctx.querystring;
    return `${PAY_PATH}/${encodeURIComponent(publicIdOf(ctx))}/${leaf}${query ? `?${query}` : ''}`;
  };
  const challengeUrl = (ctx: Ctx, challengeId: string) =>
    `${PAY_PATH}/${encodeURIComponent(publicIdOf(ctx))}/3ds/${encodeURIComponent(challengeId)}${ctx.querystring ? `?${ctx.querystring}` : ''}`;

  function renderForm(
    ctx: Ctx,
    open: OpenOrder,
    status: number,
    extra: { problems?: FieldProblem[]; values?: FormValues; refusal?: string } = {},
  ) {
    const locale = localeFor(ctx, open);
    ctx.state.brand = brandView(open.merchant);
    const summary = orderSummary(open.order, open.merchant, locale);
    const problems = extra.problems ?? [];
    const needEmail = !open.order.customer?.email;
    // A first view (nothing typed, nothing wrong): the fields' markup kept for the locale.
    const fields = extra.values || problems.length ? formFields(views, locale, { needEmail, values: extra.values ?? {}, problems }) : undefined;
    page(ctx, status, 'checkout', locale, 'checkout.title', {
      titleVars: { merchant: summary.merchantName },
      summary,
      // An order paid in parts: which part this is, of what total, and the schedule (issue 13 part 1).
      plan: checkoutPlanView(views, open.order, open.merchant, locale),
      fields,
      fieldsHtml: fields ? undefined : firstViewFields(locale, needEmail),
      problems: (fields ?? []).filter((f) => f.error).map((f) => ({ field: f.name, message: f.error })),
      refusal: extra.refusal,
      // Always the pay-link, also when the form is shown again from the challenge page.
      action: payLinkOf(ctx),
      // public/checkout.js posts the CSRF token there on the customer's first interaction.
      viewedUrl: underLink(ctx, 'viewed'),
      csrf: csrf.token(ctx, open.order.publicId),
      csrfField: CSRF_FIELD,
      payLabel: views.t(locale, 'form.pay', { amount: summary.amountText }),
      // For public/checkout.js, which shows the brand as the number is typed ({brand} is filled there).
      brandLabel: views.t(locale, 'form.brandDetected'),
      // Saved cards (issue 12 part 3): read by the route before rendering (loadSavedCards).
      ...savedCardsView(views, locale, summary.merchantName, ctx.state.savedCards, { action: savedCardUrl(ctx), problems }),
    });
  }

  /**
   * The card fields of a first view, which are the same for every order of a locale (empty, no
   * error): rendered once per locale and email-or-not (at most 2 × the page locales), then kept.
   */
  const firstViewFieldsHtml = new Map<string, string>();
  function firstViewFields(locale: string, needEmail: boolean): string {
    const key = `${locale}|${needEmail}`;
    let html = firstViewFieldsHtml.get(key);
    if (html === undefined) {
      const fields = formFields(views, locale, { needEmail, values: {}, problems: [] });
      html = views.fragment('card-fields', { locale, fields, brandLabel: views.t(locale, 'form.brandDetected') });
      firstViewFieldsHtml.set(key, html);
    }
    return html;
  }

  /** Where one-click posts: under the pay-link, with its signed query. */
  const savedCardUrl = (ctx: Ctx) => `${PAY_PATH}/${encodeURIComponent(publicIdOf(ctx))}/${SAVED_CARD_LEAF}${ctx.querystring ? `?${ctx.querystring}` : ''}`;

  /** What the form shows of saved cards (the checkbox, one-click), read before rendering it. */
  async function loadSavedCards(ctx: Ctx, state: LinkState): Promise<void> {
    if (state.kind === 'payable') ctx.state.savedCards = (await service.savedCardsFor(state)) satisfies PreparedSavedCards;
  }

  /** Every state but `payable` has its own page, the same for GET and POST. */
  function renderState(ctx: Ctx, state: LinkState): void {
    if (state.kind === 'not-found') {
      ctx.state.log.info({ reason: state.reason }, 'pay-link refused');
      page(ctx, 404, 'not-found', localeFor(ctx), 'notFound.title', {});
      return;
    }
    const { order, merchant } = state;
    const locale = localeFor(ctx, state);
    ctx.state.brand = brandView(merchant);
    const vars = { merchant: merchant.name, reference: order.reference };
    // Orders from a merchant's website send the buyer back with a sealed result.
    const returnTo = (status: 'paid' | 'cancelled' | 'expired') => deps.sealed?.returnLink(order, merchant, status);
    switch (state.kind) {
      case 'paid': {
        // Paid in parts: the receipt of the last part paid, what follows, each part's PDF.
        const plan = receiptPlanView(views, order, merchant, locale, deps.receipts ? (seq) => underLink(ctx, 'receipt.pdf', seq) : undefined);
        const shown = plan ? partView(order, plan.lastSeq) : order;
        page(ctx, 200, 'receipt', locale, 'receipt.title', { receipt: receiptView(shown, merchant, locale), plan, proof: service.proofFor(shown, merchant), vars, returnLink: returnTo('paid'), receiptPdf: deps.receipts ? underLink(ctx, 'receipt.pdf', plan?.lastSeq) : undefined, removeCard: service.cardRemovalUrl(order) });
        return;
      }
      case 'cancelled':
        page(ctx, 410, 'cancelled', locale, 'cancelled.title', { vars, returnLink: returnTo('cancelled') });
        return;
      case 'expired':
        page(ctx, 410, 'expired', locale, 'expired.title', { vars, returnLink: returnTo('expired'), newLink: deps.askNewLink ? newLinkView(state.order, () => ({ action: underLink(ctx, NEW_LINK_LEAF), csrf: csrf.token(ctx, order.publicId), csrfField: CSRF_FIELD })) : undefined });
        return;
      case 'suspended':
        page(ctx, 403, 'suspended', locale, 'suspended.title', { vars });
        return;
      case 'payable':
        renderForm(ctx, state, 200);
        return;
    }
  }

  /** A POST without a valid CSRF token for this order: 403 page with the way back to the form. */
  function checkCsrf(ctx: Ctx, state: OpenOrder): boolean {
    const body = (ctx.request.body ?? {}) as Record<string, unknown>;
    if (csrf.verify(ctx, state.order.publicId, body[CSRF_FIELD])) return true;
    ctx.state.log.warn({ orderId: state.order._id, hasCookie: Boolean(ctx.cookies.get(CSRF_COOKIE)) }, 'csrf token refused');
    const locale = localeFor(ctx, state);
    page(ctx, 403, 'forbidden', locale, 'csrf.title', { back: payLinkOf(ctx) });
    return false;
  }

  /** Maps a payment outcome (first submission or challenge completion) to a response. */
  function respond(ctx: Ctx, state: OpenOrder, result: PayResult, values: FormValues = {}): void {
    const log = ctx.state.log.child({ orderId: state.order._id });
    const locale = localeFor(ctx, state);
    switch (result.kind) {
      case 'invalid':
        log.info({ problems: result.problems.map((p) => p.code) }, 'card form refused');
        return renderForm(ctx, state, 422, { problems: result.problems, values });
      case 'refused':
        log.info({ outcome: result.outcome, code: result.code }, 'payment refused');
        return renderForm(ctx, state, 402, { values, refusal: views.t(locale, `decline.${result.code}`) });
      case 'rate-limited': {
        log.warn({ scope: result.scope, retryAfterSec: result.retryAfterSec }, 'payment attempts rate-limited');
        ctx.set('Retry-After', String(result.retryAfterSec));
        const minutes = Math.max(1, Math.ceil(result.retryAfterSec / 60));
        return page(ctx, 429, 'rate-limited', locale, 'rateLimit.title', { minutes, back: payLinkOf(ctx) });
      }
      case 'challenge':
        log.info({ outcome: 'challenge', challengeId: result.challengeId }, 'payment needs 3-D Secure');
        ctx.status = 303;
        return ctx.redirect(challengeUrl(ctx, result.challengeId));
      case 'challenge-gone':
        log.info({ reason: result.reason }, '3-D Secure challenge no longer open');
        if (result.reason === 'unknown') return page(ctx, 404, 'not-found', locale, 'notFound.title', {});
        if (result.reason === 'expired') {
          return page(ctx, 410, 'challenge-expired', locale, 'challenge.expiredTitle', { back: payLinkOf(ctx) });
        }
        break;
      case 'lost-race':
        log.warn({ status: result.order?.status }, 'payment lost the race; authorisation voided');
        break;
      case 'closed':
        log.info({ status: result.order?.status }, 'order no longer payable when its turn came');
        break;
      case 'suspended':
        log.info('payment refused: merchant suspended');
        return renderState(ctx, { ...state, kind: 'suspended' });
      case 'paid':
        log.info({ receiptNumber: result.order.payment?.receiptNumber }, 'payment approved');
        break;
    }
    // Post/redirect/get: the pay-link now shows the receipt (or why it cannot be paid).
    ctx.status = 303;
    ctx.redirect(payLinkOf(ctx));
  }

  const path = `${PAY_PATH}/:publicId`;
  const challengePath = `${PAY_PATH}/:publicId/3ds/:challengeId`;
  const receiptPdfPath = `${PAY_PATH}/:publicId/receipt.pdf`;
  const viewedPath = `${PAY_PATH}/:publicId/viewed`;

  // A cross-site form POST by design: no CSRF token, the seal is the authentication. Registered
  // before the pay-link routes, and only for exactly this path (the router also matches other
  // cases and a trailing slash: those go on to the pay-link routes, which check CSRF).
  const sealed = deps.sealed;
  if (sealed) {
    router.post(SEALED_PATH, async (ctx, next) => {
      if (ctx.path !== SEALED_PATH) return next();
      const body = (ctx.request.body ?? {}) as Record<string, unknown>;
      try {
        const r = await sealed.accept(body);
        ctx.state.log.info({ orderId: r.order._id, created: r.created }, 'sealed request accepted');
        ctx.status = 303;
        ctx.redirect(r.link);
      } catch (e) {
        if (!isAppError(e) || !SEALED_REFUSALS.has(e.code)) throw e;
        ctx.state.log.info({ code: e.code, merchant: String(body['merchant'] ?? '').slice(0, 64) }, 'sealed request refused');
        const locale = views.resolveLocale(ctx.query['lang'], body['lang'], ...acceptedLanguages(ctx.get('accept-language')));
        ctx.state.locale = locale;
        const problems = (e.details as { problems?: FieldProblem[] } | undefined)?.problems ?? [];
        page(ctx, e.httpStatus, 'sealed-refused', locale, 'sealed.title', {
          code: e.code,
          text: views.t(locale, `sealed.${e.code}`),
          problems,
          // A POST answer: links to other languages of it would be GETs of nothing.
          langNav: '',
        });
      }
    });
  }

  router.get(path, async (ctx) => {
    const state = await service.open(publicIdOf(ctx), ctx.query);
    await loadSavedCards(ctx, state);
    renderState(ctx, state);
  });

  router.post(path, async (ctx) => {
    const state = await service.open(publicIdOf(ctx), ctx.query);
    if (state.kind !== 'payable') return renderState(ctx, state);
    if (!checkCsrf(ctx, state)) return;
    // Submitted without JavaScript (no beacon came): a person used the form. Never in the way of paying.
    await service.markViewed(state).catch((e: unknown) => ctx.state.log.warn({ err: e, orderId: state.order._id }, 'viewed not recorded'));
    const form = parseCheckoutForm(ctx.request.body);
    const values: FormValues = { expiry: form.expiry, holder: form.holder, email: form.email };
    // "Save my card" (issue 12 part 3): only a ticked box is consent.
    const saveCard = (ctx.request.body as Record<string, unknown> | undefined)?.['saveCard'] === 'yes';
    const result = await service.pay(state, form, ctx.ip, { saveCard });
    await loadSavedCards(ctx, state);
    respond(ctx, state, result, values);
  });

  // One-click (issue 12 part 3): the customer pays with a saved card, giving only its security
  // code when the acquirer asks for it; the outcome is answered like the card form's.
  router.post(`${path}/${SAVED_CARD_LEAF}`, async (ctx) => {
    const state = await service.open(publicIdOf(ctx), ctx.query);
    if (state.kind !== 'payable') return renderState(ctx, state);
    if (!checkCsrf(ctx, state)) return;
    await service.markViewed(state).catch((e: unknown) => ctx.state.log.warn({ err: e, orderId: state.order._id }, 'viewed not recorded'));
    const body = (ctx.request.body ?? {}) as Record<string, unknown>;
    const text = (v: unknown, max: number) => (typeof v === 'string' ? v.slice(0, max) : '');
    const result = await service.payWithSavedCard(state, { cardId: text(body['cardId'], 40), cvc: text(body['cvc'], 8) }, ctx.ip);
    await loadSavedCards(ctx, state);
    respond(ctx, state, result);
  });

  // The page's beacon on the customer's first interaction (public/checkout.js): records `viewed`.
  // Opening the link records nothing (mail scanners open links); this POST carries what the form
  // carries — the signed pay-link query and the page's CSRF token — so neither a scanner nor another
  // site can send it. A bare status, no page: 204, 403 (token), 404 (link or order not payable).
  router.post(viewedPath, async (ctx) => {
    ctx.set('Cache-Control', 'no-store');
    const state = await service.open(publicIdOf(ctx), ctx.query);
    if (state.kind !== 'payable') {
      ctx.state.log.info({ state: state.kind }, 'viewed beacon refused');
      ctx.status = 404;
      ctx.body = '';
      return;
    }
    const body = (ctx.request.body ?? {}) as Record<string, unknown>;
    if (!csrf.verify(ctx, state.order.publicId, body[CSRF_FIELD])) {
      ctx.state.log.warn({ orderId: state.order._id, hasCookie: Boolean(ctx.cookies.get(CSRF_COOKIE)) }, 'viewed beacon: csrf token refused');
      ctx.status = 403;
      ctx.body = '';
      return;
    }
    if (await service.markViewed(state)) ctx.state.log.info({ orderId: state.order._id }, 'order viewed');
    ctx.status = 204;
  });

  // The receipt again as a PDF, in the page's language: only for a valid pay-link of a paid order.
  router.get(receiptPdfPath, async (ctx) => {
    const state = await service.open(publicIdOf(ctx), ctx.query);
    const part = /^[1-9]\d?$/.test(String(ctx.query['part'] ?? '')) ? Number(ctx.query['part']) : undefined;
    const pdf = state.kind === 'paid' && deps.receipts ? await deps.receipts.pdfFor(state.order, state.merchant, localeFor(ctx, state), part) : undefined;
    if (!pdf) {
      ctx.state.log.info({ state: state.kind }, 'receipt PDF refused');
      return page(ctx, 404, 'not-found', localeFor(ctx), 'notFound.title', {});
    }
    sendReceiptPdf(ctx, pdf);
  });

  // The sandbox ACS: stands in for the issuer's 3-D Secure page. A plain form, so it works
  // without JavaScript; the challenge id is unguessable and the pay-link signature is checked first.
  router.get(challengePath, async (ctx) => {
    const state = await service.open(publicIdOf(ctx), ctx.query);
    if (state.kind !== 'payable') return renderState(ctx, state);
    const found = await service.findChallenge(state, ctx.params['challengeId'] ?? '');
    const locale = localeFor(ctx, state);
    if (found.kind === 'unknown') return page(ctx, 404, 'not-found', locale, 'notFound.title', {});
    if (found.kind === 'expired') return page(ctx, 410, 'challenge-expired', locale, 'challenge.expiredTitle', { back: payLinkOf(ctx) });
    if (found.kind === 'used') {
      ctx.status = 303;
      return ctx.redirect(payLinkOf(ctx));
    }
    const summary = orderSummary(state.order, state.merchant, locale);
    const c = found.challenge;
    page(ctx, 200, 'challenge', locale, 'challenge.title', {
      summary,
      card: c.card?.brand && c.card.last4 ? maskCard(c.card.brand, c.card.last4) : '',
      expiresIso: c.expiresAt.toISOString(),
      expiresText: formatDate(c.expiresAt, locale, state.merchant.timezone),
      // The acquirer's own 3-D Secure page (Stripe): a link to it instead of the sandbox's buttons.
      redirectUrl: c.redirectUrl ?? undefined,
      action: ctx.originalUrl,
      back: payLinkOf(ctx),
      csrf: csrf.token(ctx, state.order.publicId),
      csrfField: CSRF_FIELD,
    });
  });

  router.post(challengePath, async (ctx) => {
    const state = await service.open(publicIdOf(ctx), ctx.query);
    if (state.kind !== 'payable') return renderState(ctx, state);
    if (!checkCsrf(ctx, state)) return;
    const choice = (ctx.request.body as Record<string, unknown> | undefined)?.['result'];
    if (choice !== 'pass' && choice !== 'fail') {
      const locale = localeFor(ctx, state);
      return page(ctx, 400, 'error', locale, 'error.title', { status: 400, message: views.t(locale, 'error.generic') });
    }
    const result = await service.completeChallenge(state, ctx.params['challengeId'] ?? '', choice === 'pass', ctx.ip);
    await loadSavedCards(ctx, state);
    respond(ctx, state, result);
  });

  // The buyer back from the acquirer's own 3-D Secure page (Stripe appends payment_intent=<the
  // challenge id>). A GET without a CSRF token: it only asks the acquirer how the payment it holds
  // ended, under the signed pay-link, and settles that (once: the challenge's claim; Stripe's
  // webhook may have done it already, then this shows the outcome).
  router.get(`${PAY_PATH}/:publicId/${ACQUIRER_RETURN_LEAF}`, async (ctx) => {
    const challengeId = String(ctx.query['payment_intent'] ?? '');
    const q = new URLSearchParams(ctx.querystring);
    for (const p of ACQUIRER_RETURN_PARAMS) q.delete(p);
    // From here on the pay-link's own query: the answer redirects to the pay-link, not back here.
    ctx.querystring = q.toString();
    const state = await service.open(publicIdOf(ctx), ctx.query);
    if (state.kind !== 'payable') return renderState(ctx, state);
    respond(ctx, state, await service.completeChallenge(state, challengeId, true, ctx.ip));
  });

  return router;
}
