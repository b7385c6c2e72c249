// Back office: the merchant's server API keys (admin): the list (never a key, only its first
// characters), a new key (shown once on the answer; paymail keeps its hash), revoking one.
import { type Router } from '@koa/router';
import { z } from 'zod';
import { AppError } from '../../domain/errors.ts';
import { type AuthContext } from '../../services/backoffice-auth.service.ts';
import { createApiKeyService } from '../../services/api-key.service.ts';
import { shortDate } from './backoffice.view-model.ts';
import { parse } from './backoffice.validators.ts';
import { type BackofficeKit, type BackofficeRouterDeps, type Ctx } from './backoffice.kit.ts';

const ApiKeyForm = z.object({ label: z.string().max(80).catch(''), readOnly: z.string().max(2).catch(''), _csrf: z.string().max(100).catch('') });
const keyIdParam = z.string().regex(/^ak_[0-9A-Za-z]{16}$/).catch('');

export function registerApiKeyRoutes(router: Router, deps: BackofficeRouterDeps, kit: BackofficeKit): void {
  const apiKeys = createApiKeyService({ repos: deps.repos, ...(deps.now ? { now: deps.now } : {}) });
  const { locale, t, page, guarded } = kit;

  async function render(ctx: Ctx, auth: AuthContext, status: number, extra: { created?: { id: string; key: string; readOnly: boolean }; revoked?: string } = {}) {
    const tz = auth.merchant.timezone;
    const keys = await apiKeys.list(auth.merchant._id);
    page(ctx, status, 'api-keys', {
      title: t('apiKeys.title'),
      navKey: 'apiKeys',
      keys: keys.map((k) => ({
        id: k.id,
        hint: k.hint,
        label: k.label ?? '',
        access: t(k.readOnly ? 'apiKeys.readOnly' : 'apiKeys.readWrite'),
        state: t(k.revoked ? 'apiKeys.revoked' : 'apiKeys.active'),
        revoked: k.revoked,
        created: shortDate(k.createdAt, locale(), tz),
      })),
      created: extra.created,
      revoked: extra.revoked ? t('apiKeys.revokedNotice', { id: extra.revoked }) : undefined,
    });
  }

  router.get('/api-keys', guarded('apiKeys', async (ctx, auth) => render(ctx, auth, 200)));

  router.post(
    '/api-keys',
    guarded('apiKeys', async (ctx, auth) => {
      const form = parse(ApiKeyForm, ctx.request.body);
      const made = await apiKeys.create(auth.merchant._id, { readOnly: form.readOnly === '1', label: form.label, createdBy: auth.user.email });
      // Logged: the key's id only, never the key.
      ctx.state.log.info({ userId: auth.user.id, apiKeyId: made.id, readOnly: made.row.readOnly }, 'api key created');
      // The key is on this answer only.
      return render(ctx, auth, 201, { created: { id: made.id, key: made.key, readOnly: made.row.readOnly } });
    }),
  );

  router.post(
    '/api-keys/:keyId/revoke',
    guarded('apiKeys', async (ctx, auth) => {
      const keyId = keyIdParam.parse(ctx.params['keyId'] ?? '');
      if (!keyId) throw new AppError('API_KEY_NOT_FOUND', 'no such API key', { httpStatus: 404 });
      await apiKeys.revoke(auth.merchant._id, keyId);
      ctx.state.log.info({ userId: auth.user.id, apiKeyId: keyId }, 'api key revoked');
      return render(ctx, auth, 200, { revoked: keyId });
    }),
  );
}
