// Saved cards (issue 12 part 3): what paymail knows of a card an acquirer keeps for a customer,
// and the rules it applies to them. Pure: no storage, no acquirer.
import { nanoid } from 'nanoid';
import { brandName, maskCard } from './card.ts';

/** A saved card's id at paymail (`card_…`): in the removal link and on the payments made with it. */
export const newSavedCardId = (): string => `card_${nanoid()}`;

/** A customer code as paymail hands them out (`cus_` + 21 nanoid characters). */
export const CUSTOMER_CODE = /^cus_[A-Za-z0-9_-]{21}$/;
export const SAVED_CARD_ID = /^card_[A-Za-z0-9_-]{21}$/;

/** Who starts a charge of a saved card: the customer on the checkout (one-click) or the merchant without the customer. */
export type SavedCardInitiator = 'customer' | 'merchant';

/** A payment with a saved card: whose card, which one, started by whom. */
export interface SavedCardUse {
  customerCode: string;
  cardId: string;
  initiator: SavedCardInitiator;
}

/** True once the card's expiry month is over (a card is valid through the last day of that month). */
export function cardExpired(card: { expMonth: number; expYear: number }, at: Date): boolean {
  return Date.UTC(card.expYear, card.expMonth, 1) <= at.getTime();
}

/** "Visa •••• 4242". */
export function savedCardLabel(card: { brand: string; last4: string }): string {
  return maskCard(brandName(card.brand), card.last4);
}
