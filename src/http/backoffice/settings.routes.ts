// Back office: the merchant's settings and the webhook secret rotation (admin).
import { type Router } from '@koa/router';
import { type MerchantDoc } from '../../db/merchants.repository.ts';
import { LOGO_MAX_BYTES } from '../../domain/brand.ts';
import { AppError, isAppError } from '../../domain/errors.ts';
import { brandView, createBrandingService } from '../../services/branding.service.ts';
import { multipartForm, type Upload } from '../middleware/multipart.ts';
import { DELIVERY_MODES } from '../../domain/merchant.ts';
import { type AuthContext } from '../../services/backoffice-auth.service.ts';
import { SUPPORTED_LOCALES } from '../../services/merchant.service.ts';
import { createReminderSettingsService, reminderSettingsValues } from '../../services/reminder-settings.service.ts';
import { shortDate } from './backoffice.view-model.ts';
import { BrandingForm, ReminderSettingsForm, SettingsForm, parse } from './backoffice.validators.ts';
import { BACKOFFICE_PREFIX, type BackofficeKit, type BackofficeRouterDeps, type Ctx } from './backoffice.kit.ts';

export function registerSettingsRoutes(router: Router, deps: BackofficeRouterDeps, kit: BackofficeKit): void {
  const { merchantAdmin } = deps;
  const branding = deps.branding ?? createBrandingService({ repos: deps.repos });
  const { now, locale, t, page, guarded, redirect } = kit;
  const reminderSettings = createReminderSettingsService({ repos: deps.repos, maxLinkLifetimeDays: deps.maxLinkLifetimeDays, ...(deps.now ? { now: deps.now } : {}) });

  function settingsValues(m: MerchantDoc) {
    return {
      delivery: String(m.delivery),
      linkLifetimeDays: String(m.linkLifetimeDays),
      locale: m.locale,
      timezone: m.timezone,
      recapHour: String(m.recapHour ?? 7),
      senderDomains: (m.senderDomains ?? []).join('\n'),
      webhookUrl: m.webhookUrl ?? '',
    };
  }

  function renderSettings(ctx: Ctx, auth: AuthContext, status: number, extra: { values?: ReturnType<typeof settingsValues>; problems?: Array<{ field: string; message: string }>; newSecret?: string; graceUntil?: string; brandProblems?: Array<{ message: string }>; accent?: string; reminders?: ReturnType<typeof reminderSettingsValues>; reminderProblems?: Array<{ message: string }> } = {}) {
    const m = auth.merchant;
    const values = extra.values ?? settingsValues(m);
    const look = brandView(m);
    page(ctx, status, 'settings', {
      brand: { accent: extra.accent ?? look.accent ?? '', logo: look.logo },
      brandProblems: extra.brandProblems,
      reminders: extra.reminders ?? reminderSettingsValues(m),
      reminderProblems: extra.reminderProblems,
      title: t('settings.title'),
      navKey: 'settings',
      values,
      problems: extra.problems,
      newSecret: extra.newSecret,
      graceUntil: extra.graceUntil,
      maxDays: deps.maxLinkLifetimeDays,
      savedCardsEnabled: m.savedCardsEnabled === true,
      deliveries: DELIVERY_MODES.map((d) => ({ value: d, label: t(`delivery.${d}`), selected: d === values.delivery })),
      locales: SUPPORTED_LOCALES.map((lc) => ({ value: lc, selected: lc === values.locale })),
      previousValid:
        m.previousWebhookSecret && m.previousSecretUntil && m.previousSecretUntil > now()
          ? shortDate(m.previousSecretUntil, locale(), m.timezone)
          : undefined,
    });
  }

  router.get('/settings', guarded('settings', async (ctx, auth) => renderSettings(ctx, auth, 200)));

  router.post(
    '/settings',
    guarded('settings', async (ctx, auth) => {
      const form = parse(SettingsForm, ctx.request.body);
      try {
        await merchantAdmin.updateSettings(auth.merchant, form);
      } catch (e) {
        if (isAppError(e, 'SETTINGS_INVALID')) {
          const problems = (e.details as { problems: Array<{ field: string; code: string; message: string }> }).problems;
          return renderSettings(ctx, auth, 422, { values: { ...form }, problems: problems.map((p) => ({ field: p.field, message: t(`settings.problem.${p.code}`, { max: deps.maxLinkLifetimeDays, reason: p.message }) })) });
        }
        throw e;
      }
      ctx.state.log.info({ userId: auth.user.id }, 'settings changed');
      redirect(ctx, `${BACKOFFICE_PREFIX}/settings?done=settingsSaved`);
    }),
  );

  // Reminders and automatic renewal (issue 13 parts 3 and 4): their own form and notice.
  router.post(
    '/settings/reminders',
    guarded('settings', async (ctx, auth) => {
      const form = parse(ReminderSettingsForm, ctx.request.body);
      try {
        await reminderSettings.update(auth.merchant, form);
      } catch (e) {
        if (isAppError(e, 'SETTINGS_INVALID')) {
          const problems = (e.details as { problems: Array<{ code: string }> }).problems;
          const values = { enabled: form.enabled === '1', daysBefore: form.daysBefore, unopenedHours: form.unopenedHours, autoRenewDays: form.autoRenewDays };
          return renderSettings(ctx, auth, 422, { reminders: values, reminderProblems: problems.map((p) => ({ message: t(`settings.reminders.problem.${p.code}`, { max: deps.maxLinkLifetimeDays }) })) });
        }
        throw e;
      }
      ctx.state.log.info({ userId: auth.user.id }, 'reminder settings changed');
      redirect(ctx, `${BACKOFFICE_PREFIX}/settings?done=remindersSaved`);
    }),
  );

  // The logo comes as multipart/form-data: parsed (bounded) before the session and CSRF checks read its fields.
  router.post(
    '/settings/branding',
    multipartForm({ maxFileBytes: LOGO_MAX_BYTES }),
    guarded('settings', async (ctx, auth) => {
      const form = parse(BrandingForm, ctx.request.body);
      const upload = ctx.state.upload as Upload | undefined;
      try {
        if (upload?.truncated) throw new AppError('BRANDING_INVALID', 'logo too large', { httpStatus: 422, details: { problems: [{ field: 'logo', code: 'BRAND_LOGO_TOO_LARGE', message: 'too large' }] } });
        await branding.update(auth.merchant, { accent: form.accent, logo: upload?.field === 'logo' ? upload.bytes : undefined, removeLogo: form.removeLogo === '1' });
      } catch (e) {
        if (isAppError(e, 'BRANDING_INVALID')) {
          const problems = (e.details as { problems: Array<{ code: string }> }).problems;
          return renderSettings(ctx, auth, 422, { accent: form.accent, brandProblems: problems.map((p) => ({ message: t(`settings.brand.problem.${p.code}`) })) });
        }
        throw e;
      }
      ctx.state.log.info({ userId: auth.user.id, logo: upload ? upload.bytes.length : form.removeLogo === '1' ? 'removed' : 'kept' }, 'branding changed');
      redirect(ctx, `${BACKOFFICE_PREFIX}/settings?done=brandSaved`);
    }),
  );

  // Saved cards (issue 12 part 3): its own form, off by default.
  router.post(
    '/settings/saved-cards',
    guarded('settings', async (ctx, auth) => {
      const enabled = (ctx.request.body as Record<string, unknown> | undefined)?.['enabled'] === 'yes';
      await merchantAdmin.setSavedCards(auth.merchant, enabled);
      ctx.state.log.info({ userId: auth.user.id, enabled }, 'saved cards setting changed');
      redirect(ctx, `${BACKOFFICE_PREFIX}/settings?done=settingsSaved`);
    }),
  );

  router.post(
    '/settings/webhook-secret',
    guarded('settings', async (ctx, auth) => {
      const { secret, previousValidUntil } = await merchantAdmin.rotateWebhookSecret(auth.merchant);
      ctx.state.log.info({ userId: auth.user.id }, 'webhook secret rotated');
      // Shown once, on this answer only (no redirect: the secret must not travel in a URL).
      const fresh = { ...auth, merchant: { ...auth.merchant, webhookSecret: secret, previousSecretUntil: previousValidUntil } } as AuthContext;
      renderSettings(ctx, fresh, 200, { newSecret: secret, graceUntil: shortDate(previousValidUntil, locale(), auth.merchant.timezone) });
    }),
  );
}
