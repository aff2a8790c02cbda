// The initramfs /init: syntax-checked by real shells, step order, and its shell logic run for real
// (find_part against a fake sysfs tree, the ext4-magic check against real images).
import assert from 'node:assert/strict';
import { execFile, spawnSync } from 'node:child_process';
import { accessSync, constants, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { earlyBootPlan, renderInitScript, stepToShell } from '../../builder/initramfs-plan.js';

const INIT = ['/usr/bin/node', '--disable-sigusr1', '/usr/lib/keel/init.mjs'];
const MODULES = ['virtio_pci', 'virtio_blk', 'squashfs', 'overlay'];
const script = () => renderInitScript(earlyBootPlan({ modules: MODULES, init: INIT }));

function findTool(name: string): string | null {
  for (const dir of ['/usr/sbin', '/usr/bin', '/sbin', '/bin']) {
    try { accessSync(join(dir, name), constants.X_OK); return join(dir, name); } catch { /* next */ }
  }
  return null;
}

/** Replaces `from` in `text`, failing if it is not there (so a changed source cannot pass silently). */
function swap(text: string, from: string | RegExp, to: string): string {
  const out = text.replace(from, to);
  assert.notEqual(out, text, `${from} not found in the rendered script`);
  return out;
}

/** Runs `body` with /bin/sh; returns status and output. */
function sh(body: string, env: Record<string, string> = {}) {
  const r = spawnSync('/bin/sh', ['-c', body], { encoding: 'utf8', env: { ...process.env, ...env }, timeout: 10_000 });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

/** The find_part function exactly as rendered. */
function findPartFunction(): string {
  const m = /^find_part\(\) \{\n[\s\S]*?\n\}\n/m.exec(renderInitScript([]));
  assert.ok(m, 'find_part not in the prelude');
  return m[0];
}

describe('builder/initramfs-plan', () => {
  let dir: string;
  beforeEach(() => { dir = mkdtempSync(join(tmpdir(), 'keel-initplan-')); });
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  it('renders a script /bin/sh -n accepts (and sh -n catches a broken one)', () => {
    const file = join(dir, 'init');
    writeFileSync(file, script());
    const ok = spawnSync('/bin/sh', ['-n', file], { encoding: 'utf8' });
    assert.equal(ok.status, 0, ok.stderr);
    writeFileSync(file, script() + 'if true; then\n');
    assert.notEqual(spawnSync('/bin/sh', ['-n', file]).status, 0, 'sh -n must reject an unterminated if');
  });

  it('renders a script busybox sh (the initramfs shell) accepts', function () {
    const busybox = findTool('busybox');
    assert.ok(busybox, 'busybox missing: run make deps (busybox-static)');
    const file = join(dir, 'init');
    writeFileSync(file, script());
    const r = spawnSync(busybox!, ['sh', '-n', file], { encoding: 'utf8' });
    assert.equal(r.status, 0, r.stderr);
  });

  it('starts with a shebang and loads the modules before looking for partitions', () => {
    const lines = script().split('\n');
    assert.equal(lines[0], '#!/bin/sh');
    const probes = lines.filter((l) => l.startsWith('modprobe '));
    assert.deepEqual(probes, MODULES.map((m) => `modprobe -q ${m}`));
    const firstFind = lines.findIndex((l) => l.includes('$(find_part '));
    assert.ok(lines.indexOf(`modprobe -q ${MODULES.at(-1)}`) < firstFind);
  });

  it('mounts USR read-only before ROOT, and makes ext4 only after USR is there', () => {
    const lines = script().split('\n');
    const usr = lines.findIndex((l) => l.includes('mount -t squashfs -o ro $USR_DEV /sysroot ||'));
    const mkfs = lines.findIndex((l) => l.includes('chroot /sysroot /usr/sbin/mkfs.ext4'));
    const root = lines.findIndex((l) => / mount -t ext4 -o rw[^ ]* \$ROOT_DEV \/sysroot\/var \|\|/.test(l));
    assert.ok(usr >= 0 && mkfs >= 0 && root >= 0, `usr=${usr} mkfs=${mkfs} root=${root}`);
    assert.ok(usr < mkfs && mkfs < root, `usr=${usr} mkfs=${mkfs} root=${root}`);
    assert.match(script(), /^USR_DEV=\$\(find_part "\$USR_LABEL"\) \|\| fatal/m);
    assert.match(script(), /^ROOT_DEV=\$\(find_part "ROOT"\) \|\| fatal/m);
  });

  it('mounts the /etc overlay from inside the new root, with layers on ROOT', () => {
    const lines = script().split('\n');
    const overlay = lines.findIndex((l) => l.includes('-t overlay'));
    assert.equal(lines[overlay],
      'chroot /sysroot /bin/mount -t overlay -o lowerdir=/etc,upperdir=/var/lib/keel/overlay/etc/upper,workdir=/var/lib/keel/overlay/etc/work overlay /etc || fatal "cannot mount overlay on /etc"');
    const root = lines.findIndex((l) => l.includes('$ROOT_DEV /sysroot/var ||'));
    const upper = lines.indexOf('mkdir -p /sysroot/var/lib/keel/overlay/etc/upper || fatal "cannot create /sysroot/var/lib/keel/overlay/etc/upper"');
    const work = lines.indexOf('mkdir -p /sysroot/var/lib/keel/overlay/etc/work || fatal "cannot create /sysroot/var/lib/keel/overlay/etc/work"');
    assert.ok(root < upper && upper < overlay && work < overlay, `root=${root} upper=${upper} work=${work} overlay=${overlay}`);
  });

  it('ends by moving /proc and /sys and exec-ing switch_root to the given init', () => {
    const lines = script().trimEnd().split('\n');
    assert.deepEqual(lines.slice(-5), [
      'mount --move /proc /sysroot/proc || fatal "cannot move /proc"',
      'mount --move /sys /sysroot/sys || fatal "cannot move /sys"',
      'umount -l /dev 2>/dev/null',
      'exec switch_root /sysroot /usr/bin/node --disable-sigusr1 /usr/lib/keel/init.mjs',
      'fatal "cannot switch root"',
    ]);
    assert.equal(lines.filter((l) => l.includes('switch_root')).length, 1);
  });

  it('marks every mount of the plan fatal, except the optional OEM partition', () => {
    for (const s of earlyBootPlan({ modules: [], init: INIT })) {
      if (s.kind !== 'mount') continue;
      if (s.where === '/sysroot/usr/share/oem') {
        // An image without OEM still boots: the mount is tried only when the partition exists.
        assert.match(stepToShell(s), /^if \[ -n "\$OEM_DEV" \]; then mount -t ext4 -o ro/);
        assert.doesNotMatch(stepToShell(s), /fatal/);
      } else assert.match(stepToShell(s), / \|\| fatal "cannot mount /, s.where);
    }
  });

  it('takes the USR slot from keel.usr= on the command line (USR-A without it)', () => {
    const m = /^USR_LABEL=USR-A\n[\s\S]*?\ndone\n/m.exec(renderInitScript([]));
    assert.ok(m, 'USR_LABEL loop not found');
    const cmdline = join(dir, 'cmdline');
    const body = swap(m[0], '/proc/cmdline', cmdline) + 'echo "$USR_LABEL"';
    writeFileSync(cmdline, 'BOOT_IMAGE=/boot/vmlinuz keel.usr=USR-B keel.slot=B console=ttyS0,115200\n');
    assert.equal(sh(body).stdout, 'USR-B\n');
    writeFileSync(cmdline, 'console=ttyS0,115200 quiet\n');
    assert.equal(sh(body).stdout, 'USR-A\n');
  });

  describe('find_part against a fake /sys/class/block', () => {
    const uevent = (dev: string, extra: string) => `MAJOR=254\nMINOR=3\nDEVNAME=${dev}\nDEVTYPE=partition\n${extra}`;
    function addBlock(dev: string, content: string): void {
      mkdirSync(join(dir, 'class/block', dev), { recursive: true });
      writeFileSync(join(dir, 'class/block', dev, 'uevent'), content);
    }
    const fn = (tries?: number) => {
      const text = swap(findPartFunction(), '/sys/class/block/', `${dir}/class/block/`);
      return tries === undefined ? text : swap(text, '-lt "${2:-200}"', `-lt ${tries}`);
    };

    beforeEach(() => {
      addBlock('vda', 'MAJOR=254\nMINOR=0\nDEVNAME=vda\nDEVTYPE=disk\nDISKSEQ=9\n');
      addBlock('vda1', uevent('vda1', 'PARTN=1\nPARTNAME=EFI-SYSTEM\n'));
      addBlock('vda3', uevent('vda3', 'PARTN=3\nPARTNAME=USR-A\n'));
      addBlock('vda4', uevent('vda4', 'PARTN=4\nPARTNAME=USR-B\n'));
      addBlock('vda9', uevent('vda9', 'PARTN=9\nPARTNAME=ROOT\n'));
      // A longer name that contains a wanted one must not match.
      addBlock('vdb1', uevent('vdb1', 'PARTN=1\nPARTNAME=ROOT-OLD\n'));
    });

    it('prints the device node of the partition with that exact GPT name', () => {
      assert.deepEqual(sh(`${fn()}find_part USR-A`), { status: 0, stdout: '/dev/vda3\n', stderr: '' });
      assert.equal(sh(`${fn()}find_part USR-B`).stdout, '/dev/vda4\n');
      assert.equal(sh(`${fn()}find_part ROOT`).stdout, '/dev/vda9\n');
    });

    it('fails with no output when no partition has the name', () => {
      const r = sh(`${fn(3)}find_part USR-C`);
      assert.equal(r.status, 1);
      assert.equal(r.stdout, '');
    });

    it('waits for a partition that appears later', async () => {
      const child = new Promise<string>((res, rej) => execFile('/bin/sh', ['-c', `${fn()}find_part DATA`], { timeout: 8000 }, (err, out) => (err ? rej(err) : res(out))));
      await new Promise((r) => setTimeout(r, 300));
      addBlock('vdc1', uevent('vdc1', 'PARTN=1\nPARTNAME=DATA\n'));
      assert.equal(await child, '/dev/vdc1\n');
    });
  });

  describe('mkfs-if-blank and the ext4 magic', () => {
    const check = () => {
      const text = stepToShell({ kind: 'mkfs-if-blank', device: '$DEV', label: 'ROOT' });
      return swap(swap(text, 'chroot /sysroot /usr/sbin/mkfs.ext4 -q -F -L ROOT $DEV', 'echo MKFS'), '>/dev/console', '>&2');
    };
    const run = (file: string) => {
      const r = sh(check(), { DEV: file });
      assert.equal(r.status, 0, r.stderr);
      return r.stdout;
    };

    it('makes a filesystem on a partition of zeros', () => {
      const file = join(dir, 'zeros.img');
      writeFileSync(file, Buffer.alloc(4 * 1024 * 1024));
      assert.equal(run(file), 'MKFS\n');
    });

    it('leaves a real ext4 alone', function () {
      const mkfs = findTool('mkfs.ext4');
      assert.ok(mkfs, 'mkfs.ext4 missing: run make deps (e2fsprogs)');
      const file = join(dir, 'ext4.img');
      const r = spawnSync(mkfs!, ['-q', '-F', file, '4M'], { encoding: 'utf8' });
      assert.equal(r.status, 0, r.stderr);
      assert.equal(run(file), '');
    });

    it('reads the magic 0xEF53 little-endian at byte 1080', () => {
      const file = join(dir, 'magic.img');
      const img = Buffer.alloc(8192);
      img.writeUInt16LE(0xef53, 1080);
      writeFileSync(file, img);
      assert.equal(run(file), '');
      img.fill(0).writeUInt16BE(0xef53, 1080);
      writeFileSync(file, img);
      assert.equal(run(file), 'MKFS\n');
      img.fill(0).writeUInt16LE(0xef53, 1082);
      writeFileSync(file, img);
      assert.equal(run(file), 'MKFS\n');
    });
  });
});
