// Calendar days in a merchant's IANA time zone. A local day runs from local midnight to the next
// local midnight, so it lasts 23 or 25 hours on DST change days; instants are found from the
// zone's UTC offset (zoneOffset, two passes so a guess on the wrong side of a change settles).
import { zoneOffset } from './time-zone.ts';

export { isTimeZone } from './time-zone.ts';

const DAY_MS = 24 * 3600_000;
const DATE_RE = /^(\d{4})-(\d{2})-(\d{2})$/;

export function isLocalDate(s: string): boolean {
  const m = DATE_RE.exec(s);
  if (!m) return false;
  const d = new Date(Date.UTC(Number(m[1]), Number(m[2]) - 1, Number(m[3])));
  return d.toISOString().slice(0, 10) === s;
}

/** The local calendar date (YYYY-MM-DD) of an instant in a zone. */
export function localDate(at: Date, timeZone: string): string {
  return new Date(at.getTime() + zoneOffset(at, timeZone)).toISOString().slice(0, 10);
}

/** Calendar arithmetic on YYYY-MM-DD strings (no zone involved). */
export function addDays(date: string, days: number): string {
  const m = DATE_RE.exec(date);
  if (!m) throw new RangeError(`not a date: ${date}`);
  return new Date(Date.UTC(Number(m[1]), Number(m[2]) - 1, Number(m[3])) + days * DAY_MS).toISOString().slice(0, 10);
}

/**
 * The instant when the local clock shows `date` `hour`:00 in `timeZone`. An hour skipped by a
 * DST change resolves to the instant just after the gap (the clock never shows it).
 */
export function localTime(date: string, hour: number, timeZone: string): Date {
  const m = DATE_RE.exec(date);
  if (!m) throw new RangeError(`not a date: ${date}`);
  const wall = Date.UTC(Number(m[1]), Number(m[2]) - 1, Number(m[3]), hour);
  let guess = wall - zoneOffset(new Date(wall), timeZone);
  guess = wall - zoneOffset(new Date(guess), timeZone);
  // In a gap neither offset maps back to the wall time: take the later one (after the change).
  const back = guess + zoneOffset(new Date(guess), timeZone);
  if (back !== wall) guess = Math.max(guess, wall - zoneOffset(new Date(guess + 3600_000), timeZone));
  return new Date(guess);
}

export interface LocalDay {
  date: string;
  /** Local midnight starting the day (inclusive). */
  start: Date;
  /** Local midnight starting the next day (exclusive). */
  end: Date;
  /** 24, or 23/25 on DST change days. */
  hours: number;
}

export function localDayBounds(date: string, timeZone: string): LocalDay {
  const start = localTime(date, 0, timeZone);
  const end = localTime(addDays(date, 1), 0, timeZone);
  return { date, start, end, hours: (end.getTime() - start.getTime()) / 3600_000 };
}

/** ISO 8601 local time with its offset ("2026-10-25T02:30:00+01:00"), for CSV exports. */
export function localIso(at: Date, timeZone: string): string {
  const offset = zoneOffset(at, timeZone);
  const wall = new Date(Math.floor(at.getTime() / 1000) * 1000 + offset).toISOString().slice(0, 19);
  const sign = offset < 0 ? '-' : '+';
  const abs = Math.abs(offset) / 60_000;
  return `${wall}${sign}${String(Math.floor(abs / 60)).padStart(2, '0')}:${String(abs % 60).padStart(2, '0')}`;
}
