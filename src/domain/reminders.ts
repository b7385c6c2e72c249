// Reminders the merchant tunes (issue 13, part 3): which reminder an open order is due, pure.
//
// An order has reminder SLOTS: `before-<d>d@<expiry>` for each "d days before expiry" (merchant
// setting, default 3 and 1, or the order's own `Reminders: 5, 2`), and `unopened` (once, N hours
// after creation while the customer has not opened the link; merchant setting). A slot is valid only
// if it falls after the order was created and before it expires. The expiry is part of a
// before-expiry slot's name: after an extension or renewal the new expiry has its own slots.
//
// Rules: the latest due slot not yet sent is sent; earlier unsent ones are covered by it (a pass
// that was down for days sends one reminder, not three). At most one reminder per order per local
// day in the merchant's time zone: a due slot on a day that already had one waits for the next day
// (and is dropped if the link expires first). The expiry job calls `decideReminder` for orders whose
// `remindAt` has come, and stores its `next` as the new `remindAt`: one indexed query per pass.
import { localDate, addDays, localTime } from './local-day.ts';

const HOUR = 3_600_000;
const DAY = 24 * HOUR;

/** The merchant's reminder settings (merchant document fields, with these defaults). */
export interface ReminderSettings {
  /** Reminders on at all (default on). */
  enabled: boolean;
  /** Days before expiry, each a reminder (default 3 and 1). */
  daysBefore: number[];
  /** One reminder this many hours after creation while the link was not opened; 0 = off. */
  unopenedAfterHours: number;
}

export const DEFAULT_REMINDER_SETTINGS: ReminderSettings = { enabled: true, daysBefore: [3, 1], unopenedAfterHours: 48 };
/** Bounds of the settings and of an order's `Reminders:` line. */
export const MAX_REMINDER_DAYS = 30;
export const MAX_REMINDER_SLOTS = 5;
export const MAX_UNOPENED_HOURS = 720;

/** An order's own plan from its mail or form: off, or its own days before expiry. */
export interface ReminderPlan {
  off?: boolean | null;
  daysBefore?: number[] | null;
}

/** A reminder the order records as sent. */
export interface SentReminder {
  slot: string;
  /** When the slot was due (what covers earlier slots). */
  slotAt: Date;
  at: Date;
}

export interface ReminderFacts {
  createdAt: Date;
  expiresAt: Date;
  viewedAt?: Date | null | undefined;
  customerEmail?: string | null | undefined;
  plan?: ReminderPlan | null | undefined;
  sent?: SentReminder[] | null | undefined;
  /** The customer unsubscribed from reminders (the link in every reminder). */
  unsubscribedAt?: Date | null | undefined;
}

export interface Slot {
  slot: string;
  at: Date;
  kind: 'unopened' | 'before';
  /** For `before`: days before expiry. */
  days?: number;
}

export interface ReminderDecision {
  /** The slot to send now, if any. */
  send?: Slot;
  /** When to look at this order again; undefined: never (no slot left). */
  next?: Date;
}

/** The merchant document's settings with the defaults filled in (merchants stored before these fields). */
export function reminderSettingsOf(m: {
  remindersEnabled?: boolean | null;
  reminderDaysBefore?: number[] | null;
  unopenedReminderHours?: number | null;
}): ReminderSettings {
  return {
    enabled: m.remindersEnabled ?? DEFAULT_REMINDER_SETTINGS.enabled,
    daysBefore: m.reminderDaysBefore && m.reminderDaysBefore.length > 0 ? [...m.reminderDaysBefore] : m.reminderDaysBefore ? [] : [...DEFAULT_REMINDER_SETTINGS.daysBefore],
    unopenedAfterHours: m.unopenedReminderHours ?? DEFAULT_REMINDER_SETTINGS.unopenedAfterHours,
  };
}

/**
 * Reads a list of days before expiry ("3, 1", "5 2", "3;1"): whole days 1..MAX_REMINDER_DAYS, at
 * most MAX_REMINDER_SLOTS, largest first, no repeats. "off"/"no"/"none"/"0" (five languages) → off.
 */
