// Back office: the webhook delivery log and replaying one delivery (admin).
import { type Router } from '@koa/router';
import { AppError } from '../../domain/errors.ts';
import { shortDate } from './backoffice.view-model.ts';
import { eventIdParam } from './backoffice.validators.ts';
import { BACKOFFICE_PREFIX, type BackofficeKit, type BackofficeRouterDeps } from './backoffice.kit.ts';

export function registerWebhookRoutes(router: Router, deps: BackofficeRouterDeps, kit: BackofficeKit): void {
  const { merchantAdmin } = deps;
  const { locale, t, page, guarded, redirect } = kit;

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
}
