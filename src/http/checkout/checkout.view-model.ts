// Turns orders and payment outcomes into the plain, already-formatted data the page templates
// show: money with Intl for the page's locale, dates in the merchant's time zone, localised labels.
import { type FieldProblem } from '../../domain/errors.ts';
import { maskCard } from '../../domain/card.ts';
import { formatMoney } from '../../domain/money.ts';
import { type MerchantDoc } from '../../db/merchants.repository.ts';
import { type OrderDoc } from '../../db/orders.repository.ts';
import { type Views } from '../views.ts';
import { countryName, dateTimeFormat } from '../../domain/intl-cache.ts';
import { amountDueMinor } from '../../domain/order-plan.ts';

/** Long date and time with the zone's short name, in `timeZone`. */
const dateTimeOptions = (timeZone: string): Intl.DateTimeFormatOptions => ({
  year: 'numeric',
  month: 'long',
  day: 'numeric',
  hour: '2-digit',
  minute: '2-digit',
  timeZoneName: 'short',
  timeZone,
});

export function formatDate(date: Date, locale: string, timeZone: string): string {
  // Building an Intl.DateTimeFormat costs more than the rest of the page's view model (bench P2): cached.
  // The options are one literal (spreading a shared one into a new object cost ~5 µs a call).
  let f: Intl.DateTimeFormat;
  try {
    f = dateTimeFormat(locale, dateTimeOptions(timeZone));
  } catch {
    f = dateTimeFormat(locale, dateTimeOptions('UTC'));
  }
  return f.format(date);
}

/** "Italy" / "Italia" for "IT"; the code itself when Intl does not know it (src/domain/intl-cache.ts). */
export { countryName };

export function orderSummary(order: OrderDoc, merchant: MerchantDoc, locale: string) {
  return {
    merchantName: merchant.name,
    description: order.description ?? '',
    reference: order.reference,
    // What the link collects now: an order paid in parts asks for its open part (issue 13 part 1).
    amountText: formatMoney(amountDueMinor(order) ?? order.amountMinor, order.currency, locale),
    expiresIso: order.expiresAt.toISOString(),
    expiresText: formatDate(order.expiresAt, locale, merchant.timezone),
  };
}

export interface FormValues {
  expiry?: string;
  holder?: string;
  email?: string;
}

interface FieldDef {
  name: string;
  type: string;
  autocomplete: string;
  inputmode?: string;
  maxlength: number;
  half?: boolean;
  /** Locale keys. */
  hint?: string;
  placeholder?: string;
}

const FIELDS: readonly FieldDef[] = [
  { name: 'number', type: 'text', autocomplete: 'cc-number', inputmode: 'numeric', maxlength: 23, hint: 'form.numberHint' },
  { name: 'expiry', type: 'text', autocomplete: 'cc-exp', inputmode: 'numeric', maxlength: 7, half: true, placeholder: 'form.expiryPlaceholder' },
  { name: 'cvc', type: 'text', autocomplete: 'cc-csc', inputmode: 'numeric', maxlength: 4, half: true, hint: 'form.cvcHint' },
  { name: 'holder', type: 'text', autocomplete: 'cc-name', maxlength: 100 },
];
const FIELDS_WITH_EMAIL: readonly FieldDef[] = [
  ...FIELDS,
  { name: 'email', type: 'email', autocomplete: 'email', inputmode: 'email', maxlength: 254, hint: 'form.emailHint' },
];

/** The card form's fields; number and CVC are never re-filled after a failed attempt. */
export function formFields(
  views: Views,
  locale: string,
  opts: { needEmail: boolean; values: FormValues; problems: FieldProblem[] },
) {
  const errorOf = (name: string) => {
    const p = opts.problems.find((x) => x.field === name);
    return p ? views.t(locale, `errors.${p.code}`) : undefined;
  };
  const defs = opts.needEmail ? FIELDS_WITH_EMAIL : FIELDS;
  // Each field built as one literal: `{ ...def, hint: … }` over these differently shaped
  // definitions took V8's slow path, ~50 µs a page (bench P2).
  return defs.map((d) => {
    const error = errorOf(d.name);
    const hintId = d.hint ? `${d.name}-hint` : undefined;
    const errorId = error ? `${d.name}-error` : undefined;
    return {
      name: d.name,
      type: d.type,
      autocomplete: d.autocomplete,
      inputmode: d.inputmode,
      maxlength: d.maxlength,
      half: d.half,
      placeholder: d.placeholder ? views.t(locale, d.placeholder) : undefined,
      label: views.t(locale, `form.${d.name}`),
      hint: d.hint ? views.t(locale, d.hint) : undefined,
      value: d.name === 'number' || d.name === 'cvc' ? '' : (opts.values[d.name as keyof FormValues] ?? ''),
      error,
      describedBy: errorId && hintId ? `${errorId} ${hintId}` : (errorId ?? hintId),
    };
  });
}

export function receiptView(order: OrderDoc, merchant: MerchantDoc, locale: string) {
  const p = order.payment;
  return {
    merchantName: merchant.name,
    reference: order.reference,
    description: order.description ?? '',
    receiptNumber: p?.receiptNumber ?? '',
    amountText: formatMoney(order.amountMinor, order.currency, locale),
    card: p?.card?.brand && p.card.last4 ? maskCard(p.card.brand, p.card.last4) : '',
    cardCountry: p?.card?.country ? countryName(p.card.country, locale) : '',
    authCode: p?.authCode ?? '',
    paidIso: p?.paidAt?.toISOString() ?? '',
    paidText: p?.paidAt ? formatDate(p.paidAt, locale, merchant.timezone) : '',
    customerEmail: order.customer?.email ?? '',
  };
}

/**
 * Sends one of the pay-link's pages: never cached (they sit behind a capability URL), in the
 * merchant's look when the route set `ctx.state.brand` (src/services/branding.service.ts).
 */
export function sendPage(
  ctx: { status: number; type: string; body: unknown; set(name: string, value: string): void; state: Record<string, unknown> },
  views: Views,
  page: { status: number; name: string; locale: string; titleKey: string; data: Record<string, unknown>; langNav: string },
): void {
  ctx.status = page.status;
  ctx.type = 'html';
  ctx.set('Cache-Control', 'no-store');
  // Object.assign, not a spread: V8 spreads a large object into a literal on a slow path (~10 µs, bench P2).
  ctx.body = views.render(
    page.name,
    Object.assign({}, page.data, {
      brand: ctx.state['brand'],
      locale: page.locale,
      title: views.t(page.locale, page.titleKey, page.data['titleVars'] as Record<string, unknown> | undefined),
      langNav: page.langNav,
    }),
  );
}
