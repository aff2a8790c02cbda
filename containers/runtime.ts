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
import { chownSync, existsSync, mkdirSync, readFileSync, rmdirSync, statSync, writeFileSync } from 'node:fs';
import { hostname as osHostname } from 'node:os';
import { dirname, join, posix, resolve } from 'node:path';
import { native, type NativeDevice, type NativeMount, type Rlimit, type SpawnOptions } from '../native/native.js';
import { toExitStatus, type ExitStatus, type ProcessTable } from '../native/process-table.js';
import { capabilityMask, capabilityNames, resolveCapabilities, statusCapabilities } from './capabilities.js';
import { ContainerError } from './errors.js';
import { parseVolume as parseVolumeOption } from './options.js';
import { seccompProgram, type SeccompOptions } from './seccomp.js';
import type { IdMapping } from './store.js';

// Linux mount flags (stable ABI values, as in <sys/mount.h>).
export const MS = {
  RDONLY: 0x1, NOSUID: 0x2, NODEV: 0x4, NOEXEC: 0x8, REMOUNT: 0x20, BIND: 0x1000, REC: 0x4000,
  RELATIME: 0x200000, STRICTATIME: 0x1000000,
} as const;

export const DEFAULT_PATH = '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin';

/** Docker's masked paths: a file gets /dev/null over it, a directory an empty read-only tmpfs. */
export const MASKED_PATHS = [
  '/proc/acpi', '/proc/asound', '/proc/kcore', '/proc/keys', '/proc/latency_stats', '/proc/timer_list',
  '/proc/timer_stats', '/proc/sched_debug', '/proc/scsi', '/sys/firmware', '/sys/devices/virtual/powercap',
];

/** Docker's read-only paths. */
export const READONLY_PATHS = ['/proc/bus', '/proc/fs', '/proc/irq', '/proc/sys', '/proc/sysrq-trigger'];

/** The device nodes of a container's /dev (mode 0666), with the usual numbers if the host has none. */
export const DEVICES: Readonly<Record<string, { major: number; minor: number }>> = {
  null: { major: 1, minor: 3 }, zero: { major: 1, minor: 5 }, full: { major: 1, minor: 7 },
  tty: { major: 5, minor: 0 }, random: { major: 1, minor: 8 }, urandom: { major: 1, minor: 9 },
};

export const DEV_SYMLINKS: readonly { path: string; target: string }[] = [
  { path: '/dev/fd', target: '/proc/self/fd' }, { path: '/dev/stdin', target: '/proc/self/fd/0' },
  { path: '/dev/stdout', target: '/proc/self/fd/1' }, { path: '/dev/stderr', target: '/proc/self/fd/2' },
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
  /** [A-Za-z0-9][A-Za-z0-9_.-]*, at most 128 characters; names the cgroup; its first 12 characters are the default hostname. */
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
  /** The container's cgroup v2 directory; runContainer() defaults it to <cgroup2 mount>/keel.containers/<id>; null: none. */
  cgroup?: string | null;
  limits?: ContainerLimits;
  /** Parent fds for the container's 0, 1, 2 (default the tty if given, else /dev/null). */
  stdin?: number;
  stdout?: number;
  stderr?: number;
  /** A terminal opened inside (in the container's devpts): 0-2 where not given and the controlling tty; its master is sent over the socket. */
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
  return { capabilities: statusCapabilities(status, 'CapBnd') & statusCapabilities(status, 'CapPrm'), devices, hostname: osHostname() };
}

const ID = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$/;

function invalid(what: string, reason: string): never {
  throw new ContainerError('EINVAL', `cannot run the container: ${what} ${reason}`);
}

/** An absolute, normalized path inside the container; '..' components are refused. */
export function containerPath(p: string, what: string): string {
  if (typeof p !== 'string' || !p.startsWith('/')) invalid(what, `must be an absolute path inside the container, not ${JSON.stringify(p)}`);
  if (p.includes('\0')) invalid(what, 'must not contain NUL bytes');
  if (p.split('/').includes('..')) throw new ContainerError('EUNSAFE', `cannot run the container: ${what} ${JSON.stringify(p)} contains '..'`);
  const n = posix.normalize(p);
  return n.length > 1 ? n.replace(/\/+$/, '') : n;
}

