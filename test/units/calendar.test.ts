// Calendar events: normalized form and next elapse, checked against `systemd-analyze calendar`
// (systemd 252, TZ=UTC), which printed every expected value below.
import assert from 'node:assert/strict';
import { nextElapse, normalizeCalendar, parseCalendar } from '../../units/calendar.js';

const at = (iso: string): number => Date.parse(iso);
const iso = (ms: number | null): string | null => (ms === null ? null : new Date(ms).toISOString());

// From Sunday 2026-11-29 07:00:00 UTC: [expression, normalized form, next elapse or null for never].
const BASE = at('2026-11-29T07:00:00Z');
const TABLE: [string, string, string | null][] = [
  ['minutely', '*-*-* *:*:00', '2026-11-29T07:01:00'],
  ['hourly', '*-*-* *:00:00', '2026-11-29T08:00:00'],
  ['daily', '*-*-* 00:00:00', '2026-11-30T00:00:00'],
  ['weekly', 'Mon *-*-* 00:00:00', '2026-11-30T00:00:00'],
  ['monthly', '*-*-01 00:00:00', '2026-12-01T00:00:00'],
  ['yearly', '*-01-01 00:00:00', '2027-01-01T00:00:00'],
  ['annually', '*-01-01 00:00:00', '2027-01-01T00:00:00'],
  ['quarterly', '*-01,04,07,10-01 00:00:00', '2027-01-01T00:00:00'],
  ['semiannually', '*-01,07-01 00:00:00', '2027-01-01T00:00:00'],
  ['*:0/15', '*-*-* *:00/15:00', '2026-11-29T07:15:00'],
  ['Mon..Fri 09:00', 'Mon..Fri *-*-* 09:00:00', '2026-11-30T09:00:00'],
  ['Mon..Fri 9:00', 'Mon..Fri *-*-* 09:00:00', '2026-11-30T09:00:00'],
  ['*-*-* 06:00:00', '*-*-* 06:00:00', '2026-11-30T06:00:00'],
  ['Sat,Sun *-*-* 10:00', 'Sat,Sun *-*-* 10:00:00', '2026-11-29T10:00:00'],
  ['*-*-01 00:00:00', '*-*-01 00:00:00', '2026-12-01T00:00:00'],
  ['2026-12-24', '2026-12-24 00:00:00', '2026-12-24T00:00:00'],
  ['*:*:0/10', '*-*-* *:*:00/10', '2026-11-29T07:00:10'],
  ['Mon *-*-1..7 03:00', 'Mon *-*-01..07 03:00:00', '2026-12-07T03:00:00'],
  ['*-02~01', '*-02~01 00:00:00', '2027-02-28T00:00:00'],
  ['*-*~03', '*-*~03 00:00:00', '2026-12-29T00:00:00'],
  ['*-*~01..03/2', '*-*~01..03/2 00:00:00', '2026-11-30T00:00:00'],
  ['*-02-29 12:00', '*-02-29 12:00:00', '2028-02-29T12:00:00'],
  ['*-*-31', '*-*-31 00:00:00', '2026-12-31T00:00:00'],
  ['12:00 UTC', '*-*-* 12:00:00 UTC', '2026-11-29T12:00:00'],
  ['daily Etc/UTC', '*-*-* 00:00:00 Etc/UTC', '2026-11-30T00:00:00'],
  ['Mon,Tue,Wed,Fri 10:00', 'Mon..Wed,Fri *-*-* 10:00:00', '2026-11-30T10:00:00'],
  ['Mon..Wed,Sat,Sun 12:00', 'Mon..Wed,Sat,Sun *-*-* 12:00:00', '2026-11-29T12:00:00'],
  ['Sun,Mon 9:00', 'Mon,Sun *-*-* 09:00:00', '2026-11-29T09:00:00'],
  ['Mon-Fri', 'Mon..Fri *-*-* 00:00:00', '2026-11-30T00:00:00'],
  ['Wednesday 00:00', 'Wed *-*-* 00:00:00', '2026-12-02T00:00:00'],
  ['*-*-* 5,3,1,3:00', '*-*-* 01,03,05:00:00', '2026-11-30T01:00:00'],
  ['0..23/6:00', '*-*-* 00..18/6:00:00', '2026-11-29T12:00:00'],
  ['*:1..10/4', '*-*-* *:01..09/4:00', '2026-11-29T07:01:00'],
  ['*-*-1..8/3', '*-*-01..07/3 00:00:00', '2026-12-01T00:00:00'],
  ['*-1,3,5..7-1', '*-01,03,05..07-01 00:00:00', '2027-01-01T00:00:00'],
  ['2026..2030/2-01-01', '2026..2030/2-01-01 00:00:00', '2028-01-01T00:00:00'],
  ['26-12-25', '2026-12-25 00:00:00', '2026-12-25T00:00:00'],
  ['Fri *-*-13', 'Fri *-*-13 00:00:00', '2027-08-13T00:00:00'],
  ['*:*:*', '*-*-* *:*:*', '2026-11-29T07:00:01'],
  ['*-*-* 23:59:59', '*-*-* 23:59:59', '2026-11-29T23:59:59'],
  ['@1800000000', '2027-01-15 08:00:00 UTC', '2027-01-15T08:00:00'],
  ['*-02-30', '*-02-30 00:00:00', null],
  ['2026-11-29 07:00:00', '2026-11-29 07:00:00', null],
];

