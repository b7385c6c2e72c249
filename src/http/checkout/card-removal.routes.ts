// The saved-card removal link of the receipts (issue 12 part 3):
//   GET  /cards/:customerCode/:cardId/remove?k=…&s=…  a confirmation page, and nothing else: mail
//        link scanners open links, so opening one never removes a card;
//   POST the same URL (CSRF token of the page)        removes the card from the acquirer's vault
//        and from paymail, then shows that it is done.
// A link whose signature does not check gets the "not found" page before any database work.
import { Router, type RouterContext } from '@koa/router';
import { CARD_REMOVAL_PATH } from '../../domain/card-removal.ts';
import { type SavedCardRemoval } from '../../services/saved-card-removal.service.ts';
import { createCsrf, CSRF_FIELD } from '../middleware/csrf.ts';
import { acceptedLanguages, createViews, type Views } from '../views.ts';

export interface CardRemovalRouterDeps {
  removal: SavedCardRemoval;
  csrfKey: Buffer;
  /** For the pages (layout and `checkout` strings). */
  templatesDir: string;
}

export function createCardRemovalRouter(deps: CardRemovalRouterDeps): Router {
  const views: Views = createViews({ templatesDir: deps.templatesDir, namespaces: ['checkout'] });
  const csrf = createCsrf(deps.csrfKey);
  const router = new Router();
  const path = `${CARD_REMOVAL_PATH}/:customerCode/:cardId/remove`;

  function render(ctx: RouterContext, status: number, name: string, titleKey: string, data: Record<string, unknown>, locale: string) {
    ctx.status = status;
    ctx.type = 'html';
    ctx.set('Cache-Control', 'no-store');
    // The link is a capability: keep it out of referrers and indexes.
    ctx.set('X-Robots-Tag', 'noindex');
    ctx.body = views.render(name, { ...data, locale, title: views.t(locale, titleKey), langNav: data['langNav'] ?? views.langNav(ctx.path, ctx.querystring, locale) });
  }

  async function target(ctx: RouterContext) {
    const params = { code: ctx.params['customerCode'] ?? '', cardId: ctx.params['cardId'] ?? '' };
    const found = await deps.removal.find(params.code, params.cardId, { k: ctx.query['k'], s: ctx.query['s'] });
    const locale = views.resolveLocale(ctx.query['lang'], ...acceptedLanguages(ctx.get('accept-language')), found.kind !== 'invalid' ? found.merchant?.locale : undefined);
    ctx.state.locale = locale;
    return { found, locale, scope: `card-removal:${params.code}:${params.cardId}` };
  }

  router.get(path, async (ctx) => {
    const { found, locale, scope } = await target(ctx);
    if (found.kind === 'invalid') return render(ctx, 404, 'not-found', 'notFound.title', {}, locale);
    if (found.kind === 'gone') return render(ctx, 200, 'card-removal', 'savedCards.removeTitle', { gone: true }, locale);
    render(
      ctx,
      200,
      'card-removal',
      'savedCards.removeTitle',
      { card: found.label, merchant: found.merchant.name, action: ctx.originalUrl, csrf: csrf.token(ctx, scope), csrfField: CSRF_FIELD },
      locale,
    );
  });

  router.post(path, async (ctx) => {
    const { found, locale, scope } = await target(ctx);
    if (found.kind === 'invalid') return render(ctx, 404, 'not-found', 'notFound.title', {}, locale);
    const body = (ctx.request.body ?? {}) as Record<string, unknown>;
    if (!csrf.verify(ctx, scope, body[CSRF_FIELD])) {
      ctx.state.log.warn('card removal: csrf token refused');
      return render(ctx, 403, 'forbidden', 'csrf.title', { back: ctx.originalUrl }, locale);
    }
    if (found.kind === 'gone') return render(ctx, 200, 'card-removal', 'savedCards.removeTitle', { gone: true, langNav: '' }, locale);
    const removed = await deps.removal.remove(found);
    ctx.state.log.info({ customerCode: found.customerCode, cardId: found.cardId, removed }, 'saved card removed');
    // A POST answer: links to other languages of it would be GETs of the confirmation again.
    render(ctx, 200, 'card-removal', 'savedCards.removeTitle', { removed: true, card: found.label, merchant: found.merchant.name, langNav: '' }, locale);
  });

  return router;
}
