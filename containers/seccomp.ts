// A seccomp BPF filter for containers on x86_64, built in TypeScript and handed to spawn() as a
// Buffer of struct sock_filter. A deny list in the spirit of Docker's default profile (which is an
// allow list): the syscalls that reach into the kernel's global state (mounts, namespaces, keys,
// modules, clocks, swap, reboot, BPF, perf) fail with EPERM, the rest is allowed.
//
// Choices, where Docker's profile leaves room:
// - Only the x86_64 ABI: another audit arch (i386 via int 0x80) kills the process; x32 syscalls
//   (nr >= 0x40000000) and numbers beyond the table below fail with ENOSYS (as on a kernel without
//   them; runc does the same for syscalls newer than its profile), so libcs fall back.
// - ptrace (and process_vm_readv/writev) are allowed, as Docker does on kernels >= 4.8 where
//   seccomp is re-checked after a tracer's changes; CAP_SYS_PTRACE is still needed across uids.
// - clone with any CLONE_NEW* flag fails with EPERM (argument check); clone3, whose flags sit in
//   memory a filter cannot read, fails with ENOSYS so that libcs fall back to clone (as Docker).
// - personality is allowed only with Docker's values (0, PER_LINUX32, UNAME26, both, query).
// - io_uring_* are denied (as Docker since 25.0): io_uring bypasses this filter's view of syscalls.
// - A rule "unless CAP_X" is left out when the container keeps CAP_X (Docker's includes.caps):
//   --cap-add SYS_ADMIN re-enables mount, unshare, setns…
import { ContainerError } from './errors.js';
import { capabilityNumber } from './capabilities.js';

