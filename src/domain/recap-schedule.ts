// When a merchant's daily recap is due: its zone and recap hour, the local days whose recap hour
// has passed within the look-back, and the previous local day (what `recap send` sends by default).
import { addDays, isTimeZone, localDate } from './local-day.ts';
import { type RecapMerchant } from './recap-data.ts';
import { localDateFast, localTimeFast } from './recap-local-time.ts';

export const RECAP_LOOKBACK_DAYS = 7;
export const DEFAULT_RECAP_HOUR = 7;

const validZones = new Map<string, boolean>();
export function zoneOf(m: RecapMerchant): string {
  if (!m.timezone) return 'Europe/Rome';
  let ok = validZones.get(m.timezone);
  // isTimeZone builds an Intl formatter: once per zone, not once per merchant and day.
  if (ok === undefined) validZones.set(m.timezone, (ok = isTimeZone(m.timezone)));
  return ok ? m.timezone : 'Europe/Rome';
}

function hourOf(m: RecapMerchant): number {
  const h = (m as { recapHour?: number | null }).recapHour;
  return typeof h === 'number' && Number.isInteger(h) && h >= 0 && h <= 23 ? h : DEFAULT_RECAP_HOUR;
}

function createdAtOf(m: RecapMerchant): Date | undefined {
  return (m as { createdAt?: Date }).createdAt;
}

/** Local days (oldest first) whose recap hour has passed at `now`, within the look-back. */
export function dueDates(merchant: RecapMerchant, now: Date): string[] {
  const tz = zoneOf(merchant);
  const hour = hourOf(merchant);
  const today = localDateFast(now.getTime(), tz);
  const created = createdAtOf(merchant);
  const first = created ? localDateFast(new Date(created).getTime(), tz) : undefined;
  const out: string[] = [];
  for (let k = RECAP_LOOKBACK_DAYS; k >= 1; k--) {
    const d = addDays(today, -k);
    if (first && d < first) continue;
    if (localTimeFast(addDays(d, 1), hour, tz) <= now.getTime()) out.push(d);
  }
  return out;
}

/** The local day before `now` for a merchant: what `recap send` sends when no date is given. */
export function previousLocalDay(merchant: RecapMerchant, now: Date): string {
  return addDays(localDate(now, zoneOf(merchant)), -1);
}
