// Condition*=/Assert*= against a made-up machine: a temp root, /proc and /sys trees, and real
// mounts (as root) for the mount-point and read-only checks.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { chmodSync, mkdirSync, mkdtempSync, rmSync, statSync, symlinkSync, utimesSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { checkHolds, firstFailure, type CheckFacts } from '../../init/conditions.js';
import { compareVersions, fnmatch } from '../../init/condition-match.js';
import type { Check } from '../../units/types.js';
import { describeAsRoot } from '../needs.js';

const c = (kind: string, value: string, o: Partial<Check> = {}): Check => ({
  kind,
  value,
  assert: false,
  trigger: false,
  negate: false,
  file: 'f',
  line: 1,
  ...o,
});

describeAsRoot('init/conditions', () => {
  let top: string;
  let f: CheckFacts;
  const put = (p: string, text: string | Buffer) => {
    mkdirSync(dirname(join(top, p)), { recursive: true });
    writeFileSync(join(top, p), text);
  };
  const mount = (...args: string[]) => {
    const r = spawnSync('mount', args, { encoding: 'utf8' });
    if (r.status !== 0) throw new Error(`these tests need root to mount tmpfs: mount ${args.join(' ')}: ${r.stderr}`);
  };

  before(() => {
    top = mkdtempSync(join(tmpdir(), 'keel-cond-'));
    put('root/etc/present', 'yes');
    put('root/etc/empty', '');
    put('root/usr/bin/tool', '#!/bin/sh\n');
    chmodSync(join(top, 'root/usr/bin/tool'), 0o755);
    put('root/var/lib/x', '');
    mkdirSync(join(top, 'root/srv'));
    symlinkSync('/etc/present', join(top, 'root/etc/link'));
    put('root/etc/os-release', 'ID=debian\nVERSION_ID="12"\nNAME="Debian GNU/Linux"\n');
    put('root/var/.updated', '');
    utimesSync(join(top, 'root/usr'), new Date(2000e9), new Date(2000e9));
    utimesSync(join(top, 'root/var/.updated'), new Date(1000e9), new Date(1000e9));
    put('root/etc/.updated', '');
    utimesSync(join(top, 'root/etc/.updated'), new Date(3000e9), new Date(3000e9));
    put('proc/cpuinfo', 'processor\t: 0\nflags\t\t: fpu sse4_2 avx2 hypervisor\n');
    put(
      'proc/pressure/memory',
      'some avg10=30.00 avg60=5.00 avg300=1.00 total=1\nfull avg10=0.00 avg60=0.00 avg300=0.00 total=0\n',
    );
    put('proc/device-tree/compatible', 'raspberrypi,4-model-b\0brcm,bcm2711\0');
    put('proc/self/mountinfo', '');
    put('sys/class/power_supply/AC/type', 'Mains\n');
    put('sys/class/power_supply/AC/online', '0\n');
    put('sys/class/power_supply/BAT0/type', 'Battery\n');
    put('sys/firmware/efi/efivars/SecureBoot-8be4df61-93ca-11d2-aa0d-00e098032b8c', Buffer.from([6, 0, 0, 0, 1]));
    put('sys/module/apparmor/parameters/enabled', 'Y\n');
    put('sys/class/dmi/id/bios_version', '1.16.2\n');
    put('cred/token', 's3cret');
    put('cgroup/cgroup.controllers', 'cpuset cpu io memory pids\n');
    // The device of the root dir is "encrypted": dm-crypt below a dm device (in the made-up /sys).
    const dev = statSync(join(top, 'root'), { bigint: true }).dev;
    const major = ((dev >> 8n) & 0xfffn) | ((dev >> 32n) & ~0xfffn);
    const minor = (dev & 0xffn) | ((dev >> 12n) & ~0xffn);
    put(`sys/dev/block/${major}:${minor}/slaves/dm-1`, '');
    put('sys/class/block/dm-1/dm/uuid', 'CRYPT-LUKS2-abc-root\n');
    mkdirSync(join(top, 'root/mnt/rw'), { recursive: true });
    mkdirSync(join(top, 'root/mnt/ro'), { recursive: true });
    mount('-t', 'tmpfs', 'tmpfs', join(top, 'root/mnt/rw'));
    mount('-t', 'tmpfs', '-o', 'ro', 'tmpfs', join(top, 'root/mnt/ro'));
    f = {
      root: join(top, 'root'),
      proc: join(top, 'proc'),
      sys: join(top, 'sys'),
      cgroupRoot: join(top, 'cgroup'),
      cmdline: 'console=ttyS0 keel.debug quiet=1',
      hostname: 'web-1',
      machineId: '0123456789abcdef0123456789abcdef',
      virtualization: 'qemu',
      container: 'none',
      capabilities: 1n << 21n,
      architecture: 'x86-64',
      kernelRelease: '6.1.0-13-cloud-amd64',
      env: { LANG: 'C.UTF-8', EMPTY: '' },
      user: { uid: 0, name: 'root' },
      groups: [
        { gid: 0, name: 'root' },
        { gid: 27, name: 'sudo' },
      ],
      firstBoot: true,
      credentialDirs: [join(top, 'cred')],
      cpus: 4,
      memoryBytes: 2 * 2 ** 30,
    };
  });
  after(() => {
    for (const m of ['root/mnt/rw', 'root/mnt/ro']) spawnSync('umount', [join(top, m)]);
    rmSync(top, { recursive: true, force: true });
  });

  it('evaluates every condition kind of systemd 252 against the facts and roots it is given', () => {
    const table: [string, string, boolean][] = [
      ['PathExists', '/etc/present', true],
      ['PathExists', '/nope', false],
      ['PathExistsGlob', '/usr/bin/t*l', true],
      ['PathExistsGlob', '/usr/*/tool', true],
      ['PathExistsGlob', '/usr/bin/x*', false],
      ['PathIsDirectory', '/var', true],
      ['PathIsDirectory', '/etc/present', false],
      ['PathIsSymbolicLink', '/etc/link', true],
      ['PathIsSymbolicLink', '/etc/present', false],
      ['PathIsMountPoint', '/mnt/rw', true],
      ['PathIsMountPoint', '/etc', false],
      ['PathIsReadWrite', '/mnt/rw', true],
      ['PathIsReadWrite', '/mnt/ro', false],
      ['PathIsEncrypted', '/etc', true],
      ['PathIsEncrypted', '/mnt/rw', false],
      ['DirectoryNotEmpty', '/var', true],
      ['DirectoryNotEmpty', '/srv', false],
      ['DirectoryNotEmpty', '/etc/present', false],
      ['FileNotEmpty', '/etc/present', true],
      ['FileNotEmpty', '/etc/empty', false],
      ['FileNotEmpty', '/var', false],
      ['FileIsExecutable', '/usr/bin/tool', true],
      ['FileIsExecutable', '/etc/present', false],
      ['KernelCommandLine', 'keel.debug', true],
      ['KernelCommandLine', 'quiet', true],
      ['KernelCommandLine', 'quiet=2', false],
      ['KernelVersion', '>=6.1', true],
      ['KernelVersion', '<5.10', false],
      ['KernelVersion', '6.1.*', true],
      ['KernelVersion', '>=5 <6.2', true],
      ['KernelVersion', '5.*', false],
      ['Architecture', 'x86-64', true],
      ['Architecture', 'arm64', false],
      ['Architecture', 'native', true],
      ['Firmware', 'uefi', true],
      ['Firmware', 'device-tree', false],
      ['Firmware', 'device-tree-compatible(brcm,bcm2711)', true],
      ['Firmware', 'smbios-field(bios_version >= 1.10)', true],
      ['Firmware', 'smbios-field(bios_version = 2.0)', false],
      ['Virtualization', 'vm', true],
      ['Virtualization', 'no', false],
      ['Virtualization', 'qemu', true],
      ['Virtualization', 'container', false],
      ['Host', 'web-1', true],
      ['Host', 'WEB-*', true],
      ['Host', 'db-?', false],
      ['Host', '0123456789ABCDEF0123456789ABCDEF', true],
      ['Security', 'apparmor', true],
      ['Security', 'uefi-secureboot', true],
      ['Security', 'selinux', false],
      ['Security', 'tpm2', false],
      ['Capability', 'CAP_SYS_ADMIN', true],
      ['Capability', 'CAP_NET_ADMIN', false],
      ['ACPower', 'false', true],
      ['ACPower', 'true', false],
      ['NeedsUpdate', '/var', true],
      ['NeedsUpdate', '/etc', false],
      ['FirstBoot', 'yes', true],
      ['FirstBoot', 'no', false],
      ['User', 'root', true],
      ['User', '0', true],
      ['User', '@system', true],
      ['User', 'nobody', false],
      ['Group', 'sudo', true],
      ['Group', '27', true],
      ['Group', 'wheel', false],
      ['ControlGroupController', 'cpu memory', true],
      ['ControlGroupController', 'cpu hugetlb', false],
      ['ControlGroupController', 'v2', true],
      ['Memory', '1G', true],
      ['Memory', '>=4G', false],
      ['Memory', '<3G', true],
      ['CPUs', '4', true],
      ['CPUs', '>4', false],
      ['CPUs', '!=3', true],
      ['CPUFeature', 'avx2', true],
      ['CPUFeature', 'SSE4_2', true],
      ['CPUFeature', 'avx512f', false],
      ['Environment', 'LANG', true],
      ['Environment', 'LANG=C.UTF-8', true],
      ['Environment', 'LANG=C', false],
      ['Environment', 'EMPTY=', true],
      ['Environment', 'HOME', false],
      ['OSRelease', 'ID=debian', true],
      ['OSRelease', 'ID!=debian', false],
      ['OSRelease', 'VERSION_ID>=11', true],
      ['OSRelease', 'VERSION_ID<12', false],
      ['Credential', 'token', true],
      ['Credential', 'other', false],
      ['MemoryPressure', '50%', true],
      ['MemoryPressure', '20%/10sec', false],
      ['MemoryPressure', '20%/1min', true],
      ['CPUPressure', '10%', true], // no PSI file for cpu: systemd lets the condition hold
    ];
    const wrong = table
      .filter(([kind, value, want]) => checkHolds(c(kind, value), f) !== want)
      .map(([k, v, w]) => `${k}=${v} should be ${w}`);
    assert.deepEqual(wrong, []);
  });

  it('lets systemd.condition-first-boot= and systemd.condition-needs-update= on the command line decide', () => {
    const g = { ...f, cmdline: 'quiet systemd.condition-first-boot=0 systemd.condition-needs-update' };
    assert.deepEqual([checkHolds(c('FirstBoot', 'yes'), g), checkHolds(c('NeedsUpdate', '/etc'), g)], [false, true]);
  });

  it('applies ! and | as systemd does, and keeps Assert apart from Condition', () => {
    assert.equal(firstFailure([c('PathExists', '/nope', { negate: true })], f, false), null);
    // Triggering checks: one of them suffices.
    assert.equal(
      firstFailure(
        [c('PathExists', '/nope', { trigger: true }), c('PathExists', '/etc/present', { trigger: true })],
        f,
        false,
      ),
      null,
    );
    assert.equal(
      firstFailure(
        [c('PathExists', '/nope', { trigger: true }), c('PathExists', '/nope2', { trigger: true })],
        f,
        false,
      )?.value,
      '/nope',
    );
    // A failing non-triggering check fails regardless of triggers.
    assert.equal(
      firstFailure([c('PathExists', '/etc/present', { trigger: true }), c('Host', 'db-1')], f, false)?.kind,
      'Host',
    );
    // |! together: the negated trigger holds.
    assert.equal(
      firstFailure(
        [
          c('PathExists', '/etc/present', { trigger: true, negate: true }),
          c('PathExists', '/nope', { trigger: true, negate: true }),
        ],
        f,
        false,
      ),
      null,
    );
    const asserts = [c('PathExists', '/nope', { assert: true })];
    assert.equal(firstFailure(asserts, f, false), null);
    assert.equal(firstFailure(asserts, f, true)?.value, '/nope');
  });

  it('matches globs and orders versions as systemd does', () => {
    assert.ok(fnmatch('web-[0-9]*', 'web-12'));
    assert.ok(!fnmatch('web-[!0-9]', 'web-1'));
    assert.ok(fnmatch('a\\*b', 'a*b') && !fnmatch('a\\*b', 'axb'));
    assert.deepEqual(['6.1.0', '6.10', '6.1.0~rc1', '5.19.2', '6.1.0-13'].sort(compareVersions), [
      '5.19.2',
      '6.1.0~rc1',
      '6.1.0',
      '6.1.0-13',
      '6.10',
    ]);
  });
});