function hostPath(p: string, what: string): string {
  if (typeof p !== 'string' || !p.startsWith('/')) invalid(what, `must be an absolute host path, not ${JSON.stringify(p)}`);
  return resolve(p);
}

/** Docker's -v "HOST:CONTAINER[:ro|rw]". */
export function parseVolume(v: string): VolumeSpec {
  return parseVolumeOption(v); // options.ts (pure: a .container unit's Volume= goes through it too)
}

const TMPFS_FLAGS: Record<string, [set: number, clear: number]> = {
  ro: [MS.RDONLY, 0], rw: [0, MS.RDONLY], nosuid: [MS.NOSUID, 0], suid: [0, MS.NOSUID],
  nodev: [MS.NODEV, 0], dev: [0, MS.NODEV], noexec: [MS.NOEXEC, 0], exec: [0, MS.NOEXEC],
};

/** Docker's --tmpfs "PATH[:OPTIONS]": flags from the options, the rest (size=, mode=, uid=…) as data. */
export function parseTmpfs(spec: string): NativeMount {
  const colon = spec.indexOf(':');
  const target = containerPath(colon < 0 ? spec : spec.slice(0, colon), 'tmpfs');
  let flags = MS.NOSUID | MS.NODEV | MS.NOEXEC;
  const data: string[] = [];
  for (const opt of colon < 0 ? [] : spec.slice(colon + 1).split(',').filter(Boolean)) {
    const f = TMPFS_FLAGS[opt];
    if (f) flags = (flags | f[0]) & ~f[1];
    else if (/^(size|mode|uid|gid|nr_inodes|nr_blocks)=[0-9A-Za-z%]+$/.test(opt)) data.push(opt);
    else invalid('tmpfs option', `${JSON.stringify(opt)} (in ${JSON.stringify(spec)}) is not one of ro, rw, [no]suid, [no]dev, [no]exec, size=, mode=, uid=, gid=, nr_inodes=`);
  }
  return { source: 'tmpfs', target, fstype: 'tmpfs', flags, data: data.join(',') || null, mkdir: 'dir' };
}

/** tmpfs/devpts options owning the mount by a user namespace's root (and its tty group 5). */
function ownedBy(data: string, userns: IdMapping | undefined, fstype: 'tmpfs' | 'devpts'): string {
  if (!userns) return data;
  if (fstype === 'devpts') return data.replace(/\bgid=(\d+)/, (_, g: string) => `gid=${userns.gid + Number(g)}`);
  const given = new Set(data.split(',').map((o) => o.split('=')[0]));
  return [data, ...(given.has('uid') ? [] : [`uid=${userns.uid}`]), ...(given.has('gid') ? [] : [`gid=${userns.gid}`])].filter(Boolean).join(',');
}

/** The standard API filesystems of a container, in mount order. */
function apiMounts(privileged: boolean, userns?: IdMapping): NativeMount[] {
  const m = (source: string, target: string, fstype: string | null, flags: number, data: string | null, mkdir: NativeMount['mkdir'] = 'dir'): NativeMount =>
    ({ source, target, fstype, flags, data, mkdir });
  const sysRo = privileged ? 0 : MS.RDONLY;
  // Privileged, /dev is the host's (bound): nothing may be created in it, so pts and shm must
  // exist there, and mqueue (which hosts rarely have in /dev) is left to the container.
  const devDir: NativeMount['mkdir'] = privileged ? null : 'dir';
  return [
    m('proc', '/proc', 'proc', MS.NOSUID | MS.NODEV | MS.NOEXEC, null),
    privileged ? m('/dev', '/dev', null, MS.BIND | MS.REC, null) : m('tmpfs', '/dev', 'tmpfs', MS.NOSUID | MS.STRICTATIME, ownedBy('mode=755,size=65536k', userns, 'tmpfs')),
    m('devpts', '/dev/pts', 'devpts', MS.NOSUID | MS.NOEXEC, ownedBy('newinstance,ptmxmode=0666,mode=0620,gid=5', userns, 'devpts'), devDir),
    m('shm', '/dev/shm', 'tmpfs', MS.NOSUID | MS.NODEV | MS.NOEXEC, ownedBy('mode=1777,size=65536k', userns, 'tmpfs'), devDir),
    ...(privileged ? [] : [m('mqueue', '/dev/mqueue', 'mqueue', MS.NOSUID | MS.NODEV | MS.NOEXEC, null)]),
    m('sysfs', '/sys', 'sysfs', MS.NOSUID | MS.NODEV | MS.NOEXEC | sysRo, null),
    // A directory of sysfs itself (which is read-only here): never created, it exists.
    m('cgroup', '/sys/fs/cgroup', 'cgroup2', MS.NOSUID | MS.NODEV | MS.NOEXEC | MS.RELATIME | sysRo, null, null),
  ];
}

