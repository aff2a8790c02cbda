// The locksmith reboot window: parsing of LOCKSMITHD_REBOOT_WINDOW_START/LENGTH and Go durations,
// inside/outside checks (windows wrapping midnight, month ends and Saturday->Sunday) and exact
// waits. Dates are built with the local Date constructor in January 2026, when no time zone
// changes its offset, so the expectations hold in any TZ; the DST cases pin TZ=Europe/Berlin.
import assert from 'node:assert/strict';
import { inWindow, msUntilWindow, parseGoDuration, parseWindow } from '../../update/reboot-window.js';

const H = 3600_000;
const M = 60_000;
/** Local time on a day of January 2026 (Thu 1st; Thu 8th, Sat 10th, Sun 11th). */
const jan = (day: number, h: number, m = 0, s = 0) => new Date(2026, 0, day, h, m, s);

describe('update/reboot-window', () => {
  describe('parseGoDuration', () => {
    const GOOD: [string, number][] = [
      ['1h30m', 90 * M],
      ['90m', 90 * M],
      ['45s', 45_000],
      ['1h', H],
      ['1.5h', 90 * M],
      ['.5h', 30 * M],
      ['2h0m30s', 2 * H + 30_000],
      ['300ms', 300],
      ['1500us', 1.5],
      ['1µs', 0.001],
      ['2000000ns', 2],
      ['0', 0],
      ['-2m', -2 * M],
      ['+1h', H],
    ];
    for (const [s, ms] of GOOD)
      it(`parses ${JSON.stringify(s)} as ${ms} ms`, () => assert.equal(parseGoDuration(s), ms));

    it('rejects what Go rejects: no unit, unknown units, spaces, garbage', () => {
      for (const s of ['', '1', '1h30', 'h', '.h', '1x', '1H', '1h 30m', ' 1h', '--1h', '1d', 'soon']) {
        assert.throws(
          () => parseGoDuration(s),
          (e: Error) => e.message.startsWith(`invalid duration ${JSON.stringify(s)}: `),
          s,
        );
      }
    });
  });

  describe('parseWindow', () => {
    it('parses a weekday and time, a daily time, one-digit hours and any case of day', () => {
      assert.deepEqual(parseWindow('Thu 23:00', '1h'), { weekday: 4, minutes: 23 * 60, lengthMs: H });
      assert.deepEqual(parseWindow('04:00', '90m'), { weekday: null, minutes: 4 * 60, lengthMs: 90 * M });
      assert.deepEqual(parseWindow('Mon 1:05', '1h30m'), { weekday: 1, minutes: 65, lengthMs: 90 * M });
      assert.deepEqual(parseWindow('  sun   0:00 ', '45s'), { weekday: 0, minutes: 0, lengthMs: 45_000 });
      assert.deepEqual(parseWindow('SAT 23:59', '168h'), { weekday: 6, minutes: 23 * 60 + 59, lengthMs: 168 * H });
    });

    it('rejects bad starts with the reason', () => {
      const BAD: [string, RegExp][] = [
        ['Thu 25:00', /hour must be between 0 and 23/],
        ['23:60', /minute must be between 0 and 59/],
        ['Thursday 23:00', /unknown day "Thursday"/],
        ['Thu 23:00 UTC', /expected "HH:MM" or "Day HH:MM"/],
        ['', /expected "HH:MM"/],
        ['2300', /time of day as HH:MM/],
        ['Thu', /time of day as HH:MM/],
        ['12:00:00', /HH:MM/],
      ];
      for (const [start, re] of BAD) {
        assert.throws(
          () => parseWindow(start, '1h'),
          (e: Error) =>
            e.message.startsWith(`invalid reboot window start ${JSON.stringify(start)}: `) && re.test(e.message),
          start,
        );
      }
    });

    it('rejects lengths that are no duration, not positive or longer than a week', () => {
      const BAD: [string, RegExp][] = [
        ['1x', /unknown unit "x"/],
        ['', /empty/],
        ['0s', /longer than 0/],
        ['0', /longer than 0/],
        ['-1h', /longer than 0/],
        ['169h', /at most 7 days/],
      ];
      for (const [length, re] of BAD) {
        assert.throws(
          () => parseWindow('04:00', length),
          (e: Error) =>
            e.message.startsWith(`invalid reboot window length ${JSON.stringify(length)}: `) && re.test(e.message),
          length,
        );
      }
    });
  });

  describe('inWindow', () => {
    it('a daily window: open from its start through its end (inclusive, as locksmith)', () => {
      const w = parseWindow('04:00', '1h');
      assert.equal(inWindow(w, jan(8, 3, 59, 59)), false);
      assert.equal(inWindow(w, jan(8, 4, 0)), true);
      assert.equal(inWindow(w, jan(8, 4, 30)), true);
      assert.equal(inWindow(w, jan(8, 5, 0)), true);
      assert.equal(inWindow(w, jan(8, 5, 0, 1)), false);
      assert.equal(inWindow(w, jan(8, 16, 0)), false);
    });

    it('a daily window wrapping past midnight, also across a year end', () => {
      const w = parseWindow('23:30', '1h');
      assert.equal(inWindow(w, jan(8, 23, 29)), false);
      assert.equal(inWindow(w, jan(8, 23, 45)), true);
      assert.equal(inWindow(w, jan(9, 0, 15)), true);
      assert.equal(inWindow(w, jan(9, 0, 31)), false);
      assert.equal(inWindow(w, jan(1, 0, 20)), true, 'opened on 2025-12-31 at 23:30');
    });

    it('a weekly window is open on its day only, wrapping past midnight into the next day', () => {
      const w = parseWindow('Thu 23:00', '1h30m');
      assert.equal(inWindow(w, jan(8, 22, 59)), false);
      assert.equal(inWindow(w, jan(8, 23, 30)), true);
      assert.equal(inWindow(w, jan(9, 0, 30)), true, 'Friday 00:30');
      assert.equal(inWindow(w, jan(9, 0, 31)), false);
      assert.equal(inWindow(w, jan(7, 23, 30)), false, 'Wednesday');
      assert.equal(inWindow(w, jan(15, 23, 10)), true, 'the Thursday after');
    });

    it('a window wrapping from Saturday into Sunday', () => {
      const w = parseWindow('Sat 23:00', '3h');
      assert.equal(inWindow(w, jan(10, 22, 0)), false);
      assert.equal(inWindow(w, jan(10, 23, 30)), true);
      assert.equal(inWindow(w, jan(11, 1, 59)), true, 'Sunday 01:59');
      assert.equal(inWindow(w, jan(11, 2, 0)), true, 'Sunday 02:00, the inclusive end');
      assert.equal(inWindow(w, jan(11, 2, 1)), false);
      assert.equal(inWindow(w, jan(11, 23, 30)), false, 'Sunday night is no Saturday');
    });
  });

  describe('msUntilWindow', () => {
    it('daily: exact waits, 0 inside, across a month end', () => {
      const w = parseWindow('04:00', '1h');
      assert.equal(msUntilWindow(w, jan(8, 3, 0)), H);
      assert.equal(msUntilWindow(w, jan(8, 4, 20)), 0);
      assert.equal(msUntilWindow(w, jan(8, 5, 30)), 22.5 * H);
      assert.equal(msUntilWindow(w, jan(31, 23, 0)), 5 * H, 'to 1 February 04:00');
    });

    it('weekly: to later this week, to next week, 0 inside', () => {
      const w = parseWindow('Thu 23:00', '1h');
      assert.equal(msUntilWindow(w, jan(8, 22, 0)), H);
      assert.equal(msUntilWindow(w, jan(8, 23, 30)), 0);
      assert.equal(msUntilWindow(w, jan(9, 0, 30)), (6 * 24 + 22.5) * H, 'just closed: a week less 1h30');
      assert.equal(msUntilWindow(w, jan(7, 12, 0)), 35 * H, 'Wednesday noon');
      assert.equal(msUntilWindow(w, jan(11, 23, 0)), 4 * 24 * H, 'Sunday 23:00');
    });

    it('Saturday->Sunday window: from just after it closes', () => {
      const w = parseWindow('Sat 23:00', '3h');
      assert.equal(msUntilWindow(w, jan(11, 3, 0)), (6 * 24 + 20) * H);
      assert.equal(msUntilWindow(w, jan(11, 1, 0)), 0);
    });
  });

  describe('in local time across a DST change (TZ=Europe/Berlin, clocks go 02:00 -> 03:00 on 2024-03-31)', () => {
    let saved: string | undefined;
    before(() => {
      saved = process.env.TZ;
      process.env.TZ = 'Europe/Berlin';
    });
    after(() => {
      if (saved === undefined) delete process.env.TZ;
      else process.env.TZ = saved;
    });

    it('the start follows the wall clock: 03:00 tomorrow is 14 elapsed hours from 12:00 today', () => {
      const w = parseWindow('03:00', '1h');
      const now = new Date('2024-03-30T12:00:00+01:00');
      assert.equal(msUntilWindow(w, now), 14 * H);
      assert.equal(new Date(now.getTime() + 14 * H).toISOString(), '2024-03-31T01:00:00.000Z', '03:00 CEST');
    });

    it('the length is elapsed time: "Sun 01:00" + 3h ends at 05:00 CEST, not 04:00', () => {
      const w = parseWindow('Sun 01:00', '3h');
      assert.equal(inWindow(w, new Date('2024-03-31T04:30:00+02:00')), true);
      assert.equal(inWindow(w, new Date('2024-03-31T05:00:01+02:00')), false);
    });
  });
});
