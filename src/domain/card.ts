// Card checks before any authorisation: Luhn, brand from the number, optional brand the customer
// chose, expiry not past, CVC length. Returns only what may be stored (brand, BIN, last four,
// expiry, issuing country from the BIN table): the full number and CVC stay in the request.
import cardValidator from 'card-validator';
import { issuingCountry } from './bin-table.ts';
import { type FieldProblem } from './errors.ts';

export interface CardInput {
  number: string;
  expiry: string;
  cvc: string;
  holder: string;
  /** A brand the customer picked, if the form offered a choice. */
  brand?: string;
}

export interface CheckedCard {
  /** Digits only; never persisted. */
  number: string;
  /** Never persisted. */
  cvc: string;
  brand: string;
  bin: string;
  last4: string;
  expMonth: number;
  expYear: number;
  holder: string;
  /** Issuing country (ISO 3166-1 alpha-2) when the BIN table knows the number. */
  country?: string;
}

export type CardCheck = { ok: true; card: CheckedCard } | { ok: false; problems: FieldProblem[] };

const BRAND_NAMES: Record<string, string> = {
  visa: 'Visa',
  mastercard: 'Mastercard',
  'american-express': 'American Express',
  'diners-club': 'Diners Club',
  discover: 'Discover',
  jcb: 'JCB',
  unionpay: 'UnionPay',
  maestro: 'Maestro',
  mir: 'Mir',
  elo: 'Elo',
  hiper: 'Hiper',
  hipercard: 'Hipercard',
};

/** Expiry dates further ahead than this are typing mistakes. */
const MAX_YEARS_AHEAD = 20;

export function brandName(type: string): string {
  return BRAND_NAMES[type] ?? type;
}

export function maskCard(brand: string, last4: string): string {
  return `${brand} •••• ${last4}`;
}

export function checkCard(input: CardInput, now = new Date()): CardCheck {
  const problems: FieldProblem[] = [];
  const digits = input.number.replace(/[\s-]/g, '');
  let brandType: string | undefined;
  let cvcSize = 3;
  if (!/^\d{12,19}$/.test(digits)) {
    problems.push({ field: 'number', code: 'CARD_NUMBER_INVALID', message: 'Enter the 12 to 19 digits of the card number.' });
  } else {
    const v = cardValidator.number(digits);
    if (!v.card) {
      problems.push({ field: 'number', code: 'CARD_BRAND_UNKNOWN', message: 'This card brand is not accepted.' });
    } else if (!v.isValid) {
      problems.push({ field: 'number', code: 'CARD_NUMBER_INVALID', message: 'This card number is not valid; check the digits.' });
    } else {
      brandType = v.card.type;
      cvcSize = v.card.code.size;
      if (input.brand && input.brand !== brandType) {
        problems.push({
          field: 'number',
          code: 'CARD_BRAND_MISMATCH',
          message: `This is a ${brandName(brandType)} card, not ${brandName(input.brand)}.`,
        });
      }
    }
  }
  let expMonth = 0;
  let expYear = 0;
  // Parsed here rather than by card-validator, which judges "past" by the real clock and returns no
  // month/year for a past date, so an expired card could not be told from a garbled entry.
  const exp = /^(\d{1,2})\s*[/.-]\s*(\d{2}|\d{4})$|^(\d{2})(\d{2})$/.exec(input.expiry.trim());
  const month = Number(exp?.[1] ?? exp?.[3]);
  const year = exp ? Number(exp[2] ?? exp[4]) : NaN;
  const fullYear = year < 100 ? 2000 + year : year;
  if (!exp || !(month >= 1 && month <= 12) || fullYear > now.getUTCFullYear() + MAX_YEARS_AHEAD) {
    problems.push({ field: 'expiry', code: 'CARD_EXPIRY_INVALID', message: 'Enter the expiry as MM/YY.' });
  } else if (new Date(Date.UTC(fullYear, month, 1)) <= now) {
    // A card is valid through the last day of its expiry month.
    problems.push({ field: 'expiry', code: 'CARD_EXPIRED', message: 'This card has expired.' });
  } else {
    expMonth = month;
    expYear = fullYear;
  }
  const cvc = input.cvc.trim();
  if (!new RegExp(`^\\d{${cvcSize}}$`).test(cvc)) {
    problems.push({ field: 'cvc', code: 'CARD_CVC_INVALID', message: `Enter the ${cvcSize}-digit security code.` });
  }
  const holder = input.holder.trim().replace(/\s+/g, ' ');
  if (holder.length < 2 || holder.length > 100 || /\d{4}/.test(holder)) {
    problems.push({ field: 'holder', code: 'CARD_HOLDER_INVALID', message: 'Enter the name printed on the card.' });
  }
  if (problems.length > 0 || !brandType) return { ok: false, problems };
  const country = issuingCountry(digits);
  return {
    ok: true,
    card: {
      number: digits,
      cvc,
      brand: brandName(brandType),
      bin: digits.slice(0, 6),
      last4: digits.slice(-4),
      expMonth,
      expYear,
      holder,
      ...(country ? { country } : {}),
    },
  };
}