function volumeMount(v: VolumeSpec | string): NativeMount {
  const vol = typeof v === 'string' ? parseVolume(v) : v;
  const host = hostPath(vol.host, 'volume host path');
  const target = containerPath(vol.container, 'volume target');
  if (target === '/') invalid('volume target', 'cannot be /');
  let st;
  try {
    st = statSync(host);
  } catch (e) {
    throw new ContainerError('ENOENT', `cannot mount volume ${host}: ${(e as Error).message}`, { cause: e });
  }
  return { source: host, target, fstype: null, flags: MS.BIND | MS.REC | (vol.ro ? MS.RDONLY : 0), data: null, mkdir: st.isDirectory() ? 'dir' : 'file' };
}

function rootMount(rootfs: RootfsSpec): { root: string; rootMount: { source: string | null; fstype: string | null; flags: number; data: string | null } } {
  if ('bind' in rootfs) {
    const dir = hostPath(rootfs.bind, 'rootfs.bind');
    return { root: dir, rootMount: { source: dir, fstype: null, flags: MS.BIND | MS.REC, data: null } };
  }
  if (!Array.isArray(rootfs.lower) || rootfs.lower.length === 0) invalid('rootfs.lower', 'must list at least one layer');
  const lower = rootfs.lower.map((l) => hostPath(l, 'rootfs.lower[]'));
  const upper = hostPath(rootfs.upper, 'rootfs.upper'), work = hostPath(rootfs.work, 'rootfs.work');
  for (const p of [...lower, upper, work]) {
    if (/[:,\\]/.test(p)) throw new ContainerError('EUNSAFE', `cannot mount the overlay: ${JSON.stringify(p)} contains ':', ',' or '\\', which overlayfs options would misread`);
  }
  const data = `lowerdir=${lower.join(':')},upperdir=${upper},workdir=${work}`;
  // Mount options are one page; longer ones fail with EINVAL, say why now.
  if (Buffer.byteLength(data) > 4095) throw new ContainerError('ETOOBIG', `cannot mount the overlay: its options take ${Buffer.byteLength(data)} bytes, more than a page (4095); use shorter layer paths`);
  return { root: hostPath(rootfs.mountpoint, 'rootfs.mountpoint'), rootMount: { source: 'overlay', fstype: 'overlay', flags: 0, data } };
}

/** The capabilities the container keeps: all of ours when privileged, else Docker's rules. */
export function containerCapabilities(spec: Pick<ContainerSpec, 'privileged' | 'capAdd' | 'capDrop'>, host: Pick<HostFacts, 'capabilities'>): bigint {
  if (spec.privileged) return host.capabilities;
  const mask = resolveCapabilities(spec.capAdd, spec.capDrop);
  // Explicitly added capabilities this process lacks would silently not be there: refuse them.
  const named = (spec.capAdd ?? []).filter((c) => !/^(CAP_)?ALL$/i.test(c.trim()));
  const missing = capabilityMask(named) & ~host.capabilities;
  if (missing) throw new ContainerError('ECAPABILITY', `cannot add ${capabilityNames(missing).join(', ')}: this runtime does not have ${missing & (missing - 1n) ? 'them' : 'it'} to hand down`);
  return mask & host.capabilities;
}

function withDefaults(env: string[], add: Record<string, string>): string[] {
  const has = new Set(env.map((e) => e.split('=', 1)[0]));
  return [...env, ...Object.entries(add).filter(([k]) => !has.has(k)).map(([k, v]) => `${k}=${v}`)];
}

