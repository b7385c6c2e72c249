// The parts table of an order paid in parts on its back-office page (issue 13 part 1): each part
// with its kind (Deposit / Balance / Instalment n of N), amount, due date and state (paid with its
// receipt and PDF, open until, due on, waiting for you), what was paid and what remains, and the
// button that asks for the next part (POST /backoffice/orders/:id/balance).
import { formatMoney } from '../../domain/money.ts';
import { hasPlan, nextUnpaid, paidMinor } from '../../domain/order-plan.ts';
import { partStates } from '../../domain/plan-view.ts';
import { dateTimeFormat } from '../../domain/intl-cache.ts';
import { type OrderDoc } from '../../db/orders.repository.ts';
import { shortDate } from './backoffice.view-model.ts';
import { BACKOFFICE_PREFIX } from './backoffice.kit.ts';

type T = (key: string, vars?: Record<string, unknown>) => string;

/** A due date (YYYY-MM-DD, the merchant's day) as the locale writes a day. */
function dayText(day: string, locale: string): string {
  return dateTimeFormat(locale, { year: 'numeric', month: 'short', day: 'numeric', timeZone: 'UTC' }).format(new Date(`${day}T00:00:00Z`));
}

/**
 * The panel's data, or undefined for an order without plan. `canAsk`: the user may ask for the
 * next part (the permission of the extend/renew buttons) and the service is there.
 */
export function planPanel(order: OrderDoc, opts: { locale: string; timeZone: string; t: T; now: Date; canAsk: boolean }) {
  const parts = partStates(order);
  if (!parts || !hasPlan(order)) return undefined;
  const { locale, t } = opts;
  const money = (minor: number) => formatMoney(minor, order.currency, locale);
  const of = parts.length;
  const pdf = (seq: number) => `${BACKOFFICE_PREFIX}/orders/${encodeURIComponent(order._id)}/receipt.pdf?part=${seq}`;
  const rows = parts.map((p) => ({
    seq: p.seq,
    kind: p.kind === 'instalment' ? t('plan.kind.instalment', { n: p.seq, of }) : t(`plan.kind.${p.kind}`),
    amount: money(p.amountMinor),
    due: p.dueDate ? dayText(p.dueDate, locale) : '',
    status: p.status,
    state:
      p.status === 'paid'
        ? t('plan.state.paid', { date: shortDate(p.paidAt, locale, opts.timeZone) })
        : p.status === 'open'
          ? t('plan.state.open', { date: shortDate(order.expiresAt, locale, opts.timeZone) })
          : p.status === 'due'
            ? t('plan.state.due', { date: dayText(p.dueDate!, locale) })
            : t('plan.state.waiting'),
    receiptNumber: p.receiptNumber ?? '',
    receiptPdf: p.status === 'paid' && p.receiptNumber ? pdf(p.seq) : '',
  }));
  const paid = paidMinor(order);
  // The button: a partly paid order whose next part is not open with a valid link.
  const open = parts.find((p) => p.status === 'open');
  const next = nextUnpaid(order);
  const askable = order.status === 'partially_paid' && !!next && !(open && order.expiresAt > opts.now);
  return {
    rows,
    paid: money(paid),
    remaining: money(Math.max(0, order.amountMinor - paid)),
    ask:
      askable && opts.canAsk
        ? { label: next.kind === 'balance' ? t('plan.askBalance') : t('plan.askNext', { n: next.seq, of }), hint: t('plan.askHint') }
        : undefined,
  };
}
