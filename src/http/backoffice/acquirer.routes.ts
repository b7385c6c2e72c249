// Back office: the merchant's acquirer (admin) — the sandbox or Stripe, the Stripe secret key and
// webhook signing secret (write-only: the page shows `sk_test_…last4`, never a key; an empty field
// keeps what is stored), another API base, and the webhook endpoint to give Stripe.
import { type Router } from '@koa/router';
import { z } from 'zod';
import { isAppError } from '../../domain/errors.ts';
import { ACQUIRER_NAMES } from '../../domain/merchant.ts';
import { type AcquirerSettings } from '../../services/acquirer/acquirer-settings.ts';
import { type AuthContext } from '../../services/backoffice-auth.service.ts';
import { parse } from './backoffice.validators.ts';
import { type BackofficeKit, type BackofficeRouterDeps, type Ctx } from './backoffice.kit.ts';

const AcquirerForm = z.object({
  acquirer: z.string().max(20).catch(''),
  secretKey: z.string().max(300).catch(''),
  webhookSecret: z.string().max(300).catch(''),
  apiBase: z.string().max(300).catch(''),
  _csrf: z.string().max(100).catch(''),
});

export function registerAcquirerRoutes(router: Router, deps: BackofficeRouterDeps & { acquirerSettings?: AcquirerSettings }, kit: BackofficeKit): void {
  const settings = deps.acquirerSettings;
  if (!settings) return;
  const { t, page, guarded } = kit;

  function render(ctx: Ctx, auth: AuthContext, status: number, extra: { saved?: boolean; problem?: string; chosen?: string; apiBase?: string } = {}) {
    const view = settings!.view(auth.merchant);
    const chosen = extra.chosen ?? view.acquirer;
    page(ctx, status, 'acquirer', {
      title: t('acquirer.title'),
      navKey: 'settings',
      current: t(`acquirer.name.${view.acquirer}`),
      choices: ACQUIRER_NAMES.map((name) => ({ value: name, label: t(`acquirer.name.${name}`), checked: name === chosen })),
      stripe: view.stripe,
      apiBase: extra.apiBase ?? view.stripe?.apiBase ?? '',
      endpoint: `${ctx.origin}/webhooks/stripe/${encodeURIComponent(auth.merchant._id)}`,
      saved: extra.saved,
      problem: extra.problem,
    });
  }

  router.get('/settings/acquirer', guarded('settings', async (ctx, auth) => render(ctx, auth, 200)));

  router.post(
    '/settings/acquirer',
    guarded('settings', async (ctx, auth) => {
      const form = parse(AcquirerForm, ctx.request.body);
      try {
        // Empty secret fields keep what is stored (they are never shown, so never filled in again).
        await settings.set(auth.merchant._id, {
          acquirer: form.acquirer,
          ...(form.secretKey.trim() ? { secretKey: form.secretKey } : {}),
          ...(form.webhookSecret.trim() ? { webhookSecret: form.webhookSecret } : {}),
          apiBase: form.apiBase,
        });
      } catch (e) {
        if (!isAppError(e) || !e.code.startsWith('ACQUIRER_')) throw e;
        return render(ctx, auth, 422, { problem: t(`acquirer.problem.${e.code}`), chosen: form.acquirer, apiBase: form.apiBase });
      }
      // Logged without any secret: which acquirer, and whether new secrets were given.
      ctx.state.log.info({ userId: auth.user.id, acquirer: form.acquirer, newSecretKey: Boolean(form.secretKey.trim()), newWebhookSecret: Boolean(form.webhookSecret.trim()) }, 'acquirer changed');
      const fresh = await deps.repos.merchants.findById(auth.merchant._id);
      return render(ctx, { ...auth, merchant: fresh ?? auth.merchant }, 200, { saved: true });
    }),
  );
}