/** A container process's environment: `env` plus PATH, HOSTNAME and HOME (TERM=xterm too with a tty) where missing. */
export function containerEnv(env: string[], hostname: string, uid: number, tty = false): string[] {
  return withDefaults(env, { PATH: DEFAULT_PATH, HOSTNAME: hostname, HOME: uid === 0 ? '/root' : '/', ...(tty ? { TERM: 'xterm' } : {}) });
}

/** How a container's processes are confined, its entrypoint's and (keel exec) every later one's. */
export interface ContainerSecurity {
  /** The capabilities kept (bit n = capability n). */
  capabilities: bigint;
  /** The seccomp program; none when privileged or unconfined. */
  seccomp?: Buffer;
  noNewPrivs: boolean;
}

/** The capabilities, seccomp filter and no_new_privs of a container: Docker's rules, or everything we have when privileged. */
export function containerSecurity(spec: Pick<ContainerSpec, 'privileged' | 'capAdd' | 'capDrop' | 'seccomp'>, host: Pick<HostFacts, 'capabilities'>): ContainerSecurity {
  const privileged = spec.privileged === true;
  const capabilities = containerCapabilities(spec, host);
  const seccomp = privileged || spec.seccomp === 'unconfined' ? undefined : seccompProgram({ capabilities, ...(spec.seccomp ?? {}) });
  return { capabilities, ...(seccomp ? { seccomp } : {}), noNewPrivs: !privileged };
}

/** A user namespace's range must be sane and hold the container's ids; it excludes privileged and the host's network. */
function checkUserns(spec: ContainerSpec, u: IdMapping): void {
  for (const k of ['uid', 'gid', 'size'] as const) {
    if (!Number.isSafeInteger(u[k]) || u[k] < 1 || u[k] > 0xfffffffe) invalid(`userns.${k}`, `must be an integer from 1 to 4294967294, not ${String(u[k])}`);
  }
  if (u.uid + u.size > 0xffffffff || u.gid + u.size > 0xffffffff) invalid('userns.size', `${u.size} runs past the last id`);
  if (spec.privileged) invalid('userns', 'cannot be used with privileged (as docker: use --userns=host)');
  if (spec.network === 'host') invalid('userns', "cannot be used with the host's network namespace (as docker: use --userns=host)");
  const uid = spec.user?.uid ?? 0, gid = spec.user?.gid ?? 0;
  for (const [what, id] of [['user id', uid], ['group id', gid], ...(spec.user?.groups ?? []).map((g) => ['group id', g] as const)] as const) {
    if (id >= u.size) invalid('user', `${what} ${id} is outside the user namespace's 0-${u.size - 1}`);
  }
}

/** Turns a container spec into spawn() options: every mount, device, path, mask and filter decided here. */
export function containerSpawnOptions(spec: ContainerSpec, host: HostFacts = hostFacts()): SpawnOptions {
  if (typeof spec.id !== 'string' || !ID.test(spec.id)) invalid('id', `${JSON.stringify(spec.id)} must match ${ID}`);
  if (!Array.isArray(spec.argv) || spec.argv.length === 0 || spec.argv[0] === '') invalid('argv', 'must name a program');
  const privileged = spec.privileged === true;
  const network = spec.network ?? 'none';
  const { root, rootMount: rm } = rootMount(spec.rootfs);

  const userns = spec.userns;
  if (userns) checkUserns(spec, userns);
  const mounts = [...apiMounts(privileged, userns)];
  // Parents before children (Docker sorts by depth too); stable for equal depths.
  const tmpfs = (spec.tmpfs ?? []).map(parseTmpfs).map((t) => ({ ...t, data: ownedBy(t.data ?? '', userns, 'tmpfs') || null }));
  const user = [...tmpfs, ...(spec.volumes ?? []).map(volumeMount)];
  const depth = (p: string) => p.split('/').length;
  mounts.push(...user.map((m, i) => ({ m, i })).sort((a, b) => depth(a.m.target) - depth(b.m.target) || a.i - b.i).map(({ m }) => m));

  const devices: NativeDevice[] = privileged ? [] : Object.keys(DEVICES).map((name) => ({
    path: `/dev/${name}`, type: 'c', ...(host.devices[name] ?? DEVICES[name]), mode: 0o666,
  }));

  const { capabilities: caps, seccomp } = containerSecurity(spec, host);
  const hostname = spec.hostname ?? (network === 'host' ? host.hostname : spec.id.slice(0, 12));
  const uid = spec.user?.uid ?? 0, gid = spec.user?.gid ?? 0;
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
      ...(userns ? { userns: { uidMap: `0 ${userns.uid} ${userns.size}\n`, gidMap: `0 ${userns.gid} ${userns.size}\n` } } : {}),
    },
  };
  if (seccomp) opts.seccomp = seccomp;
  if (typeof spec.cgroup === 'string') opts.cgroup = hostPath(spec.cgroup, 'cgroup');
  for (const k of ['stdin', 'stdout', 'stderr'] as const) if (spec[k] !== undefined) opts[k] = spec[k];
  if (spec.console) Object.assign(opts, consoleOptions(spec.console));
  if (spec.rlimits) opts.rlimits = spec.rlimits;
  return opts;
}

