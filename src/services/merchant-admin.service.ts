// Admin use cases of the back office: the merchant's settings (delivery, link lifetime, locale,
// time zone, recap hour, sender domains, webhook URL), webhook secret rotation with a grace
// period, the merchant's users and roles, and the webhook log with replay. Everything is scoped to
// the logged-in user's merchant.
import { z } from 'zod';
import { type MerchantDoc } from '../db/merchants.repository.ts';
import { DELIVERY_MODES, ROLES, type DeliveryMode, type Role } from '../domain/merchant.ts';
import { type WebhookAttemptDoc, type WebhookDeliveryDoc } from '../db/webhooks.repository.ts';
import { AppError, isAppError, type FieldProblem } from '../domain/errors.ts';
import { newSecret } from '../domain/ids.ts';
import { hashPassword } from '../domain/password.ts';
import { WEBHOOK_RETRY_WINDOW_MS, webhookEvents } from './events.service.ts';
import { SUPPORTED_LOCALES } from './merchant.service.ts';
import { checkWebhookTarget, type WebhookTargetPolicy } from './webhook-target.ts';
import { type Repositories } from '../db/repositories.ts';
import { isTimeZone } from '../domain/time-zone.ts';

/** How long the previous webhook secret keeps signing after a rotation. */
export const WEBHOOK_SECRET_GRACE_MS = 24 * 3600_000;
export const WEBHOOK_LOG_SIZE = 50;

const DOMAIN = /^[a-z0-9]([a-z0-9-]*[a-z0-9])?(\.[a-z0-9]([a-z0-9-]*[a-z0-9])?)+$/;

/** The settings form as typed (strings); checked here, field by field. */
export interface SettingsInput {
  delivery: string;
  linkLifetimeDays: string;
  locale: string;
  timezone: string;
  recapHour: string;
  senderDomains: string;
  webhookUrl: string;
}

export interface MerchantAdminDeps {
  /** The storage seam (src/db/repositories.ts). */
  repos: Repositories;
  maxLinkLifetimeDays: number;
  /** Which webhook targets may be saved (WEBHOOK_ALLOW_PRIVATE, resolver); private ones are refused by default. */
  webhookTargets?: WebhookTargetPolicy;
  now?: () => Date;
}

export interface UserRow {
  id: string;
  email: string;
  role: Role;
  createdAt?: Date;
}

export type WebhookLogEntry = WebhookDeliveryDoc & { createdAt?: Date; attemptList: WebhookAttemptDoc[] };

const invalid = (problems: FieldProblem[]) =>
  new AppError('SETTINGS_INVALID', problems.map((p) => `${p.field}: ${p.message}`).join('; '), { httpStatus: 422, details: { problems } });

