// systemd time spans ("5min 20s", "1h30m", "250ms", "infinity") in milliseconds. Pure.

const UNITS: [RegExp, number][] = [
  [/^(us|usec|µs)$/, 0.001],
  [/^(ms|msec)$/, 1],
  [/^(s|sec|second|seconds)$/, 1000],
  [/^(m|min|minute|minutes)$/, 60_000],
  [/^(h|hr|hour|hours)$/, 3_600_000],
  [/^(d|day|days)$/, 86_400_000],
  [/^(w|week|weeks)$/, 604_800_000],
  [/^(M|month|months)$/, 2_629_800_000],
  [/^(y|year|years)$/, 31_557_600_000],
];

/**
 * Parses a time span into milliseconds; a bare number is in `defaultUnit` (seconds for most
 * directives). "infinity" is Infinity. Throws a TypeError naming the value when it cannot.
 */
export function parseTimespan(text: string, defaultUnit: 's' | 'ms' | 'us' = 's'): number {
  const t = text.trim();
  if (t === 'infinity') return Infinity;
  if (/^\d+(\.\d+)?$/.test(t)) return Number(t) * (defaultUnit === 's' ? 1000 : defaultUnit === 'ms' ? 1 : 0.001);
  const re = /(\d+(?:\.\d+)?)\s*([a-zA-Zµ]+)\s*/gy;
  let total = 0;
  let pos = 0;
  let m: RegExpExecArray | null;
  while (pos < t.length && (m = re.exec(t))) {
    const factor = UNITS.find(([u]) => u.test(m![2]))?.[1];
    if (factor === undefined) throw new TypeError(`not a time span: ${JSON.stringify(text)} (unknown unit "${m[2]}")`);
    total += Number(m[1]) * factor;
    pos = re.lastIndex;
  }
  if (pos !== t.length || t.length === 0) throw new TypeError(`not a time span: ${JSON.stringify(text)}`);
  return total;
}
