// systemd calendar events (systemd.time(7)): parse, print the normalized form, find the next elapse.
// Pure. Follows systemd's calendarspec.c (v252) closely, so `systemd-analyze calendar` is the oracle.

const MIN_YEAR = 1970;
const MAX_YEAR = 2199; // systemd stops searching here; an event past it never elapses

/** One element of a comma list: `start`, `start..stop`, `start/repeat` or `start..stop/repeat`. */
export interface CalendarComponent {
  start: number;
  /** Last value of a range; null for a single value or an open-ended repetition. */
  stop: number | null;
  /** Step between values; 0 for a single value (a range without /N steps by 1). */
  repeat: number;
}

/** The components of one field, or null for `*` (any value). */
export type CalendarField = CalendarComponent[] | null;

/** A parsed, normalized calendar event. */
export interface CalendarSpec {
  /** Allowed weekdays, bit 0 = Monday .. bit 6 = Sunday; 0 = every day. */
  weekdays: number;
  year: CalendarField;
  month: CalendarField;
  /** Day of the month, or with `endOfMonth` days back from the month's end (1 = last day). */
  day: CalendarField;
  endOfMonth: boolean;
  hour: CalendarField;
  minute: CalendarField;
  /** Whole seconds (fractions are not supported). */
  second: CalendarField;
  /** 'UTC', another name of UTC as written ('Etc/UTC', 'GMT'...), or null: the local zone, UTC on Keel. */
  timezone: string | null;
}

const WEEKDAYS = ['Mon', 'Tue', 'Wed', 'Thu', 'Fri', 'Sat', 'Sun'];
// Longest first: "Monday" must win over "Mon".
const WEEKDAY_NAMES: [string, number][] = [
  'monday',
  'tuesday',
  'wednesday',
  'thursday',
  'friday',
  'saturday',
  'sunday',
].flatMap((full, nr): [string, number][] => [
  [full, nr],
  [full.slice(0, 3), nr],
]);

// Zone names that are UTC; any other zone would need a tz database Keel does not ship.
const UTC_NAMES = new Set([
  'UTC',
  'Etc/UTC',
  'UCT',
  'Etc/UCT',
  'Universal',
  'Etc/Universal',
  'Zulu',
  'Etc/Zulu',
  'GMT',
  'Etc/GMT',
  'GMT0',
  'Etc/GMT0',
  'GMT+0',
  'Etc/GMT+0',
  'GMT-0',
  'Etc/GMT-0',
  'Greenwich',
  'Etc/Greenwich',
]);

const c0 = (start: number): CalendarComponent => ({ start, stop: null, repeat: 0 });
const MIDNIGHT = { hour: [c0(0)], minute: [c0(0)], second: [c0(0)] };
const SHORTHANDS: Record<string, Partial<CalendarSpec>> = {
  minutely: { second: [c0(0)] },
  hourly: { minute: [c0(0)], second: [c0(0)] },
  daily: MIDNIGHT,
  weekly: { weekdays: 1, ...MIDNIGHT },
  monthly: { day: [c0(1)], ...MIDNIGHT },
  quarterly: { month: [1, 4, 7, 10].map(c0), day: [c0(1)], ...MIDNIGHT },
  ...Object.fromEntries(
    ['semiannually', 'semi-annually', 'biannually', 'bi-annually'].map((name) => [
      name,
      { month: [1, 7].map(c0), day: [c0(1)], ...MIDNIGHT },
    ]),
  ),
  ...Object.fromEntries(
    ['yearly', 'annually', 'anually' /* systemd's old spelling */].map((name) => [
      name,
      { month: [c0(1)], day: [c0(1)], ...MIDNIGHT },
    ]),
  ),
};

/** Why a calendar event is rejected; parseCalendar turns it into the TypeError naming the text. */
class Reason extends Error {}

interface Cursor {
  s: string;
  i: number;
}

/**
 * Parses a calendar event ("daily", "Mon..Fri 09:00", "*-*-01 00:00:00 UTC", "@1700000000") into its
 * normalized spec. Throws TypeError "cannot parse calendar event "x": reason".
 */
