// Running containers: TypeScript decides everything (mounts, devices, masked paths, capabilities,
// the seccomp filter, cgroup limits), the native helper's spawn() with its `container` option does
// the syscalls in the cloned child, which execs the entrypoint as PID 1 of the new namespaces.
//
// What a container gets (Docker's defaults unless said otherwise):
// - namespaces: pid, mount, uts, ipc, cgroup; net too unless network 'host' or a prepared netns;
//   with network 'none' the new namespace has only lo, which is brought up (as in Docker);
// - root: an overlay (lower layers top-most first, upper, work) or a bind of a directory, mounted
//   inside the container's mount namespace only (never visible on the host, gone when it ends),
//   optionally read-only; /proc, /dev (tmpfs with null, zero, full, tty, random, urandom, pts,
//   shm, mqueue, fd/stdin/stdout/stderr/ptmx links), /sys and /sys/fs/cgroup read-only, volumes
//   (binds, `:ro` remounted read-only), tmpfs mounts;
// - Docker's masked and read-only /proc and /sys paths;
// - Docker's default capabilities adjusted by capAdd/capDrop, no_new_privs (unlike Docker, always),
//   the seccomp filter of ./seccomp.ts;
// - `privileged`: every capability this process has, no seccomp, no masked or read-only paths,
//   no no_new_privs, the host's /dev (bound; new pts and shm instances on it, no mqueue), /sys and
//   /sys/fs/cgroup writable.
//
// This file runs a container; its spec is container-spec.ts, its mounts container-mounts.ts, its cgroup
// container-cgroup.ts (their public names re-exported here, where callers found them before the split).
import { chownSync, existsSync, mkdirSync, rmdirSync } from 'node:fs';
import { join } from 'node:path';
import { native } from '../native/native.js';
import { toExitStatus, type ExitStatus, type ProcessTable } from '../native/process-table.js';
import { applyLimits, cgroupProcs, defaultCgroupParent, oomKills, removeCgroupWhenEmpty } from './container-cgroup.js';
import { hostPath } from './container-mounts.js';
import { containerSpawnOptions, type ContainerSpec, type HostFacts } from './container-spec.js';
import { ContainerError } from './errors.js';

export * from './container-spec.js';
export { containerPath, MS, parseTmpfs, parseVolume } from './container-mounts.js';
export {
  applyLimits,
  cgroup2Mounts,
  defaultCgroupParent,
  enableControllers,
  limitFiles,
  oomKills,
} from './container-cgroup.js';

// ------------------------------------------------------------------ running

/** How a container ended: its entrypoint's exit code, or the name of the signal that killed it. */
export interface ContainerExit {
  code: number | null;
  signal: string | null;
  /** The cgroup's memory.events counted an oom_kill (read before the cgroup goes). */
  oomKilled?: boolean;
}

export interface RunningContainer {
  id: string;
  /** The entrypoint's pid on the host (1 inside). */
  pid: number;
  /** Its cgroup directory, or null. */
  cgroup: string | null;
  /** Resolves once the entrypoint has exited (and been reaped); the cgroup we created is removed then. */
  wait(): Promise<ContainerExit>;
  /**
   * Signals the entrypoint (default SIGKILL). As PID 1 of its namespace it receives only signals
   * it has a handler for, and SIGKILL/SIGSTOP: a SIGTERM to a program without a handler does
   * nothing (as in Docker, hence stop()'s escalation).
   */
  kill(signal?: NodeJS.Signals | number): void;
  /** SIGTERM, then SIGKILL after graceMs (default 10 s) if it is still running; `docker stop`. */
  stop(graceMs?: number): Promise<ContainerExit>;
}

export interface RunOptions {
  /**
   * Spawn and reap through PID 1's process table (which reaps every child with waitpid(-1)); default: a waitpid of
   * our own on this pid.
   */
  table?: ProcessTable;
  /** Parent of the default cgroup (<parent>/<id>); default defaultCgroupParent(). */
  cgroupParent?: string;
  host?: HostFacts;
}

