// Loads Keel's N-API helper (keel_native.node) and types the syscalls it wraps one-to-one.
import { createRequire } from 'node:module';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

/** What every native call throws: Node's system-error shape; `errno` is positive, as in <errno.h>. */
export interface NativeError extends Error {
  code: string;
  errno: number;
  syscall: string;
  path?: string;
  dest?: string;
}

/** True when `e` came from the helper, optionally with a given code such as 'ECHILD'. */
export function isNativeError(e: unknown, code?: string): e is NativeError {
  const n = e as NativeError;
  return (
    e instanceof Error &&
    typeof n.syscall === 'string' &&
    typeof n.errno === 'number' &&
    (code === undefined || n.code === code)
  );
}

/** A decoded waitpid(2) status. */
export interface WaitStatus {
  pid: number;
  status: number;
  exited: boolean;
  code: number | null;
  signaled: boolean;
  signal: number | null;
}

/** How spawn() prepares the child between fork and execve. */
export interface SpawnOptions {
  /** Program; without a '/', searched in the PATH of `env` (default PATH if `env` has none). */
  file: string;
  argv: string[];
  /** "KEY=VALUE" strings; the child gets exactly these. */
  env: string[];
  cwd?: string;
  /** Parent fds to put on 0, 1, 2; unset means the tty if given, else /dev/null. */
  stdin?: number;
  stdout?: number;
  stderr?: number;
  /** Terminal to open, use as 0-2 and make the controlling tty of a new session. */
  tty?: string;
  /**
   * runc's console socket, exclusive with tty: a unix stream socket on which the child, in its
   * final root (after pivot_root, or after entering a running container's root), sends the master
   * of a pty it opens there; the slave becomes 0-2 (those not given) and the controlling tty of a
   * new session. Take the master with recvFd() once spawn() returns. Inside, `tty` names it.
   */
  console?: number;
  /** The console's window size, set before the program starts. */
  consoleRows?: number;
  consoleCols?: number;
  setsid?: boolean;
  uid?: number;
  gid?: number;
  /** Supplementary groups; when uid or gid is set and this is not, they are cleared. */
  groups?: number[];
  umask?: number;
  /** Parent fds to put on 3, 4, 5, ... (socket activation, LISTEN_FDS); inherited without FD_CLOEXEC. */
  fds?: number[];
  /** A cgroup v2 directory the child joins (writes "0" to its cgroup.procs) before anything else. */
  cgroup?: string;
  /**
   * setrlimit(2) calls, made before dropping privileges; without NOFILE the child inherits Node's soft limit, which
   * Node raises to the hard one.
   */
  rlimits?: Rlimit[];
  /** setpriority(2) nice value, -20 to 19. */
  nice?: number;
  /** prctl(PR_SET_NO_NEW_PRIVS): no setuid bit or file capability can raise privileges past execve. */
  noNewPrivs?: boolean;
  /** setpgid(0, 0): the child leads its own process group (implied by setsid and tty). */
  pgroup?: boolean;
  /**
   * Capabilities to keep, bit n = capability n: the others leave the bounding set (before the
   * credentials change), ambient ones are cleared; then, for uid 0, effective = permitted = the
   * kept ones (of those this process has) and inheritable is empty. A switch to another uid
   * clears effective and permitted anyway (as the kernel does; as Docker leaves them).
   */
  capabilities?: bigint;
  /**
   * A seccomp BPF program (struct sock_filter[], 8 bytes each), installed last before execve; needs noNewPrivs (else
   * EACCES without CAP_SYS_ADMIN).
   */
  seccomp?: Buffer;
  /** Runs the program as PID 1 of a container (new namespaces, its own root); see NativeContainer. */
  container?: NativeContainer;
  /**
   * Runs the program inside a running process's namespaces and root (keel exec); see NativeJoin. Exclusive with
   * container.
   */
  join?: NativeJoin;
  /**
   * A mount namespace of its own (unshare(CLONE_NEWNS), then MS_SLAVE|MS_REC on /) and these
   * operations in order, after the fds are placed and before cwd, limits and credentials apply;
   * exclusive with container and join. init/sandbox.ts plans them from a unit's settings.
   */
  sandbox?: SandboxOp[];
}

