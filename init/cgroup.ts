// cgroup v2 for units: one group per service under system.slice, limits, counts and killing.
import { chownSync, existsSync, mkdirSync, readFileSync, rmdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

/** Where a unit's cgroup lives, relative to the cgroup2 mount. */
export function unitCgroupPath(root: string, unit: string): string {
  return join(root, 'system.slice', unit);
}

/** systemd's cgroup_cpu_shares_to_weight(): CPUShares= (default 1024) as cpu.weight (default 100). */
export function cpuSharesToWeight(shares: number): number {
  return Math.min(10_000, Math.max(1, Math.floor((shares * 100) / 1024)));
}

/** systemd's cgroup_weight_blkio_to_io(): BlockIOWeight= (default 500) as io.weight (default 100). */
export function blkioWeightToIo(weight: number): number {
  return Math.min(10_000, Math.max(1, Math.floor((weight * 100) / 500)));
}

/** The unit limits cgroup.ts writes; null or undefined: not set. */
export interface UnitLimits {
  memoryMax: number | null;
  cpuQuota: number | null;
  tasksMax: number | null;
  /** MemoryLimit= (v1): memory.max when MemoryMax= is not set, as systemd does. */
  memoryLimit?: number | null;
  /** CPUShares= (v1), or StartupCPUShares= while the system starts up. */
  cpuShares?: number | null;
  /** BlockIOWeight= (v1). */
  blockIOWeight?: number | null;
}

/** cgroup v2 limit files for MemoryMax=, CPUQuota=, TasksMax= and the v1 names systemd maps onto them. */
export function limitFiles(l: UnitLimits): [string, string][] {
  const out: [string, string][] = [];
  const mem = l.memoryMax ?? l.memoryLimit ?? null;
  if (mem !== null) out.push(['memory.max', mem === Infinity ? 'max' : String(Math.floor(mem))]);
  // CPUQuota is percent of one CPU per 100 ms period, as systemd writes cpu.max.
  if (l.cpuQuota !== null) out.push(['cpu.max', `${Math.max(1000, Math.round(l.cpuQuota * 1000))} 100000`]);
  if (l.tasksMax !== null) out.push(['pids.max', l.tasksMax === Infinity ? 'max' : String(l.tasksMax)]);
  if (l.cpuShares != null) out.push(['cpu.weight', String(cpuSharesToWeight(l.cpuShares))]);
  if (l.blockIOWeight != null) out.push(['io.weight', `default ${blkioWeightToIo(l.blockIOWeight)}`]);
  return out;
}

const CONTROLLERS = ['memory', 'pids', 'cpu', 'io'];

/** Makes sure the controllers are delegated down to system.slice; best effort. */
export function enableControllers(root: string): void {
  const slice = join(root, 'system.slice');
  mkdirSync(slice, { recursive: true });
  // One write per controller: the kernel refuses a whole "+a +b" line when one of them is absent.
  for (const dir of [root, slice]) {
    for (const c of CONTROLLERS) { try { writeFileSync(join(dir, 'cgroup.subtree_control'), `+${c}`); } catch { /* absent */ } }
  }
}

/** The files of a cgroup its delegatee may write (the kernel's cgroup-v2 "Delegation Containment"). */
export const DELEGATED_FILES = ['cgroup.procs', 'cgroup.threads', 'cgroup.subtree_control'];

/**
 * Creates the unit's cgroup and writes its limits; returns the path and the files it could not
 * write (a controller missing below system.slice), which the caller warns about.
 * Delegate=: the controllers named are made available to the unit's cgroup (enabled in
 * system.slice's subtree_control; not in its own, which would forbid its processes to live in it,
 * the kernel's "no internal processes" rule), and the cgroup belongs to `owner` (User=).
 */
export function createUnitCgroup(root: string, unit: string, limits: UnitLimits,
  delegate?: { controllers: 'all' | string[]; owner: { uid: number; gid: number } | null }): { dir: string; failed: string[] } {
  const dir = unitCgroupPath(root, unit);
  mkdirSync(dir, { recursive: true });
  const failed: string[] = [];
  if (delegate) {
    const slice = join(root, 'system.slice');
    const wanted = delegate.controllers === 'all' ? CONTROLLERS : delegate.controllers.filter((c) => CONTROLLERS.includes(c));
    for (const c of wanted) { try { writeFileSync(join(slice, 'cgroup.subtree_control'), `+${c}`); } catch { failed.push(`+${c}`); } }
    if (delegate.owner) {
      chownSync(dir, delegate.owner.uid, delegate.owner.gid);
      for (const f of DELEGATED_FILES) { try { chownSync(join(dir, f), delegate.owner.uid, delegate.owner.gid); } catch { failed.push(f); } }
    }
  }
  for (const [file, value] of limitFiles(limits)) { try { writeFileSync(join(dir, file), value); } catch { failed.push(file); } }
  return { dir, failed };
}

/** Pids in a cgroup (empty when it does not exist). */
export function cgroupPids(dir: string): number[] {
  try { return readFileSync(join(dir, 'cgroup.procs'), 'utf8').split('\n').filter(Boolean).map(Number); } catch { return []; }
}

/** Memory (bytes) and task count of a cgroup, as status shows them. */
export function cgroupUsage(dir: string): { memory: number | null; tasks: number | null } {
  const num = (f: string) => { try { return Number(readFileSync(join(dir, f), 'utf8').trim()); } catch { return null; } };
  return { memory: num('memory.current'), tasks: num('pids.current') };
}

/** Sends `signal` to every process of the cgroup; SIGKILL uses cgroup.kill when the kernel has it. */
export function killCgroup(dir: string, signal: NodeJS.Signals): number {
  if (signal === 'SIGKILL' && existsSync(join(dir, 'cgroup.kill'))) {
    const n = cgroupPids(dir).length;
    try { writeFileSync(join(dir, 'cgroup.kill'), '1'); return n; } catch { /* fall through */ }
  }
  let n = 0;
  for (const pid of cgroupPids(dir)) {
    try { process.kill(pid, signal); n++; } catch { /* gone */ }
  }
  return n;
}

/** Removes an empty cgroup; false when processes remain. */
export function removeCgroup(dir: string): boolean {
  try { rmdirSync(dir); return true; } catch { return !existsSync(dir); }
}
