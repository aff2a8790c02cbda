// [Service]: process type, Exec*= lines, restart and timeouts, kill settings, and the execution
// environment Keel implements; then systemd's service_verify rules and type-dependent defaults.
import type { ServiceConfig } from './types.js';
import { boolHandler, expand, parseOr, words, type Handler, type Interp } from './interpret-common.js';
import { SERVICE_EXEC_HANDLERS } from './interpret-exec-env.js';
import { SANDBOX_HANDLERS } from './interpret-sandbox.js';
import { RESOURCE_HANDLERS } from './interpret-resources.js';
import { parseExecLine } from './exec.js';
import { parseTimespan } from './timespan.js';
import { parseExitStatusOrSignal, parseSignal } from './values.js';

/** The [Service] defaults systemd has (DefaultTimeoutStartSec=90s, RestartSec=100ms, ...). */
export function defaultService(): ServiceConfig {
  return {
    type: 'simple',
    execCondition: [],
    execStartPre: [],
    execStart: [],
    execStartPost: [],
    execReload: [],
    execStop: [],
    execStopPost: [],
    remainAfterExit: false,
    restart: 'no',
    restartSec: 100,
    timeoutStartSec: 90_000,
    timeoutStopSec: 90_000,
    killMode: 'control-group',
    killSignal: 'SIGTERM',
    sendSIGKILL: true,
    successExitStatus: { codes: [], signals: [] },
    pidFile: null,
    environment: [],
    environmentFiles: [],
    user: null,
    group: null,
    workingDirectory: null,
    umask: null,
    nice: null,
    limits: {},
    standardInput: 'null',
    standardOutput: 'journal',
    standardError: 'inherit',
    ttyPath: null,
    memoryMax: null,
    cpuQuota: null,
    tasksMax: null,
  };
}

const EXEC_FIELDS = {
  ExecCondition: 'execCondition',
  ExecStartPre: 'execStartPre',
  ExecStart: 'execStart',
  ExecStartPost: 'execStartPost',
  ExecReload: 'execReload',
  ExecStop: 'execStop',
  ExecStopPost: 'execStopPost',
} as const;

const svc = (it: Interp) => it.unit.service!;

const execHandler =
  (field: (typeof EXEC_FIELDS)[keyof typeof EXEC_FIELDS]): Handler =>
  (a, it) => {
    const lines = it.execLines.get(field) ?? [];
    it.execLines.set(field, lines);
    if (a.value === '') {
      svc(it)[field] = [];
      lines.length = 0;
      return;
    }
    let commands;
    try {
      commands = parseExecLine(a.value);
    } catch (e) {
      const ignore = /^[@:+!]*-/.test(a.value); // systemd only warns about a '-' command it cannot parse
      it.report(a, ignore ? 'warning' : 'error', `${(e as Error).message}${ignore ? ', ignoring' : ''}`);
      return;
    }
    for (const cmd of commands) {
      const argv = cmd.argv.map((w) => expand(it, a, w));
      const path = expand(it, a, cmd.path);
      if (path === null || argv.includes(null)) continue;
      svc(it)[field].push({ ...cmd, path, argv: argv as string[] });
      lines.push(a);
    }
  };

const enumHandler =
  <K extends keyof ServiceConfig>(field: K, allowed: readonly string[], dflt: ServiceConfig[K]): Handler =>
  (a, it) => {
    if (a.value === '') {
      svc(it)[field] = dflt;
      return;
    }
    if (!allowed.includes(a.value)) {
      it.report(a, 'error', `Failed to parse ${a.key}= value, ignoring: ${a.value}`);
      return;
    }
    svc(it)[field] = a.value as ServiceConfig[K];
    it.seen.add(`Service.${a.key}`);
  };

/** A time span where 0 means "no timeout" (TimeoutStartSec= and friends). */
const timeout =
  (set: (s: ServiceConfig, ms: number) => void, mark: string[]): Handler =>
  (a, it) => {
    const ms = a.value === '' ? 90_000 : parseOr(it, a, () => parseTimespan(a.value));
    if (ms === undefined) return;
    set(svc(it), ms === 0 ? Infinity : ms);
    for (const m of mark) it.seen.add(m);
  };