export function parseCalendar(text: string): CalendarSpec {
  try {
    return parse(String(text));
  } catch (err) {
    if (err instanceof Reason)
      throw new TypeError(`cannot parse calendar event ${JSON.stringify(text)}: ${err.message}`, { cause: err });
    throw err;
  }
}

function parse(text: string): CalendarSpec {
  const spec: CalendarSpec = {
    weekdays: 0,
    year: null,
    month: null,
    day: null,
    endOfMonth: false,
    hour: null,
    minute: null,
    second: null,
    timezone: null,
  };
  let body = text;
  if (/ utc$/i.test(body)) {
    spec.timezone = 'UTC';
    body = body.slice(0, -4);
  } else {
    const space = body.lastIndexOf(' ');
    const zone = body.slice(space + 1);
    if (
      space >= 0 &&
      /^[A-Za-z][\w+\-/]*$/.test(zone) &&
      !isWeekdayList(zone) &&
      !Object.hasOwn(SHORTHANDS, zone.toLowerCase())
    ) {
      if (!UTC_NAMES.has(zone))
        throw new Reason(`time zone "${zone}" is not supported (Keel runs on UTC; write UTC or no zone)`);
      spec.timezone = zone;
      body = body.slice(0, space);
    }
  }
  if (body === '') throw new Reason('it is empty');

  if (Object.hasOwn(SHORTHANDS, body.toLowerCase()))
    Object.assign(spec, structuredClone(SHORTHANDS[body.toLowerCase()]));
  else {
    const c: Cursor = { s: body, i: 0 };
    spec.weekdays = parseWeekdays(c);
    if (!parseDate(c, spec)) parseTime(c, spec);
    if (c.i < c.s.length) throw new Reason(`unexpected "${c.s.slice(c.i)}"`);
  }
  normalize(spec);
  validate(spec);
  return spec;
}

function isWeekdayList(word: string): boolean {
  return word.split(/,|\.\.|-/).every((w) => WEEKDAY_NAMES.some(([name]) => name === w.toLowerCase()));
}

// `Mon`, `Mon,Wed`, `Mon..Fri`, `Mon-Fri`; returns the bit set (0 when the text starts otherwise).
function parseWeekdays(c: Cursor): number {
  let bits = 0;
  let from = -1; // the start of an open range
  for (let first = true; ; first = false) {
    const rest = c.s.slice(c.i).toLowerCase();
    const hit = WEEKDAY_NAMES.find(([name]) => rest.startsWith(name));
    if (!hit) {
      if (first) return 0;
      throw new Reason(`expected a weekday at "${c.s.slice(c.i)}"`);
    }
    const [name, nr] = hit;
    if (!/^([-., ]|$)/.test(rest.slice(name.length)))
      throw new Reason(`unknown weekday "${c.s.slice(c.i).split(/[-., ]/)[0]}"`);
    if (from > nr) throw new Reason(`weekday range ${WEEKDAYS[from]}..${WEEKDAYS[nr]} runs backwards`);
    for (let d = from >= 0 ? from : nr; d <= nr; d++) bits |= 1 << d;
    c.i += name.length;
    const ch = c.s[c.i];
    if (ch === undefined) return bits;
    if (ch === ' ') return (skipSpaces(c), bits);
    if (ch === '.' || ch === '-') {
      if (from >= 0) throw new Reason('a weekday range cannot continue another range');
      if (ch === '.' && c.s[c.i + 1] !== '.') throw new Reason('expected ".." between weekdays');
      from = nr;
      c.i += ch === '.' ? 2 : 1;
    } else if (ch === ',') {
      from = -1;
      c.i++;
    }
    if (c.i >= c.s.length || c.s[c.i] === ' ') {
      if (from >= 0) throw new Reason('a weekday range has no end');
      return (skipSpaces(c), bits);
    }
  }
}

function skipSpaces(c: Cursor): void {
  while (c.s[c.i] === ' ') c.i++;
}

