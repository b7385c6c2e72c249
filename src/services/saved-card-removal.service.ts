// Removing a saved card (issue 12 part 3): every receipt of a payment made with a saved card, and
// the receipt of the payment that saved one, carries a signed link (src/domain/card-removal.ts).
// Opening it only shows a confirmation page (link scanners open links); the confirmation's POST
// removes the card from the acquirer's vault first, then from the customer at paymail, so a
// failure in between is finished by pressing the button again (removing an unknown token is no
// error at the acquirer) and no card stays chargeable that paymail no longer shows.
import { type SavedCardVault } from '../domain/acquirer.ts';
import { verifyCardRemoval } from '../domain/card-removal.ts';
import { type LinkKey } from '../domain/pay-link.ts';
import { savedCardLabel } from '../domain/saved-card.ts';
import { type MerchantDoc } from '../db/merchants.repository.ts';
import { type Repositories } from '../db/repositories.ts';

export interface SavedCardRemovalDeps {
  repos: Repositories;
  linkKeys: readonly LinkKey[];
  /** The vault of the acquirer named on a saved card (the checkout's savedCardVault). */
  vaultOf: (merchant: MerchantDoc, acquirer: string) => Promise<SavedCardVault | undefined>;
}

export type RemovalTarget =
  | { kind: 'invalid' }
  /** Already removed (or never there): nothing to confirm. */
  | { kind: 'gone'; merchant: MerchantDoc | null }
  | { kind: 'found'; merchant: MerchantDoc; label: string; customerCode: string; cardId: string };

export function createSavedCardRemoval(deps: SavedCardRemovalDeps) {
  /** The card a removal link names (signature first, before any database work). */
  async function find(customerCode: string, cardId: string, query: { k?: unknown; s?: unknown }): Promise<RemovalTarget> {
    if (!verifyCardRemoval(deps.linkKeys, customerCode, cardId, query.k, query.s)) return { kind: 'invalid' };
    const customer = await deps.repos.customers.byId(customerCode);
    const merchant = customer ? await deps.repos.merchants.findById(customer.merchantId) : null;
    const card = customer?.cards.find((c) => c.id === cardId);
    if (!customer || !merchant || !card) return { kind: 'gone', merchant };
    return { kind: 'found', merchant, label: savedCardLabel(card), customerCode, cardId };
  }

  /** Removes the card from the acquirer's vault, then from paymail; true when it was there. */
  async function remove(target: Extract<RemovalTarget, { kind: 'found' }>): Promise<boolean> {
    const customer = await deps.repos.customers.byId(target.customerCode);
    const card = customer?.cards.find((c) => c.id === target.cardId);
    if (!card) return false;
    await (await deps.vaultOf(target.merchant, card.acquirer))?.remove(card.token);
    return Boolean(await deps.repos.customers.removeCard(target.customerCode, target.cardId));
  }

  return { find, remove };
}
export type SavedCardRemoval = ReturnType<typeof createSavedCardRemoval>;
