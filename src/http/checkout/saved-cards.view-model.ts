// What the checkout page shows of saved cards (issue 12 part 3): the unticked "Save my card for
// future payments to <merchant>" checkbox, and the one-click forms ("Pay with Visa •••• 4242",
// with the security code when the acquirer asks for it) beside the full card form.
import { type FieldProblem } from '../../domain/errors.ts';
import { type SavedCardOffer } from '../../services/checkout.service.ts';
import { type Views } from '../views.ts';

/** What the route read before rendering (service.savedCardsFor), kept on ctx.state.savedCards. */
export interface PreparedSavedCards {
  canSave: boolean;
  offers: SavedCardOffer[];
}

/** The problems of a one-click attempt (the card no longer usable, the security code missing). */
export const ONE_CLICK_FIELDS = new Set(['savedCard', 'savedCvc']);

export function savedCardsView(
  views: Views,
  locale: string,
  merchantName: string,
  prepared: PreparedSavedCards | undefined,
  opts: { action: string; problems: FieldProblem[] },
) {
  if (!prepared) return {};
  const problem = opts.problems.find((p) => ONE_CLICK_FIELDS.has(p.field));
  return {
    saveCard: prepared.canSave
      ? { label: views.t(locale, 'savedCards.save', { merchant: merchantName }), hint: views.t(locale, 'savedCards.saveHint', { merchant: merchantName }) }
      : undefined,
    oneClick: prepared.offers.length
      ? prepared.offers.map((o) => ({
          cardId: o.cardId,
          cvcRequired: o.cvcRequired,
          cvcLabel: views.t(locale, 'savedCards.oneClickCvc', { card: o.label }),
          payLabel: views.t(locale, 'savedCards.oneClickPay', { card: o.label }),
        }))
      : undefined,
    oneClickAction: opts.action,
    oneClickCvcHint: views.t(locale, 'savedCards.oneClickCvcHint'),
    oneClickProblem: problem ? views.t(locale, `errors.${problem.code}`) : undefined,
  };
}
