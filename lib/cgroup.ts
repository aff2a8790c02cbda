// cgroup v2 through its files, one module for init's services and keel's containers: limit files,
// controllers delegated down from the cgroup2 root, processes, usage, killing and removal.
// Directories come in as paths, so tests can hand a scratch cgroup.
import { existsSync, readFileSync, rmdirSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { KeelError } from './errors.js';

/** Limits as cgroup v2 writes them: bytes, µs of CPU per period (default 100000), tasks; 'max' is none. */
export interface CgroupLimits {
  memoryMax?: number | 'max';
  cpuMax?: { quota: number | 'max'; period?: number };
  pidsMax?: number | 'max';
}

/** cgroup2 mount points, from /proc/self/mounts (/sys/fs/cgroup, or /sys/fs/cgroup/unified on a hybrid host). */
export function cgroup2Mounts(mounts = readFileSync('/proc/self/mounts', 'utf8')): string[] {
  return mounts
    .split('\n')
    .map((l) => l.split(' '))
    .filter((f) => f[2] === 'cgroup2')
    .map((f) => f[1].replace(/\\040/g, ' '));
}

/** The first limit that is neither 'max' nor an integer at or above its minimum, and why; null if none. */
export function limitProblem(l: CgroupLimits): { what: string; reason: string } | null {
  const checks: [string, number | 'max' | undefined, number][] = [
    ['memoryMax', l.memoryMax, 0],
    ['cpuMax.quota', l.cpuMax?.quota, 1000],
    ['cpuMax.period', l.cpuMax?.period, 1000],
    ['pidsMax', l.pidsMax, 1],
  ];
  for (const [what, v, min] of checks) {
    if (v === undefined || v === 'max' || (Number.isSafeInteger(v) && v >= min)) continue;
    return { what, reason: `must be 'max' or an integer >= ${min}, not ${String(v)}` };
  }
  return null;
}

/** The limit files and their values, e.g. [['memory.max', '67108864'], ['cpu.max', '50000 100000']]. */
export function limitFiles(l: CgroupLimits): [file: string, value: string][] {
  const out: [string, string][] = [];
  if (l.memoryMax !== undefined) out.push(['memory.max', String(l.memoryMax)]);
  if (l.cpuMax !== undefined) out.push(['cpu.max', `${l.cpuMax.quota} ${l.cpuMax.period ?? 100000}`]);
  if (l.pidsMax !== undefined) out.push(['pids.max', String(l.pidsMax)]);
  return out;
}

/** How delegateControllers reads and writes cgroup files (tests pass a fake kernel). */
export interface CgroupIo {
  read(path: string): string;
  write(path: string, data: string): void;
}

/** The real files. */
export const cgroupFiles: CgroupIo = { read: (p) => readFileSync(p, 'utf8'), write: (p, d) => writeFileSync(p, d) };

const words = (file: string, io: CgroupIo = cgroupFiles): string[] => {
  try {
    return io.read(file).split(/\s+/).filter(Boolean);
  } catch {
    return [];
  }
};

/** The controllers a cgroup offers its processes (its cgroup.controllers). */
export const cgroupControllers = (dir: string, io: CgroupIo = cgroupFiles): string[] =>
  words(join(dir, 'cgroup.controllers'), io);

/**
 * Makes `controllers` available to the children of `parent`: enables each in cgroup.subtree_control
 * from `root` (a cgroup2 mount) down to `parent`. Throws ECGROUP naming the first cgroup that lacks
 * one: on a hybrid v1/v2 host the controllers are bound to v1 hierarchies and v2 has none of them.
 */
export function delegateControllers(
  parent: string,
  controllers: string[],
  root: string,
  io: CgroupIo = cgroupFiles,
): void {
  if (parent !== root && !parent.startsWith(root.endsWith('/') ? root : `${root}/`)) {
    throw new KeelError('ECGROUP', `cannot enable ${controllers.join(', ')} below ${parent}: it is not under ${root}`, {
      path: parent,
    });
  }
  const chain: string[] = [];
  for (let d = parent; d.length >= root.length; d = dirname(d)) {
    chain.unshift(d);
    if (d === root) break;
  }
  for (const c of controllers) {
    for (const a of chain) {
      const available = cgroupControllers(a, io);
      if (!available.includes(c)) {
        throw new KeelError(
          'ECGROUP',
          `cannot enable the ${c} controller below ${a}: it does not offer it (its ` +
            `cgroup.controllers: "${available.join(' ')}"); ` +
            'on a hybrid cgroup v1/v2 host the controllers are bound to v1 ' +
            'hierarchies, and this limit cannot be enforced',
          { path: a },
        );
      }
      if (words(join(a, 'cgroup.subtree_control'), io).includes(c)) continue;
      try {
        io.write(join(a, 'cgroup.subtree_control'), `+${c}`);
      } catch (e) {
        throw new KeelError(
          'ECGROUP',
          `cannot enable the ${c} controller in ${a}/cgroup.subtree_control: ${(e as Error).message}` +
            ((e as { code?: string }).code === 'EBUSY'
              ? ' (cgroup v2 allows controllers only in groups without processes of their own)'
              : ''),
          { path: a, cause: e },
        );
      }
    }
  }
}

/** Pids in a cgroup (empty when it does not exist). */
export function cgroupProcs(dir: string): number[] {
  return words(join(dir, 'cgroup.procs')).map(Number);
}

/** Memory (bytes) and task count of a cgroup, as status shows them (null: unreadable). */
export function cgroupUsage(dir: string): { memory: number | null; tasks: number | null } {
  const num = (f: string) => {
    try {
      return Number(readFileSync(join(dir, f), 'utf8').trim());
    } catch {
      return null;
    }
  };
  return { memory: num('memory.current'), tasks: num('pids.current') };
}

/** The oom_kill count in a cgroup's memory.events (0 when unreadable). */
export function oomKills(dir: string): number {
  try {
    return Number(/^oom_kill (\d+)$/m.exec(readFileSync(join(dir, 'memory.events'), 'utf8'))?.[1] ?? 0);
  } catch {
    return 0;
  }
}

/**
 * Sends `signal` to every process of the cgroup, SIGKILL through cgroup.kill where the kernel has it; returns how
 * many.
 */
export function killCgroup(dir: string, signal: NodeJS.Signals): number {
  if (signal === 'SIGKILL' && existsSync(join(dir, 'cgroup.kill'))) {
    const n = cgroupProcs(dir).length;
    try {
      writeFileSync(join(dir, 'cgroup.kill'), '1');
      return n;
    } catch {
      /* fall through */
    }
  }
  let n = 0;
  for (const pid of cgroupProcs(dir)) {
    try {
      process.kill(pid, signal);
      n++;
    } catch {
      /* gone */
    }
  }
  return n;
}

/** Removes a cgroup that has no processes; true once it is gone, false while processes remain. */
export function removeCgroup(dir: string): boolean {
  try {
    rmdirSync(dir);
    return true;
  } catch {
    return !existsSync(dir);
  }
}
