// The part of systemd.exec(5)/systemd.resource-control(5) Keel implements for services: user,
// directory, environment, limits, standard streams and three cgroup limits.
import type { ServiceConfig } from './types.js';
import { expand, parseOr, words, type Handler, type Interp } from './interpret-common.js';
import { isEnvName, isUserGroupName, parseInteger, parseLimit, parseMode, parseSizeOrPercent } from './values.js';

const svc = (it: Interp) => it.unit.service!;

const userGroup =
  (field: 'user' | 'group'): Handler =>
  (a, it) => {
    if (a.value === '') {
      svc(it)[field] = null;
      return;
    }
    const v = expand(it, a, a.value);
    if (v === null) return;
    if (!isUserGroupName(v)) {
      it.report(a, 'error', `Invalid user/group name or numeric ID, ignoring: ${v}`);
      return;
    }
    svc(it)[field] = v;
  };

const limit =
  (field: 'nofile' | 'nproc' | 'core'): Handler =>
  (a, it) => {
    if (a.value === '') {
      delete svc(it).limits[field];
      return;
    }
    const v = parseOr(it, a, () => parseLimit(a.value, field === 'core'), `resource value ${a.key}=`);
    if (v) svc(it).limits[field] = v;
  };

const STDIN = ['null', 'tty', 'tty-force', 'tty-fail', 'socket'];
const STDIN_SYSTEMD = /^(data|fd(:.*)?|file:.+)$/;
const STDOUT = ['journal', 'null', 'tty', 'inherit', 'kmsg', 'journal+console', 'socket'];
const STDOUT_SYSTEMD = /^(kmsg\+console|fd(:.*)?|(file|append|truncate):.+)$/;
const LEGACY_STDOUT: Record<string, string> = { syslog: 'journal', 'syslog+console': 'journal+console' };

const stdout =
  (field: 'standardOutput' | 'standardError', dflt: 'journal' | 'inherit'): Handler =>
  (a, it) => {
    it.seen.add(`Service.${a.key}`);
    if (a.value === '') {
      svc(it)[field] = dflt;
      return;
    }
    let v = a.value;
    if (v in LEGACY_STDOUT) {
      it.report(
        a,
        'warning',
        `Standard output type ${v} is obsolete, automatically updating to ${LEGACY_STDOUT[v]}. ` +
          'Please update your unit file, and consider removing the setting altogether.',
      );
      v = LEGACY_STDOUT[v];
    }
    if (STDOUT.includes(v)) svc(it)[field] = v as ServiceConfig['standardOutput'];
    else if (STDOUT_SYSTEMD.test(v)) it.report(a, 'warning', `${a.key}=${v} is unsupported by keel, ignoring.`);
    else it.report(a, 'error', `Failed to parse ${a.key}= value, ignoring: ${v}`);
  };

/** Applies a size/percent/infinity value to a field and its *Percent twin. */
const sizeOrPercent =
  (field: 'memoryMax' | 'tasksMax', plain?: (v: string) => number): Handler =>
  (a, it) => {
    const s = svc(it);
    const pct = field === 'memoryMax' ? 'memoryMaxPercent' : 'tasksMaxPercent';
    if (a.value === '') {
      s[field] = null;
      delete s[pct];
      return;
    }
    const v = parseOr(it, a, () => parseSizeOrPercent(a.value, plain));
    if (!v) return;
    if ('percent' in v) {
      s[field] = null;
      s[pct] = v.percent;
    } else {
      s[field] = v.value;
      delete s[pct];
    }
  };