/**
 * One operation of spawn()'s `sandbox`. `optional`: a missing path skips it (systemd's "-").
 * clone: open_tree(path, OPEN_TREE_CLONE|AT_RECURSIVE) into `slot`, a copy of the tree as it is now;
 * readonly: bind `target` onto itself (not /) and mount_setattr(AT_RECURSIVE, MOUNT_ATTR_RDONLY);
 * attach: move_mount of `slot` onto `target` (created per mkdir); mount: mount(2) as NativeMount;
 * mask: an empty read-only tmpfs (mode 000) over a directory, else `source` (an empty file of mode
 * 000) bound read-only over it; symlink: `target` -> `source`.
 */
export type SandboxOp =
  | { op: 'clone'; path: string; slot: number; optional?: boolean }
  | { op: 'readonly'; target: string; optional?: boolean }
  | { op: 'attach'; slot: number; target: string; mkdir?: 'dir' | 'file' | null; optional?: boolean }
  | {
      op: 'mount';
      source: string | null;
      target: string;
      fstype: string | null;
      flags: number;
      data: string | null;
      mkdir?: 'dir' | 'file' | null;
      optional?: boolean;
    }
  | { op: 'mask'; target: string; source: string; optional?: boolean }
  | { op: 'symlink'; target: string; source: string };

/** A namespace spawn()'s `join` can enter (a user namespace is never joined). */
export type JoinNamespace = 'mnt' | 'uts' | 'ipc' | 'net' | 'pid' | 'cgroup' | 'user';

/**
 * spawn()'s join mode (docker exec). Before forking, the parent opens /proc/PID/ns/NAME for each
 * namespace (and /proc/PID/root when 'mnt' is joined), then checks that PID still has `startTime`
 * (throwing ESRCH if not), so every fd belongs to that process even if it just exited. The child
 * makes itself non-dumpable, joins `cgroup` (before the cgroup namespace, which needs the host's
 * view), setns()es into ipc, uts, net, pid, cgroup and mnt in that order, and takes the process's
 * root (fchdir + chroot). A pid namespace applies only to children, so it forks once more: the
 * grandchild goes on as any child (setsid, fds, cwd inside the root, rlimits, capabilities,
 * credentials, noNewPrivs, seccomp, the PATH search inside the root, execve) and gets SIGKILL
 * should the intermediate child die. The returned pid is the intermediate child's: it leads its
 * own process group, holds no fds, forwards SIGTERM, SIGINT and SIGHUP to the grandchild, and
 * exits as the grandchild did (dying of the same signal, without a core dump). Failures of either
 * child before execve are thrown here, as for any spawn.
 */
export interface NativeJoin {
  /** The process (e.g. a container's PID 1) as this process sees it. */
  pid: number;
  /** Field 22 of its /proc/PID/stat, as read earlier; checked after the namespace files are opened. */
  startTime?: string;
  namespaces: JoinNamespace[];
}

/** One mount of a container, made below its root before pivot_root. */
export interface NativeMount {
  source: string | null;
  /** Absolute, inside the container; resolved with openat2(RESOLVE_IN_ROOT) so symlinks stay inside the root. */
  target: string;
  fstype: string | null;
  /** MS_* flags; a bind (MS_BIND) with MS_RDONLY/NOSUID/NODEV/NOEXEC is remounted with them (a bind ignores them). */
  flags: number;
  data: string | null;
  /** Creates a missing mount point (and its parents) as a directory or an empty file; null: it must exist. */
  mkdir: 'dir' | 'file' | null;
}

/** A device node created in the container (mknod, mode exactly as given). */
export interface NativeDevice {
  path: string;
  type: 'c' | 'b';
  major: number;
  minor: number;
  mode: number;
}

