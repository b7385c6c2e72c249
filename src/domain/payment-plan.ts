// Deposits, balances and instalments (issue 13 part 1): an order's payment plan as merchants write
// it — "Deposit: 30%", "Acconto: 200 €", "Balance due: 2026-12-31", "Instalments: 3 monthly",
// "Rate: 3 mensili" — and its split into parts of whole minor units that add up to the order's
// amount exactly. Pure: dates are local calendar dates (YYYY-MM-DD) in the merchant's zone.
import { type FieldProblem } from './errors.ts';
import { addDays, isLocalDate } from './local-day.ts';
import { parseAmount } from './money.ts';

export const MAX_INSTALMENTS = 12;
export const MIN_INSTALMENTS = 2;

export type PlanPartKind = 'deposit' | 'balance' | 'instalment';

export interface PlanPart {
  /** 1, 2, … in paying order. */
  seq: number;
  kind: PlanPartKind;
  amountMinor: number;
  /**
   * The local date the part falls due (its link is mailed then). Absent on a deposit (due now)
   * and on a balance without a date: the merchant asks for it (BALANCE <ref>, back office, API).
   */
  dueDate?: string;
}

export type DepositSpec = { percent: number } | { amountMinor: number; currency: string };
export type InstalmentPeriod = 'week' | 'month';
export interface InstalmentSpec {
  count: number;
  every: InstalmentPeriod;
}

export interface PlanSpec {
  deposit?: DepositSpec;
  /** With a deposit: the local date the balance's link goes out by itself. */
  balanceDue?: string;
  instalments?: InstalmentSpec;
}

type Parsed<T> = { ok: true; value: T } | { ok: false; problem: FieldProblem };
const fail = <T>(field: string, code: string, value: string, message: string): Parsed<T> => ({ ok: false, problem: { field, code, value, message } });

const fold = (s: string) =>
  s
    .normalize('NFD')
    .replace(/[\u0300-\u036f]/g, '')
    .toLowerCase()
    .trim();

/**
 * "30%", "30 %", "12,5 %" (a share of the amount, more than 0 and less than 100), or an amount
 * such as "200", "200 EUR", "€ 200,00" in the order's currency.
 */
export function parseDeposit(value: string, orderCurrency: string): Parsed<DepositSpec> {
  const v = value.trim();
  const pct = /^(\d{1,2}(?:[.,]\d{1,2})?)\s*%$/.exec(v);
  if (pct) {
    const percent = Number(pct[1]!.replace(',', '.'));
    if (!(percent > 0 && percent < 100)) return fail('deposit', 'DEPOSIT_INVALID', v, 'a share between 1% and 99%, or an amount less than the total');
    return { ok: true, value: { percent } };
  }
  if (/%/.test(v)) return fail('deposit', 'DEPOSIT_INVALID', v, 'a share between 1% and 99%, or an amount less than the total');
  const amount = parseAmount(v, orderCurrency);
  if (!amount.ok) return fail('deposit', 'DEPOSIT_INVALID', v, 'a share such as 30% or an amount such as 200 EUR');
  if (amount.money.currency !== orderCurrency) {
    return fail('deposit', 'DEPOSIT_CURRENCY_MISMATCH', v, `the deposit must be in the order's currency, ${orderCurrency}`);
  }
  return { ok: true, value: { amountMinor: amount.money.amountMinor, currency: amount.money.currency } };
}

/** Period words (accents stripped) in English, Italian, French, German and Spanish. */
const PERIODS: Record<string, InstalmentPeriod> = {};
for (const w of 'monthly month months mensile mensili mese mesi mensuel mensuels mensuelle mensuelles mois monatlich monatliche monatlichen monat monate mensual mensuales mes meses'.split(' ')) PERIODS[w] = 'month';
for (const w of 'weekly week weeks settimanale settimanali settimana settimane hebdomadaire hebdomadaires semaine semaines wochentlich wochentliche wochentlichen woche wochen semanal semanales semana semanas'.split(' ')) PERIODS[w] = 'week';
/** Words that may stand beside the count without changing it ("3 monthly instalments", "3 rate mensili"). */
const FILLERS = new Set('x instalment instalments installment installments payment payments rata rate versement versements echeance echeances mensualite mensualites rate raten zahlung zahlungen cuota cuotas plazo plazos pago pagos de di en in'.split(' '));

/** "3 monthly", "3 x monthly", "4 weekly instalments", "3 rate mensili", "3" (monthly). */
export function parseInstalments(value: string): Parsed<InstalmentSpec> {
  const v = fold(value).replace(/[×*]/g, ' x ').replace(/[.,;]+$/, '');
  const words = v.split(/\s+/).filter(Boolean);
  const expected = `a number of instalments from ${MIN_INSTALMENTS} to ${MAX_INSTALMENTS}, monthly or weekly, such as "3 monthly"`;
  const count = Number(words[0]);
  if (!/^\d{1,2}$/.test(words[0] ?? '')) return fail('instalments', 'INSTALMENTS_INVALID', value.trim(), expected);
  let every: InstalmentPeriod | undefined;
  for (const w of words.slice(1)) {
    const p = PERIODS[w];
    if (p) {
      if (every && every !== p) return fail('instalments', 'INSTALMENTS_INVALID', value.trim(), expected);
      every = p;
    } else if (!FILLERS.has(w)) return fail('instalments', 'INSTALMENTS_INVALID', value.trim(), expected);
  }
  if (count < MIN_INSTALMENTS || count > MAX_INSTALMENTS) return fail('instalments', 'INSTALMENTS_COUNT', value.trim(), expected);
  return { ok: true, value: { count, every: every ?? 'month' } };
}

