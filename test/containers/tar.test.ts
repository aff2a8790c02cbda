// The tar reader against archives written by GNU tar (gnu and pax formats), packDir round trips,
// layer decompression, and the unpacker's refusals of hostile archives.
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import * as zlib from 'node:zlib';
import { gzipSync } from 'node:zlib';
import { ContainerError } from '../../containers/errors.js';
import { openLayer } from '../../containers/decompress.js';
import { unpackLayer, type UnpackOptions } from '../../containers/extract.js';
import { packDir } from '../../containers/pack-dir.js';
import { readTar, writeTar } from '../../containers/tar.js';
import { isRoot, rawTar, removeDir, run, sha256, tempDir } from './helpers.js';
import { itAsRoot } from '../needs.js';

const LONG_DIR = `${'a'.repeat(60)}/${'b'.repeat(60)}`;
const LONG_FILE = `${LONG_DIR}/${'c'.repeat(110)}.txt`;
const LONG_TARGET = `../${'z'.repeat(120)}`;
const UNICODE = 'ünïcode-名前';
const BIG_UID = 3_000_000; // past ustar's 7 octal digits: base-256 (gnu) or a PAX record

const LAYER_OPTS: UnpackOptions = { maxBytes: 1 << 30, allowDevices: false, ownership: true };

function makeTree(root: string): void {
  fs.mkdirSync(join(root, LONG_DIR), { recursive: true });
  fs.writeFileSync(join(root, LONG_FILE), 'long\n');
  fs.writeFileSync(join(root, 'plain.txt'), 'x'.repeat(1000));
  fs.chmodSync(join(root, 'plain.txt'), 0o640);
  fs.linkSync(join(root, 'plain.txt'), join(root, 'hard'));
  fs.writeFileSync(join(root, 'tool'), '#!/bin/sh\n');
  if (isRoot()) fs.chownSync(join(root, 'tool'), BIG_UID, 1234);
  fs.chmodSync(join(root, 'tool'), 0o4755);
  fs.symlinkSync('plain.txt', join(root, 'short-link'));
  fs.symlinkSync(LONG_TARGET, join(root, 'long-link'));
  fs.writeFileSync(join(root, UNICODE), 'u');
  fs.mkdirSync(join(root, 'empty'), { mode: 0o700 });
  fs.chmodSync(join(root, 'empty'), 0o700);
  fs.utimesSync(join(root, 'tool'), 1234567890.5, 1234567890.5);
  fs.utimesSync(join(root, 'plain.txt'), 1_000_000_000, 1_000_000_000);
  // packDir keeps whole seconds; GNU tar --compare checks nanoseconds of entries with PAX headers.
  fs.utimesSync(join(root, LONG_FILE), 1_300_000_000, 1_300_000_000);
  fs.utimesSync(join(root, UNICODE), 1_250_000_000, 1_250_000_000); // a PAX header holds its name
  fs.lutimesSync(join(root, 'long-link'), 1_100_000_000, 1_100_000_000);
  for (const d of [LONG_DIR, 'a'.repeat(60), 'empty']) fs.utimesSync(join(root, d), 1_200_000_000, 1_200_000_000);
}

/** Every path under root with what an unpacker must keep: type, mode, owner, mtime (s), content. */
function snapshot(root: string): Record<string, string> {
  const out: Record<string, string> = {};
  const inodes = new Map<number, string>();
  const walk = (rel: string): void => {
    for (const name of fs.readdirSync(join(root, rel)).sort()) {
      const p = rel ? `${rel}/${name}` : name;
      const st = fs.lstatSync(join(root, p));
      const common =
        `mode=${(st.mode & 0o7777).toString(8)} ` + `owner=${st.uid}:${st.gid} mtime=${Math.floor(st.mtimeMs / 1000)}`;
      if (st.isSymbolicLink())
        out[p] = `symlink -> ${fs.readlinkSync(join(root, p))} mtime=${Math.floor(st.mtimeMs / 1000)}`;
      else if (st.isDirectory()) {
        out[p] = `dir ${common}`;
        walk(p);
      } else {
        const first = inodes.get(st.ino);
        if (first === undefined) inodes.set(st.ino, p);
        out[p] =
          `file ${common} ` +
          `${sha256(fs.readFileSync(join(root, p))).slice(7, 19)}` +
          `${first ? ` same-inode-as=${first}` : ''}`;
      }
    }
  };
  walk('');
  return out;
}