/**
 * spawn()'s container mode: the child is clone()d with CLONE_NEWPID|NEWNS|NEWUTS|NEWIPC (and NEWNET
 * with newNetwork), joins `cgroup` and then a new cgroup namespace, and before execve: makes all
 * mounts private, mounts `rootMount` on `root`, the `mounts` below it in order, the devices and
 * symlinks, sets the hostname (and brings lo up in a new network namespace), pivot_root()s into
 * `root`, masks `maskedPaths`, makes `readonlyPaths` (and with readOnly /) read-only; cwd, rlimits,
 * capabilities, credentials, noNewPrivs and seccomp then apply inside. PATH lookups of `file` happen
 * after pivot_root, i.e. inside the container. Its mounts never show in the caller's namespace.
 */
export interface NativeContainer {
  /** Host directory that becomes '/': the mount point of rootMount, then pivoted into. */
  root: string;
  /** How root is mounted: an overlay, or a bind of a directory onto itself. */
  rootMount: { source: string | null; fstype: string | null; flags: number; data: string | null };
  readOnly?: boolean;
  /** A new network namespace (only lo, brought up); exclusive with netns. */
  newNetwork?: boolean;
  /** Joins this network namespace (e.g. /run/netns/NAME), opened before clone; without both: the host's. */
  netns?: string;
  hostname?: string;
  mounts?: NativeMount[];
  devices?: NativeDevice[];
  /** Symlinks to create, e.g. { path: '/dev/fd', target: '/proc/self/fd' }. */
  symlinks?: { path: string; target: string }[];
  /**
   * After pivot_root: a file gets /dev/null bound over it, a directory an empty read-only tmpfs; missing ones are
   * skipped.
   */
  maskedPaths?: string[];
  /** After pivot_root: bound onto themselves read-only; missing ones are skipped. */
  readonlyPaths?: string[];
  /**
   * Last of the setup (everything above is done as our root): unshare(CLONE_NEWUSER), the parent
   * writes these maps ("INSIDE OUTSIDE COUNT" lines) to /proc/PID/uid_map and gid_map, and the
   * child becomes the namespace's root (setresuid/setresgid 0) before the credentials apply.
   */
  userns?: { uidMap: string; gidMap: string };
}

/** One resource limit for spawn(); Infinity means RLIM_INFINITY. */
export interface Rlimit {
  resource: 'NOFILE' | 'NPROC' | 'CORE' | 'MEMLOCK' | 'AS';
  soft: number;
  hard: number;
}

/** A datagram from recvCred() with its sender as the kernel saw it (pid 0, uid/gid -1: unknown). */
export interface CredDatagram {
  pid: number;
  uid: number;
  gid: number;
  data: Buffer;
}

/** What watchFd() returns; an open watcher keeps the process alive unless unref'd. */
export interface FdWatcher {
  /** Stops watching and frees the poll handle; no callback runs afterwards; idempotent. */
  close(): void;
  /** Lets the process exit while this watcher is the only thing left. */
  unref(): void;
  /** Undoes unref() (the default). */
  ref(): void;
}

/** Options of listenSocket(). */
export interface ListenOptions {
  /** Mode of a unix socket file; default 0o666. */
  mode?: number;
  /** listen(2) backlog of a stream socket; default SOMAXCONN. */
  backlog?: number;
  /** Owner and group of a unix socket file (lchown before listen); default: left as bind made it. */
  uid?: number;
  gid?: number;
}

/** One connection from accept(): its fd and both ends (addresses empty and ports 0 for a unix socket). */
export interface Accepted {
  fd: number;
  family: 'inet' | 'inet6' | 'unix' | 'other';
  localAddress: string;
  localPort: number;
  remoteAddress: string;
  remotePort: number;
}

