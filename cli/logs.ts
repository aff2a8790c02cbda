// keel logs: the journal, filtered like journalctl (-u, -f, -n, --since, -b).
import type { Verb } from './main.js';
import { request } from './control-client.js';
import { formatEntry } from './unit-status.js';
import type { JournalEntry } from '../init/journal.js';
import { asContainers, printContainerLog } from './container-verbs.js';
import { DEFAULT_ROOT } from '../containers/store.js';
import { wholeNumber } from './options.js';

/** Parses --since: an ISO date, "-5min"-style relative times, or "today". */
export function parseSince(text: string, now = Date.now()): number {
  const rel = /^-?(\d+)\s*(s|sec|m|min|h|hour|d|day)s?\s*(ago)?$/.exec(text.trim());
  if (rel)
    return (
      now -
      Number(rel[1]) *
        ({ s: 1e3, sec: 1e3, m: 6e4, min: 6e4, h: 36e5, hour: 36e5, d: 864e5, day: 864e5 } as Record<string, number>)[
          rel[2]
        ]
    );
  if (text === 'today') {
    const d = new Date(now);
    d.setUTCHours(0, 0, 0, 0);
    return d.getTime();
  }
  const t = Date.parse(text.includes('T') || text.includes('Z') ? text : text.replace(' ', 'T') + 'Z');
  if (Number.isNaN(t))
    throw new TypeError(
      `--since: not a time: ${JSON.stringify(text)} (use "2026-11-29 07:00:00", "-10min" or "today")`,
    );
  return t;
}

export const verb: Verb = {
  summary: 'Show the journal (unit output and kernel messages).',
  usage: 'keel logs [-u UNIT] [-f] [-n LINES] [--since TIME] [-b] | keel logs [-f] [-n LINES] CONTAINER',
  options: {
    unit: { type: 'string', short: 'u' },
    follow: { type: 'boolean', short: 'f', default: false },
    lines: { type: 'string', short: 'n' },
    tail: { type: 'string' },
    root: { type: 'string' },
    since: { type: 'string', short: 'S' },
    boot: { type: 'boolean', short: 'b', default: false },
  },
  async run(v, names) {
    // keel logs [-f] [-n N] CONTAINER: a container's output (docker logs).
    if (names.length) {
      const db = asContainers(names, String(v.root ?? DEFAULT_ROOT));
      if (!db)
        throw new TypeError(`keel logs: no such container: ${names.join(' ')} (for a unit's log: keel logs -u UNIT)`);
      const tail =
        v.tail !== undefined
          ? wholeNumber(v.tail, '--tail', 'keel logs', { all: true })
          : v.lines !== undefined
            ? wholeNumber(v.lines, '-n', 'keel logs', { all: true })
            : null;
      for (const n of names) await printContainerLog(db, n, { follow: !!v.follow, tail });
      return 0;
    }
    const args = {
      unit: v.unit,
      lines:
        v.lines !== undefined
          ? (wholeNumber(v.lines, '-n', 'keel logs', { all: true }) ?? undefined)
          : v.follow
            ? 10
            : undefined,
      since: v.since ? parseSince(String(v.since)) : undefined,
      currentBoot: !!v.boot,
      follow: !!v.follow,
    };
    const entries = (await request('logs', args, (e) => process.stdout.write(formatEntry(e as JournalEntry)))) as
      JournalEntry[] | undefined;
    for (const e of entries ?? []) process.stdout.write(formatEntry(e));
    return 0;
  },
};
