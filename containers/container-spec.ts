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
// This file: the spec and its translation into the native spawn() options (pure but for hostFacts).
// Its mounts are container-mounts.ts, its cgroup container-cgroup.ts; running it is runtime.ts.
import { readFileSync, statSync } from 'node:fs';
import { hostname as osHostname } from 'node:os';
import type { NativeDevice, Rlimit, SpawnOptions } from '../native/native.js';
import { capabilityMask, capabilityNames, resolveCapabilities, statusCapabilities } from './capabilities.js';
import {
  apiMounts,
  containerPath,
  hostPath,
  invalid,
  ownedBy,
  parseTmpfs,
  rootMount,
  volumeMount,
} from './container-mounts.js';
import { ContainerError } from './errors.js';
import { seccompProgram, type SeccompOptions } from './seccomp.js';
import type { IdMapping } from './store.js';

export const DEFAULT_PATH = '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin';

/** Docker's masked paths: a file gets /dev/null over it, a directory an empty read-only tmpfs. */
export const MASKED_PATHS = [
  '/proc/acpi',
  '/proc/asound',
  '/proc/kcore',
  '/proc/keys',
  '/proc/latency_stats',
  '/proc/timer_list',
  '/proc/timer_stats',
  '/proc/sched_debug',
  '/proc/scsi',
  '/sys/firmware',
  '/sys/devices/virtual/powercap',
];

/** Docker's read-only paths. */
export const READONLY_PATHS = ['/proc/bus', '/proc/fs', '/proc/irq', '/proc/sys', '/proc/sysrq-trigger'];

/** The device nodes of a container's /dev (mode 0666), with the usual numbers if the host has none. */
export const DEVICES: Readonly<Record<string, { major: number; minor: number }>> = {
  null: { major: 1, minor: 3 },
  zero: { major: 1, minor: 5 },
  full: { major: 1, minor: 7 },
  tty: { major: 5, minor: 0 },
  random: { major: 1, minor: 8 },
  urandom: { major: 1, minor: 9 },
};

export const DEV_SYMLINKS: readonly { path: string; target: string }[] = [
  { path: '/dev/fd', target: '/proc/self/fd' },
  { path: '/dev/stdin', target: '/proc/self/fd/0' },
  { path: '/dev/stdout', target: '/proc/self/fd/1' },
  { path: '/dev/stderr', target: '/proc/self/fd/2' },
  { path: '/dev/ptmx', target: 'pts/ptmx' },
];

export type RootfsSpec =
  /** An overlay mounted on `mountpoint`: `lower` top-most first (as overlayfs's lowerdir). */
  | { lower: string[]; upper: string; work: string; mountpoint: string }
  /** A directory bound onto itself. */
  | { bind: string };

export interface VolumeSpec {
  host: string;
  container: string;
  ro?: boolean;
}

/** cgroup v2 limits, written into the container's cgroup before it starts. */
export interface ContainerLimits {
  /** memory.max in bytes. */
  memoryMax?: number | 'max';
  /** cpu.max: `quota` µs of CPU per `period` µs (default 100000); { quota: 50000 } is half a CPU. */
  cpuMax?: { quota: number | 'max'; period?: number };
  /** pids.max. */
  pidsMax?: number | 'max';
}

export interface ContainerSpec {
  /**
   * [A-Za-z0-9][A-Za-z0-9_.-]*, at most 128 characters; names the cgroup; its first 12 characters are the default
   * hostname.
   */
  id: string;
  rootfs: RootfsSpec;
  readOnly?: boolean;
  /** The entrypoint and its arguments; argv[0] without a '/' is looked up in PATH inside the container. */
  argv: string[];
  /** "KEY=VALUE"; PATH, HOSTNAME and HOME are added when missing (TERM=xterm too with a tty). */
  env?: string[];
  /** Inside the container; default '/'. */
  cwd?: string;
  /** Default root (0:0, no supplementary groups). */
  user?: { uid: number; gid: number; groups?: number[] };
  /** Default: the id's first 12 characters (the host's name with network 'host'). */
  hostname?: string;
  /** Default 'none': a new network namespace with only lo (up). */
  network?: 'none' | 'host' | { netnsPath: string };
  /** { host, container, ro } or Docker's "HOST:CONTAINER[:ro|rw]". */
  volumes?: (VolumeSpec | string)[];
  /** Docker's --tmpfs: "/run" or "/run:size=64m,mode=755" (default nosuid,nodev,noexec). */
  tmpfs?: string[];
  privileged?: boolean;
  capAdd?: string[];
  capDrop?: string[];
  /** More or fewer syscalls for the default filter, or none at all ('unconfined'). */
  seccomp?: Pick<SeccompOptions, 'deny' | 'allow'> | 'unconfined';
  /**
   * The container's cgroup v2 directory; runContainer() defaults it to <cgroup2 mount>/keel.containers/<id>; null:
   * none.
   */
  cgroup?: string | null;
  limits?: ContainerLimits;
  /** Parent fds for the container's 0, 1, 2 (default the tty if given, else /dev/null). */
  stdin?: number;
  stdout?: number;
  stderr?: number;
  /**
   * A terminal opened inside (in the container's devpts): 0-2 where not given and the controlling tty; its master is
   * sent over the socket.
   */
  console?: ConsoleSocket;
  rlimits?: Rlimit[];
  /**
   * A user namespace (docker's userns-remap): ids 0 to size-1 inside are uid../gid.. on the host,
   * so the container's root is an unprivileged user outside. The root's layers must be owned by
   * those ids (ImageStore.prepareUserns); the upper layer is made theirs. Not with privileged or
   * network 'host'.
   */
  userns?: IdMapping;
}

