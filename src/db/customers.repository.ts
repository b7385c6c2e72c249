// Customers and their saved cards (issue 12 part 3; src/db/models/customer.model.ts). A customer
// is found by code (primary key, scoped to its merchant) or by merchant and e-mail address (the
// one-click offer on a pay-link). Cards are added once per card id and removed by id.
import { nanoid } from 'nanoid';
import { Customer, type CustomerDoc, type SavedCardDoc } from './models/customer.model.ts';

export type { CustomerDoc, SavedCardDoc } from './models/customer.model.ts';

/** A new customer code: `cus_` and 21 nanoid characters (unguessable, like the order ids). */
export const newCustomerCode = (): string => `cus_${nanoid()}`;

export function createCustomersRepository() {
  /** The customer of `merchantId` with this address (lower case), or null. */
  const byEmail = (merchantId: string, email: string) =>
    Customer.findOne({ merchantId, email: email.trim().toLowerCase() }).lean<CustomerDoc>().exec();

  return {
    byEmail,

    /** The customer `code` (the removal link knows no merchant). */
    byId: (code: string) => Customer.findById(code).lean<CustomerDoc>().exec(),

    /** The customer `code` when it belongs to `merchantId`. */
    byCode: (merchantId: string, code: string) => Customer.findOne({ _id: code, merchantId }).lean<CustomerDoc>().exec(),

    /**
     * The customer code of this merchant's customer with this address, created when there is
     * none. Two first saves at once: the unique index lets one insert; the other reads it.
     */
    async ensure(merchantId: string, email: string, at: Date): Promise<string> {
      const address = email.trim().toLowerCase();
      const found = await byEmail(merchantId, address);
      if (found) return found._id;
      const code = newCustomerCode();
      try {
        await Customer.create({ _id: code, merchantId, email: address, cards: [], createdAt: at });
        return code;
      } catch (e) {
        if ((e as { code?: number }).code !== 11000) throw e;
        const winner = await byEmail(merchantId, address);
        if (!winner) throw e;
        return winner._id;
      }
    },

    /** Adds a saved card once (a repair adding it again finds it there). */
    async addCard(code: string, card: SavedCardDoc): Promise<void> {
      // `$nor` of the equality rather than `$ne` (FerretDB v1, see orders.repository.ts addAttempt).
      await Customer.updateOne({ _id: code, $nor: [{ 'cards.id': card.id }] }, { $push: { cards: card } });
    },

    /** Removes a saved card; the card removed, or null when it was not there (removed before). */
    async removeCard(code: string, cardId: string): Promise<SavedCardDoc | null> {
      // The cards read, written back without this one, only over the same cards (FerretDB v1 has
      // no `$pull` by a sub-document's field); a card added meanwhile makes it read again.
      for (let attempt = 0; attempt < 5; attempt++) {
        const customer = await Customer.findById(code).lean<CustomerDoc>();
        const card = customer?.cards.find((c) => c.id === cardId);
        if (!customer || !card) return null;
        const r = await Customer.updateOne(
          { _id: code, 'cards.id': cardId, cards: { $size: customer.cards.length } },
          { $set: { cards: customer.cards.filter((c) => c.id !== cardId) } },
        );
        if (r.modifiedCount > 0) return card;
      }
      return null;
    },
  };
}

export type CustomersRepository = ReturnType<typeof createCustomersRepository>;
