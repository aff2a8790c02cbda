// When timers elapse: each On*Sec= base, earliest-wins, one-shot timers, Persistent= catch-up,
// RandomizedDelaySec= and AccuracySec=.
import assert from 'node:assert/strict';
import { nextTimerElapse, type TimerFacts } from '../../units/timer-math.js';
import type { TimerConfig } from '../../units/types.js';

const MIN = 60_000;
const HOUR = 60 * MIN;
const at = (iso: string): number => Date.parse(iso);

// Ten minutes after boot, at Sunday 2026-11-29 07:00:00 UTC; the manager started 2s after boot
// and the timer 5s after boot.
const NOW_MONO = 10 * MIN;
const NOW_REAL = at('2026-11-29T07:00:00Z');
const toReal = (mono: number): number => mono + NOW_REAL - NOW_MONO;

function timer(over: Partial<TimerConfig>): TimerConfig {
  return {
    onBootSec: [],
    onStartupSec: [],
    onActiveSec: [],
    onUnitActiveSec: [],
    onUnitInactiveSec: [],
    onCalendar: [],
    persistent: false,
    randomizedDelaySec: 0,
    accuracySec: MIN,
    unit: 'job.service',
    ...over,
  };
}

function facts(over: Partial<TimerFacts> = {}): TimerFacts {
  return {
    bootMs: 0,
    startupMs: 2000,
    activatedMs: 5000,
    lastTriggerMs: null,
    unitLastActiveMs: null,
    unitLastInactiveMs: null,
    nowMonotonic: NOW_MONO,
    nowRealtime: NOW_REAL,
    ...over,
  };
}

const never = (): number => assert.fail('random() called without RandomizedDelaySec=');