/** spawn()'s console: the socket the master of the container's pty comes back on, and its first window size. */
export interface ConsoleSocket {
  socket: number;
  rows?: number;
  cols?: number;
}

/** The spawn() options of a console. */
export function consoleOptions(c: ConsoleSocket): Pick<SpawnOptions, 'console' | 'consoleRows' | 'consoleCols'> {
  return { console: c.socket, ...(c.rows && c.cols ? { consoleRows: c.rows, consoleCols: c.cols } : {}) };
}

/** What containerSpawnOptions needs to know about the host; hostFacts() reads it. */
export interface HostFacts {
  /** Capabilities this process can hand down (its bounding set ∩ permitted). */
  capabilities: bigint;
  /** Numbers of the host's device nodes, by name (/dev/null …). */
  devices: Record<string, { major: number; minor: number }>;
  hostname: string;
}

/** The capabilities and device numbers of this host and process. */
export function hostFacts(): HostFacts {
  const status = readFileSync('/proc/self/status', 'utf8');
  const devices: HostFacts['devices'] = {};
  for (const [name, fallback] of Object.entries(DEVICES)) {
    try {
      const st = statSync(`/dev/${name}`, { bigint: true });
      // glibc's gnu_dev_major/minor.
      const major = Number(((st.rdev >> 8n) & 0xfffn) | ((st.rdev >> 32n) & ~0xfffn));
      const minor = Number((st.rdev & 0xffn) | ((st.rdev >> 12n) & ~0xffn));
      devices[name] = st.isCharacterDevice() ? { major, minor } : fallback;
    } catch {
      devices[name] = fallback;
    }
  }
  return {
    capabilities: statusCapabilities(status, 'CapBnd') & statusCapabilities(status, 'CapPrm'),
    devices,
    hostname: osHostname(),
  };
}

const ID = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$/;

/** The capabilities the container keeps: all of ours when privileged, else Docker's rules. */
export function containerCapabilities(
  spec: Pick<ContainerSpec, 'privileged' | 'capAdd' | 'capDrop'>,
  host: Pick<HostFacts, 'capabilities'>,
): bigint {
  if (spec.privileged) return host.capabilities;
  const mask = resolveCapabilities(spec.capAdd, spec.capDrop);
  // Explicitly added capabilities this process lacks would silently not be there: refuse them.
  const named = (spec.capAdd ?? []).filter((c) => !/^(CAP_)?ALL$/i.test(c.trim()));
  const missing = capabilityMask(named) & ~host.capabilities;
  if (missing)
    throw new ContainerError(
      'ECAPABILITY',
      `cannot add ${capabilityNames(missing).join(', ')}: this runtime does not have ` +
        `${missing & (missing - 1n) ? 'them' : 'it'} to hand down`,
    );
  return mask & host.capabilities;
}

function withDefaults(env: string[], add: Record<string, string>): string[] {
  const has = new Set(env.map((e) => e.split('=', 1)[0]));
  return [
    ...env,
    ...Object.entries(add)
      .filter(([k]) => !has.has(k))
      .map(([k, v]) => `${k}=${v}`),
  ];
}

/** A container process's environment: `env` plus PATH, HOSTNAME and HOME (TERM=xterm too with a tty) where missing. */
export function containerEnv(env: string[], hostname: string, uid: number, tty = false): string[] {
  return withDefaults(env, {
    PATH: DEFAULT_PATH,
    HOSTNAME: hostname,
    HOME: uid === 0 ? '/root' : '/',
    ...(tty ? { TERM: 'xterm' } : {}),
  });
}

/** How a container's processes are confined, its entrypoint's and (keel exec) every later one's. */
export interface ContainerSecurity {
  /** The capabilities kept (bit n = capability n). */
  capabilities: bigint;
  /** The seccomp program; none when privileged or unconfined. */
  seccomp?: Buffer;
  noNewPrivs: boolean;
}

/**
 * The capabilities, seccomp filter and no_new_privs of a container: Docker's rules, or everything we have when
 * privileged.
 */
export function containerSecurity(
  spec: Pick<ContainerSpec, 'privileged' | 'capAdd' | 'capDrop' | 'seccomp'>,
  host: Pick<HostFacts, 'capabilities'>,
): ContainerSecurity {
  const privileged = spec.privileged === true;
  const capabilities = containerCapabilities(spec, host);
  const seccomp =
    privileged || spec.seccomp === 'unconfined' ? undefined : seccompProgram({ capabilities, ...(spec.seccomp ?? {}) });
  return { capabilities, ...(seccomp ? { seccomp } : {}), noNewPrivs: !privileged };
}