/** [Service] directives. */
export const SERVICE_HANDLERS: Record<string, Handler> = {
  Type: (a, it) => {
    if (a.value === 'dbus') {
      it.report(a, 'warning', 'Type=dbus is unsupported by keel (no D-Bus), treating it as Type=simple.');
      svc(it).type = 'simple';
      it.seen.add('Service.Type').add('Service.Type=dbus');
      return;
    }
    it.seen.delete('Service.Type=dbus');
    enumHandler('type', ['simple', 'exec', 'oneshot', 'forking', 'notify', 'idle'], 'simple')(a, it);
    if (a.value === '') it.seen.delete('Service.Type');
  },
  ...Object.fromEntries(Object.entries(EXEC_FIELDS).map(([k, f]): [string, Handler] => [k, execHandler(f)])),
  RemainAfterExit: boolHandler((it, v) => {
    svc(it).remainAfterExit = v;
  }, false),
  Restart: enumHandler(
    'restart',
    ['no', 'always', 'on-success', 'on-failure', 'on-abnormal', 'on-abort', 'on-watchdog'],
    'no',
  ),
  RestartSec: (a, it) => {
    const ms = a.value === '' ? 100 : parseOr(it, a, () => parseTimespan(a.value));
    if (ms !== undefined) svc(it).restartSec = ms;
  },
  TimeoutStartSec: timeout(
    (s, ms) => {
      s.timeoutStartSec = ms;
    },
    ['Service.TimeoutStartSec'],
  ),
  TimeoutStopSec: timeout((s, ms) => {
    s.timeoutStopSec = ms;
  }, []),
  TimeoutSec: timeout(
    (s, ms) => {
      s.timeoutStartSec = ms;
      s.timeoutStopSec = ms;
    },
    ['Service.TimeoutStartSec'],
  ),
  KillMode: enumHandler('killMode', ['control-group', 'mixed', 'process', 'none'], 'control-group'),
  KillSignal: (a, it) => {
    const sig = a.value === '' ? 'SIGTERM' : parseOr(it, a, () => parseSignal(a.value));
    if (sig !== undefined) svc(it).killSignal = sig;
  },
  SendSIGKILL: boolHandler((it, v) => {
    svc(it).sendSIGKILL = v;
  }, true),
  SuccessExitStatus: (a, it) => {
    const ses = svc(it).successExitStatus;
    if (a.value === '') {
      ses.codes = [];
      ses.signals = [];
      return;
    }
    for (const w of words(it, a) ?? []) {
      const st = parseOr(it, a, () => parseExitStatusOrSignal(w), `exit status '${w}' in SuccessExitStatus=`);
      if (st && 'code' in st && !ses.codes.includes(st.code)) ses.codes.push(st.code);
      if (st && 'signal' in st && !ses.signals.includes(st.signal)) ses.signals.push(st.signal);
    }
  },
  PIDFile: (a, it) => {
    if (a.value === '') {
      svc(it).pidFile = null;
      return;
    }
    let p = expand(it, a, a.value);
    if (p === null) return;
    if (!p.startsWith('/')) p = `${it.spec.runtimeDir}/${p}`; // systemd makes relative PID files relative to /run
    if (p.startsWith('/var/run/')) {
      it.report(
        a,
        'warning',
        `PIDFile= references a path below legacy directory /var/run/, updating ${p} → ` +
          `${p.slice(4)}; please update the unit file accordingly.`,
      );
      p = p.slice(4);
    }
    svc(it).pidFile = p;
  },
  ...SERVICE_EXEC_HANDLERS,
  ...SANDBOX_HANDLERS,
  ...RESOURCE_HANDLERS,
};

/** systemd's service_verify (first failure only, as systemd stops there) and the type-dependent defaults. */
export function finishService(it: Interp): void {
  const s = svc(it);
  if (!it.seen.has('Service.Type')) s.type = s.execStart.length > 0 ? 'simple' : 'oneshot';
  // oneshot: no start timeout by default
  if (s.type === 'oneshot' && !it.seen.has('Service.TimeoutStartSec')) s.timeoutStartSec = Infinity;
  const inheritsStdin = s.standardInput.startsWith('tty') || s.standardInput === 'socket';
  if (!it.seen.has('Service.StandardOutput') && inheritsStdin) s.standardOutput = 'inherit';
  const second = it.execLines.get('execStart')?.[1] ?? null;
  const refuse = (message: string) => it.report(null, 'error', message);
  if (s.execStart.length === 0 && s.execStop.length === 0 && !it.seen.has('SuccessAction')) {
    refuse('Service has no ExecStart=, ExecStop=, or SuccessAction=. Refusing.');
  } else if (s.type !== 'oneshot' && s.execStart.length === 0) {
    refuse('Service has no ExecStart= setting, which is only allowed for Type=oneshot services. Refusing.');
  } else if (!s.remainAfterExit && s.execStart.length === 0 && !it.seen.has('SuccessAction')) {
    refuse(
      'Service has no ExecStart= and no SuccessAction= settings and does not have RemainAfterExit=yes set. Refusing.',
    );
  } else if (s.type !== 'oneshot' && s.execStart.length > 1) {
    it.report(
      second,
      'error',
      'Service has more than one ExecStart= setting, which is only allowed for Type=oneshot services. Refusing.',
    );
  } else if (s.type === 'oneshot' && (s.restart === 'always' || s.restart === 'on-success')) {
    refuse(
      "Service has Restart= set to either always or on-success, which isn't " +
        'allowed for Type=oneshot services. Refusing.',
    );
  } else if (it.seen.has('Service.Type=dbus') && !it.seen.has('BusName')) {
    refuse('Service is of type D-Bus but no D-Bus service name has been specified. Refusing.');
  }
}
