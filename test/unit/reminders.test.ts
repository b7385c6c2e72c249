// The pure reminder rules (src/domain/reminders.ts) and the customer's stop link
// (src/domain/reminder-link.ts): slots, the latest due slot covering earlier ones, one a day in the
// merchant's zone, nothing without an address or after the customer stopped them, the order's own
// plan, and the signed link refusing any change.
import assert from 'node:assert/strict';
import { decideReminder, parseReminderDays, reminderSettingsOf, reminderSlots, type ReminderFacts } from '../../src/domain/reminders.ts';
import { remindersOffPath, verifyRemindersOff } from '../../src/domain/reminder-link.ts';

const H = 3_600_000;
const D = 24 * H;
const created = new Date('2026-07-01T08:00:00Z');
const expires = new Date(created.getTime() + 7 * D);
const base: ReminderFacts = { createdAt: created, expiresAt: expires, customerEmail: 'a@example.org' };
const settings = reminderSettingsOf({});
const TZ = 'Europe/Rome';

describe('reminders (domain)', () => {
  it('defaults: 3 and 1 days before expiry and one after 48 hours unopened', () => {
    assert.deepEqual(settings, { enabled: true, daysBefore: [3, 1], unopenedAfterHours: 48 });
    assert.deepEqual(reminderSlots(base, settings).map((s) => s.slot), ['unopened', `before-3d@${expires.getTime() / 1000}`, `before-1d@${expires.getTime() / 1000}`]);
    assert.deepEqual(reminderSlots({ ...base, viewedAt: created }, settings).map((s) => s.kind), ['before', 'before'], 'opened: no unopened slot');
    assert.deepEqual(reminderSettingsOf({ reminderDaysBefore: [] }).daysBefore, [], 'an empty list stays empty');
  });

  it('the order’s own plan: its days, or off', () => {
    assert.deepEqual(reminderSlots({ ...base, plan: { daysBefore: [5] } }, { ...settings, unopenedAfterHours: 0 }).map((s) => s.days), [5]);
    assert.deepEqual(reminderSlots({ ...base, plan: { off: true } }, settings), []);
    assert.deepEqual(reminderSlots({ ...base, plan: { daysBefore: [2] } }, { ...settings, enabled: false }).map((s) => s.days), [2], 'asked on this order');
    assert.deepEqual(reminderSlots(base, { ...settings, enabled: false }), []);
  });

  it('sends the latest due slot, covering the earlier ones; next is the following slot', () => {
    const at = new Date(expires.getTime() - 3 * D + H);
    const d = decideReminder(base, settings, at, TZ);
    assert.equal(d.send?.slot, `before-3d@${expires.getTime() / 1000}`, 'not the missed unopened one as well');
    assert.equal(d.next?.getTime(), expires.getTime() - D);
    const after = decideReminder({ ...base, sent: [{ slot: d.send!.slot, slotAt: d.send!.at, at }] }, settings, new Date(at.getTime() + D), TZ);
    assert.equal(after.send, undefined, 'the unopened slot is covered');
  });

  it('one a day in the merchant’s zone: a second due slot waits for the next local midnight', () => {
    const at = new Date(expires.getTime() - D + H);
    const sentToday = { slot: 'unopened', slotAt: new Date(at.getTime() - 2 * H), at: new Date(at.getTime() - 2 * H) };
    const d = decideReminder({ ...base, sent: [sentToday] }, settings, at, TZ);
    assert.equal(d.send, undefined);
    assert.equal(d.next?.toISOString(), '2026-07-07T22:00:00.000Z', 'midnight in Rome (UTC+2)');
  });

  it('nothing without an address, after the customer stopped reminders, or past expiry', () => {
    const at = new Date(expires.getTime() - D + H);
    assert.deepEqual(decideReminder({ ...base, customerEmail: undefined }, settings, at, TZ), {});
    assert.deepEqual(decideReminder({ ...base, unsubscribedAt: created }, settings, at, TZ), {});
    assert.deepEqual(decideReminder(base, settings, new Date(expires.getTime() + 1), TZ), {});
  });

  it('reads "Reminders:" values in the five languages', () => {
    assert.deepEqual(parseReminderDays('3, 1'), { ok: true, off: false, days: [3, 1] });
    assert.deepEqual(parseReminderDays('1 und 4 Tage'), { ok: true, off: false, days: [4, 1] });
    assert.deepEqual(parseReminderDays('5 y 2 días'), { ok: true, off: false, days: [5, 2] });
    for (const off of ['off', 'Nessuno', 'aucun', 'AUS', 'ninguno', '0']) assert.deepEqual(parseReminderDays(off), { ok: true, off: true }, off);
    for (const bad of ['tomorrow', '31', '1,2,3,4,5,6', '']) assert.equal(parseReminderDays(bad).ok, false, bad);
  });

  it('the stop link verifies only as signed, with a rotated-in key too', () => {
    const keys = [{ kid: 'k2', secret: 'second-secret-second-secret-second' }, { kid: 'k1', secret: 'first-secret-first-secret-first-se' }];
    const p = new URL(`http://x${remindersOffPath(keys, 'AbCdEfGhIjKlMnOpQrStU')}`);
    const q = { k: p.searchParams.get('k'), s: p.searchParams.get('s') };
    assert.equal(verifyRemindersOff(keys, 'AbCdEfGhIjKlMnOpQrStU', q), true);
    assert.equal(verifyRemindersOff(keys, 'AbCdEfGhIjKlMnOpQrStV', q), false, 'another order');
    assert.equal(verifyRemindersOff(keys, 'AbCdEfGhIjKlMnOpQrStU', { ...q, k: 'k1' }), false, 'another key');
    assert.equal(verifyRemindersOff([keys[1]!], 'AbCdEfGhIjKlMnOpQrStU', q), false, 'an unknown key id');
  });
});
