// Real-kernel tests of the helper's file calls (fs.c): mknod and the l*xattr family, as root on
// the test host's /tmp (ext4 or tmpfs: both keep user.* and trusted.* attributes).
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { constants, lstatSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { devNumbers, makedev, native } from '../../native/native.js';
import { expectNativeError } from './helpers.js';
import { describeAsRoot } from '../needs.js';

describeAsRoot('native fs: mknod and xattrs', () => {
  let dir: string;
  before(() => assert.equal(process.getuid?.(), 0, 'these tests need root (mknod of devices, trusted.* xattrs)'));
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'keel-native-fs-'));
  });
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  it("makedev and devNumbers are glibc's, both ways", () => {
    assert.equal(makedev(1, 3), 0x103);
    assert.equal(makedev(259, 300000), 0x493103e0); // the minor's high bits go above the major's 12
    for (const [ma, mi] of [
      [0, 0],
      [1, 3],
      [8, 17],
      [259, 300000],
      [4095, 1048575],
      [4096, 256],
    ]) {
      assert.deepEqual(devNumbers(makedev(ma, mi)), { major: ma, minor: mi });
    }
  });

  it('mknod makes an overlayfs whiteout (char 0:0), a device with its numbers, and a fifo', () => {
    const old = process.umask(0);
    try {
      native.mknod(join(dir, 'wh'), constants.S_IFCHR | 0, 0);
      native.mknod(join(dir, 'null'), constants.S_IFCHR | 0o666, makedev(1, 3));
      native.mknod(join(dir, 'big'), constants.S_IFBLK | 0o600, makedev(259, 300000));
      native.mknod(join(dir, 'fifo'), constants.S_IFIFO | 0o640, 0);
    } finally {
      process.umask(old);
    }
    const wh = lstatSync(join(dir, 'wh'));
    assert.ok(wh.isCharacterDevice());
    assert.deepEqual([wh.rdev, wh.mode & 0o7777], [0, 0]);
    const nul = lstatSync(join(dir, 'null'));
    assert.ok(nul.isCharacterDevice());
    assert.deepEqual([devNumbers(nul.rdev), nul.mode & 0o7777], [{ major: 1, minor: 3 }, 0o666]);
    const big = lstatSync(join(dir, 'big'));
    assert.ok(big.isBlockDevice());
    assert.deepEqual(devNumbers(big.rdev), { major: 259, minor: 300000 });
    // coreutils agrees
    assert.equal(execFileSync('stat', ['-c', '%Hr,%Lr', join(dir, 'big')], { encoding: 'utf8' }), '259,300000\n');
    assert.ok(lstatSync(join(dir, 'fifo')).isFIFO());
    assert.equal(lstatSync(join(dir, 'fifo')).mode & 0o7777, 0o640);
  });

  it('mknod errors name the syscall, the path and the errno', () => {
    const p = join(dir, 'wh');
    native.mknod(p, constants.S_IFCHR, 0);
    expectNativeError(() => native.mknod(p, constants.S_IFCHR, 0), {
      code: 'EEXIST',
      syscall: 'mknod',
      path: p,
      message: new RegExp(`^mknod\\(${p}, 020000, 0\\): EEXIST`),
    });
    expectNativeError(() => native.mknod(join(dir, 'no/such'), constants.S_IFIFO, 0), {
      code: 'ENOENT',
      syscall: 'mknod',
      path: join(dir, 'no/such'),
    });
    assert.throws(() => native.mknod(p, -1, 0), {
      name: 'TypeError',
      message: /mknod: mode must be an integer from 0/,
    });
    assert.throws(() => native.mknod(`${p}\0x`, 0, 0), {
      name: 'TypeError',
      message: /mknod: path must not contain NUL bytes/,
    });
  });

  it('lsetxattr, lgetxattr and llistxattr round-trip values as bytes; flags CREATE and REPLACE', () => {
    const f = join(dir, 'f');
    writeFileSync(f, '');
    native.lsetxattr(f, 'trusted.overlay.opaque', 'y', 0);
    native.lsetxattr(f, 'user.bytes', Buffer.from([0, 1, 255]), native.constants.XATTR_CREATE);
    assert.deepEqual(native.lgetxattr(f, 'trusted.overlay.opaque'), Buffer.from('y'));
    assert.deepEqual(native.lgetxattr(f, 'user.bytes'), Buffer.from([0, 1, 255]));
    native.lsetxattr(f, 'user.empty', '', 0);
    assert.deepEqual(native.lgetxattr(f, 'user.empty'), Buffer.alloc(0));
    const big = Buffer.alloc(3000, 'v');
    native.lsetxattr(f, 'user.bytes', big, native.constants.XATTR_REPLACE);
    assert.deepEqual(native.lgetxattr(f, 'user.bytes'), big);
    assert.deepEqual(native.llistxattr(f).sort(), ['trusted.overlay.opaque', 'user.bytes', 'user.empty']);
    expectNativeError(() => native.lsetxattr(f, 'user.bytes', 'x', native.constants.XATTR_CREATE), {
      code: 'EEXIST',
      syscall: 'lsetxattr',
      path: f,
    });
    expectNativeError(() => native.lsetxattr(f, 'user.none', 'x', native.constants.XATTR_REPLACE), {
      code: 'ENODATA',
      syscall: 'lsetxattr',
      path: f,
    });
    expectNativeError(() => native.lgetxattr(f, 'user.none'), {
      code: 'ENODATA',
      syscall: 'lgetxattr',
      path: f,
      message: new RegExp(`^lgetxattr\\(${f}, user\\.none\\): ENODATA`),
    });
    expectNativeError(() => native.llistxattr(join(dir, 'missing')), {
      code: 'ENOENT',
      syscall: 'llistxattr',
      path: join(dir, 'missing'),
    });
    assert.deepEqual(native.llistxattr(dir), []);
    assert.throws(() => native.lsetxattr(f, 'user.x', 7 as unknown as string, 0), {
      name: 'TypeError',
      message: /lsetxattr: value must be a Buffer or a string, received number/,
    });
    assert.throws(() => native.lsetxattr(f, 'user.x', 'v', 4), {
      name: 'TypeError',
      message: /lsetxattr: flags must be an integer from 0 to 3/,
    });
  });

  it('the l- calls act on a symlink itself, never on what it points to', () => {
    const target = join(dir, 'target');
    const link = join(dir, 'link');
    writeFileSync(target, '');
    symlinkSync(target, link);
    native.lsetxattr(link, 'trusted.keel.test', 'on-link', 0);
    assert.deepEqual(native.lgetxattr(link, 'trusted.keel.test'), Buffer.from('on-link'));
    assert.deepEqual(native.llistxattr(target), []);
    expectNativeError(() => native.lgetxattr(target, 'trusted.keel.test'), { code: 'ENODATA', syscall: 'lgetxattr' });
    // The kernel refuses user.* on symlinks (they are for regular files and directories).
    expectNativeError(() => native.lsetxattr(link, 'user.x', 'v', 0), {
      code: 'EPERM',
      syscall: 'lsetxattr',
      path: link,
    });
  });
});
