// keel exec: a new process in a running container, as docker exec starts one. It enters the
// namespaces, cgroup and root of the container's PID 1 (spawn()'s `join` option) and is confined
// as the container's own processes are: the same capabilities, seccomp filter and no_new_privs,
// computed again from the container's stored config by the same code that set up its entrypoint.
// It gets the container's environment (plus -e), user and working directory unless told otherwise.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { isNativeError, native, type JoinNamespace, type SpawnOptions } from '../native/native.js';
import { processStartTime, type ContainerConfig, type ContainerDb, type ContainerState } from './db.js';
import { userFor } from './engine.js';
import { ContainerError } from './errors.js';
import {
  cgroup2Mounts,
  consoleOptions,
  containerEnv,
  containerPath,
  containerSecurity,
  hostFacts,
  waitForPid,
  type ConsoleSocket,
  type ContainerExit,
  type HostFacts,
} from './runtime.js';
import type { ImageStore } from './store.js';

/** Every namespace a container has (and 'user' with --userns=remap). */
export const EXEC_NAMESPACES: readonly JoinNamespace[] = ['mnt', 'uts', 'ipc', 'net', 'pid', 'cgroup'];

export interface ExecOptions {
  /** The command; argv[0] without a '/' is looked up in PATH inside the container. */
  argv: string[];
  /** -e: KEY=VALUE, or KEY to pass our own value (left out when we have none); over the container's. */
  env?: string[];
  /** -u NAME|UID[:GROUP|GID], names from the image's /etc/passwd and /etc/group; default the container's user. */
  user?: string;
  /** Inside the container; default the container's working directory. */
  cwd?: string;
  /** Parent fds for the command's 0, 1, 2 (default /dev/null, the container's). */
  stdin?: number;
  stdout?: number;
  stderr?: number;
  /**
   * -t: a terminal the command opens in the container's devpts (0-2 where not given, its controlling tty); TERM=xterm
   * then unless set.
   */
  console?: ConsoleSocket;
}

export interface ExecProcess {
  /**
   * The host pid of the process that waits for the command (outside the container's pid namespace,
   * which only its children can enter): SIGTERM, SIGINT and SIGHUP sent to it are passed on, and
   * the command gets SIGKILL should it die.
   */
  pid: number;
  /** Resolves once the command has ended: its exit code, or the signal that killed it. */
  wait(): Promise<ContainerExit>;
  /** Signals the command (through `pid`); default SIGTERM. */
  kill(signal?: NodeJS.Signals | number): void;
}

/** The cgroup v2 directory of a process, from /proc/PID/cgroup (relative to our cgroup namespace); null if unknown. */
export function processCgroup(pid: number, mounts: string[] = cgroup2Mounts()): string | null {
  let text: string;
  try {
    text = readFileSync(`/proc/${pid}/cgroup`, 'utf8');
  } catch {
    return null;
  }
  const rel = text
    .split('\n')
    .find((l) => l.startsWith('0::'))
    ?.slice(3);
  if (!rel?.startsWith('/') || !mounts[0]) return null;
  return join(mounts[0], rel);
}

/** -e over the container's environment: KEY=VALUE sets, KEY alone takes our own value (as docker does). */
export function execEnvironment(base: string[], envs: string[], own: NodeJS.ProcessEnv = process.env): string[] {
  const out = new Map<string, string>();
  for (const kv of base) {
    const eq = kv.indexOf('=');
    if (eq > 0) out.set(kv.slice(0, eq), kv.slice(eq + 1));
  }
  for (const e of envs) {
    const eq = e.indexOf('=');
    const key = eq < 0 ? e : e.slice(0, eq);
    if (!/^[^=\s]+$/.test(key))
      throw new ContainerError('EENV', `invalid environment variable ${JSON.stringify(e)} (-e)`);
    if (eq >= 0) out.set(key, e.slice(eq + 1));
    else if (own[key] !== undefined) out.set(key, own[key]!);
  }
  return [...out].map(([k, v]) => `${k}=${v}`);
}

