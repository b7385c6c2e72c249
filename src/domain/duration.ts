// Link lifetimes as merchants write them: "48h", "3 days", "3 giorni", "2 Wochen", or an expiry
// date "2026-12-31" / "31/12/2026" (valid through the end of that day in the merchant's time zone).
import { zoneOffset } from './time-zone.ts';

const HOUR = 3_600_000;
const DAY = 24 * HOUR;

/** Unit words (accents stripped, lower case) in en, it, fr, de, es → milliseconds. */
const UNITS: Record<string, number> = {};
function units(ms: number, words: string): void {
  for (const w of words.split(' ')) UNITS[w] = ms;
}
units(HOUR, 'h hr hrs hour hours ora ore heure heures std stunde stunden hora horas');
units(DAY, 'd day days g gg giorno giorni j jour jours t tag tage tagen dia dias');
units(7 * DAY, 'w wk wks week weeks settimana settimane sem semaine semaines woche wochen semana semanas');
units(30 * DAY, 'month months mese mesi mois monat monate mes meses');

export type ExpiryResult =
  | { ok: true; expiresAt: Date; capped: boolean }
  | { ok: false; code: 'ORDER_EXPIRY_INVALID' | 'ORDER_EXPIRY_PAST'; message: string };

export interface ExpiryOptions {
  now: Date;
  maxLifetimeDays: number;
  /** IANA zone used for bare dates; UTC when absent. */
  timeZone?: string | undefined;
}

const fold = (s: string) =>
  s
    .normalize('NFD')
    .replace(/[\u0300-\u036f]/g, '')
    .toLowerCase();

export { zoneOffset };

/** The last second of a calendar day in a time zone, or undefined when the date does not exist. */
function endOfDay(year: number, month: number, day: number, timeZone: string | undefined): Date | undefined {
  const utc = Date.UTC(year, month - 1, day, 23, 59, 59);
  const check = new Date(utc);
  if (check.getUTCFullYear() !== year || check.getUTCMonth() !== month - 1 || check.getUTCDate() !== day) return undefined;
  if (!timeZone) return check;
  let guess = utc - zoneOffset(check, timeZone);
  // A second pass settles days when the offset changes (DST) between the guess and the answer.
  guess = utc - zoneOffset(new Date(guess), timeZone);
  return new Date(guess);
}

function parseDate(v: string, timeZone: string | undefined): Date | undefined | null {
  let m = /^(\d{4})-(\d{1,2})-(\d{1,2})$/.exec(v);
  if (m) return endOfDay(Number(m[1]), Number(m[2]), Number(m[3]), timeZone) ?? null;
  // Day first, as written everywhere in our five languages (31/12/2026, 31.12.2026, 31-12-2026).
  m = /^(\d{1,2})[/.-](\d{1,2})[/.-](\d{4})$/.exec(v);
  if (m) return endOfDay(Number(m[3]), Number(m[2]), Number(m[1]), timeZone) ?? null;
  return undefined;
}

/**
 * Reads an expiry value. Lifetimes beyond `maxLifetimeDays` are capped (reported with `capped`),
 * past dates and zero lifetimes are refused.
 */
export function parseExpiry(value: string, opts: ExpiryOptions): ExpiryResult {
  const v = fold(value.trim()).replace(/\.$/, '');
  const max = new Date(opts.now.getTime() + opts.maxLifetimeDays * DAY);
  const cap = (at: Date): ExpiryResult => (at > max ? { ok: true, expiresAt: max, capped: true } : { ok: true, expiresAt: at, capped: false });
  const invalid: ExpiryResult = {
    ok: false,
    code: 'ORDER_EXPIRY_INVALID',
    message: 'expected a lifetime such as 48h, 3 days, 2 weeks or a date such as 2026-12-31 or 31/12/2026',
  };

  const d = /^(\d{1,4})\s*([a-z]+)$/.exec(v);
  if (d) {
    const unit = UNITS[d[2]!];
    const n = Number(d[1]);
    if (unit === undefined) return invalid;
    if (n <= 0) return { ok: false, code: 'ORDER_EXPIRY_INVALID', message: 'the lifetime must be greater than zero' };
    return cap(new Date(opts.now.getTime() + n * unit));
  }
  const date = parseDate(v, opts.timeZone);
  if (date === null) return { ok: false, code: 'ORDER_EXPIRY_INVALID', message: 'that date does not exist' };
  if (date === undefined) return invalid;
  if (date <= opts.now) return { ok: false, code: 'ORDER_EXPIRY_PAST', message: 'the expiry date is in the past' };
  return cap(date);
}
