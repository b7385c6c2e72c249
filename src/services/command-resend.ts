// `RESEND <ref> new@address` (issue 13 part 8): the merchant corrects the customer's address of a
// pending order, typically after a bounce notice, and the pay-link goes there (the merchant in
// copy). Keyed by the command's inbound message like every command: the claim
// `command:<inbound id>:resend-to` fixes the change from the address it was decided from, so
// processing the same mail again neither sends twice nor undoes a later correction.
import { payableAt } from '../domain/order-plan.ts';
import { z } from 'zod';
import { type MerchantDoc } from '../db/merchants.repository.ts';
import { type OrderDoc } from '../db/orders.repository.ts';
import { type Repositories } from '../db/repositories.ts';
import { type OrderService } from './order.service.ts';

const EmailSchema = z.email();

/** `new@address`, `<new@address>` or `mailto:new@address` → the lower-case address, or undefined. */
export function commandAddress(argument: string): string | undefined {
  const bare = argument.trim().replace(/^<(.*)>$/, '$1').replace(/^mailto:/i, '').trim();
  return EmailSchema.safeParse(bare).success ? bare.toLowerCase() : undefined;
}

export type ResendToResult =
  | { code: 'COMMAND_RESENT_TO'; resentTo: string; previous: string }
  | { code: 'COMMAND_EMAIL_INVALID'; message: string }
  | { code: 'COMMAND_ALREADY_PAID' | 'COMMAND_ALREADY_CANCELLED' | 'COMMAND_ORDER_EXPIRED' };

interface Decided {
  from: string | null;
  to: string;
}

export async function resendTo(
  deps: { repos: Repositories; orders: OrderService },
  order: OrderDoc,
  merchant: MerchantDoc,
  argument: string,
  ctx: { inboundId: string; messageId?: string | undefined },
  shownStatus: string,
  at: Date,
): Promise<ResendToResult> {
  const { claims, orders } = deps.repos;
  const email = commandAddress(argument);
  if (!email) return { code: 'COMMAND_EMAIL_INVALID', message: 'expected an e-mail address such as mario.rossi@example.com' };
  if (shownStatus !== 'pending') {
    return { code: shownStatus === 'paid' ? 'COMMAND_ALREADY_PAID' : shownStatus === 'cancelled' ? 'COMMAND_ALREADY_CANCELLED' : 'COMMAND_ORDER_EXPIRED' };
  }
  const key = `command:${ctx.inboundId}:resend-to`;
  let decided: Decided = { from: order.customer?.email ?? null, to: email };
  if (!(await claims.once(key, { kind: 'command-resend-to', subject: order._id, payload: { ...decided } }, at))) {
    decided = ((await claims.get(key))?.payload as Decided | undefined) ?? decided;
  }
  // Over the address it was decided from; a replay finds it applied (or changed since: left alone).
  const changed = decided.from === decided.to ? order : await orders.changeCustomerEmail(order._id, { email: decided.from }, decided.to);
  const current = changed ?? (await orders.byId(order._id)) ?? order;
  if (current.customer?.email === decided.to && payableAt(current, at)) {
    await deps.orders.queuePayLinkMail(current, merchant, { dedupeKey: `paylink:${order._id}:resend:${ctx.inboundId}` });
  }
  await claims.markApplied(key);
  return { code: 'COMMAND_RESENT_TO', resentTo: decided.to, previous: decided.from ?? '' };
}