async function list(
  stream: AsyncIterable<Buffer>,
): Promise<
  Map<string, { type: string; mode: number; uid: number; gid: number; mtime: number; linkname: string; body: string }>
> {
  const out = new Map();
  for await (const e of readTar(stream)) {
    const chunks: Buffer[] = [];
    for await (const c of e.body) chunks.push(c);
    out.set(e.name.replace(/\/$/, ''), {
      type: e.type,
      mode: e.mode,
      uid: e.uid,
      gid: e.gid,
      mtime: e.mtime,
      linkname: e.linkname,
      body: Buffer.concat(chunks).toString(),
    });
  }
  return out;
}

describe('containers/tar: reading', () => {
  let work: string;
  let src: string;
  beforeEach(() => {
    work = tempDir('tar');
    src = join(work, 'src');
    fs.mkdirSync(src);
    makeTree(src);
  });
  afterEach(() => removeDir(work));

  const gnuTar = (format: string): string => {
    const file = join(work, `${format}.tar`);
    run('tar', [`--format=${format}`, '--sort=name', '-cf', file, '-C', src, ...fs.readdirSync(src).sort()]);
    return file;
  };

  it('reads a GNU-format archive: long names and link targets (L/K), base-256 ids, modes, mtimes', async () => {
    const entries = await list(fs.createReadStream(gnuTar('gnu')));
    assert.equal(entries.get(LONG_FILE)?.body, 'long\n');
    assert.equal(entries.get(LONG_FILE)?.type, 'file');
    assert.equal(entries.get(LONG_DIR)?.type, 'dir');
    assert.deepEqual([entries.get('long-link')?.type, entries.get('long-link')?.linkname], ['symlink', LONG_TARGET]);
    assert.deepEqual([entries.get('short-link')?.type, entries.get('short-link')?.linkname], ['symlink', 'plain.txt']);
    // --sort=name puts "hard" first: it carries the data, plain.txt links to it.
    assert.equal(entries.get('hard')?.body, 'x'.repeat(1000));
    assert.deepEqual([entries.get('plain.txt')?.type, entries.get('plain.txt')?.linkname], ['hardlink', 'hard']);
    assert.equal(entries.get('tool')?.mode, 0o4755);
    assert.equal(entries.get('tool')?.mtime, 1234567890);
    assert.equal(entries.get('hard')?.mtime, 1_000_000_000);
    assert.equal(entries.get('empty')?.mode, 0o700);
    assert.equal(entries.get(UNICODE)?.body, 'u');
  });

  it('reads a PAX archive: path, linkpath, fractional mtime and large uid from extended headers', async () => {
    const entries = await list(fs.createReadStream(gnuTar('pax')));
    assert.equal(entries.get(LONG_FILE)?.body, 'long\n');
    assert.equal(entries.get('long-link')?.linkname, LONG_TARGET);
    assert.equal(entries.get('tool')?.mtime, 1234567890.5);
    assert.equal(entries.get(UNICODE)?.type, 'file');
  });

  // Only root can give a file uid 3000000 for GNU tar to write.
  itAsRoot('reads a uid past 7 octal digits: base-256 in a GNU archive, a PAX record in a PAX one', async () => {
    const gnu = await list(fs.createReadStream(gnuTar('gnu')));
    assert.deepEqual([gnu.get('tool')?.uid, gnu.get('tool')?.gid], [BIG_UID, 1234]);
    const pax = await list(fs.createReadStream(gnuTar('pax')));
    assert.deepEqual([pax.get('tool')?.uid, pax.get('tool')?.gid], [BIG_UID, 1234]);
  });

  it('unpacks GNU tar archives to an identical tree (modes, owners, mtimes, links)', async () => {
    for (const format of ['gnu', 'pax']) {
      const dest = join(work, `out-${format}`);
      const r = await unpackLayer(fs.createReadStream(gnuTar(format)), dest, LAYER_OPTS);
      assert.deepEqual(snapshot(dest), snapshot(src), format);
      assert.equal(fs.statSync(join(dest, 'hard')).ino, fs.statSync(join(dest, 'plain.txt')).ino);
      assert.equal(r.bytes, 1000 + 5 + 10 + 1);
      assert.equal(r.diffId, sha256(fs.readFileSync(join(work, `${format}.tar`))));
    }
  });

  it('packDir writes a deterministic tar that GNU tar compares equal and that unpacks identically', async () => {
    const a = join(work, 'a.tar');
    const b = join(work, 'b.tar');
    fs.utimesSync(join(src, 'tool'), 1234567890, 1234567890); // whole seconds, see makeTree
    await pipeline(packDir(src), fs.createWriteStream(a));
    await pipeline(packDir(src), fs.createWriteStream(b));
    assert.ok(fs.readFileSync(a).equals(fs.readFileSync(b)), 'two packs of one tree are byte-identical');
    run('tar', ['--compare', '-f', a, '-C', src]); // exits non-zero on any difference
    const listing = run('tar', ['-tf', a]).split('\n');
    assert.ok(listing.includes(LONG_FILE));
    assert.deepEqual(listing.indexOf('empty/') < listing.indexOf('hard'), true, 'sorted by name');
    const dest = join(work, 'round');
    await unpackLayer(fs.createReadStream(a), dest, LAYER_OPTS);
    assert.deepEqual(snapshot(dest), snapshot(src));
  });

  itAsRoot('packDir records device nodes with their numbers (and GNU tar agrees)', async function () {
    const devs = join(work, 'devs');
    fs.mkdirSync(devs);
    run('mknod', [join(devs, 'null'), 'c', '1', '3']);
    run('mknod', [join(devs, 'big'), 'b', '259', '300000']);
    run('mkfifo', [join(devs, 'fifo')]);
    const entries: Record<string, [string, number, number]> = {};
    for await (const e of readTar(packDir(devs))) entries[e.name] = [e.type, e.devmajor, e.devminor];
    assert.deepEqual(entries, { big: ['block', 259, 300000], fifo: ['fifo', 0, 0], null: ['char', 1, 3] });
    const file = join(work, 'devs.tar');
    await pipeline(packDir(devs), fs.createWriteStream(file));
    assert.match(run('tar', ['-tvf', file]), /^crw.* 1,3 .* null$/m);
  });

  it('applies a global PAX header to the entries after it, with or without a local one', async () => {
    const entries = await list(
      Readable.from([
        rawTar([
          { name: 'pax_global_header', type: 'g', data: '20 mtime=1700000000\n' },
          { name: 'PaxHeaders/one', type: 'x', data: '12 uid=4242\n' },
          { name: 'one', data: '1' },
          { name: 'two', data: '2' },
        ]),
      ]),
    );
    assert.deepEqual([...entries.keys()], ['one', 'two']);
    assert.deepEqual([entries.get('one')?.mtime, entries.get('two')?.mtime], [1_700_000_000, 1_700_000_000]);
    assert.deepEqual([entries.get('one')?.uid, entries.get('two')?.uid], [4242, 0]);
  });

  // tar-stream misreads what follows an extended header of 0 bytes (it desynchronises by the next
  // file's size); POSIX wants at least one record in one, and such archives are refused by name.
  it('refuses an empty PAX header with EFORMAT naming the entry after it', async () => {
    const tar = rawTar([
      { name: 'PaxHeaders/empty', type: 'x', data: '' },
      { name: 'one', data: '1' },
      { name: 'two', data: '2' },
    ]);
    await assert.rejects(list(Readable.from([tar])), {
      code: 'EFORMAT',
      message: /^cannot read tar entry one: it follows an empty extended header/,
    });
  });

  it('refuses GNU sparse files (gnu and pax formats) with EUNSUPPORTED', async () => {
    fs.writeFileSync(join(src, 'sparse'), '');
    fs.truncateSync(join(src, 'sparse'), 1 << 20);
    fs.appendFileSync(join(src, 'sparse'), 'end');
    for (const format of ['gnu', 'pax']) {
      const file = join(work, `sparse-${format}.tar`);
      run('tar', [`--format=${format}`, '--sparse', '-cf', file, '-C', src, 'sparse']);
      await assert.rejects(list(fs.createReadStream(file)), { code: 'EUNSUPPORTED' }, format);
    }
  });

  it('writeTar keeps a mode of 0 (tar-stream would default it to 0644)', async () => {
    const entries = await list(
      writeTar([{ header: { name: 'shadow', type: 'file', mode: 0 }, data: Buffer.from('s') }]),
    );
    assert.equal(entries.get('shadow')?.mode, 0);
  });

  it('rejects a truncated archive and a header with a bad checksum', async () => {
    const whole = rawTar([{ name: 'f', data: 'x'.repeat(600) }]);
    await assert.rejects(list(Readable.from([whole.subarray(0, 700)])), {
      code: 'EFORMAT',
      message: /unexpected end of archive/,
    });
    const bad = Buffer.from(whole);
    bad[0] = 0x67;
    await assert.rejects(list(Readable.from([bad])), { code: 'EFORMAT', message: /checksum/ });
  });
});

