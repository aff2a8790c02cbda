// [Service] resource settings beyond MemoryMax=/CPUQuota=/TasksMax=: the cgroup v1 names systemd
// 252 still maps onto cgroup v2 (MemoryLimit=, CPUShares=, StartupCPUShares=, BlockIOWeight=),
// OOMScoreAdjust=, Delegate=, and the StartLimit*= systemd still reads in [Service]. Pure.
import { parseOr, words, type Handler, type Interp } from './interpret-common.js';
import { parseBoolean, parseInteger, parseSizeOrPercent } from './values.js';
import { UNIT_HANDLERS } from './interpret-unit.js';

const svc = (it: Interp) => it.unit.service!;

/** The controllers Delegate= may name (systemd's cgroup_controller_table). */
export const DELEGATABLE = [
  'cpu',
  'cpuacct',
  'cpuset',
  'io',
  'blkio',
  'memory',
  'devices',
  'pids',
  'bpf-firewall',
  'bpf-devices',
  'bpf-foreign',
  'bpf-socket-bind',
  'bpf-restrict-network-interfaces',
];

const integer =
  (
    field: 'cpuShares' | 'startupCpuShares' | 'blockIOWeight' | 'oomScoreAdjust',
    min: number,
    max: number,
    what: string,
  ): Handler =>
  (a, it) => {
    if (a.value === '') {
      delete svc(it)[field];
      return;
    }
    const v = parseOr(it, a, () => parseInteger(a.value, min, max), what);
    if (v !== undefined) svc(it)[field] = v;
  };

/** The handlers, spread into [Service]'s. */
export const RESOURCE_HANDLERS: Record<string, Handler> = {
  MemoryLimit: (a, it) => {
    const s = svc(it);
    if (a.value === '') {
      delete s.memoryLimit;
      delete s.memoryLimitPercent;
      return;
    }
    const v = parseOr(it, a, () => parseSizeOrPercent(a.value));
    if (!v) return;
    if ('percent' in v) {
      delete s.memoryLimit;
      s.memoryLimitPercent = v.percent;
    } else {
      s.memoryLimit = v.value;
      delete s.memoryLimitPercent;
    }
  },
  CPUShares: integer('cpuShares', 2, 262_144, 'CPU shares'),
  StartupCPUShares: integer('startupCpuShares', 2, 262_144, 'CPU shares'),
  BlockIOWeight: integer('blockIOWeight', 10, 1000, 'block IO weight'),
  OOMScoreAdjust: integer('oomScoreAdjust', -1000, 1000, 'OOM score adjust value'),
  Delegate: (a, it) => {
    const s = svc(it);
    // As systemd: an empty value means "yes" (every controller), a boolean all or none, else a list.
    if (a.value === '') {
      s.delegate = 'all';
      return;
    }
    let b: boolean | undefined;
    try {
      b = parseBoolean(a.value);
    } catch {
      b = undefined;
    }
    if (b !== undefined) {
      if (b) s.delegate = 'all';
      else delete s.delegate;
      return;
    }
    const list = Array.isArray(s.delegate) ? s.delegate : [];
    for (const w of words(it, a) ?? []) {
      if (!DELEGATABLE.includes(w)) {
        it.report(a, 'error', `Invalid controller name '${w}', ignoring`);
        continue;
      }
      if (!list.includes(w)) list.push(w);
    }
    s.delegate = list;
  },
  // systemd moved these to [Unit] in v230 and still reads them here, silently.
  StartLimitInterval: UNIT_HANDLERS.StartLimitInterval,
  StartLimitBurst: UNIT_HANDLERS.StartLimitBurst,
};