/** x86_64 syscall numbers (arch/x86/entry/syscalls/syscall_64.tbl, common and 64-bit entries). */
export const X86_64_SYSCALLS: Readonly<Record<string, number>> = {
  read: 0,
  write: 1,
  open: 2,
  close: 3,
  stat: 4,
  fstat: 5,
  lstat: 6,
  poll: 7,
  lseek: 8,
  mmap: 9,
  mprotect: 10,
  munmap: 11,
  brk: 12,
  rt_sigaction: 13,
  rt_sigprocmask: 14,
  rt_sigreturn: 15,
  ioctl: 16,
  pread64: 17,
  pwrite64: 18,
  readv: 19,
  writev: 20,
  access: 21,
  pipe: 22,
  select: 23,
  sched_yield: 24,
  mremap: 25,
  msync: 26,
  mincore: 27,
  madvise: 28,
  shmget: 29,
  shmat: 30,
  shmctl: 31,
  dup: 32,
  dup2: 33,
  pause: 34,
  nanosleep: 35,
  getitimer: 36,
  alarm: 37,
  setitimer: 38,
  getpid: 39,
  sendfile: 40,
  socket: 41,
  connect: 42,
  accept: 43,
  sendto: 44,
  recvfrom: 45,
  sendmsg: 46,
  recvmsg: 47,
  shutdown: 48,
  bind: 49,
  listen: 50,
  getsockname: 51,
  getpeername: 52,
  socketpair: 53,
  setsockopt: 54,
  getsockopt: 55,
  clone: 56,
  fork: 57,
  vfork: 58,
  execve: 59,
  exit: 60,
  wait4: 61,
  kill: 62,
  uname: 63,
  semget: 64,
  semop: 65,
  semctl: 66,
  shmdt: 67,
  msgget: 68,
  msgsnd: 69,
  msgrcv: 70,
  msgctl: 71,
  fcntl: 72,
  flock: 73,
  fsync: 74,
  fdatasync: 75,
  truncate: 76,
  ftruncate: 77,
  getdents: 78,
  getcwd: 79,
  chdir: 80,
  fchdir: 81,
  rename: 82,
  mkdir: 83,
  rmdir: 84,
  creat: 85,
  link: 86,
  unlink: 87,
  symlink: 88,
  readlink: 89,
  chmod: 90,
  fchmod: 91,
  chown: 92,
  fchown: 93,
  lchown: 94,
  umask: 95,
  gettimeofday: 96,
  getrlimit: 97,
  getrusage: 98,
  sysinfo: 99,
  times: 100,
  ptrace: 101,
  getuid: 102,
  syslog: 103,
  getgid: 104,
  setuid: 105,
  setgid: 106,
  geteuid: 107,
  getegid: 108,
  setpgid: 109,
  getppid: 110,
  getpgrp: 111,
  setsid: 112,
  setreuid: 113,
  setregid: 114,
  getgroups: 115,
  setgroups: 116,
  setresuid: 117,
  getresuid: 118,
  setresgid: 119,
  getresgid: 120,
  getpgid: 121,
  setfsuid: 122,
  setfsgid: 123,
  getsid: 124,
  capget: 125,
  capset: 126,
  rt_sigpending: 127,
  rt_sigtimedwait: 128,
  rt_sigqueueinfo: 129,
  rt_sigsuspend: 130,
  sigaltstack: 131,
  utime: 132,
  mknod: 133,
  uselib: 134,
  personality: 135,
  ustat: 136,
  statfs: 137,
  fstatfs: 138,
  sysfs: 139,
  getpriority: 140,
  setpriority: 141,
  sched_setparam: 142,
  sched_getparam: 143,
  sched_setscheduler: 144,
  sched_getscheduler: 145,
  sched_get_priority_max: 146,
  sched_get_priority_min: 147,
  sched_rr_get_interval: 148,
  mlock: 149,
  munlock: 150,
  mlockall: 151,
  munlockall: 152,
  vhangup: 153,
  modify_ldt: 154,
  pivot_root: 155,
  _sysctl: 156,
  prctl: 157,
  arch_prctl: 158,
  adjtimex: 159,
  setrlimit: 160,
  chroot: 161,
  sync: 162,
  acct: 163,
  settimeofday: 164,
  mount: 165,
  umount2: 166,
  swapon: 167,
  swapoff: 168,
  reboot: 169,
  sethostname: 170,
  setdomainname: 171,
  iopl: 172,
  ioperm: 173,
  create_module: 174,
  init_module: 175,
  delete_module: 176,
  get_kernel_syms: 177,
  query_module: 178,
  quotactl: 179,
  nfsservctl: 180,
  getpmsg: 181,
  putpmsg: 182,
  afs_syscall: 183,
  tuxcall: 184,
  security: 185,
  gettid: 186,
  readahead: 187,
  setxattr: 188,
  lsetxattr: 189,
  fsetxattr: 190,
  getxattr: 191,
  lgetxattr: 192,
  fgetxattr: 193,
  listxattr: 194,
  llistxattr: 195,
  flistxattr: 196,
  removexattr: 197,
  lremovexattr: 198,
  fremovexattr: 199,
  tkill: 200,
  time: 201,
  futex: 202,
  sched_setaffinity: 203,
  sched_getaffinity: 204,
  set_thread_area: 205,
  io_setup: 206,
  io_destroy: 207,
  io_getevents: 208,
  io_submit: 209,
  io_cancel: 210,
  get_thread_area: 211,
  lookup_dcookie: 212,
  epoll_create: 213,
  epoll_ctl_old: 214,
  epoll_wait_old: 215,
  remap_file_pages: 216,
  getdents64: 217,
  set_tid_address: 218,
  restart_syscall: 219,
  semtimedop: 220,
  fadvise64: 221,
  timer_create: 222,
  timer_settime: 223,
  timer_gettime: 224,
  timer_getoverrun: 225,
  timer_delete: 226,
  clock_settime: 227,
  clock_gettime: 228,
  clock_getres: 229,
  clock_nanosleep: 230,
  exit_group: 231,
  epoll_wait: 232,
  epoll_ctl: 233,
  tgkill: 234,
  utimes: 235,
  vserver: 236,
  mbind: 237,
  set_mempolicy: 238,
  get_mempolicy: 239,
  mq_open: 240,
  mq_unlink: 241,
  mq_timedsend: 242,
  mq_timedreceive: 243,
  mq_notify: 244,
  mq_getsetattr: 245,
  kexec_load: 246,
  waitid: 247,
  add_key: 248,
  request_key: 249,
  keyctl: 250,
  ioprio_set: 251,
  ioprio_get: 252,
  inotify_init: 253,
  inotify_add_watch: 254,
  inotify_rm_watch: 255,
  migrate_pages: 256,
  openat: 257,
  mkdirat: 258,
  mknodat: 259,
  fchownat: 260,
  futimesat: 261,
  newfstatat: 262,
  unlinkat: 263,
  renameat: 264,
  linkat: 265,
  symlinkat: 266,
  readlinkat: 267,
  fchmodat: 268,
  faccessat: 269,
  pselect6: 270,
  ppoll: 271,
  unshare: 272,
  set_robust_list: 273,
  get_robust_list: 274,
  splice: 275,
  tee: 276,
  sync_file_range: 277,
  vmsplice: 278,
  move_pages: 279,
  utimensat: 280,
  epoll_pwait: 281,
  signalfd: 282,
  timerfd_create: 283,
  eventfd: 284,
  fallocate: 285,
  timerfd_settime: 286,
  timerfd_gettime: 287,
  accept4: 288,
  signalfd4: 289,
  eventfd2: 290,
  epoll_create1: 291,
  dup3: 292,
  pipe2: 293,
  inotify_init1: 294,
  preadv: 295,
  pwritev: 296,
  rt_tgsigqueueinfo: 297,
  perf_event_open: 298,
  recvmmsg: 299,
  fanotify_init: 300,
  fanotify_mark: 301,
  prlimit64: 302,
  name_to_handle_at: 303,
  open_by_handle_at: 304,
  clock_adjtime: 305,
  syncfs: 306,
  sendmmsg: 307,
  setns: 308,
  getcpu: 309,
  process_vm_readv: 310,
  process_vm_writev: 311,
  kcmp: 312,
  finit_module: 313,
  sched_setattr: 314,
  sched_getattr: 315,
  renameat2: 316,
  seccomp: 317,
  getrandom: 318,
  memfd_create: 319,
  kexec_file_load: 320,
  bpf: 321,
  execveat: 322,
  userfaultfd: 323,
  membarrier: 324,
  mlock2: 325,
  copy_file_range: 326,
  preadv2: 327,
  pwritev2: 328,
  pkey_mprotect: 329,
  pkey_alloc: 330,
  pkey_free: 331,
  statx: 332,
  io_pgetevents: 333,
  rseq: 334,
  pidfd_send_signal: 424,
  io_uring_setup: 425,
  io_uring_enter: 426,
  io_uring_register: 427,
  open_tree: 428,
  move_mount: 429,
  fsopen: 430,
  fsconfig: 431,
  fsmount: 432,
  fspick: 433,
  pidfd_open: 434,
  clone3: 435,
  close_range: 436,
  openat2: 437,
  pidfd_getfd: 438,
  faccessat2: 439,
  process_madvise: 440,
  epoll_pwait2: 441,
  mount_setattr: 442,
  quotactl_fd: 443,
  landlock_create_ruleset: 444,
  landlock_add_rule: 445,
  landlock_restrict_self: 446,
  memfd_secret: 447,
  process_mrelease: 448,
  futex_waitv: 449,
  set_mempolicy_home_node: 450,
  // Newer than this build host's headers (Linux 6.3 … 6.17):
  cachestat: 451,
  fchmodat2: 452,
  map_shadow_stack: 453,
  futex_wake: 454,
  futex_wait: 455,
  futex_requeue: 456,
  statmount: 457,
  listmount: 458,
  lsm_get_self_attr: 459,
  lsm_set_self_attr: 460,
  lsm_list_modules: 461,
  mseal: 462,
  setxattrat: 463,
  getxattrat: 464,
  listxattrat: 465,
  removexattrat: 466,
  open_tree_attr: 467,
  file_getattr: 468,
  file_setattr: 469,
};