/** Execution settings of [Service] that Keel implements. */
export const SERVICE_EXEC_HANDLERS: Record<string, Handler> = {
  User: userGroup('user'),
  Group: userGroup('group'),
  WorkingDirectory: (a, it) => {
    const s = svc(it);
    delete s.workingDirectoryMissingOk;
    if (a.value === '') {
      s.workingDirectory = null;
      return;
    }
    const missingOk = a.value.startsWith('-');
    const raw = missingOk ? a.value.slice(1) : a.value;
    const dir = raw === '~' ? '~' : expand(it, a, raw); // '~' is the home of User=, resolved at spawn time
    if (dir === null) return;
    if (dir !== '~' && !dir.startsWith('/')) {
      it.report(a, 'error', `Path '${dir}' is not absolute, ignoring.`);
      return;
    }
    s.workingDirectory = dir;
    if (missingOk) s.workingDirectoryMissingOk = true;
  },
  UMask: (a, it) => {
    const v =
      a.value === ''
        ? null
        : parseOr(it, a, () => {
            const m = parseMode(a.value);
            if (m > 0o777) throw new TypeError('umask');
            return m;
          });
    if (v !== undefined) svc(it).umask = v;
  },
  Nice: (a, it) => {
    const v = a.value === '' ? null : parseOr(it, a, () => parseInteger(a.value, -20, 19), 'nice priority');
    if (v !== undefined) svc(it).nice = v;
  },
  Environment: (a, it) => {
    const env = svc(it).environment;
    if (a.value === '') {
      env.length = 0;
      return;
    }
    for (const w of words(it, a, { unquote: true, cunescape: true }) ?? []) {
      const kv = expand(it, a, w);
      if (kv === null) continue;
      const eq = kv.indexOf('=');
      if (eq <= 0 || !isEnvName(kv.slice(0, eq))) {
        it.report(a, 'error', `Invalid environment assignment, ignoring: ${kv}`);
        continue;
      }
      const [name, value] = [kv.slice(0, eq), kv.slice(eq + 1)];
      const i = env.findIndex(([n]) => n === name); // a later assignment replaces the variable in place
      if (i >= 0) env[i] = [name, value];
      else env.push([name, value]);
    }
  },
  EnvironmentFile: (a, it) => {
    if (a.value === '') {
      svc(it).environmentFiles = [];
      return;
    }
    const optional = a.value.startsWith('-');
    const path = expand(it, a, optional ? a.value.slice(1) : a.value);
    if (path === null) return;
    if (!path.startsWith('/')) {
      it.report(a, 'error', `Path '${path}' is not absolute, ignoring.`);
      return;
    }
    svc(it).environmentFiles.push({ path, optional });
  },
  LimitNOFILE: limit('nofile'),
  LimitNPROC: limit('nproc'),
  LimitCORE: limit('core'),
  StandardInput: (a, it) => {
    if (a.value === '') {
      svc(it).standardInput = 'null';
      return;
    }
    if (STDIN.includes(a.value)) svc(it).standardInput = a.value as ServiceConfig['standardInput'];
    else if (STDIN_SYSTEMD.test(a.value))
      it.report(a, 'warning', `StandardInput=${a.value} is unsupported by keel, ignoring.`);
    else it.report(a, 'error', `Failed to parse StandardInput= value, ignoring: ${a.value}`);
  },
  StandardOutput: stdout('standardOutput', 'journal'),
  StandardError: stdout('standardError', 'inherit'),
  TTYPath: (a, it) => {
    if (a.value === '') {
      svc(it).ttyPath = null;
      return;
    }
    const p = expand(it, a, a.value);
    if (p === null) return;
    if (!p.startsWith('/')) {
      it.report(a, 'error', `Path '${p}' is not absolute, ignoring.`);
      return;
    }
    svc(it).ttyPath = p;
  },
  MemoryMax: sizeOrPercent('memoryMax'),
  TasksMax: sizeOrPercent('tasksMax', (v) => parseInteger(v, 1, Number.MAX_SAFE_INTEGER, 'tasks maximum')),
  CPUQuota: (a, it) => {
    if (a.value === '') {
      svc(it).cpuQuota = null;
      return;
    }
    const m = /^(\d+(?:\.\d+)?)%$/.exec(a.value);
    if (!m || Number(m[1]) <= 0) {
      it.report(a, 'error', `Invalid CPU quota '${a.value}', ignoring.`);
      return;
    }
    svc(it).cpuQuota = Number(m[1]);
  },
};
