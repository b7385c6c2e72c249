// A merchant's acquirer and its credentials: chosen with `paymail merchant set-acquirer` or in the
// back-office settings. Stripe's secret key and webhook signing secret are encrypted under
// SECRETS_KEY before they reach the database and decrypted only in memory, when an adapter is
// built or a webhook verified; what is shown of them is a hint (`sk_test_…4242`).
import { AppError } from '../../domain/errors.ts';
import { ACQUIRER_NAMES, type AcquirerName } from '../../domain/merchant.ts';
import { openSecret, sealSecret, secretHint } from '../../domain/secret-box.ts';
import { type MerchantDoc } from '../../db/merchants.repository.ts';
import { type Repositories } from '../../db/repositories.ts';

/** What the operator or an admin asks for; undefined fields keep what is stored. */
export interface AcquirerChoice {
  acquirer: string;
  /** sk_… (or a restricted rk_… key). */
  secretKey?: string;
  /** whsec_…: verifies Stripe's webhooks to /webhooks/stripe/<merchant id>; '' removes it. */
  webhookSecret?: string;
  /** Another Stripe API base (stripe-mock, an egress proxy); '' goes back to api.stripe.com. */
  apiBase?: string;
}

/** What may be shown of a merchant's acquirer settings (never a secret). */
export interface AcquirerView {
  acquirer: AcquirerName;
  stripe?: { secretKeyHint: string; webhookSecretHint?: string; apiBase?: string };
}

/** Decrypted Stripe credentials, for the adapter and the webhook route only (never stored or logged). */
export interface StripeCredentials {
  secretKey: string;
  webhookSecret?: string;
  apiBase?: string;
}

const SECRET_KEY = /^(sk|rk)_(test|live)_[A-Za-z0-9]{8,247}$/;
const WEBHOOK_SECRET = /^whsec_[A-Za-z0-9+/=_-]{8,200}$/;

export function acquirerView(m: Pick<MerchantDoc, 'acquirer' | 'stripe'>): AcquirerView {
  const s = m.stripe;
  return {
    acquirer: (m.acquirer as AcquirerName | null | undefined) ?? 'sandbox',
    ...(s?.secretKeyHint
      ? { stripe: { secretKeyHint: `${s.secretKeyRestricted ? 'rk' : 'sk'}_${s.secretKeyHint}`, ...(s.webhookSecretHint ? { webhookSecretHint: s.webhookSecretHint } : {}), ...(s.apiBase ? { apiBase: s.apiBase } : {}) } }
      : {}),
  };
}

function checkApiBase(v: string): string {
  let u: URL;
  try {
    u = new URL(v);
  } catch {
    throw new AppError('ACQUIRER_API_BASE_INVALID', 'the API base must be an http:// or https:// URL');
  }
  if ((u.protocol !== 'http:' && u.protocol !== 'https:') || u.username || u.password || (u.pathname !== '/' && u.pathname !== '') || u.search) {
    throw new AppError('ACQUIRER_API_BASE_INVALID', 'the API base must be an http:// or https:// URL of a host (and port), without path');
  }
  return u.origin;
}

export function createAcquirerSettings(deps: { repos: Pick<Repositories, 'merchants'>; secretsKey: Buffer }) {
  const { merchants } = deps.repos;

  /** Sets the merchant's acquirer (and credentials); every problem is an AppError with a stable code. */
  async function set(merchantId: string, choice: AcquirerChoice): Promise<AcquirerView> {
    if (!(ACQUIRER_NAMES as readonly string[]).includes(choice.acquirer)) {
      throw new AppError('ACQUIRER_INVALID', `unknown acquirer "${choice.acquirer}" (expected ${ACQUIRER_NAMES.join(' or ')})`);
    }
    const merchant = await merchants.findById(merchantId);
    if (!merchant) throw new AppError('MERCHANT_NOT_FOUND', `no merchant ${merchantId}`);
    const secretKey = choice.secretKey?.trim();
    const webhookSecret = choice.webhookSecret?.trim();
    if (secretKey && !SECRET_KEY.test(secretKey)) throw new AppError('ACQUIRER_SECRET_KEY_INVALID', 'expected a Stripe secret key (sk_test_… or sk_live_…)');
    if (webhookSecret && !WEBHOOK_SECRET.test(webhookSecret)) throw new AppError('ACQUIRER_WEBHOOK_SECRET_INVALID', 'expected a Stripe webhook signing secret (whsec_…)');
    const apiBase = choice.apiBase === undefined ? undefined : choice.apiBase.trim() === '' ? null : checkApiBase(choice.apiBase.trim());
    if (choice.acquirer === 'stripe' && !secretKey && !merchant.stripe?.secretKeyEnc) {
      throw new AppError('ACQUIRER_SECRET_KEY_REQUIRED', 'Stripe needs the secret key (--secret-key sk_…)');
    }
    const ctx = (field: string) => ({ merchantId, field });
    const updated = await merchants.setAcquirer(merchantId, choice.acquirer as AcquirerName, {
      // The hint is stored without its sk_/rk_ prefix: no `sk_` string is kept in clear at all.
      ...(secretKey
        ? { secretKeyEnc: sealSecret(deps.secretsKey, secretKey, ctx('stripe.secretKey')), secretKeyHint: secretHint(secretKey).slice(3), secretKeyRestricted: secretKey.startsWith('rk_') }
        : {}),
      ...(webhookSecret
        ? { webhookSecretEnc: sealSecret(deps.secretsKey, webhookSecret, ctx('stripe.webhookSecret')), webhookSecretHint: secretHint(webhookSecret) }
        : webhookSecret === '' ? { webhookSecretEnc: null, webhookSecretHint: null } : {}),
      ...(apiBase !== undefined ? { apiBase } : {}),
    });
    if (!updated) throw new AppError('MERCHANT_NOT_FOUND', `no merchant ${merchantId}`);
    return acquirerView(updated);
  }

  /** The merchant's Stripe credentials in clear, or undefined when none are stored. */
  function stripeCredentials(m: Pick<MerchantDoc, '_id' | 'stripe'>): StripeCredentials | undefined {
    const s = m.stripe;
    if (!s?.secretKeyEnc) return undefined;
    const ctx = (field: string) => ({ merchantId: m._id, field });
    return {
      secretKey: openSecret(deps.secretsKey, s.secretKeyEnc, ctx('stripe.secretKey')),
      ...(s.webhookSecretEnc ? { webhookSecret: openSecret(deps.secretsKey, s.webhookSecretEnc, ctx('stripe.webhookSecret')) } : {}),
      ...(s.apiBase ? { apiBase: s.apiBase } : {}),
    };
  }

  return { set, stripeCredentials, view: acquirerView };
}
export type AcquirerSettings = ReturnType<typeof createAcquirerSettings>;