export function parseReminderDays(value: string): { ok: true; off: true } | { ok: true; off: false; days: number[] } | { ok: false; message: string } {
  const v = value
    .normalize('NFD')
    .replace(/[\u0300-\u036f]/g, '')
    .trim()
    .toLowerCase()
    .replace(/\.$/, '');
  if (OFF_WORDS.has(v)) return { ok: true, off: true };
  // "5, 2 days" / "5 e 2 giorni": the unit word and "and" in any of the five languages are allowed.
  const cleaned = v.replace(/\b(days?|giorni|giorno|jours?|tage?n?|dias?|and|e|et|und|y)\b/g, ' ');
  const parts = cleaned.split(/[\s,;/]+/).filter(Boolean);
  if (parts.length === 0 || parts.length > MAX_REMINDER_SLOTS || !parts.every((p) => /^\d{1,2}$/.test(p))) {
    return { ok: false, message: `expected "off" or up to ${MAX_REMINDER_SLOTS} numbers of days before expiry, such as "3, 1"` };
  }
  const days = [...new Set(parts.map(Number))].sort((a, b) => b - a);
  if (days.some((d) => d < 1 || d > MAX_REMINDER_DAYS)) return { ok: false, message: `days before expiry must be 1 to ${MAX_REMINDER_DAYS}` };
  return { ok: true, off: false, days };
}

const OFF_WORDS = new Set(['off', 'no', 'none', 'never', '0', 'disabled', 'nessuno', 'mai', 'disattivati', 'disattivato', 'non', 'aucun', 'jamais', 'desactive', 'desactives', 'aus', 'nein', 'keine', 'nie', 'ninguno', 'nunca', 'desactivado', 'desactivados']);

/** The slots of an order under `settings` (and its own plan), soonest first. */
export function reminderSlots(f: ReminderFacts, settings: ReminderSettings): Slot[] {
  if (f.plan?.off) return [];
  const own = f.plan?.daysBefore && f.plan.daysBefore.length > 0 ? f.plan.daysBefore : undefined;
  // An order's own days apply even when the merchant turned reminders off: it asked on this order.
  if (!settings.enabled && !own) return [];
  const created = f.createdAt.getTime();
  const expires = f.expiresAt.getTime();
  const out: Slot[] = [];
  const expiryTag = Math.floor(expires / 1000);
  for (const d of own ?? settings.daysBefore) {
    const at = expires - d * DAY;
    if (at >= created && at < expires) out.push({ slot: `before-${d}d@${expiryTag}`, at: new Date(at), kind: 'before', days: d });
  }
  if (settings.enabled && settings.unopenedAfterHours > 0 && !f.viewedAt) {
    const at = created + settings.unopenedAfterHours * HOUR;
    if (at < expires) out.push({ slot: 'unopened', at: new Date(at), kind: 'unopened' });
  }
  return out.sort((a, b) => a.at.getTime() - b.at.getTime());
}

/** What to do for an open order at `now`, in the merchant's time zone. */
export function decideReminder(f: ReminderFacts, settings: ReminderSettings, now: Date, timeZone: string): ReminderDecision {
  if (!f.customerEmail || f.unsubscribedAt || f.expiresAt.getTime() <= now.getTime()) return {};
  const sent = f.sent ?? [];
  const sentSlots = new Set(sent.map((s) => s.slot));
  const covered = sent.reduce((max, s) => Math.max(max, new Date(s.slotAt).getTime()), -Infinity);
  const open = reminderSlots(f, settings).filter((s) => !sentSlots.has(s.slot) && s.at.getTime() > covered);
  const due = open.filter((s) => s.at.getTime() <= now.getTime());
  const future = open.filter((s) => s.at.getTime() > now.getTime());
  const nextFuture = future[0]?.at;
  if (due.length === 0) return nextFuture ? { next: nextFuture } : {};
  const today = localDate(now, timeZone);
  const last = sent.reduce<Date | undefined>((l, s) => (!l || new Date(s.at) > l ? new Date(s.at) : l), undefined);
  if (last && localDate(last, timeZone) === today) {
    // One reminder a day: the due slot waits for the start of the merchant's next day.
    const tomorrow = localTime(addDays(today, 1), 0, timeZone);
    return tomorrow.getTime() < f.expiresAt.getTime() ? { next: tomorrow } : {};
  }
  const send = due[due.length - 1]!;
  return { send, ...(nextFuture ? { next: nextFuture } : {}) };
}
