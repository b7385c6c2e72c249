// Money is an integer amount of minor units plus an ISO 4217 currency; never floats.
import { type FieldProblem } from './errors.ts';
import { numberFormat } from './intl-cache.ts';

/** ISO 4217 minor units for currencies that differ from 2, plus the common ones we accept. */
const MINOR_UNITS: Record<string, number> = {
  BIF: 0, CLP: 0, DJF: 0, GNF: 0, ISK: 0, JPY: 0, KMF: 0, KRW: 0, PYG: 0, RWF: 0, UGX: 0,
  UYI: 0, VND: 0, VUV: 0, XAF: 0, XOF: 0, XPF: 0,
  BHD: 3, IQD: 3, JOD: 3, KWD: 3, LYD: 3, OMR: 3, TND: 3,
  CLF: 4, UYW: 4,
};

const SUPPORTED = new Set(
  typeof Intl.supportedValuesOf === 'function' ? Intl.supportedValuesOf('currency') : Object.keys(MINOR_UNITS),
);

export function isCurrency(code: string): boolean {
  return /^[A-Z]{3}$/.test(code) && (SUPPORTED.has(code) || code in MINOR_UNITS);
}

export function minorUnits(currency: string): number {
  return MINOR_UNITS[currency] ?? 2;
}

/** Largest amount accepted in one order, in major units (a sanity limit, not a business rule). */
export const MAX_MAJOR_AMOUNT = 10_000_000;

export interface Money {
  amountMinor: number;
  currency: string;
}

const SYMBOLS: Array<[string, string]> = [
  ['US$', 'USD'], ['CHF', 'CHF'], ['€', 'EUR'], ['£', 'GBP'], ['¥', 'JPY'], ['$', 'USD'], ['₹', 'INR'],
  ['zł', 'PLN'], ['kr', 'SEK'],
];

export type AmountResult = { ok: true; money: Money } | { ok: false; problem: FieldProblem };

function problem(code: string, value: string, message: string): AmountResult {
  return { ok: false, problem: { field: 'amount', code, value, message } };
}

/**
 * Parses amounts as merchants write them: `129.90`, `129,90 €`, `EUR 1.234,56`, `€1,234.56`,
 * `1 234,56 EUR`. The currency comes from a symbol or ISO code in the text, else `explicitCurrency`
 * (a separate currency line), else `defaultCurrency` (the merchant's). A lone separator followed by
 * exactly three digits (`1.234`) is ambiguous and refused unless the currency has no minor units.
 */