/** Flag values for mount, umount2, waitpid, lsetxattr, reboot (the LINUX_REBOOT_CMD_* values) and flock. */
export type NativeConstants = Readonly<{
  MS_RDONLY: number;
  MS_NOSUID: number;
  MS_NODEV: number;
  MS_NOEXEC: number;
  MS_REMOUNT: number;
  MS_BIND: number;
  MS_REC: number;
  MS_MOVE: number;
  MS_PRIVATE: number;
  MS_SLAVE: number;
  MS_SHARED: number;
  MS_RELATIME: number;
  MNT_DETACH: number;
  MNT_FORCE: number;
  WNOHANG: number;
  /** flock(2) operations. */
  LOCK_SH: number;
  LOCK_EX: number;
  LOCK_UN: number;
  LOCK_NB: number;
  SIGRTMIN: number;
  XATTR_CREATE: number;
  XATTR_REPLACE: number;
  RB_AUTOBOOT: number;
  RB_POWER_OFF: number;
  RB_HALT_SYSTEM: number;
  RB_DISABLE_CAD: number;
  RB_ENABLE_CAD: number;
}>;

/** The helper: one function per syscall, each synchronous, each throwing a NativeError. */
export interface Native {
  mount(source: string | null, target: string, fstype: string | null, flags: number, data: string | null): void;
  umount2(target: string, flags: number): void;
  /** reboot(2) with a constants.RB_* command; returns only for the CAD commands. */
  reboot(cmd: number): void;
  sethostname(name: string): void;
  sync(): void;
  chroot(path: string): void;
  /** chdir(2) itself: Node's cached process.cwd() does not see it, so JS code should prefer process.chdir. */
  chdir(path: string): void;
  pivotRoot(newRoot: string, putOld: string): void;
  /** null when WNOHANG found nothing to report; throws ECHILD when there are no children. */
  waitpid(pid: number, options: number): WaitStatus | null;
  /** Returns the pid; a failure before execve (bad cwd, missing file, a container mount) is thrown here. */
  spawn(opts: SpawnOptions): number;
  /** prctl(PR_SET_CHILD_SUBREAPER, 1): orphans below us become our children, as with PID 1. */
  setChildSubreaper(): void;
  /** Sets IFF_UP|IFF_RUNNING on an interface, like `ip link set NAME up`. */
  ifUp(name: string): void;
  /**
   * pipe2(O_CLOEXEC): [read end, write end]; wrap the read end as `new net.Socket({ fd, readable: true, writable:
   * false })`.
   */
  pipe(): [number, number];
  /**
   * A non-blocking CLOEXEC AF_UNIX datagram socket with SO_PASSCRED, bound to path ("/path": stale file unlinked,
   * chmod mode; or "@abstract").
   */
  unixDgramSocket(path: string, mode: number): number;
  /** recvmsg(2) of one datagram and its sender's credentials; null when none is queued; never blocks. */
  recvCred(fd: number): CredDatagram | null;
  /** sendto(2) of one datagram to a unix socket ("/path" or "@abstract"), as sd_notify does. */
  sendDgram(path: string, data: Buffer | string): void;
  /**
   * Calls callback on the event loop whenever fd is readable (a libuv uv_poll_t: sets O_NONBLOCK, one per fd; close()
   * it before the fd).
   */
  watchFd(fd: number, callback: () => void): FdWatcher;
  /** getsockopt(SO_PEERCRED) of a connected unix stream socket: who connected. */
  peerCred(fd: number): { pid: number; uid: number; gid: number };
  /** Handles the given signals in C; each delivery becomes one byte (the signal number) on the returned pipe. */
  signalPipe(signals: number[]): number;
  /**
   * A bound CLOEXEC socket, listening if 'stream', at "8080" (IPv6 any, dual stack; IPv4 if no IPv6), "1.2.3.4:80",
   * "[::1]:80", "/path" or "@name".
   */
  listenSocket(kind: 'stream' | 'dgram', address: string, opts?: ListenOptions): number;
  /** accept4(SOCK_CLOEXEC) of one pending connection (the new fd blocks); null when none is pending. */
  accept(fd: number): Accepted | null;
  /** getsockname(2)'s port of an IPv4/IPv6 socket (what port 0 became). */
  localPort(fd: number): number;
  /**
   * A new pseudo-terminal: posix_openpt(O_RDWR|O_NOCTTY|O_CLOEXEC), grantpt, unlockpt. `master`
   * is the fd (ours; not inherited), `slave` its /dev/pts/N path, for spawn()'s `tty`.
   */
  openPty(): { master: number; slave: string };
  /** socketpair(AF_UNIX, SOCK_STREAM|SOCK_CLOEXEC). */
  socketPair(): [number, number];
  /** The fd carried by one SCM_RIGHTS message on a unix socket (CLOEXEC), or null if none is queued; never blocks. */
  recvFd(fd: number): number | null;
  /** ioctl(TIOCSWINSZ) on a terminal fd (a pty master: the slave's size; its foreground group gets SIGWINCH). */
  setWindowSize(fd: number, rows: number, cols: number): void;
  /**
   * flock(2) with constants.LOCK_*: true once done; false only when LOCK_NB found the lock held.
   * Without LOCK_NB it blocks the thread until the lock is free: never in PID 1's event loop.
   */
  flock(fd: number, operation: number): boolean;
  /**
   * mknod(2): mode is a type (fs.constants.S_IFCHR, S_IFBLK, S_IFIFO) | permissions (less the umask); dev as
   * makedev() packs it.
   */
  mknod(path: string, mode: number, dev: number): void;
  /** lsetxattr(2), never following a symlink; flags 0, constants.XATTR_CREATE or XATTR_REPLACE. */
  lsetxattr(path: string, name: string, value: Buffer | string, flags: number): void;
  /** lgetxattr(2): the value; throws ENODATA when there is no such attribute. */
  lgetxattr(path: string, name: string): Buffer;
  /** llistxattr(2): the names of the attributes this process may see (trusted.* only with CAP_SYS_ADMIN). */
  llistxattr(path: string): string[];
  constants: NativeConstants;
}

