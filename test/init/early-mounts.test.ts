// mountAll against a recording fake: skipping mounted targets, MS_* flags, and the two failure kinds.
import assert from 'node:assert/strict';
import {
  API_MOUNTS,
  mountAll,
  mountedTargets,
  mountToShell,
  type MountStep,
  type MountSys,
} from '../../init/early-mounts.js';

// Linux's values (include/uapi/linux/mount.h).
const CONSTANTS = { MS_RDONLY: 1, MS_NOSUID: 2, MS_NODEV: 4, MS_NOEXEC: 8, MS_RELATIME: 1 << 21 };

// What /proc/self/mounts shows when PID 1 starts: the initramfs moved /proc and /sys.
const AFTER_SWITCH_ROOT =
  `/dev/vda3 / squashfs ro,relatime 0 0
/dev/vda9 /var ext4 rw,relatime 0 0
overlay /etc overlay ` +
  `rw,relatime,lowerdir=/etc,upperdir=/var/lib/keel/overlay/etc/upper,workdir=/var/lib/keel/overlay/etc/work 0 0
tmpfs /run tmpfs rw,nosuid,nodev,mode=755 0 0
tmpfs /tmp tmpfs rw,nosuid,nodev 0 0
proc /proc proc rw,nosuid,nodev,noexec,relatime 0 0
sys /sys sysfs rw,nosuid,nodev,noexec,relatime 0 0
`;

type Call =
  | { call: 'mkdir'; path: string; mode: number }
  | { call: 'mount'; source: string; target: string; type: string; flags: number; data: string | null };

/** A fake whose successful mounts show up in readMounts, like the kernel's table. */
function fakeSys(mounts: string, fail: Record<string, Error> = {}): MountSys & { calls: Call[] } {
  let table = mounts;
  const calls: Call[] = [];
  return {
    calls,
    constants: CONSTANTS,
    readMounts: () => table,
    mkdir: (path, mode) => {
      calls.push({ call: 'mkdir', path, mode });
    },
    mount: (source, target, type, flags, data) => {
      calls.push({ call: 'mount', source, target, type, flags, data });
      if (fail[target]) throw fail[target];
      table += `${source} ${target.replace(/ /g, '\\040')} ${type} rw 0 0\n`;
    },
  };
}
const enodev = (what: string) =>
  Object.assign(new Error(`mount(${what}): ENODEV (No such device)`), { code: 'ENODEV' });

