import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { packCpio, parseCpio, type CpioEntry } from '../../builder/cpio.js';

// test/golden/initramfs-small.cpio is packCpio(SAMPLE, { mtime: MTIME }) as first written, checked
// once with GNU cpio 2.13 (`cpio -itv`); it pins the bytes across cpio-stream upgrades.
const golden = (name: string) => readFileSync(new URL(`../../../test/golden/${name}`, import.meta.url));
const MTIME = 1700000000;
const SAMPLE: CpioEntry[] = [
  { path: '/init', type: 'file', mode: 0o755, data: Buffer.from('#!/bin/sh\nexec /bin/sh\n') },
  { path: 'bin/busybox', type: 'file', mode: 0o755, data: Buffer.alloc(1001, 0x90) },
  { path: 'bin/sh', type: 'symlink', mode: 0o777, linkname: 'busybox' },
  { path: 'dev/console', type: 'char', mode: 0o600, devmajor: 5, devminor: 1 },
  { path: 'dev/sda', type: 'block', mode: 0o660, gid: 6, devmajor: 8, devminor: 0 },
  { path: 'etc/passwd', type: 'file', mode: 0o644, data: Buffer.from('root:x:0:0::/root:/bin/sh\n') },
  { path: 'etc', type: 'directory', mode: 0o755 },
  { path: 'root', type: 'directory', mode: 0o700 },
  { path: 'etc-old', type: 'file', mode: 0o600, uid: 1000, gid: 1000, data: Buffer.alloc(0) },
];
const ORDER = [
  'bin',
  'bin/busybox',
  'bin/sh',
  'dev',
  'dev/console',
  'dev/sda',
  'etc',
  'etc/passwd',
  'etc-old',
  'init',
  'root',
];

// The c_ino and c_mtime header fields of every record, read straight from the bytes.
function headerFields(buf: Buffer): { name: string; ino: number; mtime: number }[] {
  const out = [];
  for (let p = 0; p < buf.length && buf.toString('latin1', p, p + 6) === '070701';) {
    const f = (i: number) => parseInt(buf.toString('latin1', p + 6 + i * 8, p + 14 + i * 8), 16);
    const name = buf.toString('latin1', p + 110, p + 110 + f(11) - 1);
    out.push({ name, ino: f(0), mtime: f(5) });
    p = (((p + 110 + f(11) + 3) & ~3) + f(6) + 3) & ~3;
  }
  return out;
}

