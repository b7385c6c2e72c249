// Back office: refunding a paid order (in full or in part), an action on the order's detail page.
import { type Router } from '@koa/router';
import { AppError } from '../../domain/errors.ts';
import { parseAmount } from '../../domain/money.ts';
import { RefundForm, parse } from './backoffice.validators.ts';
import { type BackofficeRouterDeps } from './backoffice.kit.ts';
import { type OrderAction } from './orders.routes.ts';

export function registerRefundRoutes(router: Router, deps: BackofficeRouterDeps, orderAction: OrderAction): void {
  const { orderAdmin, refunds } = deps;

  router.post(
    '/orders/:id/refund',
    orderAction('orders.refund', async (ctx, auth, id) => {
      const form = parse(RefundForm, ctx.request.body);
      const { order } = await orderAdmin.detail(auth.merchant, id);
      const amount = parseAmount(form.amount, order.currency);
      if (!amount.ok || amount.money.currency !== order.currency) {
        throw new AppError('REFUND_AMOUNT_INVALID', 'expected an amount in the currency of the order', { httpStatus: 422 });
      }
      // An order paid in parts: the payment (part) chosen in the form (issue 13 part 1).
      const part = /^\d{1,2}$/.test(form.part) ? Number(form.part) : undefined;
      const refund = await refunds.refund(auth.merchant, id, { amountMinor: amount.money.amountMinor, by: auth.user.email, reason: form.reason.trim() || undefined, part });
      ctx.state.log.info({ orderId: id, refund: refund._id, amountMinor: refund.amountMinor }, 'refund done');
      return 'refunded';
    }),
  );
}
