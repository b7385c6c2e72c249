// An order as the server API shows it (the Order schema of resources.ts): money in minor units,
// instants in UTC, the pay-link while payable, the masked card and the refunds.
import { type OrderDoc } from '../../db/orders.repository.ts';
import { type RefundDoc } from '../../db/refunds.repository.ts';
import { mapLimit } from '../../domain/map-limit.ts';
import { isCollecting, openPart, paidMinor, partsPaid } from '../../domain/order-plan.ts';
import { planJson } from '../../domain/plan-view.ts';
import { type ApiRouterDeps } from './api.kit.ts';
import { type OrderResource } from './resources.ts';

const iso = (d: Date | string | null | undefined): string | null => (d ? new Date(d).toISOString() : null);

export function orderResource(o: OrderDoc & { createdAt?: Date }, refunds: readonly RefundDoc[], link: string | null): OrderResource {
  const p = o.payment;
  const card = p?.card;
  return {
    id: o._id,
    reference: o.reference,
    status: o.status,
    amount: o.amountMinor,
    currency: o.currency,
    description: o.description ?? null,
    customer: { email: o.customer?.email ?? null, name: o.customer?.name ?? null },
    language: o.locale,
    url: link,
    expiresAt: iso(o.expiresAt)!,
    createdAt: iso(o.createdAt) ?? iso(new Date())!,
    cancelledAt: iso(o.cancelledAt),
    expiredAt: iso(o.expiredAt),
    payment:
      o.status === 'paid' && p?.paidAt
        ? {
            card: card ? { brand: card.brand ?? null, last4: card.last4 ?? null } : null,
            authCode: p.authCode ?? null,
            paidAt: iso(p.paidAt)!,
            receiptNumber: p.receiptNumber ?? null,
          }
        : null,
    refunds: refunds.map((r) => ({ id: r._id, amount: r.amountMinor, currency: r.currency, createdAt: iso(r.at)!, part: r.part ?? null })),
    refundedAmount: refunds.reduce((s, r) => s + r.amountMinor, 0),
    customerCode: o.customerCode ?? null,
    paidMinor: paidMinor(o),
    plan: planJson(o),
  };
}

/** The resources of orders of one merchant: refunds read only for orders with a payment (only they have any). */
export async function orderResources(deps: Pick<ApiRouterDeps, 'refunds' | 'orders'>, merchantId: string, orders: readonly OrderDoc[]): Promise<OrderResource[]> {
  return mapLimit(orders, 4, async (o) => {
    // An order paid in parts may have refunds while partly paid or once cancelled (issue 13 part 1).
    const refunds = o.status === 'paid' || partsPaid(o).length > 0 ? (await deps.refunds.forOrder({ _id: merchantId }, o._id)).refunds : [];
    return orderResource(o, refunds, isCollecting(o) ? deps.orders.linkFor(o) : null);
  });
}
