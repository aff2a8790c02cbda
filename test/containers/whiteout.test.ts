// OCI whiteouts become overlayfs ones: two layers unpacked into their own directories and stacked
// with a real overlay mount (needs root and overlayfs), where the upper layer deletes a file and a
// directory and makes a directory opaque.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { unpackLayer, type UnpackOptions } from '../../containers/extract.js';
import { packDir } from '../../containers/pack-dir.js';
import { readTar } from '../../containers/tar.js';
import { rawTar, removeDir, run, tempDir } from './helpers.js';
import { describeAsRoot } from '../needs.js';

const OPTS: UnpackOptions = { maxBytes: 1 << 20, allowDevices: false, ownership: true };

const LOWER = rawTar([
  { name: 'etc/', type: '5', mode: 0o755 },
  { name: 'etc/keep', data: 'keep' },
  { name: 'etc/gone', data: 'gone' },
  { name: 'opq/', type: '5', mode: 0o755 },
  { name: 'opq/old', data: 'old' },
  { name: 'opq/sub/old2', data: 'old2' },
  { name: 'wd/', type: '5', mode: 0o755 },
  { name: 'wd/x', data: 'x' },
  { name: 're/stale', data: 'stale' },
  { name: 're2/stale', data: 'stale' },
]);

const UPPER = rawTar([
  { name: 'etc/.wh.gone' },
  { name: 'opq/', type: '5', mode: 0o755 },
  { name: 'opq/.wh..wh..opq' },
  { name: 'opq/new', data: 'new' },
  { name: '.wh.wd' },
  { name: '.wh..wh.plnk/', type: '5', mode: 0o700 }, // aufs bookkeeping: ignored
  // A whiteout and a new directory of the same name in one layer, in either order: the
  // directory is this layer's, and the lower one's content is hidden.
  { name: '.wh.re' },
  { name: 're/', type: '5', mode: 0o755 },
  { name: 're/fresh', data: 'fresh' },
  { name: 're2/', type: '5', mode: 0o755 },
  { name: 're2/fresh', data: 'fresh' },
  { name: '.wh.re2' },
]);

function mountOverlay(layers: string[], mnt: string): { ok: boolean; error: string } {
  const r = spawnSync('mount', ['-t', 'overlay', 'overlay', '-o', `lowerdir=${layers.join(':')}`, mnt], {
    encoding: 'utf8',
  });
  return { ok: r.status === 0, error: r.stderr };
}

// mknod, trusted.* xattrs and mount need root.
describeAsRoot('containers/tar: whiteouts on overlayfs', function () {
  let work: string;
  let mnt: string;
  let mounted = false;

  beforeEach(() => {
    work = tempDir('whiteout');
    mnt = join(work, 'mnt');
    fs.mkdirSync(mnt);
  });
  afterEach(() => {
    if (mounted) spawnSync('umount', [mnt]);
    mounted = false;
    removeDir(work);
  });

  async function unpackBoth(upperTar: Readable): Promise<{ lower: string; upper: string }> {
    const lower = join(work, 'lower');
    const upper = join(work, 'upper');
    await unpackLayer(Readable.from([LOWER]), lower, OPTS);
    await unpackLayer(upperTar, upper, OPTS);
    return { lower, upper };
  }

  function assertMergedView(upper: string, lower: string): void {
    const m = mountOverlay([upper, lower], mnt);
    assert.ok(m.ok, `cannot mount overlayfs on this host: ${m.error}`);
    mounted = true;
    assert.equal(fs.readFileSync(join(mnt, 'etc/keep'), 'utf8'), 'keep');
    assert.equal(fs.existsSync(join(mnt, 'etc/gone')), false, 'the whited-out file is gone');
    assert.equal(fs.existsSync(join(mnt, 'wd')), false, 'the whited-out directory is gone');
    assert.deepEqual(fs.readdirSync(join(mnt, 'opq')), ['new'], 'the opaque directory hides the lower content');
    assert.deepEqual(fs.readdirSync(join(mnt, 're')), ['fresh']);
    assert.deepEqual(fs.readdirSync(join(mnt, 're2')), ['fresh']);
    assert.deepEqual(fs.readdirSync(mnt).sort(), ['etc', 'opq', 're', 're2']);
  }

  it('writes 0:0 character devices and the opaque xattr, and overlayfs hides what they say', async () => {
    const { lower, upper } = await unpackBoth(Readable.from([UPPER]));
    const gone = fs.lstatSync(join(upper, 'etc/gone'));
    assert.ok(gone.isCharacterDevice() && gone.rdev === 0, 'etc/gone is a whiteout device');
    assert.ok(fs.lstatSync(join(upper, 'wd')).isCharacterDevice());
    assert.match(
      run('getfattr', ['--absolute-names', '-n', 'trusted.overlay.opaque', join(upper, 'opq')]),
      /trusted\.overlay\.opaque="y"/,
    );
    assert.deepEqual(fs.readdirSync(upper).sort(), ['etc', 'opq', 're', 're2', 'wd']);
    assertMergedView(upper, lower);
  });

  it('makes whiteouts with no mknod or setfattr on PATH (native helper, not a process per entry)', async () => {
    const path = process.env.PATH;
    process.env.PATH = '/nonexistent';
    try {
      const { upper } = await unpackBoth(Readable.from([UPPER]));
      assert.ok(fs.lstatSync(join(upper, 'etc/gone')).isCharacterDevice());
    } finally {
      process.env.PATH = path;
    }
  });

  it('packDir({ whiteouts: true }) turns them back into OCI whiteouts that unpack the same', async () => {
    const { upper } = await unpackBoth(Readable.from([UPPER]));
    const names: string[] = [];
    for await (const e of readTar(packDir(upper, { whiteouts: true }))) names.push(e.name);
    assert.deepEqual(names.filter((n) => n.includes('.wh.')).sort(), [
      '.wh.wd',
      'etc/.wh.gone',
      'opq/.wh..wh..opq',
      're/.wh..wh..opq',
      're2/.wh..wh..opq',
    ]);

    const again = join(work, 'again');
    fs.renameSync(upper, again);
    const { lower: lower2, upper: upper2 } = await unpackBoth(packDir(again, { whiteouts: true }));
    assertMergedView(upper2, lower2);
  });
});
