// The locksmith reboot window: LOCKSMITHD_REBOOT_WINDOW_START ("Thu 23:00", "04:00") and
// LOCKSMITHD_REBOOT_WINDOW_LENGTH (a Go duration, "1h30m"), with locksmith's semantics
// (pkg/timeutil/periodic.go):
// - the start is a wall-clock time in the machine's LOCAL time zone, daily or on one weekday; it is
//   computed with the Date getters and the local Date constructor, the way Go's time.Date works in
//   ref.Location(), so a DST change moves the opening with the wall clock;
// - the length is elapsed time added to the opening instant (Go's Start.Add(duration)), so a window
//   across a DST change is still exactly LENGTH long;
// - the end is inclusive: at opening + length the window still counts as open (locksmith compares
//   prev.End >= ref).
// Nothing here reads the clock: callers pass `now`.
import { KeelError } from '../lib/errors.js';

export interface RebootWindow {
  /** 0 = Sunday .. 6 = Saturday; null = every day. */
  weekday: number | null;
  /** Minute of the day at which the window opens (local time). */
  minutes: number;
  lengthMs: number;
}

/** A bad window start, length or duration; `reason` is the message without the value. */
export class RebootWindowError extends KeelError {
  constructor(
    readonly reason: string,
    message: string,
  ) {
    super('EWINDOW', message);
    this.name = 'RebootWindowError';
  }
}

const DAY_MS = 24 * 3600_000;
const WEEKDAYS = ['sun', 'mon', 'tue', 'wed', 'thu', 'fri', 'sat'];

/** Go's time.ParseDuration units, in milliseconds. */
const UNITS: Record<string, number> = {
  ns: 1e-6,
  us: 1e-3,
  µs: 1e-3,
  μs: 1e-3,
  ms: 1,
  s: 1000,
  m: 60_000,
  h: 3600_000,
};

/**
 * Parses a Go duration ("1h30m", "90m", "45s", "1.5h", "-2m", "0") into milliseconds, accepting
 * exactly what time.ParseDuration accepts: an optional sign, then one or more NUMBER UNIT pairs.
 */
export function parseGoDuration(s: string): number {
  const bad = (why: string) => new RebootWindowError(why, `invalid duration ${JSON.stringify(s)}: ${why}`);
  const m = /^([-+]?)(.*)$/s.exec(s)!;
  const sign = m[1] === '-' ? -1 : 1;
  const body = m[2];
  if (body === '0') return 0; // Go's special case: a bare zero needs no unit
  if (body === '') throw bad('empty');
  let total = 0;
  let rest = body;
  while (rest !== '') {
    const part = /^(\d*\.?\d*)([^\d.]*)/.exec(rest)!; // Go: a unit is everything up to the next digit or dot
    const [whole, num, unit] = part;
    if (num === '' || num === '.') throw bad('expected a number');
    if (unit === '') throw bad(`missing unit after ${num}`);
    if (!(unit in UNITS)) throw bad(`unknown unit ${JSON.stringify(unit)} (use ns, us, ms, s, m or h)`);
    total += Number(num) * UNITS[unit];
    rest = rest.slice(whole.length);
  }
  return sign * total;
}

/** Parses "HH:MM" or "Day HH:MM" (Day = sun..sat, any case), as locksmith's parseStart. */
export function parseWindowStart(start: string): { weekday: number | null; minutes: number } {
  const bad = (why: string) =>
    new RebootWindowError(why, `invalid reboot window start ${JSON.stringify(start)}: ${why}`);
  const f = start.trim().split(/\s+/).filter(Boolean);
  if (f.length < 1 || f.length > 2) throw bad('expected "HH:MM" or "Day HH:MM", e.g. "Thu 23:00"');
  let weekday: number | null = null;
  if (f.length === 2) {
    weekday = WEEKDAYS.indexOf(f[0].toLowerCase());
    if (weekday < 0) throw bad(`unknown day ${JSON.stringify(f[0])} (use Sun, Mon, Tue, Wed, Thu, Fri or Sat)`);
  }
  const t = /^(\d{1,2}):(\d{1,2})$/.exec(f[f.length - 1]);
  if (!t) throw bad('expected a time of day as HH:MM');
  const [h, min] = [Number(t[1]), Number(t[2])];
  if (h > 23) throw bad('hour must be between 0 and 23');
  if (min > 59) throw bad('minute must be between 0 and 59');
  return { weekday, minutes: h * 60 + min };
}

/**
 * Parses a window length. Stricter than locksmith (which takes any length >= 0): an empty window
 * could never be hit, and one longer than a week would overlap its own next opening.
 */
export function parseWindowLength(length: string): number {
  const bad = (why: string) =>
    new RebootWindowError(why, `invalid reboot window length ${JSON.stringify(length)}: ${why}`);
  let ms: number;
  try {
    ms = parseGoDuration(length.trim());
  } catch (e) {
    throw bad((e as RebootWindowError).reason);
  }
  if (ms <= 0) throw bad('must be longer than 0');
  if (ms > 7 * DAY_MS) throw bad('must be at most 7 days (168h)');
  return ms;
}

/** Parses a start and a length (see parseWindowStart, parseWindowLength); throws on bad input. */
export function parseWindow(start: string, length: string): RebootWindow {
  return { ...parseWindowStart(start), lengthMs: parseWindowLength(length) };
}

/** The opening on the local calendar day `dayDiff` days from `now`'s (Date normalizes overflowing days). */
function openingOn(w: RebootWindow, now: Date, dayDiff: number): Date {
  return new Date(
    now.getFullYear(),
    now.getMonth(),
    now.getDate() + dayDiff,
    Math.floor(w.minutes / 60),
    w.minutes % 60,
    0,
    0,
  );
}

/** Days between occurrences. */
const period = (w: RebootWindow) => (w.weekday === null ? 1 : 7);

/** The latest opening at or before `now` (locksmith's Previous). */
function previousOpening(w: RebootWindow, now: Date): Date {
  const back = w.weekday === null ? 0 : (now.getDay() - w.weekday + 7) % 7;
  const o = openingOn(w, now, -back);
  return o.getTime() <= now.getTime() ? o : openingOn(w, now, -back - period(w));
}

/** The earliest opening strictly after `now` (locksmith's Next). */
function nextOpening(w: RebootWindow, now: Date): Date {
  const ahead = w.weekday === null ? 0 : (w.weekday - now.getDay() + 7) % 7;
  const o = openingOn(w, now, ahead);
  return o.getTime() > now.getTime() ? o : openingOn(w, now, ahead + period(w));
}

/**
 * Whether `now` is inside the window. Only the latest opening matters: every occurrence has the
 * same length, so an earlier one cannot end later (this covers windows wrapping past midnight or
 * from Saturday into Sunday).
 */
export function inWindow(w: RebootWindow, now: Date): boolean {
  return now.getTime() <= previousOpening(w, now).getTime() + w.lengthMs;
}

/** Milliseconds from `now` until the window next opens; 0 when `now` is inside it. */
export function msUntilWindow(w: RebootWindow, now: Date): number {
  return inWindow(w, now) ? 0 : nextOpening(w, now).getTime() - now.getTime();
}
