// Which acquirer serves a merchant. New payments go to the acquirer in the merchant's settings;
// a refund, void or 3-D Secure completion goes to the acquirer named on the payment it concerns,
// since a merchant may switch acquirers between a payment and its refund.
import { type Acquirer } from '../../domain/acquirer.ts';
import { type MerchantDoc } from '../../db/merchants.repository.ts';

export interface AcquirerDirectory {
  /** `name` absent: the merchant's current acquirer; given: the one that took an earlier payment. */
  forMerchant(merchant: MerchantDoc, name?: string): Promise<Acquirer>;
}

/** Payments and challenges recorded before acquirers were per merchant were all the sandbox's. */
export const LEGACY_ACQUIRER = 'sandbox';

/** Every merchant on one acquirer (development and tests without a directory). */
export function singleAcquirer(acquirer: Acquirer): AcquirerDirectory {
  return { forMerchant: async () => acquirer };
}

/** What services that talk to acquirers are given: a default acquirer, and optionally a directory. */
export interface AcquirerDeps {
  /** The acquirer used when there is no directory (the sandbox in development and tests). */
  acquirer: Acquirer;
  /** Per-merchant acquirers (src/server.ts builds it); without it every merchant uses `acquirer`. */
  acquirers?: AcquirerDirectory;
}

/** The acquirer for `merchant` (and, for an earlier payment, the one named `name`). */
export function acquirerFor(deps: AcquirerDeps, merchant: MerchantDoc, name?: string): Promise<Acquirer> {
  return deps.acquirers ? deps.acquirers.forMerchant(merchant, name) : Promise.resolve(deps.acquirer);
}
