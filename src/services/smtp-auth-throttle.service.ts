// Brute-force throttle of SMTP AUTH on the submission door. After `threshold` failures within
// `windowMs` from one client address, or against one user name from anywhere, AUTH is answered
// 454 4.7.0 after a delay that doubles with every further failure, and the password is not
// checked at all (no scrypt work for the attacker). Failures are documents in the database
// (src/db/limits.repository.ts), so every instance counts the same attempts.
// An address that logged in as a user before keeps getting in while that user is under attack
// from elsewhere: the per-user limit must not hand attackers a way to lock a merchant out.
import { type Repositories } from '../db/repositories.ts';

export interface SmtpAuthThrottleOptions {
  /** The storage seam (src/db/repositories.ts). */
  repos: Repositories;
  /** Failures within the window before attempts are refused. */
  threshold?: number;
  windowMs?: number;
  /** Delay before the first 454; doubles with each failure beyond the threshold. */
  baseDelayMs?: number;
  /** Longest delay: bounded well below the door's idle timeout (60 s). */
  maxDelayMs?: number;
  /** How long a successful log-in keeps an address trusted for its user. */
  knownAddressMs?: number;
  now?: () => Date;
}

export interface ThrottleDecision {
  scope: 'address' | 'user';
  failures: number;
  delayMs: number;
}

export const SMTP_AUTH_THROTTLE_DEFAULTS = {
  threshold: 5,
  windowMs: 15 * 60_000,
  baseDelayMs: 1_000,
  maxDelayMs: 15_000,
  knownAddressMs: 30 * 86_400_000,
} as const;

/** Old failures are deleted at most this often per process (a query, not a TTL index). */
const SWEEP_EVERY_MS = 60_000;

export function createSmtpAuthThrottle(opts: SmtpAuthThrottleOptions) {
  const p = { ...SMTP_AUTH_THROTTLE_DEFAULTS, ...opts };
  const now = opts.now ?? (() => new Date());
  const { limits } = opts.repos;
  let lastSweep = 0;

  const normalise = (user: string) => user.trim().toLowerCase().slice(0, 254);
  // Counting stops a little past the threshold: the delay is capped anyway.
  const countCap = p.threshold + Math.ceil(Math.log2(p.maxDelayMs / p.baseDelayMs)) + 1;
  const count = (by: { ip: string } | { user: string }, since: Date) => limits.countSmtpAuthFailures(by, since, countCap);

  function decision(scope: ThrottleDecision['scope'], failures: number): ThrottleDecision {
    const delayMs = Math.min(p.maxDelayMs, p.baseDelayMs * 2 ** Math.max(0, failures - p.threshold));
    return { scope, failures, delayMs };
  }

  /** Whether this attempt is to be refused without checking the password, and how. */
  async function check(userInput: string, ip: string): Promise<ThrottleDecision | undefined> {
    const user = normalise(userInput);
    const at = now();
    const since = new Date(at.getTime() - p.windowMs);
    const [byAddress, byUser] = await Promise.all([count({ ip }, since), user ? count({ user }, since) : Promise.resolve(0)]);
    if (byAddress >= p.threshold) return decision('address', byAddress);
    if (byUser >= p.threshold) {
      const knownAt = await limits.smtpAuthKnownAt(user, ip);
      if (knownAt && at.getTime() - knownAt.getTime() < p.knownAddressMs) return undefined;
      return decision('user', byUser);
    }
    return undefined;
  }

  /** Records a failed (or refused) attempt. */
  async function recordFailure(userInput: string, ip: string): Promise<void> {
    const at = now();
    await limits.recordSmtpAuthFailure(normalise(userInput), ip, at);
    if (at.getTime() - lastSweep > SWEEP_EVERY_MS) {
      lastSweep = at.getTime();
      await limits.pruneSmtpAuthFailures(new Date(at.getTime() - p.windowMs));
    }
  }

  /** Remembers the address as the user's own (one write by _id). */
  async function recordSuccess(userInput: string, ip: string): Promise<void> {
    await limits.recordSmtpAuthKnown(normalise(userInput), ip, now());
  }

  return { check, recordFailure, recordSuccess };
}
export type SmtpAuthThrottle = ReturnType<typeof createSmtpAuthThrottle>;
