// The built-in sandbox acquirer: decides by the documented test card numbers (SPEC "Sandbox
// acquirer test cards"); any other card that passed the card checks is approved. The 3-D Secure
// card answers `challenge`; completeChallenge then approves when the customer authenticated on
// our sandbox ACS page and declines with THREE_DS_FAILED otherwise. Its answers are derived from
// their keys, so any instance can finish a challenge another one started (the challenge itself
// lives in the DB).
//
// Saved cards (issue 12 part 3): given a vault store (src/domain/sandbox-vault.ts), the sandbox
// keeps the cards customers save, as a bank's PCI vault would — stored, so that every instance
// and every restart knows them; what it keeps is the test card's scripted outcome and last four,
// never the number or the CVC. A saved test card behaves later as its number says:
//   - the decline cards (…0002, …9995, …9987, …9979) can be saved: the payment that saves one is
//     approved (as the bank's account check would be) and every later charge declines with the
//     card's code (…9995 saved, later charged: INSUFFICIENT_FUNDS);
//   - …3220 asks for 3-D Secure when saved (the card is kept once the challenge passes), on every
//     one-click payment again, and a merchant-initiated charge of it declines with
//     AUTHENTICATION_REQUIRED (nobody is there to authenticate);
//   - …0119 fails (ACQUIRER_UNAVAILABLE) and nothing is saved;
//   - one-click charges need the security code again (`cvcRequired`: true), as many issuers do
//     for a customer-initiated payment; merchant-initiated charges do not.
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
  type SavedCardCharge,
  type SavedCardVault,
} from '../../domain/acquirer.ts';
import { type SandboxVaultStore, type SavedBehaviour } from '../../domain/sandbox-vault.ts';

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

const TOKEN_ALPHABET = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789';
/** The vault token of a card saved by a payment that waits for its challenge: known again from the challenge id. */
const challengeToken = (challengeId: string) => `tok_${derived(`save:${challengeId}`, 24, TOKEN_ALPHABET)}`;

/** What a saved card answers later, from the outcome its number is scripted to give now. */
function behaviourOf(number: string): SavedBehaviour {
  const scripted = SANDBOX_CARDS[number];
  if (!scripted || scripted.outcome === 'approved' || scripted.outcome === 'error') return { outcome: 'approved' };
  if (scripted.outcome === 'challenge') return { outcome: 'challenge' };
  return { outcome: 'declined', declineCode: scripted.code, message: scripted.message };
}

export interface SandboxAcquirerOptions {
  latencyMs?: number;
  /** The vault's storage (src/db/card-vault.repository.ts); without it the sandbox saves no cards. */
  vault?: SandboxVaultStore;
  now?: () => Date;
}

export function createSandboxAcquirer(opts: SandboxAcquirerOptions = {}): SandboxAcquirer {
  const voided = new Set<string>();
  const wait = () => (opts.latencyMs ? new Promise((r) => setTimeout(r, opts.latencyMs)) : Promise.resolve());
  const now = opts.now ?? (() => new Date());
  const store = opts.vault;

  const savedCards: SavedCardVault | undefined = store && {
    cvcRequired: true,
    async charge(req: SavedCardCharge): Promise<AuthorizeResult> {
      await wait();
      const entry = await store.active(req.token);
      if (!entry) return { outcome: 'declined', code: 'DECLINED', message: 'no such saved card' };
      if (req.initiator === 'customer' && !/^\d{3,4}$/.test(req.cvc ?? '')) {
        return { outcome: 'declined', code: 'DECLINED', message: 'security code missing' };
      }
      const b = entry.behaviour;
      if (b.outcome === 'declined') return { outcome: 'declined', code: b.declineCode, message: b.message };
      if (b.outcome === 'challenge') {
        if (req.initiator === 'merchant') return { outcome: 'declined', code: 'AUTHENTICATION_REQUIRED', message: '3-D Secure required, customer not present' };
        return { outcome: 'challenge', challengeId: `3ds_${derived(`charge:${req.idempotencyKey}`, 16, TOKEN_ALPHABET)}`, message: '3-D Secure authentication required' };
      }
      // The same idempotency key answers the same authorisation (a repaired charge is not a second one).
      return { outcome: 'approved', authCode: derived(`charge:${req.idempotencyKey}`, 6, AUTH_ALPHABET) };
    },
    async remove(token: string): Promise<void> {
      await store.remove(token);
    },
  };

  return {
    name: 'sandbox',
    voided,
    ...(savedCards ? { savedCards } : {}),
    async authorize(req: AuthorizeRequest): Promise<AuthorizeResult> {
      await wait();
      const scripted = SANDBOX_CARDS[req.card.number];
      const save = store && req.saveCard && scripted?.outcome !== 'error';
      if (save) {
        const base = { last4: req.card.number.slice(-4), behaviour: behaviourOf(req.card.number), createdAt: now() };
        if (scripted?.outcome === 'challenge') {
          // Kept pending: completeChallenge makes it a saved card once the customer authenticated.
          const challengeId = `3ds_${nanoid(16)}`;
          await store.put({ ...base, token: challengeToken(challengeId), status: 'pending' });
          return { outcome: 'challenge', challengeId, message: scripted.message };
        }
        const token = `tok_${nanoid(24)}`;
        await store.put({ ...base, token, status: 'active' });
        return { outcome: 'approved', authCode: AUTH_CODE(), savedCard: { token } };
      }
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
      const authCode = derived(`3ds:${req.challengeId}`, 6, AUTH_ALPHABET);
      // A card saved by the payment this challenge held back is kept now (idempotent: asked again, the same token).
      const saved = store ? await store.activate(challengeToken(req.challengeId)) : null;
      return { outcome: 'approved', authCode, ...(saved ? { savedCard: { token: saved.token } } : {}) };
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