describe('containers/tar: layer decompression', () => {
  let work: string;
  const tar = rawTar([
    { name: 'etc/', type: '5', mode: 0o755 },
    { name: 'etc/os-release', data: 'ID=keel\n' },
  ]);
  before(() => {
    work = tempDir('layer');
    fs.writeFileSync(join(work, 'layer.tar'), tar);
    fs.writeFileSync(join(work, 'layer.tgz'), gzipSync(tar));
  });
  after(() => removeDir(work));

  for (const [file, mediaType] of [
    ['layer.tgz', 'application/vnd.oci.image.layer.v1.tar+gzip'],
    ['layer.tgz', 'application/vnd.docker.image.rootfs.diff.tar.gzip'],
    ['layer.tar', 'application/vnd.oci.image.layer.v1.tar'],
    ['layer.tgz', undefined],
  ] as const) {
    it(`opens ${file} as ${mediaType ?? 'sniffed'} and computes the diffID of the uncompressed tar`, async () => {
      const dest = fs.mkdtempSync(join(work, 'out-'));
      // Decompression, not owners (the reading tests check those): no chown, so no root needed.
      const r = await unpackLayer(openLayer(join(work, file), mediaType), dest, { ...LAYER_OPTS, ownership: false });
      assert.equal(fs.readFileSync(join(dest, 'etc/os-release'), 'utf8'), 'ID=keel\n');
      assert.equal(r.diffId, sha256(tar));
    });
  }

  it('says clearly when zstd or a media type is not supported', () => {
    assert.throws(() => openLayer(join(work, 'layer.tar'), 'application/vnd.oci.image.layer.v1.tar+bzip2'), {
      code: 'EUNSUPPORTED',
      message: /layer\.tar: unsupported media type/,
    });
    if (typeof (zlib as unknown as Record<string, unknown>).createZstdDecompress !== 'function') {
      assert.throws(() => openLayer(join(work, 'layer.tar'), 'application/vnd.oci.image.layer.v1.tar+zstd'), {
        code: 'EUNSUPPORTED',
        message: /zstd needs Node 22\.15/,
      });
    }
  });

  it('a gzip layer that is corrupt fails the unpack with EIO and the zlib error', async () => {
    const broken = gzipSync(tar);
    broken[broken.length - 6] ^= 0xff; // the CRC
    fs.writeFileSync(join(work, 'broken.tgz'), broken);
    await assert.rejects(
      unpackLayer(
        openLayer(join(work, 'broken.tgz'), 'application/vnd.oci.image.layer.v1.tar+gzip'),
        join(work, 'broken'),
        LAYER_OPTS,
      ),
      { code: 'EIO', message: /cannot unpack into .*broken: .*(check|incorrect|crc)/i },
    );
  });
});