describe('builder/cpio', () => {
  it('round-trips through parseCpio, with parents added and paths made relative', async () => {
    const entries = parseCpio(await packCpio(SAMPLE, { mtime: MTIME }));
    assert.deepEqual(
      entries.map((e) => e.path),
      ORDER,
    );
    const byPath = new Map(entries.map((e) => [e.path, e]));
    assert.deepEqual(byPath.get('bin'), { path: 'bin', type: 'directory', mode: 0o755, uid: 0, gid: 0 });
    assert.deepEqual(byPath.get('init'), {
      path: 'init',
      type: 'file',
      mode: 0o755,
      uid: 0,
      gid: 0,
      data: SAMPLE[0]!.data,
    });
    assert.deepEqual(byPath.get('bin/busybox')!.data, SAMPLE[1]!.data);
    assert.deepEqual(byPath.get('root'), { path: 'root', type: 'directory', mode: 0o700, uid: 0, gid: 0 });
    assert.deepEqual(byPath.get('etc-old'), {
      path: 'etc-old',
      type: 'file',
      mode: 0o600,
      uid: 1000,
      gid: 1000,
      data: Buffer.alloc(0),
    });
  });

  it('keeps symlinks and device nodes', async () => {
    const byPath = new Map(parseCpio(await packCpio(SAMPLE, { mtime: MTIME })).map((e) => [e.path, e]));
    assert.deepEqual(byPath.get('bin/sh'), {
      path: 'bin/sh',
      type: 'symlink',
      mode: 0o777,
      uid: 0,
      gid: 0,
      linkname: 'busybox',
    });
    assert.deepEqual(byPath.get('dev/console'), {
      path: 'dev/console',
      type: 'char',
      mode: 0o600,
      uid: 0,
      gid: 0,
      devmajor: 5,
      devminor: 1,
    });
    assert.deepEqual(byPath.get('dev/sda'), {
      path: 'dev/sda',
      type: 'block',
      mode: 0o660,
      uid: 0,
      gid: 6,
      devmajor: 8,
      devminor: 0,
    });
  });

  it('writes the same bytes every time, whatever the input order (golden)', async () => {
    const a = await packCpio(SAMPLE, { mtime: MTIME });
    const b = await packCpio([...SAMPLE].reverse(), { mtime: MTIME });
    assert.ok(a.equals(b));
    assert.ok(a.equals(golden('initramfs-small.cpio')), 'differs from test/golden/initramfs-small.cpio');
    assert.equal(a.length % 512, 0);
    assert.deepEqual(
      headerFields(a).map((h) => h.ino),
      [...ORDER.map((_, i) => i + 1), 0],
    );
    assert.equal(headerFields(a).at(-1)!.name, 'TRAILER!!!');
  });

  // cpio-stream treats falsy fields as missing: mtime 0 became the current time, mode 0 became 0644.
  it('keeps mtime 0 and mode 0 instead of cpio-stream defaults', async () => {
    const buf = await packCpio([{ path: 'locked', type: 'file', mode: 0, data: Buffer.from('x') }], { mtime: 0 });
    assert.deepEqual(
      headerFields(buf).map((h) => h.mtime),
      [0, 0],
    );
    assert.equal(parseCpio(buf)[0]!.mode, 0);
  });

  it('rejects entries it cannot pack faithfully', async () => {
    const file = (path: string): CpioEntry => ({ path, type: 'file', mode: 0o644, data: Buffer.alloc(0) });
    const rejects = (entries: CpioEntry[], message: RegExp) =>
      assert.rejects(packCpio(entries, { mtime: 0 }), { name: 'TypeError', message });
    await rejects([file('a'), file('/a')], /appears twice/);
    await rejects([file('../etc/shadow')], /\.\./);
    await rejects([file('café')], /ASCII/);
    await rejects([{ path: 'l', type: 'symlink', mode: 0o777, linkname: 'x' }, file('l/f')], /which is a symlink/);
    await rejects([{ path: 'f', type: 'file', mode: 0o644 }], /needs data/);
    await rejects([{ path: 'd', type: 'char', mode: 0o600 }], /devmajor/);
    await rejects([{ ...file('f'), mode: 0o100644 }], /0o7777, received 33188/);
    await assert.rejects(packCpio([], { mtime: -1 }), { name: 'TypeError', message: /received -1/ });
  });

  it('refuses archives that are not newc or are cut short', async () => {
    assert.throws(() => parseCpio(Buffer.from('070707000000')), { code: 'ECPIO', message: /bad magic/ });
    const buf = await packCpio(SAMPLE, { mtime: MTIME });
    assert.throws(() => parseCpio(buf.subarray(0, 300)), { code: 'ECPIO', message: /truncated/ });
    assert.throws(() => parseCpio(buf.subarray(0, 0)), { code: 'ECPIO', message: /TRAILER/ });
  });

  describe('read by GNU cpio', function () {
    before(function () {
      assert.ok(!spawnSync('cpio', ['--version'], { stdio: 'ignore' }).error, 'GNU cpio missing: run make deps (cpio)');
    });

    it('lists our paths in order, with the link target and device numbers', async () => {
      const archive = await packCpio(SAMPLE, { mtime: MTIME });
      const names = execFileSync('cpio', ['-it', '--quiet'], { input: archive, encoding: 'utf8' });
      assert.deepEqual(names.trimEnd().split('\n'), ORDER);
      const long = execFileSync('cpio', ['-itv', '--quiet'], {
        input: archive,
        encoding: 'utf8',
        env: { ...process.env, TZ: 'UTC', LC_ALL: 'C' },
      });
      assert.match(long, /^crw------- +1 root +root +5, +1 .* dev\/console$/m);
      assert.match(long, /^brw-rw---- +1 root +\S+ +8, +0 .* dev\/sda$/m);
      assert.match(long, /^lrwxrwxrwx .* bin\/sh -> busybox$/m);
      assert.match(long, /^-rwxr-xr-x +1 root +root +1001 .* bin\/busybox$/m);
    });
  });
});
