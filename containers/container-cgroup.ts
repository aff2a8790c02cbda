// A container's cgroup v2: where it goes, its limit files, the controllers they need, its processes.
import { existsSync, readFileSync, rmdirSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { invalid, type ContainerLimits } from './container-spec.js';
import { ContainerError } from './errors.js';


/** cgroup2 mount points, from /proc/self/mounts (/sys/fs/cgroup, or /sys/fs/cgroup/unified on a hybrid host). */
export function cgroup2Mounts(mounts = readFileSync('/proc/self/mounts', 'utf8')): string[] {
  return mounts.split('\n').map((l) => l.split(' ')).filter((f) => f[2] === 'cgroup2').map((f) => f[1].replace(/\\040/g, ' '));
}

/** Where containers' cgroups go by default: <cgroup2 mount>/keel.containers. */
export function defaultCgroupParent(): string {
  const [mount] = cgroup2Mounts();
  if (!mount) throw new ContainerError('ECGROUP', 'cannot place the container in a cgroup: no cgroup2 filesystem is mounted');
  return join(mount, 'keel.containers');
}

/** The limit files and their values, e.g. [['memory.max', '67108864'], ['cpu.max', '50000 100000']]. */
export function limitFiles(limits: ContainerLimits = {}): [file: string, value: string][] {
  const count = (v: number | 'max', what: string, min: number) => {
    if (v === 'max') return 'max';
    if (!Number.isSafeInteger(v) || v < min) invalid(`limits.${what}`, `must be 'max' or an integer >= ${min}, not ${String(v)}`);
    return String(v);
  };
  const out: [string, string][] = [];
  if (limits.memoryMax !== undefined) out.push(['memory.max', count(limits.memoryMax, 'memoryMax', 0)]);
  if (limits.cpuMax !== undefined) {
    out.push(['cpu.max', `${count(limits.cpuMax.quota, 'cpuMax.quota', 1000)} ${count(limits.cpuMax.period ?? 100000, 'cpuMax.period', 1000)}`]);
  }
  if (limits.pidsMax !== undefined) out.push(['pids.max', count(limits.pidsMax, 'pidsMax', 1)]);
  return out;
}

const words = (file: string): string[] => { try { return readFileSync(file, 'utf8').split(/\s+/).filter(Boolean); } catch { return []; } };

/**
 * Makes `controllers` available in `dir` (enabling them in each ancestor's cgroup.subtree_control
 * from the cgroup2 root down) or throws ECGROUP naming the first cgroup that lacks one: on a
 * hybrid v1/v2 host the controllers are bound to the v1 hierarchies and v2 has none of them.
 */
export function enableControllers(dir: string, controllers: string[]): void {
  const missing = () => controllers.filter((c) => !words(join(dir, 'cgroup.controllers')).includes(c));
  if (missing().length === 0) return;
  const root = cgroup2Mounts().filter((m) => dir === m || dir.startsWith(m.endsWith('/') ? m : `${m}/`)).sort((a, b) => b.length - a.length)[0];
  if (!root) throw new ContainerError('ECGROUP', `cannot enable ${missing().join(', ')} for ${dir}: it is not on a cgroup2 filesystem`);
  const chain: string[] = [];
  for (let d = dirname(dir); d.length >= root.length; d = dirname(d)) { chain.unshift(d); if (d === root) break; }
  for (const c of missing()) {
    for (const a of chain) {
      const available = words(join(a, 'cgroup.controllers'));
      if (!available.includes(c)) {
        throw new ContainerError('ECGROUP', `cannot enable the ${c} controller for ${dir}: ${a} does not offer it (its cgroup.controllers: "${available.join(' ')}"); ` +
          'on a hybrid cgroup v1/v2 host the controllers are bound to v1 hierarchies, and this limit cannot be enforced');
      }
      if (words(join(a, 'cgroup.subtree_control')).includes(c)) continue;
      try {
        writeFileSync(join(a, 'cgroup.subtree_control'), `+${c}`);
      } catch (e) {
        throw new ContainerError('ECGROUP', `cannot enable the ${c} controller in ${a}/cgroup.subtree_control: ${(e as Error).message}` +
          ((e as { code?: string }).code === 'EBUSY' ? ' (cgroup v2 allows controllers only in groups without processes of their own)' : ''), { cause: e });
      }
    }
  }
  if (missing().length) throw new ContainerError('ECGROUP', `cannot enable ${missing().join(', ')} for ${dir}`);
}

/** Writes the limits into the cgroup (enabling their controllers first); throws ECGROUP if it cannot. */
export function applyLimits(dir: string, limits: ContainerLimits | undefined): void {
  const files = limitFiles(limits);
  if (files.length === 0) return;
  enableControllers(dir, [...new Set(files.map(([f]) => f.split('.')[0]))]);
  for (const [file, value] of files) {
    try {
      writeFileSync(join(dir, file), value);
    } catch (e) {
      throw new ContainerError('ECGROUP', `cannot write ${value} to ${join(dir, file)}: ${(e as Error).message}`, { cause: e });
    }
  }
}

/** Pids in the cgroup (empty when it does not exist). */
export function cgroupProcs(dir: string): number[] {
  return words(join(dir, 'cgroup.procs')).map(Number);
}

/** Removes a container's cgroup, waiting a little for killed processes to finish exiting. */
export async function removeCgroup(dir: string): Promise<boolean> {
  for (let i = 0; i < 100; i++) {
    try {
      rmdirSync(dir);
      return true;
    } catch (e) {
      if ((e as { code?: string }).code === 'ENOENT') return true;
      if ((e as { code?: string }).code !== 'EBUSY') return false;
      if (i === 20 && existsSync(join(dir, 'cgroup.kill'))) { try { writeFileSync(join(dir, 'cgroup.kill'), '1'); } catch { /* best effort */ } }
    }
    await new Promise((r) => setTimeout(r, 10));
  }
  return false;
}

/** The oom_kill count in a cgroup's memory.events (0 when unreadable). */
export function oomKills(cgroup: string): number {
  try { return Number(/^oom_kill (\d+)$/m.exec(readFileSync(join(cgroup, 'memory.events'), 'utf8'))?.[1] ?? 0); } catch { return 0; }
}