describe('init/early-mounts', () => {
  it('mounts the API filesystems not yet mounted, with flags from MS_* names', () => {
    const sys = fakeSys(AFTER_SWITCH_ROOT);
    const r = mountAll(API_MOUNTS, sys);
    assert.deepEqual(r, { mounted: ['/dev', '/dev/pts', '/dev/shm', '/sys/fs/cgroup'], warnings: [] });
    assert.deepEqual(
      sys.calls.filter((c) => c.call === 'mount'),
      [
        { call: 'mount', source: 'devtmpfs', target: '/dev', type: 'devtmpfs', flags: 2, data: 'mode=0755' },
        {
          call: 'mount',
          source: 'devpts',
          target: '/dev/pts',
          type: 'devpts',
          flags: 2 | 8,
          data: 'gid=5,mode=0620,ptmxmode=0666',
        },
        { call: 'mount', source: 'tmpfs', target: '/dev/shm', type: 'tmpfs', flags: 2 | 4, data: 'mode=1777' },
        {
          call: 'mount',
          source: 'cgroup2',
          target: '/sys/fs/cgroup',
          type: 'cgroup2',
          flags: 2 | 4 | 8,
          data: 'nsdelegate',
        },
      ],
    );
  });

  it("makes each mount point first, with the step's mode (0755 by default)", () => {
    const sys = fakeSys(AFTER_SWITCH_ROOT);
    mountAll(API_MOUNTS, sys);
    assert.deepEqual(
      sys.calls.map((c) => `${c.call} ${c.call === 'mkdir' ? `${c.path} ${c.mode.toString(8)}` : c.target}`),
      [
        'mkdir /dev 755',
        'mount /dev',
        'mkdir /dev/pts 755',
        'mount /dev/pts',
        'mkdir /dev/shm 1777',
        'mount /dev/shm',
        'mkdir /sys/fs/cgroup 755',
        'mount /sys/fs/cgroup',
      ],
    );
  });

  it('mounts everything on an empty table, and nothing on a second run', () => {
    const sys = fakeSys('');
    assert.deepEqual(
      mountAll(API_MOUNTS, sys).mounted,
      API_MOUNTS.map((m) => m.target),
    );
    assert.equal(sys.calls.find((c) => c.call === 'mount' && c.target === '/proc')?.call, 'mount');
    sys.calls.length = 0;
    assert.deepEqual(mountAll(API_MOUNTS, sys), { mounted: [], warnings: [] });
    assert.deepEqual(sys.calls, []);
  });

  it('skips a target whose name /proc/self/mounts escapes (\\040 for space)', () => {
    const step: MountStep = { source: 'tmpfs', target: '/mnt/my disk', type: 'tmpfs', flags: [], fatal: true };
    const sys = fakeSys('tmpfs /mnt/my\\040disk tmpfs rw 0 0\n');
    assert.deepEqual(mountAll([step], sys), { mounted: [], warnings: [] });
    assert.deepEqual(sys.calls, []);
    assert.ok(mountedTargets('tmpfs /mnt/my\\040disk tmpfs rw 0 0\n').has('/mnt/my disk'));
  });

  it('passes null data and zero flags when the step has none', () => {
    const sys = fakeSys('');
    mountAll([{ source: 'none', target: '/x', type: 'tmpfs', flags: [], fatal: true }], sys);
    assert.deepEqual(sys.calls[1], {
      call: 'mount',
      source: 'none',
      target: '/x',
      type: 'tmpfs',
      flags: 0,
      data: null,
    });
  });

  it("throws a fatal step's failure and stops there", () => {
    const err = enodev('devtmpfs');
    const sys = fakeSys(AFTER_SWITCH_ROOT, { '/dev': err });
    assert.throws(
      () => mountAll(API_MOUNTS, sys),
      (e) => e === err,
    );
    assert.ok(!sys.calls.some((c) => c.call === 'mount' && c.target === '/dev/pts'), 'went on after a fatal failure');
  });

  it('turns a best-effort failure into a warning and goes on', () => {
    const sys = fakeSys(AFTER_SWITCH_ROOT, { '/dev/pts': enodev('devpts') });
    const r = mountAll(API_MOUNTS, sys);
    assert.deepEqual(r.mounted, ['/dev', '/dev/shm', '/sys/fs/cgroup']);
    assert.deepEqual(r.warnings, ['cannot mount devpts on /dev/pts: mount(devpts): ENODEV (No such device)']);
  });

  it('turns a failed mkdir of a best-effort step into a warning too', () => {
    const sys = fakeSys(AFTER_SWITCH_ROOT);
    sys.mkdir = (p) => {
      if (p === '/sys/fs/cgroup') throw new Error('EROFS');
    };
    const r = mountAll(API_MOUNTS, sys);
    assert.deepEqual(r.warnings, ['cannot mount cgroup2 on /sys/fs/cgroup: EROFS']);
    assert.ok(!r.mounted.includes('/sys/fs/cgroup'));
  });

  it('declares the kernel API filesystems fatal and the rest best effort', () => {
    assert.deepEqual(
      API_MOUNTS.filter((m) => m.fatal).map((m) => m.target),
      ['/proc', '/sys', '/dev'],
    );
    for (const m of API_MOUNTS) for (const f of m.flags) assert.ok(f in CONSTANTS, `${m.target}: unknown flag ${f}`);
  });

  it('prints each step as the mount command it stands for', () => {
    assert.deepEqual(API_MOUNTS.map(mountToShell), [
      'mkdir -p /proc && mount -t proc -o nosuid,nodev,noexec proc /proc',
      'mkdir -p /sys && mount -t sysfs -o nosuid,nodev,noexec sysfs /sys',
      'mkdir -p /dev && mount -t devtmpfs -o nosuid,mode=0755 devtmpfs /dev',
      'mkdir -p /dev/pts && mount -t devpts -o nosuid,noexec,gid=5,mode=0620,ptmxmode=0666 devpts /dev/pts',
      'mkdir -p /dev/shm && mount -t tmpfs -o nosuid,nodev,mode=1777 tmpfs /dev/shm',
      'mkdir -p /sys/fs/cgroup && mount -t cgroup2 -o nosuid,nodev,noexec,nsdelegate cgroup2 /sys/fs/cgroup',
    ]);
    assert.equal(
      mountToShell({ source: 'none', target: '/x', type: 'tmpfs', flags: [], fatal: false }),
      'mkdir -p /x && mount -t tmpfs none /x',
    );
  });
});
