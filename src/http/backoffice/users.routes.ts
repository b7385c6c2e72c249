// Back office: the merchant's users: add one (a temporary password shown once), change a role,
// remove one (admin).
import { type Router } from '@koa/router';
import { AppError, isAppError } from '../../domain/errors.ts';
import { ROLES } from '../../domain/merchant.ts';
import { type AuthContext } from '../../services/backoffice-auth.service.ts';
import { RoleForm, UserForm, parse, userIdParam } from './backoffice.validators.ts';
import { BACKOFFICE_PREFIX, type BackofficeKit, type BackofficeRouterDeps, type Ctx } from './backoffice.kit.ts';

export function registerUserRoutes(router: Router, deps: BackofficeRouterDeps, kit: BackofficeKit): void {
  const { merchantAdmin } = deps;
  const { t, page, guarded, redirect } = kit;

  async function renderUsers(ctx: Ctx, auth: AuthContext, status: number, extra: { created?: { email: string; password: string }; problem?: string; values?: { email: string; role: string } } = {}) {
    const users = await merchantAdmin.listUsers(auth.merchant);
    const roleOptions = (current: string) => ROLES.map((r) => ({ value: r, label: t(`role.${r}`), selected: r === current }));
    page(ctx, status, 'users', {
      title: t('users.title'),
      navKey: 'users',
      users: users.map((u) => ({ ...u, roleLabel: t(`role.${u.role}`), self: u.id === auth.user.id, roles: roleOptions(u.role) })),
      newRoles: roleOptions(extra.values?.role ?? 'viewer'),
      values: extra.values ?? { email: '', role: 'viewer' },
      created: extra.created,
      problem: extra.problem,
    });
  }

  router.get('/users', guarded('users', async (ctx, auth) => renderUsers(ctx, auth, 200)));

  router.post(
    '/users',
    guarded('users', async (ctx, auth) => {
      const form = parse(UserForm, ctx.request.body);
      try {
        const { user, password } = await merchantAdmin.addUser(auth.merchant, form.email, form.role);
        ctx.state.log.info({ userId: auth.user.id, added: user.id, role: user.role }, 'user added');
        // The temporary password is shown on this answer only.
        return renderUsers(ctx, auth, 201, { created: { email: user.email, password } });
      } catch (e) {
        if (isAppError(e) && (e.httpStatus === 409 || e.httpStatus === 422)) {
          return renderUsers(ctx, auth, e.httpStatus, { problem: t(`problem.${e.code}`), values: { email: form.email, role: form.role } });
        }
        throw e;
      }
    }),
  );

  /** A change to one user: done → the list (303); refused → the list with why. */
  function userAction(run: (ctx: Ctx, auth: AuthContext, userId: string) => Promise<string>) {
    return guarded('users', async (ctx, auth) => {
      const userId = userIdParam.parse(ctx.params['userId'] ?? '');
      if (!userId) throw new AppError('USER_NOT_FOUND', 'no such user', { httpStatus: 404 });
      let notice: string;
      try {
        notice = await run(ctx, auth, userId);
      } catch (e) {
        if (isAppError(e) && (e.httpStatus === 409 || e.httpStatus === 422)) return renderUsers(ctx, auth, e.httpStatus, { problem: t(`problem.${e.code}`) });
        throw e;
      }
      ctx.state.log.info({ userId: auth.user.id, target: userId, action: notice }, 'user changed');
      redirect(ctx, `${BACKOFFICE_PREFIX}/users?done=${notice}`);
    });
  }

  router.post(
    '/users/:userId/role',
    userAction(async (ctx, auth, userId) => {
      await merchantAdmin.changeRole(auth.merchant, auth.user.id, userId, parse(RoleForm, ctx.request.body).role);
      return 'roleChanged';
    }),
  );

  router.post(
    '/users/:userId/remove',
    userAction(async (_ctx, auth, userId) => {
      await merchantAdmin.removeUser(auth.merchant, auth.user.id, userId);
      return 'userRemoved';
    }),
  );
}