describe('units/calendar', () => {
  describe('normalized form and next elapse from Sun 2026-11-29 07:00:00 UTC', () => {
    for (const [expr, normalized, next] of TABLE) {
      it(`${expr} → ${normalized}, ${next ?? 'never'}`, () => {
        const spec = parseCalendar(expr);
        assert.equal(normalizeCalendar(spec), normalized);
        assert.equal(iso(nextElapse(spec, BASE)), next === null ? null : `${next}.000Z`);
      });
    }
  });

  it('normalizes what it prints: the normalized form parses to the same spec', () => {
    for (const [expr] of TABLE) {
      const spec = parseCalendar(expr);
      assert.deepEqual(parseCalendar(normalizeCalendar(spec)), spec, expr);
    }
  });

  it('reads shorthands, weekdays and UTC in any case', () => {
    assert.equal(normalizeCalendar(parseCalendar('DAILY')), '*-*-* 00:00:00');
    assert.equal(normalizeCalendar(parseCalendar('mon..fri 9:00')), 'Mon..Fri *-*-* 09:00:00');
    assert.equal(normalizeCalendar(parseCalendar('MONDAY 9:00')), 'Mon *-*-* 09:00:00');
    assert.equal(normalizeCalendar(parseCalendar('hourly utc')), '*-*-* *:00:00 UTC');
  });

  it('prints weekday runs of three or more as ranges and shorter runs as lists', () => {
    assert.equal(normalizeCalendar(parseCalendar('Sat..Sun')), 'Sat,Sun *-*-* 00:00:00');
    assert.equal(normalizeCalendar(parseCalendar('Mon..Tue,Thu..Fri')), 'Mon,Tue,Thu,Fri *-*-* 00:00:00');
    assert.equal(normalizeCalendar(parseCalendar('Mon,Tue,Wed,Thu,Fri,Sat,Sun')), '*-*-* 00:00:00');
  });

  it('elapses strictly after the given instant, on whole seconds', () => {
    const daily = parseCalendar('daily');
    assert.equal(iso(nextElapse(daily, at('2026-11-30T00:00:00Z'))), '2026-12-01T00:00:00.000Z');
    assert.equal(iso(nextElapse(daily, at('2026-11-29T23:59:59.999Z'))), '2026-11-30T00:00:00.000Z');
    assert.equal(iso(nextElapse(parseCalendar('*:0/15'), at('2026-11-29T23:45:00Z'))), '2026-11-30T00:00:00.000Z');
    assert.equal(
      iso(nextElapse(parseCalendar('Mon..Fri 09:00'), at('2026-12-04T09:00:00Z'))),
      '2026-12-07T09:00:00.000Z',
    );
    assert.equal(
      iso(nextElapse(parseCalendar('*-12-31 23:59:59'), at('2026-12-31T23:59:59Z'))),
      '2027-12-31T23:59:59.000Z',
    );
  });

  it('skips months without a 31st', () => {
    const spec = parseCalendar('*-*-31');
    const seen: (string | null)[] = [];
    for (let t: number | null = at('2026-12-31T00:00:00Z'); seen.length < 4 && t !== null;) {
      t = nextElapse(spec, t);
      seen.push(iso(t));
    }
    assert.deepEqual(seen, [
      '2027-01-31T00:00:00.000Z',
      '2027-03-31T00:00:00.000Z',
      '2027-05-31T00:00:00.000Z',
      '2027-07-31T00:00:00.000Z',
    ]);
  });

  it('knows leap years, 2100 included', () => {
    assert.equal(
      iso(nextElapse(parseCalendar('*-02-29 12:00'), at('2028-02-29T12:00:00Z'))),
      '2032-02-29T12:00:00.000Z',
    );
    assert.equal(iso(nextElapse(parseCalendar('*-02-29'), at('2097-03-01T00:00:00Z'))), '2104-02-29T00:00:00.000Z');
    const lastOfFeb = parseCalendar('*-02~01');
    assert.equal(iso(nextElapse(lastOfFeb, at('2027-03-01T00:00:00Z'))), '2028-02-29T00:00:00.000Z');
    assert.equal(iso(nextElapse(lastOfFeb, at('2028-02-29T00:00:00Z'))), '2029-02-28T00:00:00.000Z');
  });

  it('counts "~" days back from the end of each month', () => {
    const spec = parseCalendar('*-*~7/2'); // the 7th, 5th, 3rd and last day from the end
    const seen: (string | null)[] = [];
    for (let t: number | null = at('2027-01-31T00:00:00Z'); seen.length < 5 && t !== null;) {
      t = nextElapse(spec, t);
      seen.push(iso(t)?.slice(0, 10) ?? null);
    }
    assert.deepEqual(seen, ['2027-02-22', '2027-02-24', '2027-02-26', '2027-02-28', '2027-03-25']);
    assert.equal(iso(nextElapse(parseCalendar('Sat *-*~1'), BASE)), '2027-07-31T00:00:00.000Z');
  });

  it('combines weekday and day of month', () => {
    const spec = parseCalendar('Mon *-*-29..31');
    assert.equal(iso(nextElapse(spec, BASE)), '2026-11-30T00:00:00.000Z');
    assert.equal(iso(nextElapse(spec, at('2026-11-30T00:00:00Z'))), '2027-03-29T00:00:00.000Z');
  });

  it('repeats within the day: an hour repetition past 23 starts again at its first value', () => {
    // systemd 252 lands on the next day's 06:00 and then skips to 15:00; the man page's
    // "0/15 means 0 and 15" says midnight, so Keel elapses at 00:00.
    assert.equal(
      iso(nextElapse(parseCalendar('*-*-* 0/15:00'), at('2026-11-30T15:00:00Z'))),
      '2026-12-01T00:00:00.000Z',
    );
  });

  it('stops at 2199 as systemd does', () => {
    assert.equal(
      iso(nextElapse(parseCalendar('2199-12-31 23:59:59'), at('2199-12-31T23:59:58Z'))),
      '2199-12-31T23:59:59.000Z',
    );
    assert.equal(nextElapse(parseCalendar('yearly'), at('2199-06-01T00:00:00Z')), null);
  });

  it('rejects a time that is not a finite number', () => {
    assert.throws(() => nextElapse(parseCalendar('daily'), Number.NaN), TypeError);
  });

  describe('rejects what systemd rejects, naming the value and the reason', () => {
    const BAD: [string, string][] = [
      ['', 'it is empty'],
      ['*', 'expected ":" after the hour'],
      ['*-*-* 12', 'expected ":" after the hour'],
      ['12:', 'expected a number for the minute at the end'],
      ['12:00:00:00', 'unexpected ":00"'],
      ['9:00 ', 'unexpected " " after the minute'],
      ['1-1-1-1', 'unexpected "-1" after the date'],
      ['*-*-* 24:00', 'hour 24 is out of range 0..23'],
      ['*-*-* *:*:60', 'second 60 is out of range 0..59'],
      ['*-13-01', 'month 13 is out of range 1..12'],
      ['*-*-00', 'day 0 is out of range 1..31'],
      ['*-*-32', 'day 32 is out of range 1..31'],
      ['*-*~29', 'day ~29 is out of range ~1..~28'],
      ['2200-01-01', 'year 2200 is out of range 1970..2199'],
      ['1969-01-01', 'year 1969 is out of range 1970..2199'],
      ['*:50/15', 'minute 50/15 never repeats within 0..59'],
      ['*:0/60', 'minute repetition /60 is longer than 0..59'],
      ['*-*-01/0', 'date repetition "/0" never advances'],
      ['*:10..1', 'minute range 10..1 runs backwards'],
      ['Fri..Mon', 'weekday range Fri..Mon runs backwards'],
      ['Mon.. 9:00', 'a weekday range has no end'],
      ['Mon..Tue..Wed', 'a weekday range cannot continue another range'],
      ['Mond', 'unknown weekday "Mond"'],
      ['*-1~1-1', 'unexpected "-1" after the date'],
      ['*:*:5.5', 'fractional seconds are not supported'],
      ['constructor', 'expected a number for the date or time at "constructor"'],
      ['12:00 Europe/Berlin', 'time zone "Europe/Berlin" is not supported'],
      ['9:00 UTC UTC', 'unexpected " UTC" after the minute'],
    ];
    for (const [expr, reason] of BAD) {
      it(`${JSON.stringify(expr)}: ${reason}`, () => {
        assert.throws(
          () => parseCalendar(expr),
          (err: unknown) => {
            assert.ok(err instanceof TypeError);
            assert.ok(err.message.startsWith(`cannot parse calendar event ${JSON.stringify(expr)}: `), err.message);
            assert.ok(err.message.includes(reason), err.message);
            return true;
          },
        );
      });
    }
  });
});