// `[YYYY-]MM-DD`, `MM~DD` or `@EPOCH`; true when nothing may follow (the @ form carries its own time).
function parseDate(c: Cursor, spec: CalendarSpec): boolean {
  if (c.i >= c.s.length) return false;
  if (c.s[c.i] === '@') return (parseEpoch(c, spec), true);
  const start = c.i;
  const first = parseField(c, 'date or time', false);
  if (c.i >= c.s.length || c.s[c.i] === ':') {
    c.i = start; // a time, not a date
    return false;
  }
  separator(c, spec);
  const second = parseField(c, 'date', false);
  if (c.i >= c.s.length || c.s[c.i] === ' ') {
    [spec.month, spec.day] = [first, second];
    skipSpaces(c);
    return false;
  }
  if (spec.endOfMonth) throw new Reason('"~" must come between month and day');
  separator(c, spec);
  const third = parseField(c, 'date', false);
  if (c.i < c.s.length && c.s[c.i] !== ' ') throw new Reason(`unexpected "${c.s.slice(c.i)}" after the date`);
  [spec.year, spec.month, spec.day] = [first, second, third];
  skipSpaces(c);
  return false;
}

function separator(c: Cursor, spec: CalendarSpec): void {
  const ch = c.s[c.i++];
  if (ch === '~') spec.endOfMonth = true;
  else if (ch !== '-') throw new Reason(`expected "-" or "~" in the date, found "${ch}"`);
}

function parseEpoch(c: Cursor, spec: CalendarSpec): void {
  const m = /^@(\d+)/.exec(c.s.slice(c.i));
  if (!m) throw new Reason('expected seconds since the epoch after "@"');
  c.i += m[0].length;
  const t = new Date(Number(m[1]) * 1000);
  if (Number.isNaN(t.getTime())) throw new Reason(`@${m[1]} is out of range`);
  spec.year = [c0(t.getUTCFullYear())];
  spec.month = [c0(t.getUTCMonth() + 1)];
  spec.day = [c0(t.getUTCDate())];
  spec.hour = [c0(t.getUTCHours())];
  spec.minute = [c0(t.getUTCMinutes())];
  spec.second = [c0(t.getUTCSeconds())];
  spec.timezone = 'UTC';
}

// `HH:MM[:SS]`; no time at all means 00:00:00, a missing second means :00.
function parseTime(c: Cursor, spec: CalendarSpec): void {
  if (c.i >= c.s.length) return void Object.assign(spec, structuredClone(MIDNIGHT));
  spec.hour = parseField(c, 'hour', false);
  if (c.s[c.i] !== ':')
    throw new Reason(c.i < c.s.length ? `unexpected "${c.s.slice(c.i)}"` : 'expected ":" after the hour');
  c.i++;
  spec.minute = parseField(c, 'minute', false);
  if (c.i >= c.s.length) return void (spec.second = [c0(0)]);
  if (c.s[c.i] !== ':') throw new Reason(`unexpected "${c.s.slice(c.i)}" after the minute`);
  c.i++;
  spec.second = parseField(c, 'second', true);
}

// `*` or a comma list of `N`, `N..M`, `N/R`, `N..M/R`.
function parseField(c: Cursor, what: string, seconds: boolean): CalendarField {
  if (c.s[c.i] === '*') {
    c.i++;
    return seconds ? [{ start: 0, stop: null, repeat: 1 }] : null; // systemd's "every second"
  }
  const list: CalendarComponent[] = [];
  for (;;) {
    const start = parseNumber(c, what, seconds);
    let stop: number | null = null;
    let repeat = 0;
    if (c.s.startsWith('..', c.i)) {
      c.i += 2;
      stop = parseNumber(c, what, seconds);
      repeat = 1;
    }
    if (c.s[c.i] === '/') {
      c.i++;
      repeat = parseNumber(c, what, seconds);
      if (repeat === 0) throw new Reason(`${what} repetition "/0" never advances`);
    }
    const ch = c.s[c.i];
    if (ch !== undefined && !' ,-~:'.includes(ch)) throw new Reason(`unexpected "${c.s.slice(c.i)}" in the ${what}`);
    list.push({ start, stop, repeat });
    if (ch !== ',') return list;
    c.i++;
  }
}

function parseNumber(c: Cursor, what: string, seconds: boolean): number {
  const m = /^\d+/.exec(c.s.slice(c.i));
  if (!m)
    throw new Reason(`expected a number for the ${what} ${c.i < c.s.length ? `at "${c.s.slice(c.i)}"` : 'at the end'}`);
  c.i += m[0].length;
  if (seconds && c.s[c.i] === '.' && c.s[c.i + 1] !== '.') throw new Reason('fractional seconds are not supported');
  const n = Number(m[0]);
  if (n > 0x7fffffff) throw new Reason(`${what} ${m[0]} is out of range`);
  return n;
}

