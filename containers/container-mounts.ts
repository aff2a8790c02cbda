// A container's mounts: the mount flags, Docker's masked and read-only paths and /dev, path checks,
// -v and --tmpfs parsing, and the root, API and volume mounts as native spawn() takes them.
import { parseVolume as parseVolumeOption } from './options.js';
import { statSync } from 'node:fs';
import { posix, resolve } from 'node:path';
import type { NativeMount } from '../native/native.js';
import type { RootfsSpec, VolumeSpec } from './container-spec.js';
import { ContainerError } from './errors.js';
import type { IdMapping } from './store.js';

// Linux mount flags (stable ABI values, as in <sys/mount.h>).
export const MS = {
  RDONLY: 0x1,
  NOSUID: 0x2,
  NODEV: 0x4,
  NOEXEC: 0x8,
  REMOUNT: 0x20,
  BIND: 0x1000,
  REC: 0x4000,
  RELATIME: 0x200000,
  STRICTATIME: 0x1000000,
} as const;

/** Throws EINVAL "cannot run the container: WHAT REASON". */
export function invalid(what: string, reason: string): never {
  throw new ContainerError('EINVAL', `cannot run the container: ${what} ${reason}`);
}

/** An absolute, normalized path inside the container; '..' components are refused. */
export function containerPath(p: string, what: string): string {
  if (typeof p !== 'string' || !p.startsWith('/'))
    invalid(what, `must be an absolute path inside the container, not ${JSON.stringify(p)}`);
  if (p.includes('\0')) invalid(what, 'must not contain NUL bytes');
  if (p.split('/').includes('..'))
    throw new ContainerError('EUNSAFE', `cannot run the container: ${what} ${JSON.stringify(p)} contains '..'`);
  const n = posix.normalize(p);
  return n.length > 1 ? n.replace(/\/+$/, '') : n;
}

/** An absolute, normalized host path; '..' components are refused. */
export function hostPath(p: string, what: string): string {
  if (typeof p !== 'string' || !p.startsWith('/'))
    invalid(what, `must be an absolute host path, not ${JSON.stringify(p)}`);
  return resolve(p);
}

/** Docker's -v "HOST:CONTAINER[:ro|rw]". */
export function parseVolume(v: string): VolumeSpec {
  return parseVolumeOption(v); // options.ts (pure: a .container unit's Volume= goes through it too)
}

const TMPFS_FLAGS: Record<string, [set: number, clear: number]> = {
  ro: [MS.RDONLY, 0],
  rw: [0, MS.RDONLY],
  nosuid: [MS.NOSUID, 0],
  suid: [0, MS.NOSUID],
  nodev: [MS.NODEV, 0],
  dev: [0, MS.NODEV],
  noexec: [MS.NOEXEC, 0],
  exec: [0, MS.NOEXEC],
};

/** Docker's --tmpfs "PATH[:OPTIONS]": flags from the options, the rest (size=, mode=, uid=…) as data. */
export function parseTmpfs(spec: string): NativeMount {
  const colon = spec.indexOf(':');
  const target = containerPath(colon < 0 ? spec : spec.slice(0, colon), 'tmpfs');
  let flags = MS.NOSUID | MS.NODEV | MS.NOEXEC;
  const data: string[] = [];
  for (const opt of colon < 0
    ? []
    : spec
        .slice(colon + 1)
        .split(',')
        .filter(Boolean)) {
    const f = TMPFS_FLAGS[opt];
    if (f) flags = (flags | f[0]) & ~f[1];
    else if (/^(size|mode|uid|gid|nr_inodes|nr_blocks)=[0-9A-Za-z%]+$/.test(opt)) data.push(opt);
    else
      invalid(
        'tmpfs option',
        `${JSON.stringify(opt)} (in ${JSON.stringify(spec)}) is not one of ro, rw, ` +
          '[no]suid, [no]dev, [no]exec, size=, mode=, uid=, gid=, nr_inodes=',
      );
  }
  return { source: 'tmpfs', target, fstype: 'tmpfs', flags, data: data.join(',') || null, mkdir: 'dir' };
}

/** tmpfs/devpts options owning the mount by a user namespace's root (and its tty group 5). */
export function ownedBy(data: string, userns: IdMapping | undefined, fstype: 'tmpfs' | 'devpts'): string {
  if (!userns) return data;
  if (fstype === 'devpts') return data.replace(/\bgid=(\d+)/, (_, g: string) => `gid=${userns.gid + Number(g)}`);
  const given = new Set(data.split(',').map((o) => o.split('=')[0]));
  return [data, ...(given.has('uid') ? [] : [`uid=${userns.uid}`]), ...(given.has('gid') ? [] : [`gid=${userns.gid}`])]
    .filter(Boolean)
    .join(',');
}

