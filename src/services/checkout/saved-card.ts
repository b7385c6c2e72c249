// Paying with a saved card (issue 12 part 3): the one-click offer on a pay-link whose customer
// (same merchant, same e-mail address) has a saved card, the one-click payment itself (the
// customer present: initiator `customer`, with the security code when the acquirer asks for it),
// and the charge a merchant starts without the customer (initiator `merchant`). The acquirer's
// answer is settled by the same settle() as a typed card: the close claim, receipts, webhooks and
// the crash repair are the card payment's.
import { amountDueMinor, payableAt } from '../../domain/order-plan.ts';
import { nanoid } from 'nanoid';
import { type AuthorizeResult } from '../../domain/acquirer.ts';
import { cardExpired, savedCardLabel, type SavedCardInitiator } from '../../domain/saved-card.ts';
import { type SavedCardDoc } from '../../db/customers.repository.ts';
import { type MerchantDoc } from '../../db/merchants.repository.ts';
import { type OrderDoc } from '../../db/orders.repository.ts';
import { type StoredCard } from '../order-transitions.ts';
import { acquirerFor } from '../acquirer/directory.ts';
import { type CheckoutCore } from './core.ts';
import { type CheckoutPayments } from './payment.ts';
import { type CheckoutServiceDeps, type OpenOrder, type PayResult } from './types.ts';

/** A saved card the checkout offers for one-click payment. */
export interface SavedCardOffer {
  cardId: string;
  /** "Visa •••• 4242" */
  label: string;
  /** The acquirer wants the security code again. */
  cvcRequired: boolean;
}

/** What one-click posts: the card chosen and, when asked for, its security code (never stored). */
export interface OneClickForm {
  cardId: string;
  cvc?: string | undefined;
}

/** A charge of a saved card (one-click or merchant-initiated). */
export interface SavedCardChargeRequest {
  customerCode: string;
  card: SavedCardDoc;
  initiator: SavedCardInitiator;
  /** The acquirer's idempotency key: the same key is the same charge (a repeat answers the first result). */
  idempotencyKey: string;
  /** Makes a declined attempt's records idempotent (the merchant charge's repair settles again). */
  attemptKey?: string;
  clientIp: string;
  cvc?: string | undefined;
}