/** The highest syscall number in the table: anything above fails with ENOSYS. */
export const X86_64_MAX_SYSCALL = Math.max(...Object.values(X86_64_SYSCALLS));

export const AUDIT_ARCH_X86_64 = 0xc000003e;
export const X32_SYSCALL_BIT = 0x40000000;
export const SECCOMP_RET_KILL_PROCESS = 0x80000000;
export const SECCOMP_RET_ERRNO = 0x00050000;
export const SECCOMP_RET_ALLOW = 0x7fff0000;
const EPERM = 1;
const ENOSYS = 38;

// Classic BPF opcodes (linux/filter.h).
export const BPF = {
  LD_W_ABS: 0x20,
  JMP_JA: 0x05,
  JEQ_K: 0x15,
  JGT_K: 0x25,
  JGE_K: 0x35,
  JSET_K: 0x45,
  RET_K: 0x06,
} as const;

/** Offsets in struct seccomp_data: nr, arch, instruction_pointer, args[6] (the low 32 bits first, little endian). */
export const SECCOMP_DATA = {
  nr: 0,
  arch: 4,
  ip: 8,
  argLow: (i: number) => 16 + 8 * i,
  argHigh: (i: number) => 20 + 8 * i,
} as const;

/** CLONE_NEWNS|NEWCGROUP|NEWUTS|NEWIPC|NEWUSER|NEWPID|NEWNET (CLONE_NEWTIME is clone3/unshare only). */
export const CLONE_NAMESPACE_FLAGS =
  0x00020000 | 0x02000000 | 0x04000000 | 0x08000000 | 0x10000000 | 0x20000000 | 0x40000000;

/**
 * personality(2) values Docker allows: PER_LINUX, PER_LINUX32, UNAME26, UNAME26|PER_LINUX32, and the query
 * 0xffffffff.
 */
