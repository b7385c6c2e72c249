// Local time, fast: the recap's local-day arithmetic (src/domain/local-day.ts) at a fraction of
// the cost, for runs that ask for tens of thousands of local times. Same results as localDate,
// localTime, localDayBounds and localIso there.
import { addDays } from './local-day.ts';
import { zoneOffset } from './time-zone.ts';

const QUARTER_HOUR = 15 * 60_000;
const offsetCaches = new Map<string, Map<number, number>>();

/** zoneOffset (src/domain/time-zone.ts: one cached formatter per zone) at a millisecond instant. */
const zoneOffsetCached = (ms: number, timeZone: string): number => zoneOffset(new Date(ms), timeZone);

/**
 * The zone's offset, memoised per quarter hour (offsets change only on quarter-hour boundaries).
 * A run over 1,000 merchants asks for tens of thousands of local times: building an
 * Intl.DateTimeFormat for each (what zoneOffset does) cost seconds of CPU and hundreds of MB of
 * native memory that only a full GC gives back.
 */
function offsetAt(ms: number, timeZone: string): number {
  let cache = offsetCaches.get(timeZone);
  if (!cache) offsetCaches.set(timeZone, (cache = new Map()));
  if (cache.size > 20_000) cache.clear();
  const q = Math.floor(ms / QUARTER_HOUR);
  let off = cache.get(q);
  if (off === undefined) cache.set(q, (off = zoneOffsetCached(q * QUARTER_HOUR, timeZone)));
  return off;
}

/** As localDate (src/domain/local-day.ts). */
export function localDateFast(ms: number, timeZone: string): string {
  return new Date(ms + offsetAt(ms, timeZone)).toISOString().slice(0, 10);
}

/** As localTime (src/domain/local-day.ts): the instant the local clock shows `date` `hour`:00. */
export function localTimeFast(date: string, hour: number, timeZone: string): number {
  const wall = Date.parse(`${date}T00:00:00Z`) + hour * 3600_000;
  let guess = wall - offsetAt(wall, timeZone);
  guess = wall - offsetAt(guess, timeZone);
  if (guess + offsetAt(guess, timeZone) !== wall) guess = Math.max(guess, wall - offsetAt(guess + 3600_000, timeZone));
  return guess;
}

/** As localDayBounds (src/domain/local-day.ts), in epoch ms. */
export function dayBounds(date: string, timeZone: string): { start: number; end: number; hours: number } {
  const start = localTimeFast(date, 0, timeZone);
  const end = localTimeFast(addDays(date, 1), 0, timeZone);
  return { start, end, hours: (end - start) / 3600_000 };
}

/** As localIso (src/domain/local-day.ts): "2026-10-25T02:30:00+01:00". */
export function localIsoFast(ms: number, timeZone: string): string {
  const offset = offsetAt(ms, timeZone);
  const wall = new Date(Math.floor(ms / 1000) * 1000 + offset).toISOString().slice(0, 19);
  const abs = Math.abs(offset) / 60_000;
  return `${wall}${offset < 0 ? '-' : '+'}${String(Math.floor(abs / 60)).padStart(2, '0')}:${String(abs % 60).padStart(2, '0')}`;
}
