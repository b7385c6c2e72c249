// Back-office authentication: log-in with lock-out, database sessions (shared by every instance),
// per-session CSRF tokens, log-out and password change. Edges call this; it never touches Koa.
//
// Lock-out counts failed log-ins as inserted documents (FerretDB loses concurrent $inc) per
// account and per client address within a window. Past the threshold the account (or address) is
// locked for LOCK_BASE, doubling with every further failure, up to LOCK_MAX. While locked, log-ins
// are refused without checking the password, so the lock cannot be used as a password oracle.
import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import { AppError } from '../domain/errors.ts';
import { hashPassword, verifyPassword } from '../domain/password.ts';
import { type MerchantDoc } from '../db/merchants.repository.ts';
import { type Repositories } from '../db/repositories.ts';
import { type Role } from '../domain/merchant.ts';
import { SUPPORTED_LOCALES } from './merchant.service.ts';

export interface LockoutPolicy {
  /** Failures per account within the window before it locks. */
  accountThreshold: number;
  /** Failures per client address (any accounts) within the window before it locks. */
  ipThreshold: number;
  windowMs: number;
  baseLockMs: number;
  maxLockMs: number;
}

export const DEFAULT_LOCKOUT: LockoutPolicy = {
  accountThreshold: 5,
  ipThreshold: 20,
  windowMs: 24 * 3600_000,
  baseLockMs: 60_000,
  maxLockMs: 3600_000,
};

export interface SessionPolicy {
  /** A session unused this long ends (sliding expiry). */
  idleMs: number;
  /** No session outlives this, however busy. */
  maxMs: number;
  /** Expiry is pushed forward at most this often (one write per minute, not per request). */
  touchEveryMs: number;
}

export const DEFAULT_SESSION: SessionPolicy = { idleMs: 2 * 3600_000, maxMs: 12 * 3600_000, touchEveryMs: 60_000 };
export const MIN_PASSWORD_LENGTH = 12;

export interface BackofficeAuthDeps {
  /** The storage seam (src/db/repositories.ts). */
  repos: Repositories;
  now?: () => Date;
  lockout?: Partial<LockoutPolicy>;
  session?: Partial<SessionPolicy>;
  minPasswordLength?: number;
}

export interface BackofficeUser {
  id: string;
  email: string;
  role: Role;
  merchantId: string;
  /** The user's own back-office language; absent: the merchant's. */
  locale?: string;
}

/** What a request carries once its session cookie has been resolved. */
export interface AuthContext {
  sessionId: string;
  csrfToken: string;
  user: BackofficeUser;
  merchant: MerchantDoc;
}

export const newToken = (): string => randomBytes(32).toString('base64url');
const sessionKey = (token: string): string => createHash('sha256').update(token).digest('hex');

/** Constant-time comparison of two tokens (any lengths). */
export function tokensEqual(a: string | undefined, b: string | undefined): boolean {
  if (!a || !b) return false;
  const x = createHash('sha256').update(a).digest();
  const y = createHash('sha256').update(b).digest();
  return timingSafeEqual(x, y);
}