describe('containers/tar: unpackLayer refuses hostile archives', () => {
  let work: string;
  let dest: string;
  let outside: string;
  beforeEach(() => {
    work = tempDir('unsafe');
    dest = join(work, 'dest');
    outside = join(work, 'outside');
    fs.mkdirSync(outside);
  });
  afterEach(() => removeDir(work));

  // Paths, links, devices and sizes, not owners: no chown, so these need no root.
  const unpack = (entries: Parameters<typeof rawTar>[0], opts: Partial<UnpackOptions> = {}) =>
    unpackLayer(Readable.from([rawTar(entries)]), dest, { ...LAYER_OPTS, ownership: false, ...opts });

  async function refused(
    entries: Parameters<typeof rawTar>[0],
    code: string,
    entry: string,
    opts: Partial<UnpackOptions> = {},
  ): Promise<void> {
    await assert.rejects(unpack(entries, opts), (e: unknown) => {
      assert.ok(e instanceof ContainerError, String(e));
      assert.equal(e.code, code, e.message);
      assert.ok(e.message.includes(`entry ${entry}:`), e.message);
      return true;
    });
    assert.deepEqual(fs.readdirSync(outside), [], 'nothing written outside dest');
    assert.deepEqual(fs.readdirSync(work).sort(), ['dest', 'outside'], 'nothing written beside dest');
  }

  it('../evil, a/../../evil and /abs', async () => {
    await refused([{ name: '../evil', data: 'x' }], 'EUNSAFE', '../evil');
    await refused([{ name: 'a/../../evil', data: 'x' }], 'EUNSAFE', 'a/../../evil');
    await refused([{ name: '/abs', data: 'x' }], 'EUNSAFE', '/abs');
  });

  it('a write through a symlink, absolute or relative', async () => {
    await refused(
      [
        { name: 'link', type: '2', linkname: outside },
        { name: 'link/file', data: 'pwned' },
      ],
      'EUNSAFE',
      'link/file',
    );
    await refused(
      [
        { name: 'up', type: '2', linkname: '../outside' },
        { name: 'up/x/y', data: 'pwned' },
      ],
      'EUNSAFE',
      'up/x/y',
    );
    await refused(
      [
        { name: 'a', type: '2', linkname: '../..' },
        { name: 'a/keel-escape-test', data: 'pwned' },
      ],
      'EUNSAFE',
      'a/keel-escape-test',
    );
    assert.equal(fs.existsSync(join(work, '..', 'keel-escape-test')), false);
    await refused(
      [
        { name: 'd/', type: '5' },
        { name: 'd/l', type: '2', linkname: '/etc' },
        { name: 'd/l/passwd', data: 'root::0:0::/:/bin/sh' },
      ],
      'EUNSAFE',
      'd/l/passwd',
    );
  });

  it('hard links to /etc/passwd, out of dest, or through a symlink', async () => {
    const nlink = fs.statSync('/etc/passwd').nlink;
    await refused([{ name: 'pw', type: '1', linkname: '/etc/passwd' }], 'EUNSAFE', 'pw');
    await refused([{ name: 'pw', type: '1', linkname: '../../../../../../etc/passwd' }], 'EUNSAFE', 'pw');
    await refused(
      [
        { name: 'l', type: '2', linkname: '/etc' },
        { name: 'pw', type: '1', linkname: 'l/passwd' },
      ],
      'EUNSAFE',
      'pw',
    );
    // A hard link to a symlink links the symlink itself, never what it points to.
    await unpack([
      { name: 'sl', type: '2', linkname: '/etc/passwd' },
      { name: 'h', type: '1', linkname: 'sl' },
    ]);
    assert.ok(fs.lstatSync(join(dest, 'h')).isSymbolicLink());
    assert.equal(fs.statSync('/etc/passwd').nlink, nlink);
  });

  it('device and fifo nodes unless allowed; allowed ones are skipped and counted', async () => {
    await refused([{ name: 'dev/sda', type: '3' }], 'EUNSAFE', 'dev/sda');
    await refused([{ name: 'pipe', type: '6' }], 'EUNSAFE', 'pipe');
    const r = await unpack(
      [
        { name: 'dev/', type: '5' },
        { name: 'dev/null', type: '3' },
        { name: 'pipe', type: '6' },
        { name: 'f', data: 'ok' },
      ],
      { allowDevices: true },
    );
    assert.equal(r.skipped, 2);
    assert.deepEqual(fs.readdirSync(dest).sort(), ['dev', 'f']);
    assert.deepEqual(fs.readdirSync(join(dest, 'dev')), []);
  });

  it('more data than maxBytes', async () => {
    await refused(
      [
        { name: 'one', data: 'x'.repeat(600) },
        { name: 'two', data: 'y'.repeat(600) },
      ],
      'ETOOBIG',
      'two',
      { maxBytes: 1000 },
    );
    assert.equal(fs.existsSync(join(dest, 'two')), false);
  });

  it('replaces a symlink by a file or directory entry instead of writing through it', async () => {
    const target = join(outside, 'target');
    fs.writeFileSync(target, 'original');
    await unpack([
      { name: 's', type: '2', linkname: target },
      { name: 's', data: 'replaced' },
      { name: 't', type: '2', linkname: outside },
      { name: 't/', type: '5' },
      { name: 't/inside', data: 'in' },
    ]);
    assert.equal(fs.readFileSync(target, 'utf8'), 'original');
    assert.deepEqual(fs.readdirSync(outside), ['target']);
    assert.equal(fs.readFileSync(join(dest, 's'), 'utf8'), 'replaced');
    assert.ok(fs.lstatSync(join(dest, 't')).isDirectory());
  });
});
