// Local calendar days in IANA zones: bounds from local midnight to local midnight (23 or 25 hours
// on DST change days), the instant of a local hour, and the local date of an instant.
import assert from 'node:assert/strict';
import { addDays, isLocalDate, localDate, localDayBounds, localIso, localTime } from '../../src/domain/local-day.ts';

describe('local days', () => {
  const bounds: Array<[string, string, string, string, number]> = [
    ['Europe/Rome', '2026-06-10', '2026-06-09T22:00:00.000Z', '2026-06-10T22:00:00.000Z', 24],
    ['Europe/Rome', '2026-10-25', '2026-10-24T22:00:00.000Z', '2026-10-25T23:00:00.000Z', 25],
    ['Europe/Rome', '2026-03-29', '2026-03-28T23:00:00.000Z', '2026-03-29T22:00:00.000Z', 23],
    ['America/New_York', '2026-03-08', '2026-03-08T05:00:00.000Z', '2026-03-09T04:00:00.000Z', 23],
    ['Australia/Sydney', '2026-04-05', '2026-04-04T13:00:00.000Z', '2026-04-05T14:00:00.000Z', 25],
    ['Asia/Kolkata', '2026-06-01', '2026-05-31T18:30:00.000Z', '2026-06-01T18:30:00.000Z', 24],
    ['UTC', '2026-12-31', '2026-12-31T00:00:00.000Z', '2027-01-01T00:00:00.000Z', 24],
  ];
  for (const [tz, date, start, end, hours] of bounds) {
    it(`${date} in ${tz} runs ${start} → ${end} (${hours} h)`, () => {
      const b = localDayBounds(date, tz);
      assert.equal(b.start.toISOString(), start);
      assert.equal(b.end.toISOString(), end);
      assert.equal(b.hours, hours);
    });
  }

  const dates: Array<[string, string, string]> = [
    ['2026-10-24T22:30:00Z', 'Europe/Rome', '2026-10-25'], // 00:30 CEST
    ['2026-10-25T22:30:00Z', 'Europe/Rome', '2026-10-25'], // 23:30 CET
    ['2026-10-25T23:00:00Z', 'Europe/Rome', '2026-10-26'],
    ['2026-03-28T23:30:00Z', 'Europe/Rome', '2026-03-29'], // 00:30 CET
    ['2026-03-29T21:30:00Z', 'Europe/Rome', '2026-03-29'], // 23:30 CEST
    ['2026-03-29T22:00:00Z', 'Europe/Rome', '2026-03-30'],
    ['2026-06-01T03:00:00Z', 'America/Los_Angeles', '2026-05-31'],
  ];
  for (const [at, tz, want] of dates) {
    it(`${at} is ${want} in ${tz}`, () => assert.equal(localDate(new Date(at), tz), want));
  }

  it('finds the instant of a local hour, after the gap when the hour does not exist', () => {
    assert.equal(localTime('2026-06-10', 7, 'Europe/Rome').toISOString(), '2026-06-10T05:00:00.000Z');
    assert.equal(localTime('2026-10-26', 7, 'Europe/Rome').toISOString(), '2026-10-26T06:00:00.000Z');
    assert.equal(localTime('2026-03-29', 2, 'Europe/Rome').toISOString(), '2026-03-29T01:00:00.000Z');
  });

  it('does calendar arithmetic and validates dates', () => {
    assert.equal(addDays('2026-03-01', -1), '2026-02-28');
    assert.equal(addDays('2026-12-31', 1), '2027-01-01');
    assert.equal(isLocalDate('2026-02-29'), false);
    assert.equal(isLocalDate('2028-02-29'), true);
    assert.equal(isLocalDate('2026-1-01'), false);
  });

  it('writes local ISO times with the offset in force', () => {
    assert.equal(localIso(new Date('2026-10-25T00:30:00Z'), 'Europe/Rome'), '2026-10-25T02:30:00+02:00');
    assert.equal(localIso(new Date('2026-10-25T01:30:00Z'), 'Europe/Rome'), '2026-10-25T02:30:00+01:00');
    assert.equal(localIso(new Date('2026-06-01T12:00:00Z'), 'America/St_Johns'), '2026-06-01T09:30:00-02:30');
  });
});