/** The standard API filesystems of a container, in mount order. */
export function apiMounts(privileged: boolean, userns?: IdMapping): NativeMount[] {
  const m = (
    source: string,
    target: string,
    fstype: string | null,
    flags: number,
    data: string | null,
    mkdir: NativeMount['mkdir'] = 'dir',
  ): NativeMount => ({ source, target, fstype, flags, data, mkdir });
  const sysRo = privileged ? 0 : MS.RDONLY;
  // Privileged, /dev is the host's (bound): nothing may be created in it, so pts and shm must
  // exist there, and mqueue (which hosts rarely have in /dev) is left to the container.
  const devDir: NativeMount['mkdir'] = privileged ? null : 'dir';
  return [
    m('proc', '/proc', 'proc', MS.NOSUID | MS.NODEV | MS.NOEXEC, null),
    privileged
      ? m('/dev', '/dev', null, MS.BIND | MS.REC, null)
      : m('tmpfs', '/dev', 'tmpfs', MS.NOSUID | MS.STRICTATIME, ownedBy('mode=755,size=65536k', userns, 'tmpfs')),
    m(
      'devpts',
      '/dev/pts',
      'devpts',
      MS.NOSUID | MS.NOEXEC,
      ownedBy('newinstance,ptmxmode=0666,mode=0620,gid=5', userns, 'devpts'),
      devDir,
    ),
    m(
      'shm',
      '/dev/shm',
      'tmpfs',
      MS.NOSUID | MS.NODEV | MS.NOEXEC,
      ownedBy('mode=1777,size=65536k', userns, 'tmpfs'),
      devDir,
    ),
    ...(privileged ? [] : [m('mqueue', '/dev/mqueue', 'mqueue', MS.NOSUID | MS.NODEV | MS.NOEXEC, null)]),
    m('sysfs', '/sys', 'sysfs', MS.NOSUID | MS.NODEV | MS.NOEXEC | sysRo, null),
    // A directory of sysfs itself (which is read-only here): never created, it exists.
    m('cgroup', '/sys/fs/cgroup', 'cgroup2', MS.NOSUID | MS.NODEV | MS.NOEXEC | MS.RELATIME | sysRo, null, null),
  ];
}

export function volumeMount(v: VolumeSpec | string): NativeMount {
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
  return {
    source: host,
    target,
    fstype: null,
    flags: MS.BIND | MS.REC | (vol.ro ? MS.RDONLY : 0),
    data: null,
    mkdir: st.isDirectory() ? 'dir' : 'file',
  };
}

export function rootMount(rootfs: RootfsSpec): {
  root: string;
  rootMount: { source: string | null; fstype: string | null; flags: number; data: string | null };
} {
  if ('bind' in rootfs) {
    const dir = hostPath(rootfs.bind, 'rootfs.bind');
    return { root: dir, rootMount: { source: dir, fstype: null, flags: MS.BIND | MS.REC, data: null } };
  }
  if (!Array.isArray(rootfs.lower) || rootfs.lower.length === 0)
    invalid('rootfs.lower', 'must list at least one layer');
  const lower = rootfs.lower.map((l) => hostPath(l, 'rootfs.lower[]'));
  const upper = hostPath(rootfs.upper, 'rootfs.upper'),
    work = hostPath(rootfs.work, 'rootfs.work');
  for (const p of [...lower, upper, work]) {
    if (/[:,\\]/.test(p))
      throw new ContainerError(
        'EUNSAFE',
        `cannot mount the overlay: ${JSON.stringify(p)} contains ':', ',' or ` +
          `'\\', which overlayfs options would misread`,
      );
  }
  const data = `lowerdir=${lower.join(':')},upperdir=${upper},workdir=${work}`;
  // Mount options are one page; longer ones fail with EINVAL, say why now.
  if (Buffer.byteLength(data) > 4095)
    throw new ContainerError(
      'ETOOBIG',
      `cannot mount the overlay: its options take ${Buffer.byteLength(data)} ` +
        'bytes, more than a page (4095); use shorter layer paths',
    );
  return {
    root: hostPath(rootfs.mountpoint, 'rootfs.mountpoint'),
    rootMount: { source: 'overlay', fstype: 'overlay', flags: 0, data },
  };
}