/** Waits for one child with waitpid(pid, WNOHANG) on every SIGCHLD, plus a backing-off poll. */
export function waitForPid(pid: number): Promise<ExitStatus> {
  return new Promise((resolvePromise, reject) => {
    let timer: NodeJS.Timeout | undefined;
    let delay = 2;
    const done = () => {
      process.off('SIGCHLD', check);
      clearTimeout(timer);
    };
    function check(): boolean {
      try {
        const w = native.waitpid(pid, native.constants.WNOHANG);
        const status = w && toExitStatus(w);
        if (status) {
          done();
          resolvePromise(status);
          return true;
        }
      } catch (e) {
        done();
        reject(e);
        return true;
      }
      return false;
    }
    const tick = () => {
      if (!check()) {
        delay = Math.min(delay * 2, 100);
        timer = setTimeout(tick, delay);
      }
    };
    process.on('SIGCHLD', check);
    tick();
  });
}

/**
 * Runs a container: creates its cgroup (if missing) and writes the limits, then spawns it; a
 * failure before the entrypoint's execve (a mount, a missing program) is thrown here as the
 * native error, with nothing left behind (the child's mounts lived in its own namespace).
 */
export function runContainer(spec: ContainerSpec, opts: RunOptions = {}): RunningContainer {
  const cgroup =
    spec.cgroup === null
      ? null
      : spec.cgroup
        ? hostPath(spec.cgroup, 'cgroup')
        : join(opts.cgroupParent ?? defaultCgroupParent(), spec.id);
  // Validated first: nothing is created for a spec that cannot run.
  const spawnOpts = containerSpawnOptions({ ...spec, cgroup }, opts.host);
  if (!('bind' in spec.rootfs)) {
    for (const d of [spec.rootfs.mountpoint, spec.rootfs.upper, spec.rootfs.work]) mkdirSync(d, { recursive: true });
    // The root directory's owner is the upper layer's: the namespace's root, who can write in it.
    if (spec.userns)
      for (const d of [spec.rootfs.upper, spec.rootfs.work]) chownSync(d, spec.userns.uid, spec.userns.gid);
  }
  let created = false;
  if (cgroup) {
    if (!existsSync(cgroup)) {
      mkdirSync(cgroup, { recursive: true });
      created = true;
    } else if (cgroupProcs(cgroup).length > 0) {
      throw new ContainerError('EINUSE', `cannot run container ${spec.id}: its cgroup ${cgroup} already has processes`);
    }
  }
  let pid: number;
  let exited: Promise<ExitStatus> | undefined;
  try {
    if (cgroup) applyLimits(cgroup, spec.limits);
    if (opts.table) ({ pid, exited } = opts.table.spawn(spawnOpts));
    else pid = native.spawn(spawnOpts);
  } catch (e) {
    if (created)
      try {
        rmdirSync(cgroup!);
      } catch {
        /* best effort */
      }
    throw e;
  }
  let ended = false;
  // Once reaped, the pid may be reused: no more signals to it.
  void exited?.then(() => {
    ended = true;
  });
  let result: Promise<ContainerExit> | undefined;
  const wait = (): Promise<ContainerExit> =>
    (result ??= (exited ?? waitForPid(pid)).then(async (s) => {
      ended = true;
      const oomKilled = cgroup ? oomKills(cgroup) > 0 : false;
      if (created) await removeCgroupWhenEmpty(cgroup!);
      return { code: s.code, signal: s.signal, ...(oomKilled ? { oomKilled } : {}) };
    }));
  const kill = (signal: NodeJS.Signals | number = 'SIGKILL') => {
    if (!ended) process.kill(pid, signal);
  };
  return {
    id: spec.id,
    pid,
    cgroup,
    wait,
    kill,
    async stop(graceMs = 10000) {
      const done = wait();
      kill('SIGTERM');
      let timer: NodeJS.Timeout | undefined;
      const timedOut = await Promise.race([
        done.then(() => false),
        new Promise<boolean>((r) => {
          timer = setTimeout(() => r(true), graceMs);
        }),
      ]);
      clearTimeout(timer);
      if (timedOut) kill('SIGKILL');
      return done;
    },
  };
}