/** What the new process needs to know about the container and the host. */
export interface ExecTarget {
  config: ContainerConfig;
  state: ContainerState;
  /** The image's layer directories, bottom first (for -u names). */
  layerDirs: string[];
  /** The container's cgroup, or null to stay in ours. */
  cgroup: string | null;
  host?: Pick<HostFacts, 'capabilities'>;
}

/** spawn() options for a command in a running container; decides everything, runs nothing. */
export function execSpawnOptions(t: ExecTarget, o: ExecOptions, own: NodeJS.ProcessEnv = process.env): SpawnOptions {
  const c = t.config;
  if (!Array.isArray(o.argv) || o.argv.length === 0 || o.argv[0] === '')
    throw new ContainerError('EINVAL', 'cannot exec in the container: name a command');
  const { uid, gid } = userFor(o.user ?? c.user, t.layerDirs);
  const security = containerSecurity(
    { privileged: c.privileged, capAdd: c.capAdd, capDrop: c.capDrop },
    t.host ?? hostFacts(),
  );
  const hostname = c.hostname || c.id.slice(0, 12);
  const env = execEnvironment(containerEnv(c.env, hostname, uid, Boolean(o.console)), o.env ?? [], own);
  const opts: SpawnOptions = {
    file: o.argv[0],
    argv: o.argv,
    env,
    cwd: containerPath(o.cwd || c.cwd || '/', 'workdir'),
    uid,
    gid,
    groups: [],
    umask: 0o022,
    setsid: true,
    noNewPrivs: security.noNewPrivs,
    capabilities: security.capabilities,
    // Its user namespace last (native order): the others need our own root's capabilities to enter.
    join: {
      pid: t.state.pid,
      startTime: t.state.startTime,
      namespaces: [...EXEC_NAMESPACES, ...(c.userns ? ['user' as const] : [])],
    },
  };
  if (security.seccomp) opts.seccomp = security.seccomp;
  if (t.cgroup) opts.cgroup = t.cgroup;
  for (const k of ['stdin', 'stdout', 'stderr'] as const) if (o[k] !== undefined) opts[k] = o[k];
  if (o.console) Object.assign(opts, consoleOptions(o.console));
  return opts;
}

function notRunning(name: string, cause?: unknown): ContainerError {
  return new ContainerError('ENOTRUNNING', `container ${name} is not running`, cause ? { cause } : undefined);
}

/**
 * Starts `argv` in the running container `name` (a name, id or unique id prefix). Throws
 * ENOCONTAINER for a missing container, ENOTRUNNING for a stopped one (also when it stops while
 * we enter it), and a failure before the command's execve (a missing program, a bad cwd) as the
 * native error naming the syscall and path.
 */
export function execInContainer(
  db: ContainerDb,
  store: ImageStore,
  name: string,
  o: ExecOptions,
  host?: HostFacts,
): ExecProcess {
  const { config, state } = db.resolve(name);
  if (state.status !== 'running' || !state.pid) throw notRunning(name);
  let layerDirs: string[] = [];
  try {
    layerDirs = store.layerDirs(store.resolve(config.imageId));
  } catch {
    /* image removed: numeric -u only */
  }
  const cgroup = processCgroup(state.pid);
  const opts = execSpawnOptions({ config, state, layerDirs, cgroup, ...(host ? { host } : {}) }, o);
  let pid: number;
  try {
    pid = native.spawn(opts);
  } catch (e) {
    // Gone between the check and the spawn: its /proc entries vanished, or the pid is another's now.
    if (processStartTime(state.pid) !== state.startTime && (!isNativeError(e) || e.syscall !== 'execve'))
      throw notRunning(name, e);
    throw e;
  }
  let ended = false;
  let result: Promise<ContainerExit> | undefined;
  const wait = () =>
    (result ??= waitForPid(pid).then((s) => {
      ended = true;
      return { code: s.code, signal: s.signal };
    }));
  return {
    pid,
    wait,
    kill(signal: NodeJS.Signals | number = 'SIGTERM') {
      if (!ended) process.kill(pid, signal);
    },
  };
}
