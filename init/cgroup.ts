// cgroup v2 for units: one group per service under system.slice and its limits, with the cgroup v1
// names systemd still maps onto v2. The cgroup files (limits, controllers, processes, usage,
// killing, removal) are lib/cgroup.ts, shared with containers.
import { chownSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import {
  cgroupFiles,
  delegateControllers,
  limitFiles as cgroupLimitFiles,
  type CgroupIo,
  type CgroupLimits,
} from '../lib/cgroup.js';
import { KeelError } from '../lib/errors.js';

export { cgroupProcs as cgroupPids, cgroupUsage, killCgroup, removeCgroup } from '../lib/cgroup.js';

/** The unit limits cgroup.ts writes; null or undefined: not set. */
export interface UnitLimits {
  /** MemoryMax= in bytes, CPUQuota= in percent of one CPU, TasksMax=; Infinity: infinity. */
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

/** The controllers every service's cgroup gets (MemoryMax=, TasksMax=, CPUQuota=, weights, status). */
export const SERVICE_CONTROLLERS = ['memory', 'pids', 'cpu', 'io'];

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

/** A unit's memory, CPU and task limits as cgroup v2 takes them. */
export function unitLimits(l: UnitLimits): CgroupLimits {
  const mem = l.memoryMax ?? l.memoryLimit ?? null;
  return {
    ...(mem !== null ? { memoryMax: mem === Infinity ? ('max' as const) : Math.floor(mem) } : {}),
    // CPUQuota is percent of one CPU per 100 ms period, as systemd writes cpu.max.
    ...(l.cpuQuota !== null
      ? { cpuMax: { quota: Math.max(1000, Math.round(l.cpuQuota * 1000)), period: 100000 } }
      : {}),
    ...(l.tasksMax !== null ? { pidsMax: l.tasksMax === Infinity ? ('max' as const) : l.tasksMax } : {}),
  };
}

/** cgroup v2 limit files for MemoryMax=, CPUQuota=, TasksMax= and the v1 names systemd maps onto them. */
export function limitFiles(l: UnitLimits): [string, string][] {
  const out = cgroupLimitFiles(unitLimits(l));
  if (l.cpuShares != null) out.push(['cpu.weight', String(cpuSharesToWeight(l.cpuShares))]);
  if (l.blockIOWeight != null) out.push(['io.weight', `default ${blkioWeightToIo(l.blockIOWeight)}`]);
  return out;
}

/**
 * Delegates the service controllers from the cgroup2 root down to system.slice's children, each on
 * its own: one the kernel lacks does not keep the others from services. Throws ECGROUP naming the
 * missing ones after enabling the rest (PID 1 logs it and goes on: best effort).
 */
export function enableControllers(
  root: string,
  controllers: string[] = SERVICE_CONTROLLERS,
  io: CgroupIo = cgroupFiles,
): void {
  const slice = join(root, 'system.slice');
  mkdirSync(slice, { recursive: true });
  const failed: string[] = [];
  for (const c of controllers) {
    try {
      delegateControllers(slice, [c], root, io);
    } catch (e) {
      failed.push((e as Error).message);
    }
  }
  if (failed.length)
    throw new KeelError('ECGROUP', `cannot enable every service controller: ${failed.join('; ')}`, { path: slice });
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
export function createUnitCgroup(
  root: string,
  unit: string,
  limits: UnitLimits,
  delegate?: { controllers: 'all' | string[]; owner: { uid: number; gid: number } | null },
): { dir: string; failed: string[] } {
  const dir = unitCgroupPath(root, unit);
  mkdirSync(dir, { recursive: true });
  const failed: string[] = [];
  if (delegate) {
    const slice = join(root, 'system.slice');
    const wanted =
      delegate.controllers === 'all'
        ? SERVICE_CONTROLLERS
        : delegate.controllers.filter((c) => SERVICE_CONTROLLERS.includes(c));
    for (const c of wanted) {
      try {
        writeFileSync(join(slice, 'cgroup.subtree_control'), `+${c}`);
      } catch {
        failed.push(`+${c}`);
      }
    }
    if (delegate.owner) {
      chownSync(dir, delegate.owner.uid, delegate.owner.gid);
      for (const f of DELEGATED_FILES) {
        try {
          chownSync(join(dir, f), delegate.owner.uid, delegate.owner.gid);
        } catch {
          failed.push(f);
        }
      }
    }
  }
  for (const [file, value] of limitFiles(limits)) {
    try {
      writeFileSync(join(dir, file), value);
    } catch {
      failed.push(file);
    }
  }
  return { dir, failed };
}