export const PERSONALITY_ALLOWED = [0x0, 0x8, 0x20000, 0x20008, 0xffffffff] as const;

/** One denial: the syscalls, and the capabilities any one of which lifts it (Docker's includes.caps). */
export interface SeccompRule {
  names: string[];
  unless?: string[];
}

/** What the default filter denies with EPERM (names missing from the x86_64 table, e.g. vm86, are skipped). */
export const DEFAULT_DENIED: readonly SeccompRule[] = [
  {
    names: [
      'mount',
      'umount2',
      'pivot_root',
      'unshare',
      'setns',
      'fsopen',
      'fsconfig',
      'fsmount',
      'fspick',
      'move_mount',
      'open_tree',
      'open_tree_attr',
      'mount_setattr',
      'quotactl',
      'quotactl_fd',
      'lookup_dcookie',
      'swapon',
      'swapoff',
      'fanotify_init',
    ],
    unless: ['SYS_ADMIN'],
  },
  { names: ['bpf'], unless: ['SYS_ADMIN', 'BPF'] },
  { names: ['perf_event_open'], unless: ['SYS_ADMIN', 'PERFMON'] },
  { names: ['syslog'], unless: ['SYS_ADMIN', 'SYSLOG'] },
  { names: ['reboot'], unless: ['SYS_BOOT'] },
  { names: ['init_module', 'finit_module', 'delete_module'], unless: ['SYS_MODULE'] },
  { names: ['acct'], unless: ['SYS_PACCT'] },
  { names: ['iopl', 'ioperm'], unless: ['SYS_RAWIO'] },
  { names: ['settimeofday', 'stime', 'clock_settime', 'clock_adjtime', 'adjtimex'], unless: ['SYS_TIME'] },
  { names: ['vhangup'], unless: ['SYS_TTY_CONFIG'] },
  { names: ['open_by_handle_at'], unless: ['DAC_READ_SEARCH'] },
  {
    names: [
      'keyctl',
      'add_key',
      'request_key',
      'kexec_load',
      'kexec_file_load',
      'userfaultfd',
      'create_module',
      'get_kernel_syms',
      'query_module',
      'uselib',
      'nfsservctl',
      'sysfs',
      '_sysctl',
      'ustat',
      'vm86',
      'vm86old',
      'io_uring_setup',
      'io_uring_enter',
      'io_uring_register',
    ],
  },
];

/** The SYS_ADMIN rule also covers clone's namespace flags and clone3. */
const ARG_CHECKS_UNLESS = ['SYS_ADMIN'];

export interface SeccompOptions {
  /** Capabilities the container keeps (bit n = capability n): rules lifted by one of them are left out. */
  capabilities?: bigint;
  /** More syscalls to deny with EPERM (names of the x86_64 table). */
  deny?: readonly string[];
  /** Syscalls to leave out of every denial, including the clone/personality argument checks. */
  allow?: readonly string[];
}

function syscallNumber(name: string): number {
  const nr = X86_64_SYSCALLS[name];
  if (nr === undefined)
    throw new ContainerError('ESYSCALL', `cannot build the seccomp filter: no x86_64 syscall "${name}"`);
  return nr;
}

function lifted(unless: readonly string[] | undefined, caps: bigint): boolean {
  return (unless ?? []).some((c) => (caps >> BigInt(capabilityNumber(c))) & 1n);
}

/** The syscalls the filter denies with EPERM outright (sorted), for the given options. */
export function deniedSyscalls(opts: SeccompOptions = {}): string[] {
  const caps = opts.capabilities ?? 0n;
  const allow = new Set(opts.allow ?? []);
  for (const name of allow) syscallNumber(name);
  const out = new Set<string>();
  for (const rule of DEFAULT_DENIED) {
    if (lifted(rule.unless, caps)) continue;
    for (const name of rule.names) if (name in X86_64_SYSCALLS && !allow.has(name)) out.add(name);
  }
  for (const name of opts.deny ?? []) {
    syscallNumber(name);
    if (!allow.has(name)) out.add(name);
  }
  return [...out].sort((a, b) => X86_64_SYSCALLS[a] - X86_64_SYSCALLS[b]);
}

type Target = string | number;
interface Insn {
  code: number;
  jt: Target;
  jf: Target;
  k: number;
}

