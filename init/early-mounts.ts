// The API filesystems PID 1 mounts, as a list of values, each able to print its shell equivalent.
// Executed by one small function that takes the syscalls as a parameter, so tests need no root.
import { mkdirSync, readFileSync } from 'node:fs';

/** One mount of early boot. `flags` are MS_* names; `fatal` says whether boot can go on without it. */
export interface MountStep {
  source: string;
  target: string;
  type: string;
  flags: string[];
  data?: string;
  mode?: number;
  fatal: boolean;
}

/** The API filesystems (the initramfs already moved /proc and /sys; they are skipped when mounted). */
export const API_MOUNTS: MountStep[] = [
  { source: 'proc', target: '/proc', type: 'proc', flags: ['MS_NOSUID', 'MS_NODEV', 'MS_NOEXEC'], fatal: true },
  { source: 'sysfs', target: '/sys', type: 'sysfs', flags: ['MS_NOSUID', 'MS_NODEV', 'MS_NOEXEC'], fatal: true },
  { source: 'devtmpfs', target: '/dev', type: 'devtmpfs', flags: ['MS_NOSUID'], data: 'mode=0755', fatal: true },
  {
    source: 'devpts',
    target: '/dev/pts',
    type: 'devpts',
    flags: ['MS_NOSUID', 'MS_NOEXEC'],
    data: 'gid=5,mode=0620,ptmxmode=0666',
    mode: 0o755,
    fatal: false,
  },
  {
    source: 'tmpfs',
    target: '/dev/shm',
    type: 'tmpfs',
    flags: ['MS_NOSUID', 'MS_NODEV'],
    data: 'mode=1777',
    mode: 0o1777,
    fatal: false,
  },
  {
    source: 'cgroup2',
    target: '/sys/fs/cgroup',
    type: 'cgroup2',
    flags: ['MS_NOSUID', 'MS_NODEV', 'MS_NOEXEC'],
    data: 'nsdelegate',
    fatal: false,
  },
];

/** The shell equivalent of a mount step. */
export function mountToShell(m: MountStep): string {
  const opts = [...m.flags.map((f) => f.replace(/^MS_/, '').toLowerCase()), ...(m.data ? [m.data] : [])];
  return (
    `mkdir -p ${m.target} && mount -t ${m.type}` +
    `${opts.length ? ` -o ${opts.join(',')}` : ''} ${m.source} ${m.target}`
  );
}

/** Mount points in a /proc/self/mounts text. */
export function mountedTargets(mounts: string): Set<string> {
  return new Set(
    mounts
      .split('\n')
      .filter(Boolean)
      .map((l) => unescapeMountPath(l.split(' ')[1])),
  );
}

/** Undoes the octal escapes (\\040 space, \\011 tab, \\012 newline, \\134 backslash) of /proc/self/mounts. */
export function unescapeMountPath(p: string): string {
  return p.replace(/\\([0-7]{3})/g, (_, o: string) => String.fromCharCode(parseInt(o, 8)));
}

/** What executing the plan needs; PID 1 passes the native helper, tests a recorder. */
export interface MountSys {
  mount(source: string, target: string, type: string, flags: number, data: string | null): void;
  constants: Record<string, number>;
  readMounts(): string;
  mkdir(path: string, mode: number): void;
}

/** The real system: the native helper plus node:fs. */
export function realMountSys(native: { mount: MountSys['mount']; constants: Record<string, number> }): MountSys {
  return {
    mount: native.mount,
    constants: native.constants,
    readMounts: () => {
      try {
        return readFileSync('/proc/self/mounts', 'utf8');
      } catch {
        return '';
      }
    },
    mkdir: (p, mode) => mkdirSync(p, { recursive: true, mode }),
  };
}

/**
 * Mounts each step not already mounted. A fatal step throws; any other failure is returned as a
 * warning and boot goes on.
 */
export function mountAll(steps: MountStep[], sys: MountSys): { mounted: string[]; warnings: string[] } {
  const mounted: string[] = [];
  const warnings: string[] = [];
  for (const m of steps) {
    if (mountedTargets(sys.readMounts()).has(m.target)) continue;
    try {
      sys.mkdir(m.target, m.mode ?? 0o755);
      const flags = m.flags.reduce((acc, f) => acc | (sys.constants[f] ?? 0), 0);
      sys.mount(m.source, m.target, m.type, flags, m.data ?? null);
      mounted.push(m.target);
    } catch (e) {
      if (m.fatal) throw e;
      warnings.push(`cannot mount ${m.type} on ${m.target}: ${(e as Error).message}`);
    }
  }
  return { mounted, warnings };
}
