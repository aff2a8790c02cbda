// When a timer unit elapses next (systemd.timer(5), systemd's timer_enter_waiting). Pure: the
// runner passes the clocks and timestamps in, arms what comes out, and recomputes after every
// trigger, every state change of the triggered unit, and every clock jump.
import { nextElapse, parseCalendar } from './calendar.js';
import type { TimerConfig } from './types.js';

/** What the manager knows when it computes a timer; monotonic ms (CLOCK_MONOTONIC) unless named realtime. */
export interface TimerFacts {
  /** Monotonic time of kernel boot (0 on Linux, where CLOCK_MONOTONIC counts from boot). */
  bootMs: number;
  /** When the manager (PID 1) started. */
  startupMs: number;
  /** When this timer unit was started. */
  activatedMs: number;
  /**
   * Realtime (epoch ms) of this timer's last trigger, or null. Pass a trigger of the current
   * activation, or the Persistent= stamp loaded when the timer started; systemd forgets the last
   * trigger on every timer start and reloads it only from the stamp, so never pass a stale one.
   */
  lastTriggerMs: number | null;
  /** When the triggered unit last became active; null (or 0) if it never did. */
  unitLastActiveMs: number | null;
  /** When the triggered unit last became inactive; null (or 0) if it never did. */
  unitLastInactiveMs: number | null;
  nowMonotonic: number;
  /** Realtime (epoch ms) now. */
  nowRealtime: number;
}

/** The next elapse of a timer: at most one monotonic and one realtime deadline to arm. */
export interface TimerElapse {
  /** Earliest On*Sec= elapse (monotonic ms), RandomizedDelaySec= included; null if none is armed. */
  monotonic: number | null;
  /** Earliest OnCalendar= elapse (epoch ms), RandomizedDelaySec= included; null if none is armed. */
  realtime: number | null;
  /** An armed deadline is not in the future: trigger now (a missed Persistent= run, a late OnBootSec=). */
  dueNow: boolean;
  /** AccuracySec=: the runner may fire anywhere in [deadline, deadline + accuracyMs] to coalesce wake-ups. */
  accuracyMs: number;
}

/**
 * Computes when a timer elapses next. Both deadlines null (and dueNow false) means the timer has
 * elapsed for good, as systemd's "elapsed" state. `random` returns [0, 1) for RandomizedDelaySec=.
 * Throws the TypeError of parseCalendar for an OnCalendar= the loader should have rejected.
 */
export function nextTimerElapse(cfg: TimerConfig, facts: TimerFacts, random: () => number = Math.random): TimerElapse {
  const offset = facts.nowRealtime - facts.nowMonotonic; // realtime = monotonic + offset
  const lastTrigger = facts.lastTriggerMs;
  // Only a trigger of this activation has a monotonic time in systemd; a stamp from before has none.
  const lastTriggerMono = lastTrigger !== null && lastTrigger - offset >= facts.activatedMs ? lastTrigger - offset : 0;

  const monotonic: number[] = [];
  // OnBootSec=, OnStartupSec=, OnActiveSec= fire once: a past elapse still fires while the timer
  // has never triggered, and is dropped once it has.
  const once = (base: number, spans: number[]): void => {
    for (const span of spans) {
      const at = base + span;
      if (lastTrigger === null || at >= facts.nowMonotonic) monotonic.push(at);
    }
  };
  once(facts.bootMs, cfg.onBootSec);
  once(facts.startupMs, cfg.onStartupSec);
  once(facts.activatedMs, cfg.onActiveSec);
  // OnUnitActiveSec=/OnUnitInactiveSec= count from the unit's last change (or the last trigger,
  // if later) and are not armed until one of them happened.
  const relative = (unitMs: number | null, spans: number[]): void => {
    const base = Math.max(unitMs ?? 0, lastTriggerMono);
    if (base > 0) for (const span of spans) monotonic.push(base + span);
  };
  relative(facts.unitLastActiveMs, cfg.onUnitActiveSec);
  relative(facts.unitLastInactiveMs, cfg.onUnitInactiveSec);

  const realtime: number[] = [];
  // Calendar events count from the last trigger (so a missed Persistent= run is in the past), else
  // from the timer's activation.
  const base = lastTrigger ?? facts.activatedMs + offset;
  // A missed elapse is moved to the manager's start, so RandomizedDelaySec= still spreads boot-time catch-ups.
  const startupRealtime = facts.startupMs + offset;
  for (const text of cfg.onCalendar) {
    const at = nextElapse(parseCalendar(text), base);
    if (at !== null) realtime.push(Math.max(at, startupRealtime));
  }

  const delayed = (list: number[]): number | null => {
    if (list.length === 0) return null;
    const spread = cfg.randomizedDelaySec;
    return Math.min(...list) + (spread > 0 && Number.isFinite(spread) ? Math.floor(random() * spread) : 0);
  };
  const mono = delayed(monotonic);
  const real = delayed(realtime);
  return {
    monotonic: mono,
    realtime: real,
    dueNow: (mono !== null && mono <= facts.nowMonotonic) || (real !== null && real <= facts.nowRealtime),
    accuracyMs: cfg.accuracySec,
  };
}
