// Shutdown against a recording fake: signals, sync, unmount order, busy fallbacks, reboot(2) command.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { SHUTDOWN_SIGNALS, shutdown, unmountOrder, type ShutdownSys } from '../../init/shutdown.js';

// Linux's values (mount.h, reboot.h).
const C = {
  MS_RDONLY: 1,
  MS_REMOUNT: 32,
  MNT_DETACH: 2,
  RB_AUTOBOOT: 0x01234567,
  RB_HALT_SYSTEM: 0xcdef0123,
  RB_POWER_OFF: 0x4321fedc,
};

const KEEL_MOUNTS = `/dev/vda3 / squashfs ro,relatime 0 0
/dev/vda9 /var ext4 rw,relatime 0 0
overlay /etc overlay rw,relatime,lowerdir=/etc 0 0
tmpfs /run tmpfs rw,nosuid,nodev,mode=755 0 0
tmpfs /tmp tmpfs rw,nosuid,nodev 0 0
proc /proc proc rw,nosuid,nodev,noexec,relatime 0 0
sys /sys sysfs rw,nosuid,nodev,noexec,relatime 0 0
devtmpfs /dev devtmpfs rw,nosuid,mode=755 0 0
devpts /dev/pts devpts rw,nosuid,noexec,gid=5,mode=620,ptmxmode=666 0 0
tmpfs /dev/shm tmpfs rw,nosuid,nodev 0 0
cgroup2 /sys/fs/cgroup cgroup2 rw,nosuid,nodev,noexec,nsdelegate 0 0
/dev/vdb1 /var/lib/my\\040data ext4 rw 0 0
`;

/** What shutdown will unmount on this host: it reads the host's own mount table. */
const hostTargets = () => unmountOrder(readFileSync('/proc/self/mounts', 'utf8'));

/** A recording fake; `live` scripts liveChildren's answers (the last one repeats). */
function fakeSys(
  opts: { live?: number[]; busy?: Set<string>; failRemount?: boolean; failKill?: boolean } = {},
): ShutdownSys & { calls: string[] } {
  const live = [...(opts.live ?? [0])];
  const calls: string[] = [];
  return {
    calls,
    constants: C,
    kill: (pid, sig) => {
      calls.push(`kill ${pid} ${sig}`);
      if (opts.failKill) throw new Error('EPERM');
    },
    reap: () => {
      calls.push('reap');
    },
    liveChildren: () => (live.length > 1 ? live.shift()! : live[0]),
    sync: () => {
      calls.push('sync');
    },
    umount2: (target, flags) => {
      calls.push(`umount2 ${target} ${flags}`);
      if (flags === 0 && opts.busy?.has(target))
        throw Object.assign(new Error(`umount2(${target}): EBUSY`), { code: 'EBUSY' });
    },
    mount: (source, target, type, flags, data) => {
      calls.push(`mount ${source} ${target} ${type} ${flags} ${data}`);
      if (opts.failRemount) throw new Error('EBUSY');
    },
    reboot: (cmd) => {
      calls.push(`reboot ${cmd}`);
    },
  };
}

