// Back office: log-in (CSRF token scoped to the log-in form, the session does not exist yet), log-out, and
// the account page (password change, the user's own language).
import { type Router } from '@koa/router';
import { AppError, isAppError } from '../../domain/errors.ts';
import { PAGE_LOCALES } from '../page-strings.ts';
import { LanguageForm, LoginForm, PasswordForm, parse } from './backoffice.validators.ts';
import { BACKOFFICE_PREFIX, SESSION_COOKIE, pageLocale, type BackofficeKit, type BackofficeRouterDeps, type Ctx } from './backoffice.kit.ts';

/** Only a path inside the back office may be a post-log-in destination (no open redirect). */
function safeNext(next: string | undefined): string {
  if (next && /^\/backoffice(\/[\w\-./?=&%~+:@]*)?$/.test(next) && !next.includes('//') && !next.includes('/..')) return next;
  return `${BACKOFFICE_PREFIX}/orders`;
}

export function registerAuthRoutes(router: Router, deps: BackofficeRouterDeps, kit: BackofficeKit): void {
  const { auth: authService } = deps;
  const { t, setCookie, page, guarded, redirect, csrf, csrfScope } = kit;

  function renderLogin(ctx: Ctx, status: number, data: { email?: string; next?: string; problem?: string }) {
    page(ctx, status, 'login', { title: t('login.title'), csrf: csrf.token(ctx, csrfScope(undefined)), email: data.email ?? '', next: data.next ?? '', problem: data.problem });
  }

  router.get('/login', async (ctx) => {
    if (await authService.resolve(ctx.cookies.get(SESSION_COOKIE))) return redirect(ctx, `${BACKOFFICE_PREFIX}/orders`);
    renderLogin(ctx, 200, { next: typeof ctx.query['next'] === 'string' ? ctx.query['next'] : '' });
  });

  router.post('/login', async (ctx) => {
    const form = parse(LoginForm, ctx.request.body);
    if (!csrf.verify(ctx, csrfScope(undefined), form._csrf)) {
      throw new AppError('CSRF_INVALID', 'the form has expired; reload the page and try again', { httpStatus: 403 });
    }
    try {
      const token = await authService.login(form.email, form.password, { ip: ctx.ip, userAgent: ctx.get('user-agent') });
      setCookie(ctx, SESSION_COOKIE, token);
      ctx.state.log.info({ email: form.email.trim().toLowerCase() }, 'back-office log-in');
      return redirect(ctx, safeNext(form.next));
    } catch (e) {
      if (isAppError(e, 'AUTH_INVALID_CREDENTIALS')) {
        ctx.state.log.info({ code: e.code }, 'back-office log-in refused');
        return renderLogin(ctx, 401, { email: form.email, next: form.next, problem: t('problem.AUTH_INVALID_CREDENTIALS') });
      }
      if (isAppError(e, 'AUTH_LOCKED')) {
        const retryAfterSec = (e.details as { retryAfterSec: number }).retryAfterSec;
        ctx.state.log.warn({ code: e.code, retryAfterSec }, 'back-office log-in locked');
        ctx.set('Retry-After', String(retryAfterSec));
        const minutes = Math.max(1, Math.ceil(retryAfterSec / 60));
        return renderLogin(ctx, 429, { email: form.email, next: form.next, problem: t('problem.AUTH_LOCKED', { minutes }) });
      }
      throw e;
    }
  });

  router.post(
    '/logout',
    guarded('account', async (ctx, auth) => {
      await authService.logout(auth);
      setCookie(ctx, SESSION_COOKIE, '', 0);
      ctx.state.backoffice = undefined;
      redirect(ctx, `${BACKOFFICE_PREFIX}/login`);
    }),
  );

  const renderPassword = (ctx: Ctx, status: number, problem?: string) => {
    const auth = ctx.state.backoffice!;
    const own = auth.user.locale ?? '';
    const merchantDefault = t('password.language.merchantDefault', { language: t(`password.languageNames.${pageLocale(auth.merchant.locale)}`) });
    const languages = [
      { value: '', label: merchantDefault, selected: own === '' },
      // Each language in its own words (and marked so), as language pickers do.
      ...PAGE_LOCALES.map((lc) => ({ value: lc, lang: lc, label: t(`password.languageNames.${lc}`), selected: own === lc })),
    ];
    page(ctx, status, 'password', { title: t('password.title'), navKey: 'account', problem, min: authService.minPasswordLength, languages });
  };

  router.get('/password', guarded('account', async (ctx) => renderPassword(ctx, 200)));

  router.post(
    '/account/language',
    guarded('account', async (ctx, auth) => {
      const form = parse(LanguageForm, ctx.request.body);
      await authService.setLanguage(auth, form.language);
      ctx.state.log.info({ userId: auth.user.id, language: form.language || 'merchant default' }, 'back-office language changed');
      redirect(ctx, `${BACKOFFICE_PREFIX}/password?done=languageSaved`);
    }),
  );

  router.post(
    '/password',
    guarded('account', async (ctx, auth) => {
      const form = parse(PasswordForm, ctx.request.body);
      try {
        await authService.changePassword(auth, form, ctx.ip);
      } catch (e) {
        if (isAppError(e) && (e.httpStatus === 422 || e.httpStatus === 429)) {
          return renderPassword(ctx, e.httpStatus, t(`problem.${e.code}`, { min: authService.minPasswordLength, minutes: 1 }));
        }
        throw e;
      }
      redirect(ctx, `${BACKOFFICE_PREFIX}/password?done=passwordChanged`);
    }),
  );

  router.get('/', guarded('account', async (ctx) => redirect(ctx, `${BACKOFFICE_PREFIX}/orders`)));
}
