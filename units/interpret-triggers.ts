// [Timer], [Socket], [Mount] and [Path]: their settings, defaults (the triggered unit is the one
// of the same name) and systemd's refusal rules for each type.
import type { MountConfig, PathConfig, SocketConfig, TimerConfig } from './types.js';
import { addPaths, boolHandler, expand, parseOr, type Handler, type Interp } from './interpret-common.js';
import { OTHER_LISTEN } from './known-directives.js';
import { SOCKET_OWNER_HANDLERS } from './interpret-socket.js';
import { changeSuffix, escapePath, isTemplate, isValidUnitName, splitUnitName, unescapePath } from './names.js';
import { parseTimespan } from './timespan.js';
import { parseMode } from './values.js';

/** Default [Timer] settings for timer `name` (AccuracySec=1min). */
export const defaultTimer = (name: string): TimerConfig => ({
  onBootSec: [],
  onStartupSec: [],
  onActiveSec: [],
  onUnitActiveSec: [],
  onUnitInactiveSec: [],
  onCalendar: [],
  persistent: false,
  randomizedDelaySec: 0,
  accuracySec: 60_000,
  unit: changeSuffix(name, 'service'),
});
/** Default [Socket] settings for socket `name` (SocketMode=0666). */
export const defaultSocket = (name: string): SocketConfig => ({
  listenStream: [],
  listenDatagram: [],
  socketMode: 0o666,
  accept: false,
  service: changeSuffix(name, 'service'),
});
/** Default [Mount] settings: Where= comes from the unit name. */
export const defaultMount = (name: string): MountConfig => {
  let where = '';
  try {
    where = unescapePath(splitUnitName(name)?.prefix ?? '');
  } catch {
    /* reported by finishTriggers */
  }
  return { what: '', where, type: null, options: null };
};
/** Default [Path] settings for path unit `name`. */
export const defaultPath = (name: string): PathConfig => ({
  pathExists: [],
  pathChanged: [],
  directoryNotEmpty: [],
  unit: changeSuffix(name, 'service'),
});

const TIMER_SPANS = {
  OnBootSec: 'onBootSec',
  OnStartupSec: 'onStartupSec',
  OnActiveSec: 'onActiveSec',
  OnUnitActiveSec: 'onUnitActiveSec',
  OnUnitInactiveSec: 'onUnitInactiveSec',
} as const;

/** An empty timer value resets all of them, as systemd's timer_free_values does. */
function resetTimer(it: Interp): void {
  const t = it.unit.timer!;
  for (const f of [...Object.values(TIMER_SPANS), 'onCalendar'] as const) t[f] = [];
}

const triggeredUnit =
  (set: (it: Interp, name: string) => void, suffix: string | null): Handler =>
  (a, it) => {
    const name = a.value === '' ? null : expand(it, a, a.value);
    if (name === null) return;
    if (
      !isValidUnitName(name) ||
      isTemplate(name) ||
      (suffix !== null && !name.endsWith(`.${suffix}`)) ||
      (suffix === null && name.endsWith('.timer'))
    ) {
      it.report(a, 'error', `Failed to set ${a.key}=${name}, ignoring: Invalid argument`);
      return;
    }
    set(it, name);
    it.seen.add(`${a.section}.${a.key}`);
  };

const span =
  (set: (it: Interp, ms: number) => void, dflt: number): Handler =>
  (a, it) => {
    const ms = a.value === '' ? dflt : parseOr(it, a, () => parseTimespan(expand(it, a, a.value) ?? a.value));
    if (ms !== undefined) set(it, ms);
  };

/** [Timer] directives (OnCalendar= is kept as written). */
export const TIMER_HANDLERS: Record<string, Handler> = {
  ...Object.fromEntries(
    Object.entries(TIMER_SPANS).map(([k, f]): [string, Handler] => [
      k,
      (a, it) => {
        if (a.value === '') {
          resetTimer(it);
          return;
        }
        const v = expand(it, a, a.value);
        const ms = v === null ? undefined : parseOr(it, a, () => parseTimespan(v));
        if (ms !== undefined) it.unit.timer![f].push(ms);
      },
    ]),
  ),
  OnCalendar: (a, it) => {
    if (a.value === '') {
      resetTimer(it);
      return;
    }
    const v = expand(it, a, a.value);
    if (v !== null) it.unit.timer!.onCalendar.push(v);
  },
  Persistent: boolHandler((it, v) => {
    it.unit.timer!.persistent = v;
  }, false),
  RandomizedDelaySec: span((it, ms) => {
    it.unit.timer!.randomizedDelaySec = ms;
  }, 0),
  AccuracySec: span((it, ms) => {
    it.unit.timer!.accuracySec = ms;
  }, 60_000),
  Unit: triggeredUnit((it, n) => {
    it.unit.timer!.unit = n;
  }, null),
};