describe('init/shutdown', () => {
  describe('unmountOrder', () => {
    it('unmounts deepest first, leaving / /proc /sys /dev, decoding \\040', () => {
      assert.deepEqual(unmountOrder(KEEL_MOUNTS), [
        '/var/lib/my data',
        '/sys/fs/cgroup',
        '/dev/shm',
        '/dev/pts',
        '/tmp',
        '/run',
        '/etc',
        '/var',
      ]);
    });

    it('unmounts the /etc overlay before the ROOT it lives on', () => {
      const order = unmountOrder(KEEL_MOUNTS);
      assert.ok(order.indexOf('/etc') < order.indexOf('/var'));
    });

    it('gives nothing for an empty table', () => {
      assert.deepEqual(unmountOrder(''), []);
      assert.deepEqual(unmountOrder('/dev/vda3 / squashfs ro 0 0\n'), []);
    });
  });

  it('maps the signals busybox and the kernel send to PID 1', () => {
    assert.deepEqual(SHUTDOWN_SIGNALS, {
      SIGUSR2: 'poweroff',
      SIGPWR: 'poweroff',
      SIGTERM: 'reboot',
      SIGINT: 'reboot',
      SIGUSR1: 'halt',
    });
  });

  describe('shutdown', () => {
    it('sends SIGTERM, waits for children, SIGKILLs, syncs, unmounts in order, syncs and powers off', async () => {
      const expected = hostTargets();
      const sys = fakeSys({ live: [2, 1, 0] });
      await shutdown('poweroff', sys, { graceMs: 2000 });
      const umounts = expected.map((t) => `umount2 ${t} 0`);
      assert.deepEqual(sys.calls, [
        'kill -1 SIGTERM',
        'reap',
        'reap',
        'reap', // until liveChildren says 0
        'kill -1 SIGKILL',
        'reap',
        'sync',
        ...umounts,
        'sync',
        `reboot ${C.RB_POWER_OFF}`,
      ]);
    });

    it('stops waiting after graceMs and SIGKILLs what is left', async () => {
      const sys = fakeSys({ live: [5] });
      // A clock that only the fake sleeps move: the wait is what shutdown asked them for.
      let clock = 1000;
      const slept: number[] = [];
      const sleep = async (ms: number) => {
        slept.push(ms);
        sys.calls.push(`sleep ${ms}`);
        clock += ms;
      };
      await shutdown('reboot', sys, { graceMs: 120, now: () => clock, sleep });
      // Reaps at 1000, 1050, 1100 (each followed by a sleep), then 1150 is past the deadline of 1120.
      const kill = sys.calls.indexOf('kill -1 SIGKILL');
      assert.deepEqual(sys.calls.slice(0, kill + 2), [
        'kill -1 SIGTERM',
        'reap',
        'sleep 50',
        'reap',
        'sleep 50',
        'reap',
        'sleep 50',
        'kill -1 SIGKILL',
        'sleep 50',
      ]);
      assert.equal(
        slept.slice(0, 3).reduce((a, b) => a + b, 0),
        150,
        'it waited the grace period out, by the clock',
      );
      assert.equal(sys.calls.at(-1), `reboot ${C.RB_AUTOBOOT}`);
    });

    it('remounts a busy filesystem read-only and detaches it', async function () {
      const expected = hostTargets();
      assert.ok(
        expected.length > 0,
        'the host shows no mount shutdown would unmount (every Linux host has /dev/pts and friends)',
      );
      const busy = expected[0];
      const sys = fakeSys({ busy: new Set([busy]) });
      await shutdown('reboot', sys, { graceMs: 10 });
      const i = sys.calls.indexOf(`umount2 ${busy} 0`);
      assert.deepEqual(sys.calls.slice(i, i + 3), [
        `umount2 ${busy} 0`,
        `mount null ${busy} null ${C.MS_REMOUNT | C.MS_RDONLY} null`,
        `umount2 ${busy} ${C.MNT_DETACH}`,
      ]);
      // And goes on with the rest, in order.
      assert.deepEqual(
        sys.calls.filter((c) => / 0$/.test(c) && c.startsWith('umount2 ')),
        expected.map((t) => `umount2 ${t} 0`),
      );
    });

    it('detaches a busy filesystem even when the read-only remount fails, and still reboots', async function () {
      const expected = hostTargets();
      assert.ok(expected.length > 0, 'the host shows no mount shutdown would unmount');
      const sys = fakeSys({ busy: new Set(expected), failRemount: true, failKill: true });
      await shutdown('reboot', sys, { graceMs: 10 });
      for (const t of expected) assert.ok(sys.calls.includes(`umount2 ${t} ${C.MNT_DETACH}`), t);
      assert.equal(sys.calls.at(-1), `reboot ${C.RB_AUTOBOOT}`);
    });

    it('asks reboot(2) for the kind requested', async () => {
      for (const [kind, cmd] of [
        ['poweroff', C.RB_POWER_OFF],
        ['reboot', C.RB_AUTOBOOT],
        ['halt', C.RB_HALT_SYSTEM],
      ] as const) {
        const sys = fakeSys();
        await shutdown(kind, sys, { graceMs: 10 });
        assert.deepEqual(
          sys.calls.filter((c) => c.startsWith('reboot')),
          [`reboot ${cmd}`],
          kind,
        );
      }
    });
  });
});
