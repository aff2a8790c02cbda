// cgroup v2 for units: one group per service under system.slice and its limits. The cgroup files
// (limits, controllers, processes, usage, killing, removal) are lib/cgroup.ts, shared with containers.
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { cgroupFiles, delegateControllers, limitFiles as cgroupLimitFiles, type CgroupIo, type CgroupLimits } from '../lib/cgroup.js';
import { KeelError } from '../lib/errors.js';

export { cgroupProcs as cgroupPids, cgroupUsage, killCgroup, removeCgroup } from '../lib/cgroup.js';

/** A unit's MemoryMax=, CPUQuota= (percent of one CPU) and TasksMax= (null: not set; Infinity: infinity). */
export interface UnitLimits { memoryMax: number | null; cpuQuota: number | null; tasksMax: number | null }

/** The controllers every service's cgroup gets (MemoryMax=, TasksMax=, CPUQuota=, status). */
export const SERVICE_CONTROLLERS = ['memory', 'pids', 'cpu'];

/** Where a unit's cgroup lives, relative to the cgroup2 mount. */
export function unitCgroupPath(root: string, unit: string): string {
  return join(root, 'system.slice', unit);
}

/** A unit's limits as cgroup v2 takes them. */
export function unitLimits(l: UnitLimits): CgroupLimits {
  return {
    ...(l.memoryMax !== null ? { memoryMax: l.memoryMax === Infinity ? 'max' as const : Math.floor(l.memoryMax) } : {}),
    // CPUQuota is percent of one CPU per 100 ms period, as systemd writes cpu.max.
    ...(l.cpuQuota !== null ? { cpuMax: { quota: Math.max(1000, Math.round(l.cpuQuota * 1000)), period: 100000 } } : {}),
    ...(l.tasksMax !== null ? { pidsMax: l.tasksMax === Infinity ? 'max' as const : l.tasksMax } : {}),
  };
}

/** cgroup v2 limit files for MemoryMax=, CPUQuota= and TasksMax=. */
export function limitFiles(l: UnitLimits): [string, string][] {
  return cgroupLimitFiles(unitLimits(l));
}

/**
 * Delegates the service controllers from the cgroup2 root down to system.slice's children, each on
 * its own: one the kernel lacks does not keep the others from services. Throws ECGROUP naming the
 * missing ones after enabling the rest (PID 1 logs it and goes on: best effort).
 */
export function enableControllers(root: string, controllers: string[] = SERVICE_CONTROLLERS, io: CgroupIo = cgroupFiles): void {
  const slice = join(root, 'system.slice');
  mkdirSync(slice, { recursive: true });
  const failed: string[] = [];
  for (const c of controllers) {
    try { delegateControllers(slice, [c], root, io); } catch (e) { failed.push((e as Error).message); }
  }
  if (failed.length) throw new KeelError('ECGROUP', `cannot enable every service controller: ${failed.join('; ')}`, { path: slice });
}

/** Creates the unit's cgroup and writes its limits; returns the path. */
export function createUnitCgroup(root: string, unit: string, limits: UnitLimits): string {
  const dir = unitCgroupPath(root, unit);
  mkdirSync(dir, { recursive: true });
  for (const [file, value] of limitFiles(limits)) writeFileSync(join(dir, file), value);
  return dir;
}