const listen =
  (field: 'listenStream' | 'listenDatagram'): Handler =>
  (a, it) => {
    const s = it.unit.socket!;
    if (a.value === '') {
      s.listenStream = [];
      s.listenDatagram = [];
      it.seen.delete('Socket.listen');
      return;
    }
    const v = expand(it, a, a.value);
    if (v === null) return;
    s[field].push(v);
    it.seen.add('Socket.listen');
  };

/** [Socket] directives; the other Listen*= count as listeners but are unsupported. */
export const SOCKET_HANDLERS: Record<string, Handler> = {
  ListenStream: listen('listenStream'),
  ListenDatagram: listen('listenDatagram'),
  ...Object.fromEntries(
    OTHER_LISTEN.map((k): [string, Handler] => [
      k,
      (a, it) => {
        it.report(a, 'warning', `${k}= is unsupported by keel, ignoring.`);
        if (a.value !== '') it.seen.add('Socket.listen');
      },
    ]),
  ),
  SocketMode: (a, it) => {
    const m = a.value === '' ? 0o666 : parseOr(it, a, () => parseMode(a.value));
    if (m !== undefined) it.unit.socket!.socketMode = m;
  },
  Accept: boolHandler((it, v) => {
    it.unit.socket!.accept = v;
  }, false),
  Service: triggeredUnit((it, n) => {
    it.unit.socket!.service = n;
  }, 'service'),
  ...SOCKET_OWNER_HANDLERS,
};

const mountField =
  (field: 'what' | 'where' | 'type' | 'options'): Handler =>
  (a, it) => {
    const v = expand(it, a, a.value);
    if (v === null) return;
    const m = it.unit.mount!;
    if (field === 'where') {
      if (!v.startsWith('/')) {
        it.report(a, 'error', `Path '${v}' is not absolute, ignoring.`);
        return;
      }
      m.where = v.replace(/\/+/g, '/').replace(/(.)\/$/, '$1');
    } else if (field === 'what') m.what = v;
    else m[field] = v === '' ? null : v;
  };

/** [Mount] directives. */
export const MOUNT_HANDLERS: Record<string, Handler> = {
  What: mountField('what'),
  Where: mountField('where'),
  Type: mountField('type'),
  Options: mountField('options'),
};

const pathSpec =
  (field: 'pathExists' | 'pathChanged' | 'directoryNotEmpty'): Handler =>
  (a, it) => {
    const p = it.unit.path!;
    if (a.value === '') {
      p.pathExists = [];
      p.pathChanged = [];
      p.directoryNotEmpty = [];
      it.seen.delete('Path.spec');
      return;
    }
    addPaths(it, a, p[field]);
    it.seen.add('Path.spec');
  };

/** [Path] directives (PathExistsGlob=/PathModified= are unsupported but count as paths). */
export const PATH_HANDLERS: Record<string, Handler> = {
  PathExists: pathSpec('pathExists'),
  PathChanged: pathSpec('pathChanged'),
  DirectoryNotEmpty: pathSpec('directoryNotEmpty'),
  PathExistsGlob: (a, it) => {
    it.report(a, 'warning', 'PathExistsGlob= is unsupported by keel, ignoring.');
    if (a.value) it.seen.add('Path.spec');
  },
  PathModified: (a, it) => {
    it.report(a, 'warning', 'PathModified= is unsupported by keel, ignoring.');
    if (a.value) it.seen.add('Path.spec');
  },
  Unit: triggeredUnit((it, n) => {
    it.unit.path!.unit = n;
  }, null),
};

/** The refusal rules systemd applies to timers, sockets, mounts and paths. */
export function finishTriggers(it: Interp): void {
  const u = it.unit;
  const refuse = (message: string) => it.report(null, 'error', message);
  if (u.timer && Object.values(TIMER_SPANS).every((f) => u.timer![f].length === 0) && u.timer.onCalendar.length === 0) {
    refuse('Timer unit lacks value setting. Refusing.');
  }
  if (u.socket && !it.seen.has('Socket.listen'))
    refuse('Unit has no Listen setting (ListenStream=, ListenDatagram=, ListenFIFO=, ...). Refusing.');
  if (u.socket?.accept && it.seen.has('Socket.Service'))
    refuse('Explicit service configuration for accepting socket units not supported. Refusing.');
  if (u.socket?.accept && !it.seen.has('Socket.Service')) {
    // Accept=yes: one instance of foo@.service per connection
    const p = splitUnitName(u.name);
    if (p) u.socket.service = `${p.prefix}@.service`;
  }
  if (u.path && !it.seen.has('Path.spec')) refuse('Path unit lacks path setting. Refusing.');
  if (u.mount) {
    let expected: string | null = null;
    try {
      expected = `${escapePath(u.mount.where)}.mount`;
    } catch {
      /* falls through to the mismatch */
    }
    if (u.mount.where === '' || expected !== u.name) refuse("Where= setting doesn't match unit name. Refusing.");
    else if (u.mount.what === '') refuse('What= setting is missing. Refusing.');
  }
}