export function parseAmount(input: string, defaultCurrency: string, explicitCurrency?: string): AmountResult {
  const raw = input.trim();
  if (!/\d/.test(raw)) return problem('AMOUNT_INVALID', raw, 'expected a number such as 129.90 or 129,90 €');
  let rest = raw.replace(/\u00a0|\u202f/g, ' ');
  let found: string | undefined;
  const code = rest.match(/\b([A-Za-z]{3})\b/);
  if (code) {
    const c = code[1]!.toUpperCase();
    if (!isCurrency(c)) return problem('AMOUNT_CURRENCY_UNKNOWN', raw, `"${code[1]}" is not an ISO 4217 currency code`);
    found = c;
    rest = rest.replace(code[0], ' ');
  } else {
    for (const [sym, cur] of SYMBOLS) {
      if (rest.includes(sym)) {
        found = cur;
        rest = rest.replace(sym, ' ');
        break;
      }
    }
  }
  if (found && explicitCurrency && found !== explicitCurrency) {
    return problem('AMOUNT_CURRENCY_CONFLICT', raw, `the amount says ${found} but the currency line says ${explicitCurrency}`);
  }
  const currency = found ?? explicitCurrency ?? defaultCurrency;
  rest = rest.trim();
  if (/^-|-$|^\(.*\)$/.test(rest)) return problem('AMOUNT_NEGATIVE', raw, 'the amount must be positive');
  rest = rest.replace(/^\+/, '').replace(/[.,]-+$/, '').trim();
  if (!/^\d[\d.,' ]*$/.test(rest) || /[.,' ]$/.test(rest)) {
    return problem('AMOUNT_INVALID', raw, 'expected a number such as 129.90 or 129,90 €');
  }
  const digits = minorUnits(currency);
  // Spaces and apostrophes only ever group thousands ("1 234,56", "1'234.56").
  let compact = rest;
  const spaceGrouped = /[' ]/.test(rest);
  if (spaceGrouped) {
    if (!/^\d{1,3}([' ]\d{3})+([.,]\d+)?$/.test(rest)) return problem('AMOUNT_INVALID', raw, 'digit groups must have three digits');
    compact = rest.replace(/[' ]/g, '');
  }
  const lastDot = compact.lastIndexOf('.');
  const lastComma = compact.lastIndexOf(',');
  let intPart = compact;
  let fracPart = '';
  const seps = compact.replace(/\d/g, '');
  if (seps.length > 0) {
    let decimalSep: string | undefined;
    if (lastDot >= 0 && lastComma >= 0) {
      decimalSep = lastDot > lastComma ? '.' : ',';
    } else {
      const sep = lastDot >= 0 ? '.' : ',';
      const after = compact.length - compact.lastIndexOf(sep) - 1;
      if (seps.length > 1) decimalSep = undefined;
      else if (after === 3 && !spaceGrouped) {
        if (digits === 0) decimalSep = undefined;
        else {
          return problem(
            'AMOUNT_AMBIGUOUS',
            raw,
            `"${rest}" could be read two ways; write ${rest.replace(sep, '')} or ${rest}${sep === '.' ? ',00' : '.00'} with the decimals`,
          );
        }
      } else decimalSep = sep;
    }
    const groupSep = decimalSep === '.' ? ',' : decimalSep === ',' ? '.' : seps[0]!;
    if (decimalSep) {
      const i = compact.lastIndexOf(decimalSep);
      intPart = compact.slice(0, i);
      fracPart = compact.slice(i + 1);
      if (intPart.includes(decimalSep)) return problem('AMOUNT_INVALID', raw, 'more than one decimal separator');
    }
    if (intPart.includes(groupSep)) {
      if (!new RegExp(`^\\d{1,3}(\\${groupSep}\\d{3})+$`).test(intPart)) {
        return problem('AMOUNT_INVALID', raw, 'digit groups must have three digits');
      }
      intPart = intPart.split(groupSep).join('');
    }
    if (/\D/.test(intPart) || /\D/.test(fracPart)) return problem('AMOUNT_INVALID', raw, 'expected a number such as 129.90');
  }
  if (fracPart.length > digits) {
    return problem(
      'AMOUNT_TOO_MANY_DECIMALS',
      raw,
      digits === 0 ? `${currency} has no decimals` : `${currency} has at most ${digits} decimals`,
    );
  }
  const major = Number(intPart || '0');
  if (major > MAX_MAJOR_AMOUNT) return problem('AMOUNT_TOO_LARGE', raw, `the amount must not exceed ${MAX_MAJOR_AMOUNT} ${currency}`);
  const amountMinor = major * 10 ** digits + (digits ? Number(fracPart.padEnd(digits, '0')) : 0);
  if (amountMinor <= 0) return problem('AMOUNT_NOT_POSITIVE', raw, 'the amount must be greater than zero');
  return { ok: true, money: { amountMinor, currency } };
}

/** Formats minor units for a locale with Intl (e.g. "€ 129,90" for it, "€129.90" for en). */
export function formatMoney(amountMinor: number, currency: string, locale = 'en'): string {
  const digits = minorUnits(currency);
  // Building an Intl.NumberFormat costs far more than using one (bench P3): cached, bounded.
  return numberFormat(locale, { style: 'currency', currency, minimumFractionDigits: digits, maximumFractionDigits: digits }).format(amountMinor / 10 ** digits);
}

/** Major-unit string with a dot, for CSV and machine-readable places ("129.90"). */
export function toMajorString(amountMinor: number, currency: string): string {
  const digits = minorUnits(currency);
  if (digits === 0) return String(amountMinor);
  const s = String(amountMinor).padStart(digits + 1, '0');
  return `${s.slice(0, -digits)}.${s.slice(-digits)}`;
}
