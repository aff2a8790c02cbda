// cgroup v2 for units: one group per service under system.slice, limits, counts and killing.
import { existsSync, mkdirSync, readFileSync, rmdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

/** Where a unit's cgroup lives, relative to the cgroup2 mount. */
export function unitCgroupPath(root: string, unit: string): string {
  return join(root, 'system.slice', unit);
}

/** cgroup v2 limit files for MemoryMax=, CPUQuota= and TasksMax= (null: not set). */
export function limitFiles(l: { memoryMax: number | null; cpuQuota: number | null; tasksMax: number | null }): [string, string][] {
  const out: [string, string][] = [];
  if (l.memoryMax !== null) out.push(['memory.max', l.memoryMax === Infinity ? 'max' : String(Math.floor(l.memoryMax))]);
  // CPUQuota is percent of one CPU per 100 ms period, as systemd writes cpu.max.
  if (l.cpuQuota !== null) out.push(['cpu.max', `${Math.max(1000, Math.round(l.cpuQuota * 1000))} 100000`]);
  if (l.tasksMax !== null) out.push(['pids.max', l.tasksMax === Infinity ? 'max' : String(l.tasksMax)]);
  return out;
}

/** Makes sure the controllers are delegated down to system.slice; best effort. */
export function enableControllers(root: string): void {
  const slice = join(root, 'system.slice');
  mkdirSync(slice, { recursive: true });
  for (const dir of [root, slice]) {
    try { writeFileSync(join(dir, 'cgroup.subtree_control'), '+memory +pids +cpu'); } catch { /* a controller may be absent */ }
  }
}

/** Creates the unit's cgroup and writes its limits; returns the path. */
export function createUnitCgroup(root: string, unit: string, limits: Parameters<typeof limitFiles>[0]): string {
  const dir = unitCgroupPath(root, unit);
  mkdirSync(dir, { recursive: true });
  for (const [file, value] of limitFiles(limits)) writeFileSync(join(dir, file), value);
  return dir;
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
