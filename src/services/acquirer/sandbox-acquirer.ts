// The built-in sandbox acquirer: decides by the documented test card numbers (SPEC "Sandbox
// acquirer test cards"); any other card that passed the card checks is approved. The 3-D Secure
// card answers `challenge`; completeChallenge then approves when the customer authenticated on
// our sandbox ACS page and declines with THREE_DS_FAILED otherwise. It keeps no state, so any
// instance can finish a challenge another one started (the challenge itself lives in the DB).
import { createHash } from 'node:crypto';
import { customAlphabet, nanoid } from 'nanoid';
import {
  type Acquirer,
  type AuthorizeRequest,
  type AuthorizeResult,
  type ChallengeCompletion,
  type DeclineCode,
  type RefundRequest,
  type RefundResult,
} from '../../domain/acquirer.ts';

const AUTH_ALPHABET = '0123456789ABCDEFGHJKLMNPQRSTUVWXYZ';
const AUTH_CODE = customAlphabet(AUTH_ALPHABET, 6);

/**
 * A code derived from `seed`: the sandbox keeps no state, so the answers that must be idempotent
 * (a challenge completed again, a refund asked again under its key) are derived from their key.
 */
function derived(seed: string, length: number, alphabet: string): string {
  const digest = createHash('sha256').update(seed).digest();
  let out = '';
  for (let i = 0; i < length; i++) out += alphabet[digest[i]! % alphabet.length];
  return out;
}
/** Sandbox challenge ids: unguessable, and recognisable when they come back. */
const CHALLENGE_ID = /^3ds_[A-Za-z0-9_-]{16}$/;

type Scripted =
  | { outcome: 'declined'; code: DeclineCode; message: string }
  | { outcome: 'error'; code: DeclineCode; message: string }
  | { outcome: 'challenge'; message: string };

/** Test card numbers with a scripted outcome; the approved ones are listed for documentation. */
export const SANDBOX_CARDS: Readonly<Record<string, Scripted | { outcome: 'approved' }>> = Object.freeze({
  '4242424242424242': { outcome: 'approved' },
  '5555555555554444': { outcome: 'approved' },
  '378282246310005': { outcome: 'approved' },
  '4000000000000002': { outcome: 'declined', code: 'DECLINED', message: 'card declined' },
  '4000000000009995': { outcome: 'declined', code: 'INSUFFICIENT_FUNDS', message: 'insufficient funds' },
  '4000000000009987': { outcome: 'declined', code: 'LOST_OR_STOLEN', message: 'card on the blocked list (lost or stolen)' },
  '4000000000009979': { outcome: 'declined', code: 'OVER_LIMIT', message: 'over the card limit' },
  '4000000000003220': { outcome: 'challenge', message: '3-D Secure authentication required' },
  '4000000000000119': { outcome: 'error', code: 'ACQUIRER_UNAVAILABLE', message: 'acquirer unreachable' },
});

export interface SandboxAcquirer extends Acquirer {
  /** Authorisation codes released with void(), for inspection in development and tests. */
  readonly voided: ReadonlySet<string>;
}

export function createSandboxAcquirer(opts: { latencyMs?: number } = {}): SandboxAcquirer {
  const voided = new Set<string>();
  const wait = () => (opts.latencyMs ? new Promise((r) => setTimeout(r, opts.latencyMs)) : Promise.resolve());
  return {
    name: 'sandbox',
    voided,
    async authorize(req: AuthorizeRequest): Promise<AuthorizeResult> {
      await wait();
      const scripted = SANDBOX_CARDS[req.card.number];
      if (!scripted || scripted.outcome === 'approved') return { outcome: 'approved', authCode: AUTH_CODE() };
      if (scripted.outcome === 'challenge') {
        return { outcome: 'challenge', challengeId: `3ds_${nanoid(16)}`, message: scripted.message };
      }
      return { ...scripted };
    },
    async completeChallenge(req: ChallengeCompletion): Promise<AuthorizeResult> {
      await wait();
      if (!CHALLENGE_ID.test(req.challengeId)) {
        return { outcome: 'error', code: 'ACQUIRER_UNAVAILABLE', message: 'unknown challenge' };
      }
      if (!req.authenticated) {
        return { outcome: 'declined', code: 'THREE_DS_FAILED', message: '3-D Secure authentication failed' };
      }
      return { outcome: 'approved', authCode: derived(`3ds:${req.challengeId}`, 6, AUTH_ALPHABET) };
    },
    async void(authCode: string): Promise<void> {
      await wait();
      voided.add(authCode);
    },
    // Stateless like the rest of the sandbox: any positive amount of a known-looking payment is
    // refunded; the same idempotency key gives the same refund id. Never exceeding the paid amount is the refund service's job, not the acquirer's.
    async refund(req: RefundRequest): Promise<RefundResult> {
      await wait();
      if (!req.authCode || !Number.isInteger(req.amountMinor) || req.amountMinor <= 0) {
        return { ok: false, code: 'REFUND_REJECTED', message: 'invalid refund request' };
      }
      return { ok: true, refundId: `re_${derived(`refund:${req.idempotencyKey}`, 16, 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789')}` };
    },
  };
}
