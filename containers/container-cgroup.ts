// A container's cgroup v2: where it goes, its limit files, the controllers they need, its processes.
// The cgroup files themselves are lib/cgroup.ts, shared with init's services.
import { writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import {
  cgroup2Mounts,
  cgroupControllers,
  delegateControllers,
  killCgroup,
  limitFiles as cgroupLimitFiles,
  limitProblem,
  removeCgroup,
} from '../lib/cgroup.js';
import { isKeelError } from '../lib/errors.js';
import type { ContainerLimits } from './container-spec.js';
import { invalid } from './container-mounts.js';
import { ContainerError } from './errors.js';

export { cgroup2Mounts, cgroupProcs, oomKills } from '../lib/cgroup.js';

/** Where containers' cgroups go by default: <cgroup2 mount>/keel.containers. */
export function defaultCgroupParent(): string {
  const [mount] = cgroup2Mounts();
  if (!mount)
    throw new ContainerError('ECGROUP', 'cannot place the container in a cgroup: no cgroup2 filesystem is mounted');
  return join(mount, 'keel.containers');
}

/** The limit files and their values (lib/cgroup.ts), after refusing a bad limit with EINVAL naming it. */
export function limitFiles(limits: ContainerLimits = {}): [file: string, value: string][] {
  const problem = limitProblem(limits);
  if (problem) invalid(`limits.${problem.what}`, problem.reason);
  return cgroupLimitFiles(limits);
}

/**
 * Makes `controllers` available in `dir` (enabling them in each ancestor's cgroup.subtree_control
 * from its cgroup2 root down) or throws ECGROUP naming the first cgroup that lacks one.
 */
export function enableControllers(dir: string, controllers: string[]): void {
  const missing = () => controllers.filter((c) => !cgroupControllers(dir).includes(c));
  if (missing().length === 0) return;
  const root = cgroup2Mounts()
    .filter((m) => dir === m || dir.startsWith(m.endsWith('/') ? m : `${m}/`))
    .sort((a, b) => b.length - a.length)[0];
  if (!root)
    throw new ContainerError(
      'ECGROUP',
      `cannot enable ${missing().join(', ')} for ${dir}: it is not on a cgroup2 filesystem`,
    );
  try {
    delegateControllers(dirname(dir), missing(), root);
  } catch (e) {
    if (isKeelError(e, 'ECGROUP')) throw new ContainerError('ECGROUP', `${e.message} (for ${dir})`, { cause: e });
    throw e;
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
      throw new ContainerError('ECGROUP', `cannot write ${value} to ${join(dir, file)}: ${(e as Error).message}`, {
        cause: e,
      });
    }
  }
}

/** Removes a container's cgroup, waiting a little for killed processes to finish exiting (SIGKILLing stragglers). */
export async function removeCgroupWhenEmpty(dir: string): Promise<boolean> {
  for (let i = 0; i < 100; i++) {
    if (removeCgroup(dir)) return true;
    if (i === 20) killCgroup(dir, 'SIGKILL');
    await new Promise((r) => setTimeout(r, 10));
  }
  return false;
}
