// IANA time zones: validation, the canonical name, and a zone's UTC offset at an instant. The one
// place paymail asks Intl about zones (calendar days on top of it: local-day.ts).
import { dateTimeFormat } from './intl-cache.ts';

/** The zone's canonical name ("europe/rome" → "Europe/Rome"), or undefined when Intl does not know it. */
export function canonicalTimeZone(tz: string): string | undefined {
  try {
    return dateTimeFormat('en', { timeZone: tz }).resolvedOptions().timeZone;
  } catch {
    return undefined;
  }
}

export function isTimeZone(tz: string): boolean {
  return canonicalTimeZone(tz) !== undefined;
}

const WALL_CLOCK: Intl.DateTimeFormatOptions = {
  hourCycle: 'h23',
  year: 'numeric',
  month: '2-digit',
  day: '2-digit',
  hour: '2-digit',
  minute: '2-digit',
  second: '2-digit',
};

/** Offset (ms) of `timeZone` from UTC at the given instant. */
export function zoneOffset(at: Date, timeZone: string): number {
  const parts = dateTimeFormat('en-US', { ...WALL_CLOCK, timeZone }).formatToParts(at);
  const get = (t: string) => Number(parts.find((p) => p.type === t)?.value ?? 0);
  const asUtc = Date.UTC(get('year'), get('month') - 1, get('day'), get('hour'), get('minute'), get('second'));
  return asUtc - Math.floor(at.getTime() / 1000) * 1000;
}