export function createMerchantAdminService(deps: MerchantAdminDeps) {
  const now = deps.now ?? (() => new Date());
  const { merchants, users } = deps.repos;

  // ---- settings ------------------------------------------------------------------------------

  async function updateSettings(merchant: MerchantDoc, input: SettingsInput): Promise<MerchantDoc> {
    const problems: FieldProblem[] = [];
    const bad = (field: string, code: string, message: string) => problems.push({ field, code, message });
    if (!(DELIVERY_MODES as readonly string[]).includes(input.delivery)) bad('delivery', 'DELIVERY_INVALID', 'expected merchant or customer');
    const days = Number(input.linkLifetimeDays);
    if (!/^\d{1,3}$/.test(input.linkLifetimeDays.trim()) || days < 1 || days > deps.maxLinkLifetimeDays) {
      bad('linkLifetimeDays', 'LIFETIME_INVALID', `expected 1 to ${deps.maxLinkLifetimeDays} days`);
    }
    if (!(SUPPORTED_LOCALES as readonly string[]).includes(input.locale)) bad('locale', 'LOCALE_INVALID', `expected one of ${SUPPORTED_LOCALES.join(', ')}`);
    const timezone = input.timezone.trim();
    if (!timezone || !isTimeZone(timezone)) bad('timezone', 'TIMEZONE_INVALID', 'expected an IANA time zone such as Europe/Rome');
    const hour = Number(input.recapHour);
    if (!/^\d{1,2}$/.test(input.recapHour.trim()) || hour > 23) bad('recapHour', 'RECAP_HOUR_INVALID', 'expected an hour from 0 to 23');
    const domains = [...new Set(input.senderDomains.split(/[\s,;]+/).map((d) => d.trim().toLowerCase()).filter(Boolean))];
    const wrong = domains.filter((d) => d.length > 253 || !DOMAIN.test(d));
    if (wrong.length) bad('senderDomains', 'DOMAIN_INVALID', `not a domain name: ${wrong.join(', ')}`);
    if (domains.length > 50) bad('senderDomains', 'DOMAIN_TOO_MANY', 'at most 50 domains');
    const url = input.webhookUrl.trim();
    if (url && !z.url({ protocol: /^https?$/ }).safeParse(url).success) bad('webhookUrl', 'WEBHOOK_URL_INVALID', 'expected an http(s) URL');
    else if (url) {
      // Checked again at every delivery; refusing here tells the admin now, and why. A name that
      // does not resolve (yet) is accepted: it cannot reach anything, and delivery checks again.
      await checkWebhookTarget(url, deps.webhookTargets ?? { allowPrivate: false }).catch((e: unknown) => {
        if (isAppError(e, 'WEBHOOK_TARGET_REFUSED')) bad('webhookUrl', 'WEBHOOK_URL_REFUSED', e.message);
        else if (!isAppError(e, 'WEBHOOK_HOST_UNRESOLVED')) throw e;
      });
    }
    if (problems.length) throw invalid(problems);
    const updated = await merchants.updateSettings(merchant._id, {
      delivery: input.delivery as DeliveryMode,
      linkLifetimeDays: days,
      locale: input.locale,
      timezone,
      recapHour: hour,
      senderDomains: domains,
      ...(url ? { webhookUrl: url } : {}),
    });
    if (!updated) throw new AppError('MERCHANT_NOT_FOUND', 'no such merchant', { httpStatus: 404 });
    return updated;
  }

  /**
   * A new webhook secret, returned once. The current one becomes the previous secret and keeps
   * signing (a second v1= in the signature header) for WEBHOOK_SECRET_GRACE_MS, so the merchant
   * can update its verifier without losing events.
   */
  async function rotateWebhookSecret(merchant: MerchantDoc): Promise<{ secret: string; previousValidUntil: Date }> {
    const secret = `whsec_${newSecret(32)}`;
    const previousValidUntil = new Date(now().getTime() + WEBHOOK_SECRET_GRACE_MS);
    if (!(await merchants.rotateWebhookSecret(merchant._id, secret, previousValidUntil))) {
      throw new AppError('MERCHANT_NOT_FOUND', 'no such merchant', { httpStatus: 404 });
    }
    return { secret, previousValidUntil };
  }

  // ---- users ---------------------------------------------------------------------------------

  async function listUsers(merchant: Pick<MerchantDoc, '_id'>): Promise<UserRow[]> {
    return (await users.listByMerchant(merchant._id)).map((u) => ({ id: u.id, email: u.email, role: u.role, createdAt: u.createdAt }));
  }

  function checkRole(role: string): Role {
    if (!(ROLES as readonly string[]).includes(role)) throw new AppError('ROLE_INVALID', `expected one of ${ROLES.join(', ')}`, { httpStatus: 422 });
    return role as Role;
  }

  async function findUser(merchant: Pick<MerchantDoc, '_id'>, userId: string) {
    const user = await users.findInMerchant(merchant._id, userId);
    if (!user) throw new AppError('USER_NOT_FOUND', 'no such user', { httpStatus: 404 });
    return user;
  }

  /** Adds a user; the temporary password is returned once (only its hash is kept). */
  async function addUser(merchant: Pick<MerchantDoc, '_id'>, emailInput: string, roleInput: string): Promise<{ user: UserRow; password: string }> {
    const email = emailInput.trim().toLowerCase();
    if (!z.email().safeParse(email).success) throw new AppError('USER_EMAIL_INVALID', 'expected an e-mail address', { httpStatus: 422 });
    const role = checkRole(roleInput);
    const password = newSecret(16);
    const id = await users.insert({ merchantId: merchant._id, email, passwordHash: await hashPassword(password), role });
    if (!id) throw new AppError('USER_EXISTS', 'a user with this e-mail address exists', { httpStatus: 409 });
    return { user: { id, email, role }, password };
  }

  const lastAdmin = () => new AppError('USER_LAST_ADMIN', 'the merchant must keep at least one admin', { httpStatus: 409 });

  /**
   * The last admin may not lose the role, and nobody changes or removes themselves here. Checked
   * first (the usual refusal), and again by the repository after the write (two admins at once).
   */
  async function assertNotLastAdmin(merchant: Pick<MerchantDoc, '_id'>, user: { role: string }) {
    if (user.role === 'admin' && (await users.countAdmins(merchant._id)) <= 1) throw lastAdmin();
  }

  async function changeRole(merchant: Pick<MerchantDoc, '_id'>, actorId: string, userId: string, roleInput: string): Promise<void> {
    const role = checkRole(roleInput);
    // From the role read; when another admin changed it meanwhile, the checks run again on theirs.
    for (let tries = 0; tries < 3; tries++) {
      const user = await findUser(merchant, userId);
      if (user.id === actorId) throw new AppError('USER_SELF', 'you cannot change your own role', { httpStatus: 409 });
      if (user.role === role) return;
      if (role !== 'admin') await assertNotLastAdmin(merchant, user);
      const changed = await users.changeRole(merchant._id, user.id, user.role, role);
      if (changed === 'last-admin') throw lastAdmin();
      if (changed === 'changed') return;
    }
    throw new Error(`user ${userId}: the role kept changing while it was being changed`);
  }

  async function removeUser(merchant: Pick<MerchantDoc, '_id'>, actorId: string, userId: string): Promise<void> {
    const user = await findUser(merchant, userId);
    if (user.id === actorId) throw new AppError('USER_SELF', 'you cannot remove yourself', { httpStatus: 409 });
    await assertNotLastAdmin(merchant, user);
    // Their open sessions end with them (resolve() would also refuse them: the user is gone).
    if ((await users.remove(merchant._id, user.id)) === 'last-admin') throw lastAdmin();
  }

  // ---- webhook log ---------------------------------------------------------------------------

  /** The latest deliveries with their attempts (two queries: FerretDB has no $lookup). */
  async function webhookLog(merchant: Pick<MerchantDoc, '_id'>): Promise<WebhookLogEntry[]> {
    return deps.repos.webhooks.log(merchant._id, WEBHOOK_LOG_SIZE);
  }

  /**
   * Queues a delivery again with the same event id and body (the worker re-signs it per attempt).
   * A delivery being sent right now is left alone.
   */
  async function replayWebhook(merchant: Pick<MerchantDoc, '_id'>, eventId: string): Promise<void> {
    const d = await deps.repos.webhooks.findForMerchant(merchant._id, eventId);
    if (!d) throw new AppError('WEBHOOK_NOT_FOUND', 'no such webhook delivery', { httpStatus: 404 });
    if (d.status === 'sending') throw new AppError('WEBHOOK_IN_FLIGHT', 'this delivery is being sent right now', { httpStatus: 409 });
    const at = now();
    const replayed = await deps.repos.webhooks.replay(merchant._id, eventId, at, new Date(at.getTime() + WEBHOOK_RETRY_WINDOW_MS));
    if (!replayed) throw new AppError('WEBHOOK_IN_FLIGHT', 'this delivery is being sent right now', { httpStatus: 409 });
    webhookEvents.emit('queued');
  }

  /** Saved cards on or off: the checkout's "Save my card" and one-click (issue 12 part 3). */
  async function setSavedCards(merchant: MerchantDoc, enabled: boolean): Promise<MerchantDoc> {
    const updated = await merchants.setSavedCards(merchant._id, enabled);
    if (!updated) throw new AppError('MERCHANT_NOT_FOUND', 'no such merchant', { httpStatus: 404 });
    return updated;
  }

  return { updateSettings, rotateWebhookSecret, setSavedCards, listUsers, addUser, changeRole, removeUser, webhookLog, replayWebhook };
}
export type MerchantAdminService = ReturnType<typeof createMerchantAdminService>;
