// The AcquirerDirectory of a running paymail (src/server.ts): the sandbox for merchants on
// 'sandbox', a Stripe adapter per merchant on 'stripe', built with the merchant's own secret key
// (decrypted in memory here, never kept elsewhere) and cached per merchant and stored key, so a
// new key (or API base) takes effect at once and the old client is dropped.
import { type Acquirer } from '../../domain/acquirer.ts';
import { AppError } from '../../domain/errors.ts';
import { type MerchantDoc } from '../../db/merchants.repository.ts';
import { type AcquirerSettings, type StripeCredentials } from './acquirer-settings.ts';
import { type AcquirerDirectory } from './directory.ts';
import { createStripeAcquirer, type StripeAcquirerOptions, type StripeExchange } from './stripe-acquirer.ts';

export interface MerchantAcquirersDeps {
  sandbox: Acquirer;
  settings: Pick<AcquirerSettings, 'stripeCredentials'>;
  /** Passed to every Stripe adapter (timeouts, retries); tests shorten them. */
  stripe?: Pick<StripeAcquirerOptions, 'timeoutMs' | 'maxNetworkRetries'>;
  /** Each answer from Stripe, with the merchant it was for (logging). */
  onStripeResponse?: (merchantId: string, e: StripeExchange) => void;
  /** A merchant on Stripe whose stored key cannot be used (none, or SECRETS_KEY changed): for the log. */
  onUnusable?: (merchantId: string, reason: string) => void;
}

/**
 * Stands in for the Stripe adapter of a merchant whose key cannot be used: the buyer is told the
 * acquirer is unavailable (and may retry later) instead of getting an error page; voids and refunds
 * throw, so they stay pending and the repair asks again once the key is fixed.
 */
function unusableStripe(reason: string): Acquirer {
  const unavailable = async () => ({ outcome: 'error' as const, code: 'ACQUIRER_UNAVAILABLE' as const, message: reason });
  const refuse = async (): Promise<never> => {
    throw new AppError('ACQUIRER_NOT_CONFIGURED', reason, { httpStatus: 409 });
  };
  return { name: 'stripe', authorize: unavailable, completeChallenge: unavailable, void: refuse, refund: refuse };
}

export function createMerchantAcquirers(deps: MerchantAcquirersDeps): AcquirerDirectory {
  /** merchant id → the adapter and the stored credentials it was built from. */
  const stripeByMerchant = new Map<string, { fingerprint: string; acquirer: Acquirer }>();

  function unusable(merchant: MerchantDoc, reason: string): Acquirer {
    deps.onUnusable?.(merchant._id, reason);
    return unusableStripe(reason);
  }

  function stripeFor(merchant: MerchantDoc): Acquirer {
    const s = merchant.stripe;
    if (!s?.secretKeyEnc) return unusable(merchant, 'no Stripe secret key stored');
    // The ciphertext changes with every new key: no need to decrypt to notice a change.
    const fingerprint = `${s.secretKeyEnc}|${s.apiBase ?? ''}`;
    const cached = stripeByMerchant.get(merchant._id);
    if (cached?.fingerprint === fingerprint) return cached.acquirer;
    let creds: StripeCredentials;
    try {
      creds = deps.settings.stripeCredentials(merchant)!;
    } catch (e) {
      return unusable(merchant, (e as Error).message);
    }
    const report = deps.onStripeResponse;
    const acquirer = createStripeAcquirer({
      secretKey: creds.secretKey,
      ...(creds.apiBase ? { apiBase: creds.apiBase } : {}),
      ...deps.stripe,
      ...(report ? { onResponse: (e: StripeExchange) => report(merchant._id, e) } : {}),
    });
    stripeByMerchant.set(merchant._id, { fingerprint, acquirer });
    return acquirer;
  }

  return {
    async forMerchant(merchant: MerchantDoc, name?: string): Promise<Acquirer> {
      const wanted = name ?? merchant.acquirer ?? 'sandbox';
      if (wanted === 'sandbox') return deps.sandbox;
      if (wanted === 'stripe') return stripeFor(merchant);
      throw new AppError('ACQUIRER_NOT_CONFIGURED', `unknown acquirer "${wanted}"`, { httpStatus: 409 });
    },
  };
}