/** glibc's makedev(): the dev_t of a major and minor device number, for mknod(). */
export function makedev(major: number, minor: number): number {
  const [ma, mi] = [BigInt(major), BigInt(minor)];
  return Number(((ma & 0xfffn) << 8n) | ((ma & ~0xfffn) << 32n) | (mi & 0xffn) | ((mi & ~0xffn) << 12n));
}

/** glibc's major() and minor() of a dev_t (an lstat's rdev). */
export function devNumbers(dev: number): { major: number; minor: number } {
  const d = BigInt(dev);
  return {
    major: Number(((d >> 8n) & 0xfffn) | ((d >> 32n) & 0xfffff000n)),
    minor: Number((d & 0xffn) | ((d >> 12n) & 0xffffff00n)),
  };
}

// Bundled as CommonJS, esbuild leaves import.meta empty; the entry script is then our best anchor.
const moduleUrl: string | undefined = (import.meta as { url?: string }).url;

/** Paths to try, in order: $KEEL_NATIVE, beside this module (or bundle), the checkout's build/. */
export function nativeCandidates(env: NodeJS.ProcessEnv = process.env, from: string | undefined = moduleUrl): string[] {
  const self = from ? fileURLToPath(from) : process.argv[1] ? resolve(process.argv[1]) : undefined;
  const out: string[] = [];
  if (env.KEEL_NATIVE) out.push(resolve(env.KEEL_NATIVE));
  if (self) {
    out.push(join(dirname(self), 'keel_native.node'));
    // dist/native/native.js -> build/Release, where node-gyp leaves the addon in a checkout.
    out.push(join(dirname(self), '..', '..', 'build', 'Release', 'keel_native.node'));
  }
  return [...new Set(out)];
}

/** Loads the first candidate that works; otherwise throws naming every path tried and why it failed. */
export function loadNative(candidates: string[] = nativeCandidates()): Native {
  const require = createRequire(moduleUrl ?? join(process.cwd(), 'keel-init.js'));
  const failures: string[] = [];
  for (const path of candidates) {
    try {
      return require(path) as Native;
    } catch (e) {
      failures.push(`  ${path}: ${e instanceof Error ? e.message.split('\n')[0] : String(e)}`);
    }
  }
  const err = new Error(`cannot load keel_native.node: tried\n${failures.join('\n') || '  (no candidate paths)'}`);
  throw Object.assign(err, { code: 'KEEL_NATIVE_NOT_FOUND' });
}

/** The loaded helper; importing this module fails if it cannot be found. */
export const native: Native = loadNative();
