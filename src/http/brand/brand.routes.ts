// The merchant's look on paymail's site: its logo (/brand/<merchant>/logo-<sha256>.png|jpg) and the
// stylesheet of an accent (/brand/theme/<rrggbb>.css). Both URLs name their content (the logo's
// hash, the colour itself), so they are cached for ever; a replaced logo gets a new URL.
import { Router } from '@koa/router';
import { brandColours, parseAccent } from '../../domain/brand.ts';
import { themeCss, type BrandingService } from '../../services/branding.service.ts';

const FOREVER = 'public, max-age=31536000, immutable';

export function createBrandRouter(deps: { branding: Pick<BrandingService, 'logo'> }): Router {
  const router = new Router({ prefix: '/brand' });

  router.get('/theme/:hex.css', (ctx) => {
    const accent = /^[0-9a-f]{6}$/.test(ctx.params['hex'] ?? '') ? parseAccent(ctx.params['hex']!) : null;
    if (!accent) return; // 404
    ctx.type = 'text/css; charset=utf-8';
    ctx.set('Cache-Control', FOREVER);
    ctx.body = themeCss(brandColours(accent));
  });

  router.get('/:merchantId/logo-:sha.:ext', async (ctx) => {
    const { merchantId = '', sha = '', ext = '' } = ctx.params;
    if (!/^[0-9a-f]{64}$/.test(sha) || !/^(png|jpg)$/.test(ext) || merchantId.length > 64) return;
    const logo = await deps.branding.logo(merchantId, sha);
    if (!logo || (logo.type === 'image/png') !== (ext === 'png')) return;
    ctx.type = logo.type;
    ctx.set('Cache-Control', FOREVER);
    // The bytes were checked to be a PNG or JPEG; never let a browser read them as anything else.
    ctx.set('X-Content-Type-Options', 'nosniff');
    ctx.set('Content-Security-Policy', "default-src 'none'");
    ctx.body = logo.bytes;
  });

  return router;
}