describe('units/timer-math nextTimerElapse', () => {
  describe('monotonic timers count from their own base', () => {
    it('OnBootSec= from boot', () => {
      assert.deepEqual(nextTimerElapse(timer({ onBootSec: [15 * MIN] }), facts(), never), {
        monotonic: 15 * MIN,
        realtime: null,
        dueNow: false,
        accuracyMs: MIN,
      });
    });

    it('OnStartupSec= from the manager start', () => {
      assert.equal(nextTimerElapse(timer({ onStartupSec: [15 * MIN] }), facts(), never).monotonic, 2000 + 15 * MIN);
    });

    it('OnActiveSec= from the timer activation, which moves when the timer is restarted', () => {
      assert.equal(nextTimerElapse(timer({ onActiveSec: [HOUR] }), facts(), never).monotonic, 5000 + HOUR);
      assert.equal(
        nextTimerElapse(timer({ onActiveSec: [HOUR] }), facts({ activatedMs: 9 * MIN }), never).monotonic,
        9 * MIN + HOUR,
      );
    });

    it('OnUnitActiveSec= from the last activation of the unit, following it when it moves', () => {
      const cfg = timer({ onUnitActiveSec: [HOUR] });
      assert.equal(nextTimerElapse(cfg, facts({ unitLastActiveMs: 6 * MIN }), never).monotonic, 6 * MIN + HOUR);
      assert.equal(
        nextTimerElapse(cfg, facts({ unitLastActiveMs: 70 * MIN, nowMonotonic: 71 * MIN }), never).monotonic,
        70 * MIN + HOUR,
      );
    });

    it('OnUnitInactiveSec= from the last deactivation of the unit', () => {
      assert.equal(
        nextTimerElapse(timer({ onUnitInactiveSec: [30 * MIN] }), facts({ unitLastInactiveMs: 7 * MIN }), never)
          .monotonic,
        37 * MIN,
      );
    });

    it('does not arm OnUnitActiveSec=/OnUnitInactiveSec= for a unit that never ran', () => {
      const cfg = timer({ onUnitActiveSec: [HOUR], onUnitInactiveSec: [HOUR] });
      assert.deepEqual(nextTimerElapse(cfg, facts(), never), {
        monotonic: null,
        realtime: null,
        dueNow: false,
        accuracyMs: MIN,
      });
      assert.equal(nextTimerElapse(cfg, facts({ unitLastActiveMs: 0 }), never).monotonic, null);
    });

    it('counts OnUnitActiveSec= from the last trigger when the unit did not start since', () => {
      // Triggered at 8min, but the unit's start was skipped (a failed condition): 8min + 1h.
      const f = facts({ lastTriggerMs: toReal(8 * MIN), unitLastActiveMs: 1 * MIN });
      assert.equal(nextTimerElapse(timer({ onUnitActiveSec: [HOUR] }), f, never).monotonic, 8 * MIN + HOUR);
    });
  });

  it('arms the earliest of all monotonic timers', () => {
    const cfg = timer({
      onBootSec: [HOUR, 50 * MIN],
      onStartupSec: [30 * MIN],
      onActiveSec: [20 * MIN],
      onUnitActiveSec: [25 * MIN],
    });
    assert.equal(nextTimerElapse(cfg, facts({ unitLastActiveMs: 3 * MIN }), never).monotonic, 5000 + 20 * MIN);
  });

  describe('one-shot timers (OnBootSec=, OnStartupSec=, OnActiveSec=)', () => {
    it('elapse at once when already past and the timer has not triggered yet', () => {
      const r = nextTimerElapse(timer({ onBootSec: [5 * MIN] }), facts(), never);
      assert.deepEqual(r, { monotonic: 5 * MIN, realtime: null, dueNow: true, accuracyMs: MIN });
    });

    it('are done once past after a trigger, leaving the timer elapsed', () => {
      const f = facts({ lastTriggerMs: toReal(5 * MIN) });
      assert.deepEqual(nextTimerElapse(timer({ onBootSec: [5 * MIN], onStartupSec: [1 * MIN] }), f, never), {
        monotonic: null,
        realtime: null,
        dueNow: false,
        accuracyMs: MIN,
      });
    });

    it('leave the later one-shots and the repeating timers armed', () => {
      const f = facts({ lastTriggerMs: toReal(5 * MIN), unitLastActiveMs: 5 * MIN + 1000 });
      const cfg = timer({ onBootSec: [5 * MIN, 2 * HOUR], onUnitActiveSec: [HOUR] });
      assert.equal(nextTimerElapse(cfg, f, never).monotonic, 5 * MIN + 1000 + HOUR);
      assert.equal(nextTimerElapse(timer({ onBootSec: [5 * MIN, 2 * HOUR] }), f, never).monotonic, 2 * HOUR);
    });
  });

  describe('calendar timers', () => {
    it('elapse at the next calendar event after the timer activation', () => {
      assert.deepEqual(nextTimerElapse(timer({ onCalendar: ['daily'] }), facts(), never), {
        monotonic: null,
        realtime: at('2026-11-30T00:00:00Z'),
        dueNow: false,
        accuracyMs: MIN,
      });
    });

    it('arm the earliest of several events', () => {
      const r = nextTimerElapse(
        timer({ onCalendar: ['daily', '*:0/15', 'Mon..Fri 09:00'] }),
        facts({ activatedMs: NOW_MONO }),
        never,
      );
      assert.equal(r.realtime, at('2026-11-29T07:15:00Z'));
    });

    it('are due when an event passed since the activation and the timer has not triggered', () => {
      // Activated at 06:50:05; recomputed at 07:00:00 before the 07:00 trigger was recorded.
      const r = nextTimerElapse(timer({ onCalendar: ['*:0/15'] }), facts(), never);
      assert.deepEqual([r.realtime, r.dueNow], [at('2026-11-29T07:00:00Z'), true]);
    });

    it('count from the last trigger of this activation', () => {
      const f = facts({
        lastTriggerMs: at('2026-11-29T07:00:00.050Z'),
        nowRealtime: at('2026-11-29T07:00:01Z'),
        nowMonotonic: NOW_MONO + 1000,
      });
      assert.equal(nextTimerElapse(timer({ onCalendar: ['hourly'] }), f, never).realtime, at('2026-11-29T08:00:00Z'));
    });

    it('sit beside monotonic timers, each armed on its own clock', () => {
      const r = nextTimerElapse(timer({ onBootSec: [HOUR], onCalendar: ['daily'] }), facts(), never);
      assert.deepEqual(r, { monotonic: HOUR, realtime: at('2026-11-30T00:00:00Z'), dueNow: false, accuracyMs: MIN });
    });

    it('ignore an event that never comes again', () => {
      assert.equal(nextTimerElapse(timer({ onCalendar: ['2020-01-01'] }), facts(), never).realtime, null);
    });

    it('throw the calendar TypeError for an event the loader should have rejected', () => {
      assert.throws(
        () => nextTimerElapse(timer({ onCalendar: ['Fri..Mon'] }), facts(), never),
        /^TypeError: cannot parse calendar event "Fri\.\.Mon": /,
      );
    });
  });

  describe('Persistent=', () => {
    const cfg = timer({ onCalendar: ['daily'], persistent: true });

    it('is due now when the stamp is older than the last missed event, caught up at the manager start', () => {
      const r = nextTimerElapse(cfg, facts({ lastTriggerMs: at('2026-11-27T00:00:05Z') }), never);
      assert.equal(r.dueNow, true);
      assert.equal(r.realtime, toReal(2000)); // the missed 2026-11-28 00:00, moved up to the manager start
    });

    it('is not due when the stamp is newer than the last event', () => {
      const r = nextTimerElapse(cfg, facts({ lastTriggerMs: at('2026-11-29T00:00:03Z') }), never);
      assert.deepEqual([r.realtime, r.dueNow], [at('2026-11-30T00:00:00Z'), false]);
    });

    it('waits for the next event on the first activation, without a stamp', () => {
      const r = nextTimerElapse(cfg, facts(), never);
      assert.deepEqual([r.realtime, r.dueNow], [at('2026-11-30T00:00:00Z'), false]);
    });
  });

  describe('RandomizedDelaySec=', () => {
    it('adds a delay drawn from random() on each clock', () => {
      const draws = [0.5, 0.25];
      const cfg = timer({ onBootSec: [HOUR], onCalendar: ['daily'], randomizedDelaySec: HOUR });
      const r = nextTimerElapse(cfg, facts(), () => draws.shift()!);
      assert.deepEqual([r.monotonic, r.realtime], [HOUR + 30 * MIN, at('2026-11-30T00:15:00Z')]);
      assert.deepEqual(draws, []);
    });

    it('spreads a Persistent= catch-up after the manager start, so it may not be due yet', () => {
      const cfg = timer({ onCalendar: ['daily'], persistent: true, randomizedDelaySec: HOUR });
      const r = nextTimerElapse(cfg, facts({ lastTriggerMs: at('2026-11-27T00:00:05Z') }), () => 0.5);
      assert.deepEqual([r.realtime, r.dueNow], [toReal(2000) + 30 * MIN, false]);
    });

    it('stays below the configured spread', () => {
      const r = nextTimerElapse(timer({ onActiveSec: [MIN], randomizedDelaySec: 1000 }), facts(), () => 0.9999999);
      assert.equal(r.monotonic, 5000 + MIN + 999);
    });
  });

  it('passes AccuracySec= through as the coalescing window', () => {
    assert.equal(nextTimerElapse(timer({ onBootSec: [HOUR], accuracySec: 1 }), facts(), never).accuracyMs, 1);
  });
});