/** A tiny assembler: jumps name labels, resolved to relative offsets (which must fit 8 bits). */
class Program {
  private readonly insns: Insn[] = [];
  private readonly labels = new Map<string, number>();
  label(name: string): this {
    this.labels.set(name, this.insns.length);
    return this;
  }
  ld(offset: number): this {
    return this.emit(BPF.LD_W_ABS, offset);
  }
  ret(value: number): this {
    return this.emit(BPF.RET_K, value);
  }
  jump(code: number, k: number, jt: Target, jf: Target = 0): this {
    this.insns.push({ code, jt, jf, k });
    return this;
  }
  private emit(code: number, k: number): this {
    this.insns.push({ code, jt: 0, jf: 0, k });
    return this;
  }

  assemble(): Buffer {
    const buf = Buffer.alloc(this.insns.length * 8);
    this.insns.forEach((insn, i) => {
      const rel = (t: Target) => {
        if (typeof t === 'number') return t;
        const at = this.labels.get(t);
        if (at === undefined) throw new Error(`seccomp: no label ${t}`);
        const off = at - i - 1;
        if (off < 0 || off > 255)
          throw new ContainerError(
            'ETOOBIG',
            `cannot build the seccomp filter: a jump to ${t} spans ${off} instructions`,
          );
        return off;
      };
      buf.writeUInt16LE(insn.code, i * 8);
      buf.writeUInt8(rel(insn.jt), i * 8 + 2);
      buf.writeUInt8(rel(insn.jf), i * 8 + 3);
      buf.writeUInt32LE(insn.k >>> 0, i * 8 + 4);
    });
    return buf;
  }
}

/**
 * The filter as a Buffer of struct sock_filter (8 bytes each: u16 code, u8 jt, u8 jf, u32 k):
 *
 *   arch != AUDIT_ARCH_X86_64            -> KILL_PROCESS
 *   nr >= X32_SYSCALL_BIT or nr > max    -> ERRNO(ENOSYS)
 *   nr in the denied list                -> ERRNO(EPERM)
 *   clone with a CLONE_NEW* flag         -> ERRNO(EPERM);  clone3 -> ERRNO(ENOSYS)
 *   personality not an allowed value    -> ERRNO(EPERM)
 *   anything else                        -> ALLOW
 */
export function seccompProgram(opts: SeccompOptions = {}): Buffer {
  const denied = deniedSyscalls(opts);
  const allow = new Set(opts.allow ?? []);
  const checkClone = !lifted(ARG_CHECKS_UNLESS, opts.capabilities ?? 0n) && !allow.has('clone');
  const denyClone3 = !lifted(ARG_CHECKS_UNLESS, opts.capabilities ?? 0n) && !allow.has('clone3');
  const checkPersonality = !allow.has('personality');
  const p = new Program()
    .ld(SECCOMP_DATA.arch)
    .jump(BPF.JEQ_K, AUDIT_ARCH_X86_64, 0, 'kill')
    .ld(SECCOMP_DATA.nr)
    .jump(BPF.JGE_K, X32_SYSCALL_BIT, 'enosys')
    .jump(BPF.JGT_K, X86_64_MAX_SYSCALL, 'enosys');
  for (const name of denied) p.jump(BPF.JEQ_K, X86_64_SYSCALLS[name], 'deny');
  if (checkClone) p.jump(BPF.JEQ_K, X86_64_SYSCALLS.clone, 'clone');
  if (denyClone3) p.jump(BPF.JEQ_K, X86_64_SYSCALLS.clone3, 'enosys');
  if (checkPersonality) p.jump(BPF.JEQ_K, X86_64_SYSCALLS.personality, 'personality');
  // Not in any list: allowed. The argument checks follow, then the shared returns (BPF only jumps forward).
  p.ret(SECCOMP_RET_ALLOW);
  if (checkClone) {
    // x86_64's clone(flags, stack, parent_tid, child_tid, tls): flags is args[0]; all CLONE_NEW* are in its low word.
    p.label('clone').ld(SECCOMP_DATA.argLow(0)).jump(BPF.JSET_K, CLONE_NAMESPACE_FLAGS, 'deny', 'allow');
  }
  if (checkPersonality) {
    // personality(unsigned int persona): the kernel looks at the low 32 bits only.
    p.label('personality').ld(SECCOMP_DATA.argLow(0));
    PERSONALITY_ALLOWED.forEach((v, i) =>
      p.jump(BPF.JEQ_K, v, 'allow', i === PERSONALITY_ALLOWED.length - 1 ? 'deny' : 0),
    );
  }
  p.label('allow')
    .ret(SECCOMP_RET_ALLOW)
    .label('deny')
    .ret(SECCOMP_RET_ERRNO | EPERM)
    .label('enosys')
    .ret(SECCOMP_RET_ERRNO | ENOSYS)
    .label('kill')
    .ret(SECCOMP_RET_KILL_PROCESS);
  return p.assemble();
}
