// Public routes of the signed payment proof: the receipt keys as a JWK Set at a well-known URL
// (anyone may fetch and cache them) and /receipts/verify, a page that checks a pasted token.
// Verification is pure computation with the public keys: no database, nothing stored or logged
// beyond the outcome.
import { Router, type RouterContext } from '@koa/router';
import { brandName, maskCard } from '../../domain/card.ts';
import { formatMoney } from '../../domain/money.ts';
import { extractReceiptToken } from '../../domain/receipt-proof.ts';
import { JWKS_PATH, VERIFY_PATH, type ReceiptProofs } from '../../services/receipt-proof.service.ts';
import { type ReceiptKeyRing } from '../../services/signing-keys.ts';
import { formatDate } from '../checkout/checkout.view-model.ts';
import { acceptedLanguages, createViews, type Views } from '../views.ts';
import { canonicalTimeZone } from '../../domain/time-zone.ts';

/**
 * The zone the paid time is shown in: the `tz=` of the verify link (the merchant's zone, which the
 * receipt shows), canonicalised by Intl, else UTC. It is not signed — the claims are a published
 * format (paidAt in UTC, no zone) that must not change — so it only chooses how the signed instant
 * is displayed, and the page always names the zone it used: a forged `tz` can shift the wall-clock
 * text but never hide which zone it is in, and `<time datetime>` keeps the signed UTC instant.
 */
function displayZone(raw: unknown): string {
  if (typeof raw !== 'string' || raw.length === 0 || raw.length > 64) return 'UTC';
  return canonicalTimeZone(raw) ?? 'UTC';
}

export interface ProofRouterDeps {
  keys: ReceiptKeyRing;
  proofs: ReceiptProofs;
  /** For the verify page (layout and `checkout` + `proof` strings). */
  templatesDir: string;
}

export function createProofRouter(deps: ProofRouterDeps): Router {
  const views: Views = createViews({ templatesDir: deps.templatesDir, namespaces: ['checkout', 'proof'] });
  const router = new Router();

  router.get(JWKS_PATH, (ctx) => {
    ctx.set('Cache-Control', 'public, max-age=300');
    // Public keys: verifiers on other origins (a merchant's own page) may fetch them.
    ctx.set('Access-Control-Allow-Origin', '*');
    ctx.set('Cross-Origin-Resource-Policy', 'cross-origin');
    ctx.type = 'application/jwk-set+json';
    ctx.body = JSON.stringify(deps.keys.jwks());
  });

  router.get(VERIFY_PATH, (ctx: RouterContext) => {
    const locale = views.resolveLocale(ctx.query['lang'], ...acceptedLanguages(ctx.get('accept-language')));
    ctx.state.locale = locale;
    const raw = typeof ctx.query['token'] === 'string' ? ctx.query['token'].slice(0, 8192) : '';
    // A pasted line may carry more than the token (a label, the verify URL): take the token out.
    const token = raw.trim() ? (extractReceiptToken(raw) ?? raw.trim()) : '';
    let result: Record<string, unknown> | undefined;
    if (token) {
      const v = deps.proofs.verify(token);
      if (v.ok) {
        const c = v.claims;
        const paidAt = new Date(c.paidAt);
        const zone = displayZone(ctx.query['tz']);
        const paidText = formatDate(paidAt, locale, zone);
        result = {
          ok: true,
          kid: v.kid,
          receiptNumber: c.receiptNumber,
          merchantName: c.merchant.name,
          merchantId: c.merchant.id,
          reference: c.reference,
          amountText: formatMoney(c.amountMinor, c.currency, locale),
          card: maskCard(brandName(c.card.brand), c.card.last4).trim(),
          authCode: c.authCode,
          paidIso: c.paidAt,
          // The formatted time names UTC itself; any other zone gets its IANA name too ("GMT+1" is ambiguous).
          paidText: zone === 'UTC' ? paidText : `${paidText} (${zone})`,
          orderPublicId: c.orderPublicId,
        };
      } else {
        result = { ok: false, reason: v.reason, message: views.t(locale, `verify.${v.reason}`) };
      }
      ctx.state.log?.info({ valid: v.ok, reason: v.ok ? undefined : v.reason }, 'receipt proof checked');
    }
    ctx.status = result && !result.ok ? 422 : 200;
    ctx.type = 'html';
    ctx.set('Cache-Control', 'no-store');
    ctx.body = views.render('receipt-verify', {
      locale,
      title: views.t(locale, 'verify.title'),
      langNav: views.langNav(ctx.path, ctx.querystring, locale),
      result,
      token,
      action: VERIFY_PATH,
      keysUrl: JWKS_PATH,
    });
  });

  return router;
}