/**
 * A user namespace's range must be sane and hold the container's ids; it excludes privileged and the host's network.
 */
function checkUserns(spec: ContainerSpec, u: IdMapping): void {
  for (const k of ['uid', 'gid', 'size'] as const) {
    if (!Number.isSafeInteger(u[k]) || u[k] < 1 || u[k] > 0xfffffffe)
      invalid(`userns.${k}`, `must be an integer from 1 to 4294967294, not ${String(u[k])}`);
  }
  if (u.uid + u.size > 0xffffffff || u.gid + u.size > 0xffffffff)
    invalid('userns.size', `${u.size} runs past the last id`);
  if (spec.privileged) invalid('userns', 'cannot be used with privileged (as docker: use --userns=host)');
  if (spec.network === 'host')
    invalid('userns', "cannot be used with the host's network namespace (as docker: use --userns=host)");
  const uid = spec.user?.uid ?? 0,
    gid = spec.user?.gid ?? 0;
  for (const [what, id] of [
    ['user id', uid],
    ['group id', gid],
    ...(spec.user?.groups ?? []).map((g) => ['group id', g] as const),
  ] as const) {
    if (id >= u.size) invalid('user', `${what} ${id} is outside the user namespace's 0-${u.size - 1}`);
  }
}

/** Turns a container spec into spawn() options: every mount, device, path, mask and filter decided here. */
export function containerSpawnOptions(spec: ContainerSpec, host: HostFacts = hostFacts()): SpawnOptions {
  if (typeof spec.id !== 'string' || !ID.test(spec.id)) invalid('id', `${JSON.stringify(spec.id)} must match ${ID}`);
  if (!Array.isArray(spec.argv) || spec.argv.length === 0 || spec.argv[0] === '')
    invalid('argv', 'must name a program');
  const privileged = spec.privileged === true;
  const network = spec.network ?? 'none';
  const { root, rootMount: rm } = rootMount(spec.rootfs);

  const userns = spec.userns;
  if (userns) checkUserns(spec, userns);
  const mounts = [...apiMounts(privileged, userns)];
  // Parents before children (Docker sorts by depth too); stable for equal depths.
  const tmpfs = (spec.tmpfs ?? [])
    .map(parseTmpfs)
    .map((t) => ({ ...t, data: ownedBy(t.data ?? '', userns, 'tmpfs') || null }));
  const user = [...tmpfs, ...(spec.volumes ?? []).map(volumeMount)];
  const depth = (p: string) => p.split('/').length;
  mounts.push(
    ...user
      .map((m, i) => ({ m, i }))
      .sort((a, b) => depth(a.m.target) - depth(b.m.target) || a.i - b.i)
      .map(({ m }) => m),
  );

  const devices: NativeDevice[] = privileged
    ? []
    : Object.keys(DEVICES).map((name) => ({
        path: `/dev/${name}`,
        type: 'c',
        ...(host.devices[name] ?? DEVICES[name]),
        mode: 0o666,
      }));

  const { capabilities: caps, seccomp } = containerSecurity(spec, host);
  const hostname = spec.hostname ?? (network === 'host' ? host.hostname : spec.id.slice(0, 12));
  const uid = spec.user?.uid ?? 0,
    gid = spec.user?.gid ?? 0;
  const env = containerEnv(spec.env ?? [], hostname, uid, Boolean(spec.console));

  const opts: SpawnOptions = {
    file: spec.argv[0],
    argv: spec.argv,
    env,
    cwd: containerPath(spec.cwd ?? '/', 'cwd'),
    uid,
    gid,
    groups: spec.user?.groups ?? [],
    umask: 0o022,
    setsid: true,
    noNewPrivs: !privileged,
    capabilities: caps,
    container: {
      root,
      rootMount: rm,
      readOnly: spec.readOnly === true,
      newNetwork: network === 'none',
      netns: typeof network === 'object' ? hostPath(network.netnsPath, 'network.netnsPath') : undefined,
      hostname,
      mounts,
      devices,
      symlinks: privileged ? [] : [...DEV_SYMLINKS],
      maskedPaths: privileged ? [] : [...MASKED_PATHS],
      readonlyPaths: privileged ? [] : [...READONLY_PATHS],
      ...(userns
        ? { userns: { uidMap: `0 ${userns.uid} ${userns.size}\n`, gidMap: `0 ${userns.gid} ${userns.size}\n` } }
        : {}),
    },
  };
  if (seccomp) opts.seccomp = seccomp;
  if (typeof spec.cgroup === 'string') opts.cgroup = hostPath(spec.cgroup, 'cgroup');
  for (const k of ['stdin', 'stdout', 'stderr'] as const) if (spec[k] !== undefined) opts[k] = spec[k];
  if (spec.console) Object.assign(opts, consoleOptions(spec.console));
  if (spec.rlimits) opts.rlimits = spec.rlimits;
  return opts;
}