// systemd's calendar_spec_normalize: two-digit years, sorted and deduplicated lists, trimmed ranges.
function normalize(spec: CalendarSpec): void {
  if (spec.weekdays >= 127) spec.weekdays = 0;
  if (spec.endOfMonth && !spec.day) spec.endOfMonth = false;
  for (const c of spec.year ?? []) {
    c.start = fixYear(c.start);
    if (c.stop !== null) c.stop = fixYear(c.stop);
  }
  for (const key of ['year', 'month', 'day', 'hour', 'minute', 'second'] as const) {
    const list = spec[key];
    if (!list) continue;
    for (const c of list) {
      if (c.stop === null) continue;
      if (c.stop > c.start && c.repeat > 0) c.stop -= (c.stop - c.start) % c.repeat; // end on a step
      if (c.stop === c.start) [c.stop, c.repeat] = [null, 0];
    }
    list.sort((a, b) => a.start - b.start || (a.stop ?? -1) - (b.stop ?? -1) || a.repeat - b.repeat);
    spec[key] = list.filter((c, i) => i === 0 || compare(list[i - 1], c) !== 0);
  }
}

const fixYear = (y: number): number => (y < 70 ? y + 2000 : y < 100 ? y + 1900 : y);
const compare = (a: CalendarComponent, b: CalendarComponent): number =>
  a.start - b.start || (a.stop ?? -1) - (b.stop ?? -1) || a.repeat - b.repeat;

// systemd's calendar_spec_valid, with a reason for each rejection.
function validate(spec: CalendarSpec): void {
  checkField(spec.year, 'year', MIN_YEAR, MAX_YEAR, false);
  checkField(spec.month, 'month', 1, 12, false);
  checkField(spec.day, 'day', 1, 31, spec.endOfMonth);
  checkField(spec.hour, 'hour', 0, 23, false);
  checkField(spec.minute, 'minute', 0, 59, false);
  checkField(spec.second, 'second', 0, 59, false);
}

function checkField(list: CalendarField, what: string, from: number, to: number, endOfMonth: boolean): void {
  if (endOfMonth) to -= 3; // "~" counts at most 28 days back, so every month has the day
  const show = (n: number): string => (endOfMonth ? `~${n}` : `${n}`);
  for (const c of list ?? []) {
    for (const n of c.stop === null ? [c.start] : [c.start, c.stop]) {
      if (n < from || n > to) throw new Reason(`${what} ${show(n)} is out of range ${show(from)}..${show(to)}`);
    }
    if (c.repeat > to - from) throw new Reason(`${what} repetition /${c.repeat} is longer than ${from}..${to}`);
    if (c.stop !== null && c.start + c.repeat > c.stop)
      throw new Reason(`${what} range ${show(c.start)}..${show(c.stop)} runs backwards`);
    if (c.stop === null && c.repeat > 0 && (endOfMonth ? c.start - c.repeat < from : c.start + c.repeat > to)) {
      throw new Reason(`${what} ${show(c.start)}/${c.repeat} never repeats within ${show(from)}..${show(to)}`);
    }
  }
}

/** Prints the spec as `systemd-analyze calendar` prints "Normalized form": `Mon..Fri *-*-* 09:00:00`. */
export function normalizeCalendar(spec: CalendarSpec): string {
  const days = spec.weekdays > 0 && spec.weekdays < 127 ? `${formatWeekdays(spec.weekdays)} ` : '';
  const date =
    `${formatField(spec.year, 4)}-${formatField(spec.month, 2)}` +
    `${spec.endOfMonth ? '~' : '-'}${formatField(spec.day, 2)}`;
  const time = `${formatField(spec.hour, 2)}:${formatField(spec.minute, 2)}:${formatField(spec.second, 2, true)}`;
  return `${days}${date} ${time}${spec.timezone ? ` ${spec.timezone}` : ''}`;
}