export function createCheckoutSavedCards(deps: CheckoutServiceDeps, core: CheckoutCore, payments: CheckoutPayments) {
  const { now, serialised, fault } = core;
  const { settle, rateLimit } = payments;
  const { orders, customers } = deps.repos;

  /** The customer of an order with its saved cards still valid; none without an address or the setting. */
  async function usableCards(order: OrderDoc, merchant: MerchantDoc) {
    const email = order.customer?.email;
    if (!merchant.savedCardsEnabled || !email) return null;
    const customer = await customers.byEmail(merchant._id, email);
    if (!customer) return null;
    const at = now();
    return { customer, cards: customer.cards.filter((c) => !cardExpired(c, at)) };
  }

  /**
   * What the checkout page offers: "Save my card" (the merchant enabled saved cards and its
   * acquirer has a vault) and one-click payment with the customer's saved cards not expired,
   * newest first.
   */
  async function savedCardsFor(target: OpenOrder): Promise<{ canSave: boolean; offers: SavedCardOffer[] }> {
    const canSave = Boolean(target.merchant.savedCardsEnabled && (await acquirerFor(deps, target.merchant)).savedCards);
    return { canSave, offers: await offers(target) };
  }

  async function offers(target: OpenOrder): Promise<SavedCardOffer[]> {
    const usable = await usableCards(target.order, target.merchant);
    if (!usable) return [];
    const out: SavedCardOffer[] = [];
    for (const card of [...usable.cards].reverse()) {
      const vault = (await acquirerFor(deps, target.merchant, card.acquirer)).savedCards;
      if (vault) out.push({ cardId: card.id, label: savedCardLabel(card), cvcRequired: vault.cvcRequired });
    }
    return out;
  }

  /**
   * Asks the acquirer holding the card to charge it, then settles the answer like any payment.
   * The caller holds the order's turn (serialised) and has checked that the order is payable.
   */
  async function charge(order: OrderDoc, merchant: MerchantDoc, req: SavedCardChargeRequest): Promise<PayResult> {
    const acquirer = await acquirerFor(deps, merchant, req.card.acquirer);
    const vault = acquirer.savedCards;
    let result: AuthorizeResult = vault
      ? await vault.charge({
          orderId: order._id,
          amountMinor: amountDueMinor(order)!,
          currency: order.currency,
          token: req.card.token,
          ...(req.cvc ? { cvc: req.cvc } : {}),
          initiator: req.initiator,
          idempotencyKey: req.idempotencyKey,
        })
      : { outcome: 'error', code: 'ACQUIRER_UNAVAILABLE', message: `acquirer ${acquirer.name} keeps no saved cards` };
    // Nobody is there to authenticate a merchant-initiated charge.
    if (result.outcome === 'challenge' && req.initiator === 'merchant') {
      result = { outcome: 'declined', code: 'AUTHENTICATION_REQUIRED', message: result.message };
    }
    if (result.outcome === 'approved') await fault('pay:authorized');
    const { brand, last4, expMonth, expYear } = req.card;
    return settle(order, merchant, result, {
      kept: { brand, last4, expMonth, expYear } as StoredCard,
      // The holder's name is not kept with a saved card: the order's customer name, if any.
      holder: order.customer?.name ?? '',
      email: undefined,
      clientIp: req.clientIp,
      acquirer: acquirer.name,
      paidWith: { customerCode: req.customerCode, cardId: req.card.id, initiator: req.initiator },
      ...(req.attemptKey ? { attemptKey: req.attemptKey } : {}),
    });
  }

  /** One-click: the customer pays the order with one of their saved cards. */
  async function payWithSavedCard(target: OpenOrder, form: OneClickForm, clientIp: string): Promise<PayResult> {
    return serialised(target.order._id, async () => {
      const order = await orders.byId(target.order._id);
      if (!order || !payableAt(order, now())) return { kind: 'closed', order };
      if (await deps.repos.merchants.isSuspended(order.merchantId)) return { kind: 'suspended' };
      const usable = await usableCards(order, target.merchant);
      const card = usable?.cards.find((c) => c.id === form.cardId);
      if (!usable || !card) {
        return { kind: 'invalid', problems: [{ field: 'savedCard', code: 'SAVED_CARD_UNAVAILABLE', message: 'This saved card can no longer be used.' }] };
      }
      const vault = (await acquirerFor(deps, target.merchant, card.acquirer)).savedCards;
      const cvc = (form.cvc ?? '').trim();
      if (vault?.cvcRequired && !/^\d{3,4}$/.test(cvc)) {
        return { kind: 'invalid', problems: [{ field: 'savedCvc', code: 'CVC_INVALID', message: 'Enter the security code of the card.' }] };
      }
      const limited = await rateLimit(order._id, clientIp);
      if (limited) return limited;
      return charge(order, target.merchant, {
        customerCode: usable.customer._id,
        card,
        initiator: 'customer',
        idempotencyKey: `oneclick:${order._id}:${nanoid()}`,
        clientIp,
        cvc,
      });
    });
  }

  /**
   * A merchant-initiated charge of `order` (created for it) with a saved card; the same request
   * (`idempotencyKey`, `attemptKey`) asked again — a repeat or the repair — is the same charge.
   */
  async function chargeSaved(order: OrderDoc, merchant: MerchantDoc, req: SavedCardChargeRequest): Promise<PayResult> {
    return serialised(order._id, async () => {
      const current = await orders.byId(order._id);
      if (!current || !payableAt(current, now())) return { kind: 'closed', order: current };
      if (await deps.repos.merchants.isSuspended(current.merchantId)) return { kind: 'suspended' };
      return charge(current, merchant, req);
    });
  }

  /** The vault of the acquirer named on a saved card (removal goes there). */
  const savedCardVault = async (merchant: MerchantDoc, acquirer: string) => (await acquirerFor(deps, merchant, acquirer)).savedCards;

  return { savedCardsFor, payWithSavedCard, chargeSaved, savedCardVault };
}
export type CheckoutSavedCards = ReturnType<typeof createCheckoutSavedCards>;