// ------------------------------------------------------------------ cgroups

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

function cgroupProcs(dir: string): number[] {
  return words(join(dir, 'cgroup.procs')).map(Number);
}

/** Removes a container's cgroup, waiting a little for killed processes to finish exiting. */
async function removeCgroup(dir: string): Promise<boolean> {
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

// ------------------------------------------------------------------ running

/** How a container ended: its entrypoint's exit code, or the name of the signal that killed it. */
export interface ContainerExit {
  code: number | null;
  signal: string | null;
  /** The cgroup's memory.events counted an oom_kill (read before the cgroup goes). */
  oomKilled?: boolean;
}

/** The oom_kill count in a cgroup's memory.events (0 when unreadable). */
export function oomKills(cgroup: string): number {
  try { return Number(/^oom_kill (\d+)$/m.exec(readFileSync(join(cgroup, 'memory.events'), 'utf8'))?.[1] ?? 0); } catch { return 0; }
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
  /** Spawn and reap through PID 1's process table (which reaps every child with waitpid(-1)); default: a waitpid of our own on this pid. */
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
    const done = () => { process.off('SIGCHLD', check); clearTimeout(timer); };
    function check(): boolean {
      try {
        const w = native.waitpid(pid, native.constants.WNOHANG);
        const status = w && toExitStatus(w);
        if (status) { done(); resolvePromise(status); return true; }
      } catch (e) { done(); reject(e); return true; }
      return false;
    }
    const tick = () => { if (!check()) { delay = Math.min(delay * 2, 100); timer = setTimeout(tick, delay); } };
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
  const cgroup = spec.cgroup === null ? null : spec.cgroup ? hostPath(spec.cgroup, 'cgroup') : join(opts.cgroupParent ?? defaultCgroupParent(), spec.id);
  // Validated first: nothing is created for a spec that cannot run.
  const spawnOpts = containerSpawnOptions({ ...spec, cgroup }, opts.host);
  if (!('bind' in spec.rootfs)) {
    for (const d of [spec.rootfs.mountpoint, spec.rootfs.upper, spec.rootfs.work]) mkdirSync(d, { recursive: true });
    // The root directory's owner is the upper layer's: the namespace's root, who can write in it.
    if (spec.userns) for (const d of [spec.rootfs.upper, spec.rootfs.work]) chownSync(d, spec.userns.uid, spec.userns.gid);
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
    if (created) try { rmdirSync(cgroup!); } catch { /* best effort */ }
    throw e;
  }
  let ended = false;
  // Once reaped, the pid may be reused: no more signals to it.
  void exited?.then(() => { ended = true; });
  let result: Promise<ContainerExit> | undefined;
  const wait = (): Promise<ContainerExit> => result ??= (exited ?? waitForPid(pid)).then(async (s) => {
    ended = true;
    const oomKilled = cgroup ? oomKills(cgroup) > 0 : false;
    if (created) await removeCgroup(cgroup!);
    return { code: s.code, signal: s.signal, ...(oomKilled ? { oomKilled } : {}) };
  });
  const kill = (signal: NodeJS.Signals | number = 'SIGKILL') => { if (!ended) process.kill(pid, signal); };
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
      const timedOut = await Promise.race([done.then(() => false), new Promise<boolean>((r) => { timer = setTimeout(() => r(true), graceMs); })]);
      clearTimeout(timer);
      if (timedOut) kill('SIGKILL');
      return done;
    },
  };
}