/** "2026-12-31", "31/12/2026", "31.12.2026": a day from `today` on (local dates). */
export function parseBalanceDue(value: string, today: string): Parsed<string> {
  const v = value.trim();
  let date: string | undefined;
  const iso = /^(\d{4})-(\d{1,2})-(\d{1,2})$/.exec(v);
  const dmy = /^(\d{1,2})[/.-](\d{1,2})[/.-](\d{4})$/.exec(v);
  if (iso) date = `${iso[1]}-${iso[2]!.padStart(2, '0')}-${iso[3]!.padStart(2, '0')}`;
  else if (dmy) date = `${dmy[3]}-${dmy[2]!.padStart(2, '0')}-${dmy[1]!.padStart(2, '0')}`;
  if (!date || !isLocalDate(date)) return fail('balanceDue', 'BALANCE_DUE_INVALID', v, 'a date such as 2026-12-31 or 31/12/2026');
  if (date < today) return fail('balanceDue', 'BALANCE_DUE_PAST', v, 'a date from today on');
  return { ok: true, value: date };
}

/** The same day `months` later, or the month's last day when it has no such day (31 Jan → 28 Feb). */
export function addMonths(date: string, months: number): string {
  const [y, m, d] = date.split('-').map(Number) as [number, number, number];
  const first = new Date(Date.UTC(y, m - 1 + months, 1));
  const last = new Date(Date.UTC(first.getUTCFullYear(), first.getUTCMonth() + 1, 0)).getUTCDate();
  return new Date(Date.UTC(first.getUTCFullYear(), first.getUTCMonth(), Math.min(d, last))).toISOString().slice(0, 10);
}

/**
 * The parts of a plan for `totalMinor`. A deposit plan has two parts (the deposit, due now; the
 * balance, on `balanceDue` or when the merchant asks); an instalment plan has `count` parts, the
 * first due now (`today`) and the others a week or a calendar month apart. Amounts are whole
 * minor units: a percentage is rounded half up; instalments are equal but for the leftover minor
 * units, one each on the first parts. The parts always add up to the total. No plan: one part.
 */
export function planParts(totalMinor: number, spec: PlanSpec, today: string): Parsed<PlanPart[]> {
  if (!Number.isSafeInteger(totalMinor) || totalMinor <= 0) return fail('amount', 'AMOUNT_INVALID', String(totalMinor), 'a positive amount');
  if (spec.deposit && spec.instalments) {
    return fail('instalments', 'PLAN_CONFLICT', `${spec.instalments.count}`, 'either a deposit or instalments, not both');
  }
  if (spec.balanceDue && !spec.deposit) return fail('balanceDue', 'BALANCE_WITHOUT_DEPOSIT', spec.balanceDue, 'a balance date needs a deposit');
  if (spec.deposit) {
    const d = spec.deposit;
    const deposit = 'percent' in d ? Math.floor((totalMinor * d.percent) / 100 + 0.5) : d.amountMinor;
    if (deposit <= 0 || deposit >= totalMinor) {
      return fail('deposit', 'DEPOSIT_NOT_LESS_THAN_TOTAL', 'percent' in d ? `${d.percent}%` : String(d.amountMinor), 'more than nothing and less than the total');
    }
    return {
      ok: true,
      value: [
        { seq: 1, kind: 'deposit', amountMinor: deposit },
        { seq: 2, kind: 'balance', amountMinor: totalMinor - deposit, ...(spec.balanceDue ? { dueDate: spec.balanceDue } : {}) },
      ],
    };
  }
  if (spec.instalments) {
    const { count, every } = spec.instalments;
    if (count < MIN_INSTALMENTS || count > MAX_INSTALMENTS) return fail('instalments', 'INSTALMENTS_COUNT', String(count), `${MIN_INSTALMENTS} to ${MAX_INSTALMENTS} instalments`);
    if (totalMinor < count) return fail('instalments', 'INSTALMENTS_TOO_SMALL', String(count), 'at least one minor unit per instalment');
    const base = Math.floor(totalMinor / count);
    const left = totalMinor - base * count;
    return {
      ok: true,
      value: Array.from({ length: count }, (_, i) => ({
        seq: i + 1,
        kind: 'instalment' as const,
        amountMinor: base + (i < left ? 1 : 0),
        dueDate: every === 'week' ? addDays(today, 7 * i) : addMonths(today, i),
      })),
    };
  }
  return { ok: true, value: [] };
}
