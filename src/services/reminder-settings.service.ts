// The merchant's reminder and renewal settings (issue 13 parts 3 and 4), from the back office:
// reminders on/off, days before expiry, the reminder when the link was not opened, automatic
// renewal. A change makes the expiry job look at every open order of the merchant again (its
// `remindAt` set to now), so the new settings apply to links already sent, not only to new ones.
import { type MerchantDoc } from '../db/merchants.repository.ts';
import { type Repositories } from '../db/repositories.ts';
import { AppError, type FieldProblem } from '../domain/errors.ts';
import { MAX_UNOPENED_HOURS, parseReminderDays, reminderSettingsOf } from '../domain/reminders.ts';

export interface ReminderSettingsInput {
  /** '1' when the box is ticked. */
  enabled: string;
  /** "3, 1"; empty: none before expiry. */
  daysBefore: string;
  /** Hours after creation for the unopened reminder; '0' or empty: off. */
  unopenedHours: string;
  /** Days of an automatic renewal; '0' or empty: off (the merchant decides each time). */
  autoRenewDays: string;
}

/** The form's values for a merchant (defaults filled in). */
export function reminderSettingsValues(m: Parameters<typeof reminderSettingsOf>[0] & { autoRenewDays?: number | null }) {
  const s = reminderSettingsOf(m);
  return { enabled: s.enabled, daysBefore: s.daysBefore.join(', '), unopenedHours: String(s.unopenedAfterHours), autoRenewDays: String(m.autoRenewDays ?? 0) };
}

export function createReminderSettingsService(deps: { repos: Repositories; maxLinkLifetimeDays: number; now?: () => Date }) {
  const now = deps.now ?? (() => new Date());

  async function update(merchant: MerchantDoc, input: ReminderSettingsInput): Promise<MerchantDoc> {
    const problems: FieldProblem[] = [];
    const bad = (field: string, code: string, message: string) => problems.push({ field, code, message });
    let days: number[] = [];
    if (input.daysBefore.trim() !== '') {
      const r = parseReminderDays(input.daysBefore);
      if (!r.ok) bad('daysBefore', 'REMINDER_DAYS_INVALID', r.message);
      else if (!r.off) days = r.days;
    }
    const hours = input.unopenedHours.trim() === '' ? 0 : Number(input.unopenedHours.trim());
    if (!Number.isInteger(hours) || hours < 0 || hours > MAX_UNOPENED_HOURS) bad('unopenedHours', 'UNOPENED_HOURS_INVALID', `expected 0 to ${MAX_UNOPENED_HOURS} hours`);
    const renew = input.autoRenewDays.trim() === '' ? 0 : Number(input.autoRenewDays.trim());
    if (!Number.isInteger(renew) || renew < 0 || renew > deps.maxLinkLifetimeDays) bad('autoRenewDays', 'AUTO_RENEW_INVALID', `expected 0 to ${deps.maxLinkLifetimeDays} days`);
    if (problems.length) throw new AppError('SETTINGS_INVALID', 'the reminder settings are not valid', { httpStatus: 422, details: { problems } });
    const updated = await deps.repos.merchants.updateReminderSettings(merchant._id, {
      remindersEnabled: input.enabled === '1',
      reminderDaysBefore: days,
      unopenedReminderHours: hours,
      autoRenewDays: renew,
    });
    if (!updated) throw new AppError('MERCHANT_NOT_FOUND', 'no such merchant', { httpStatus: 404 });
    await deps.repos.orders.recheckReminders(merchant._id, now());
    return updated;
  }

  return { update };
}
export type ReminderSettingsService = ReturnType<typeof createReminderSettingsService>;