// Runs of three or more days print as a range, shorter runs as a list: "Mon..Wed,Sat,Sun".
function formatWeekdays(bits: number): string {
  const out: string[] = [];
  for (let d = 0; d < 7; d++) {
    if (!(bits & (1 << d))) continue;
    let end = d;
    while (end + 1 < 7 && bits & (1 << (end + 1))) end++;
    out.push(end - d >= 2 ? `${WEEKDAYS[d]}..${WEEKDAYS[end]}` : WEEKDAYS.slice(d, end + 1).join(','));
    d = end;
  }
  return out.join(',');
}

function formatField(list: CalendarField, width: number, seconds = false): string {
  if (!list) return '*';
  // systemd prints the whole second list as "*" once it starts with "every second"
  if (seconds && list[0].start === 0 && list[0].stop === null && list[0].repeat === 1) return '*';
  const pad = (n: number): string => String(n).padStart(width, '0');
  return list
    .map(
      (c) =>
        pad(c.start) +
        (c.stop !== null ? `..${pad(c.stop)}` : '') +
        (c.repeat > 0 && !(c.stop !== null && c.repeat === 1) ? `/${c.repeat}` : ''),
    )
    .join(',');
}

/** The first instant strictly after `afterMs` (epoch ms) at which the event elapses, or null if never. */
export function nextElapse(spec: CalendarSpec, afterMs: number): number | null {
  if (!Number.isFinite(afterMs)) throw new TypeError(`cannot compute next elapse after ${afterMs}: not a finite time`);
  // Events fall on whole seconds: start at the first whole second after afterMs (not before 1970).
  const from = new Date(Math.max(0, Math.floor(afterMs / 1000) + 1) * 1000);
  const [y0, mo0, d0] = [from.getUTCFullYear(), from.getUTCMonth() + 1, from.getUTCDate()];
  const [h0, mi0, s0] = [from.getUTCHours(), from.getUTCMinutes(), from.getUTCSeconds()];
  // Lexicographic search: a field starts at its `from` value only while every field above it does.
  for (let y = y0; y <= MAX_YEAR; y++) {
    if (!matches(spec.year, y)) continue;
    const atY = y === y0;
    for (let mo = atY ? mo0 : 1; mo <= 12; mo++) {
      if (!matches(spec.month, mo)) continue;
      const atMo = atY && mo === mo0;
      const length = new Date(Date.UTC(y, mo, 0)).getUTCDate();
      const days = dayField(spec, length);
      for (let d = atMo ? d0 : 1; d <= length; d++) {
        if (!matches(days, d) || !onWeekday(spec.weekdays, y, mo, d)) continue;
        const atD = atMo && d === d0;
        for (let h = atD ? h0 : 0; h < 24; h++) {
          if (!matches(spec.hour, h)) continue;
          const atH = atD && h === h0;
          for (let mi = atH ? mi0 : 0; mi < 60; mi++) {
            if (!matches(spec.minute, mi)) continue;
            for (let s = atH && mi === mi0 ? s0 : 0; s < 60; s++) {
              if (matches(spec.second, s)) return Date.UTC(y, mo - 1, d, h, mi, s);
            }
          }
        }
      }
    }
  }
  return null;
}

function matches(list: CalendarField, v: number): boolean {
  return (
    !list ||
    list.some(
      (c) =>
        v === c.start ||
        (c.repeat > 0 && v > c.start && (v - c.start) % c.repeat === 0 && (c.stop === null || v <= c.stop)),
    )
  );
}

// With "~" the days count back from the month's last day; turn them into days of this month as
// systemd does (a range's ends swap, a repetition still steps forward in the month).
function dayField(spec: CalendarSpec, length: number): CalendarField {
  if (!spec.endOfMonth || !spec.day) return spec.day;
  const back = (n: number): number => length + 1 - n;
  return spec.day.map((c) =>
    c.stop === null
      ? { start: back(c.start), stop: null, repeat: c.repeat }
      : { start: back(c.stop), stop: back(c.start), repeat: c.repeat },
  );
}

function onWeekday(bits: number, y: number, mo: number, d: number): boolean {
  if (bits === 0) return true;
  const monday0 = (new Date(Date.UTC(y, mo - 1, d)).getUTCDay() + 6) % 7;
  return (bits & (1 << monday0)) !== 0;
}