export function createBackofficeAuthService(deps: BackofficeAuthDeps) {
  const now = deps.now ?? (() => new Date());
  const lockout: LockoutPolicy = { ...DEFAULT_LOCKOUT, ...deps.lockout };
  const sessions: SessionPolicy = { ...DEFAULT_SESSION, ...deps.session };
  const minLength = deps.minPasswordLength ?? MIN_PASSWORD_LENGTH;
  const { users, merchants } = deps.repos;
  // Verified against when the e-mail is unknown, so timing does not tell which accounts exist.
  const dummyHash = hashPassword(newToken());

  /** The time until which `field = value` is locked, if it is. */
  async function lockedUntil(field: 'email' | 'ip', value: string, threshold: number): Promise<Date | undefined> {
    const at = now();
    const by = field === 'email' ? { email: value } : { ip: value };
    const since = new Date(at.getTime() - lockout.windowMs);
    const failures = await users.countLoginFailures(by, since);
    if (failures < threshold) return undefined;
    const lastAt = await users.lastLoginFailureAt(by, since);
    if (!lastAt) return undefined;
    const lockMs = Math.min(lockout.baseLockMs * 2 ** Math.min(failures - threshold, 30), lockout.maxLockMs);
    const until = new Date(lastAt.getTime() + lockMs);
    return until > at ? until : undefined;
  }

  async function assertNotLocked(email: string, ip: string): Promise<void> {
    const [account, address] = await Promise.all([
      lockedUntil('email', email, lockout.accountThreshold),
      lockedUntil('ip', ip, lockout.ipThreshold),
    ]);
    const until = [account, address].filter((d): d is Date => !!d).sort((a, b) => b.getTime() - a.getTime())[0];
    if (until) {
      const retryAfterSec = Math.max(1, Math.ceil((until.getTime() - now().getTime()) / 1000));
      throw new AppError('AUTH_LOCKED', 'too many failed attempts', { httpStatus: 429, details: { retryAfterSec } });
    }
  }

  const recordFailure = (email: string, ip: string) => users.recordLoginFailure(email, ip, now());

  async function createSession(user: BackofficeUser, meta: { ip?: string; userAgent?: string }): Promise<string> {
    const token = newToken();
    const at = now();
    await users.createSession({
      _id: sessionKey(token),
      userId: user.id,
      merchantId: user.merchantId,
      csrfToken: newToken(),
      createdAt: at,
      lastSeenAt: at,
      expiresAt: new Date(at.getTime() + Math.min(sessions.idleMs, sessions.maxMs)),
      ip: meta.ip,
      userAgent: meta.userAgent?.slice(0, 200),
    });
    return token;
  }

  /** Checks the credentials; returns a new session token. Throws AUTH_LOCKED or AUTH_INVALID_CREDENTIALS. */
  async function login(emailInput: string, password: string, meta: { ip: string; userAgent?: string }): Promise<string> {
    const email = emailInput.trim().toLowerCase().slice(0, 254);
    await assertNotLocked(email, meta.ip);
    const user = email ? await users.findByEmail(email) : null;
    const ok = await verifyPassword(password, user?.passwordHash ?? (await dummyHash));
    const merchant = user && ok ? await merchants.findById(user.merchantId) : null;
    // A suspended merchant still logs in: the back office shows the state (and its history).
    if (!user || !ok || !merchant) {
      await recordFailure(email, meta.ip);
      throw new AppError('AUTH_INVALID_CREDENTIALS', 'wrong e-mail or password', { httpStatus: 401 });
    }
    // A success forgives the account's earlier failures (not the address's: that is a different signal).
    await users.forgiveLoginFailures(email);
    // Housekeeping without TTL indexes (FerretDB has none): expired sessions, failures past the window.
    await users.pruneSessions(now());
    await users.pruneLoginFailures(new Date(now().getTime() - lockout.windowMs));
    return createSession({ id: user.id, email: user.email, role: user.role, merchantId: user.merchantId }, meta);
  }

  /** The session behind a cookie token, or undefined; slides its expiry forward. */
  async function resolve(token: string | undefined): Promise<AuthContext | undefined> {
    if (!token || token.length > 100) return undefined;
    const id = sessionKey(token);
    const s = await users.findSession(id);
    const at = now();
    if (!s) return undefined;
    if (s.expiresAt <= at) {
      await users.endSession(id);
      return undefined;
    }
    const user = await users.findById(s.userId);
    const merchant = user ? await merchants.findById(user.merchantId) : null;
    if (!user || !merchant || user.merchantId !== s.merchantId) {
      await users.endSession(id);
      return undefined;
    }
    if (at.getTime() - s.lastSeenAt.getTime() >= sessions.touchEveryMs) {
      const expiresAt = new Date(Math.min(at.getTime() + sessions.idleMs, s.createdAt.getTime() + sessions.maxMs));
      // From the use read: of two requests touching at once, one slides it (nearly the same times).
      await users.touchSession(id, s.lastSeenAt, at, expiresAt);
    }
    return {
      sessionId: id,
      csrfToken: s.csrfToken,
      user: { id: user.id, email: user.email, role: user.role, merchantId: user.merchantId, ...(user.locale ? { locale: user.locale } : {}) },
      merchant,
    };
  }

  async function logout(auth: Pick<AuthContext, 'sessionId'>): Promise<void> {
    await users.endSession(auth.sessionId);
  }

  /** Changes the user's password; every other session of the user ends. */
  async function changePassword(
    auth: AuthContext,
    input: { current: string; next: string; confirm: string },
    ip: string,
  ): Promise<void> {
    if (input.next.length < minLength) {
      throw new AppError('PASSWORD_TOO_SHORT', `at least ${minLength} characters`, { httpStatus: 422, details: { min: minLength } });
    }
    if (input.next.length > 200) throw new AppError('PASSWORD_TOO_LONG', 'at most 200 characters', { httpStatus: 422 });
    if (input.next !== input.confirm) throw new AppError('PASSWORD_MISMATCH', 'the two new passwords differ', { httpStatus: 422 });
    // A session holder guessing the current password is throttled like a log-in.
    await assertNotLocked(auth.user.email, ip);
    const user = await users.findById(auth.user.id);
    if (!user || !(await verifyPassword(input.current, user.passwordHash))) {
      await recordFailure(auth.user.email, ip);
      throw new AppError('PASSWORD_CURRENT_WRONG', 'the current password is wrong', { httpStatus: 422 });
    }
    // Replaces the hash that was checked: if another session changed the password meanwhile, the
    // current password given here is no longer the current one.
    if (!(await users.changePasswordHash(user.id, user.passwordHash, await hashPassword(input.next)))) {
      throw new AppError('PASSWORD_CURRENT_WRONG', 'the current password is wrong', { httpStatus: 422 });
    }
    await users.endOtherSessions(auth.user.id, auth.sessionId);
  }

  /** Sets the user's own back-office language; '' goes back to the merchant's. */
  async function setLanguage(auth: AuthContext, language: string): Promise<void> {
    if (language && !(SUPPORTED_LOCALES as readonly string[]).includes(language)) {
      throw new AppError('LANGUAGE_INVALID', `expected one of ${SUPPORTED_LOCALES.join(', ')}`, { httpStatus: 422 });
    }
    if (!(await users.setLocale(auth.user.merchantId, auth.user.id, language || undefined))) {
      throw new AppError('UNAUTHENTICATED', 'the user no longer exists', { httpStatus: 401 });
    }
  }

  return { login, resolve, logout, changePassword, setLanguage, minPasswordLength: minLength };
}
export type BackofficeAuthService = ReturnType<typeof createBackofficeAuthService>;
