// Back office: charging a customer's saved card (issue 12 part 3, merchant-initiated "a
// scadenza"). An order paid with (or saving) a card shows its customer code; an operator can
// charge that customer's saved card for a new order from it (POST /orders/:id/charge-saved-card,
// permission orders.charge). The charge is the merchant-charge service's: one per reference.
import { type Router } from '@koa/router';
import { z } from 'zod';
import { type OrderDoc } from '../../db/orders.repository.ts';
import { isAppError } from '../../domain/errors.ts';
import { isCurrency, parseAmount } from '../../domain/money.ts';
import { type AuthContext } from '../../services/backoffice-auth.service.ts';
import { parse } from './backoffice.validators.ts';
import { can } from './permissions.ts';
import { BACKOFFICE_PREFIX, type BackofficeKit, type BackofficeRouterDeps, type Ctx } from './backoffice.kit.ts';

const field = (max: number) => z.string().max(max).catch('');
const ChargeForm = z.object({ amount: field(40), currency: field(3), reference: field(100), description: field(500), _csrf: field(100) });

/** Renders an order's page with a problem (orders.routes.ts). */
export type RenderOrder = (ctx: Ctx, auth: AuthContext, id: string, status: number, problem?: string) => Promise<void>;

/** What the order page shows of saved cards: the customer code, who started the charge, the charge form. */
export function savedCardPanel(deps: BackofficeRouterDeps, auth: AuthContext, order: OrderDoc, t: BackofficeKit['t']) {
  if (!order.customerCode) return {};
  const initiator = order.payment?.initiator;
  return {
    savedCard: {
      customerCode: order.customerCode,
      initiator: initiator ? t(initiator === 'merchant' ? 'savedCards.initiatorMerchant' : 'savedCards.initiatorCustomer') : undefined,
      canCharge: Boolean(deps.savedCardCharges) && can(auth.user.role, 'orders.charge'),
      action: `${BACKOFFICE_PREFIX}/orders/${encodeURIComponent(order._id)}/charge-saved-card`,
      currency: order.currency,
    },
  };
}

export function registerSavedCardRoutes(router: Router, deps: BackofficeRouterDeps, kit: BackofficeKit, renderOrder: RenderOrder): void {
  const { t, guarded, redirect, orderId } = kit;

  router.post(
    '/orders/:id/charge-saved-card',
    guarded('orders.charge', async (ctx, auth) => {
      const id = orderId(ctx);
      const charges = deps.savedCardCharges;
      const source = await deps.orderAdmin.order(auth.merchant, id);
      const form = parse(ChargeForm, ctx.request.body);
      const currency = form.currency.trim().toUpperCase() || source.currency;
      const amount = parseAmount(form.amount, source.currency, isCurrency(currency) ? currency : undefined);
      if (!charges || !source.customerCode) return renderOrder(ctx, auth, id, 409, t('problem.CUSTOMER_NOT_FOUND'));
      if (!amount.ok || !isCurrency(currency) || !form.reference.trim()) return renderOrder(ctx, auth, id, 422, t('problem.CHARGE_INVALID'));
      try {
        const r = await charges.chargeSavedCard(auth.merchant, source.customerCode, {
          amountMinor: amount.money.amountMinor,
          currency: amount.money.currency,
          reference: form.reference.trim(),
          description: form.description.trim() || undefined,
        });
        // Logged: the outcome only, never the card.
        ctx.state.log.info({ orderId: r.order._id, from: id, userId: auth.user.id, outcome: r.outcome }, 'saved card charged by the merchant');
        if (r.outcome === 'declined') return renderOrder(ctx, auth, id, 402, t('problem.PAYMENT_DECLINED', { reason: t(`decline.${r.code}`) }));
        redirect(ctx, `${BACKOFFICE_PREFIX}/orders/${encodeURIComponent(r.order._id)}?done=charged`);
      } catch (e) {
        if (!isAppError(e) || e.httpStatus >= 500) throw e;
        ctx.state.log.info({ orderId: id, code: e.code }, 'saved card charge refused');
        return renderOrder(ctx, auth, id, e.httpStatus, t(`problem.${e.code}`));
      }
    }),
  );
}
