// The image store: verified blobs, layers unpacked once and shared, diffID checks, refs and ids,
// removal with garbage collection. Images are real ones built with umoci.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { locks } from '../../native/locks.js';
import { ImageStore, familiarRef, normalizeRef, type ImageRecord } from '../../containers/store.js';
import { addFromLayout, removeDir, sha256, tempDir, umociImage } from './helpers.js';
import { describeAsRoot } from '../needs.js';

// umoci unpacks the fixtures as root (owners, whiteouts as device nodes), and the store mounts overlays.
describeAsRoot('containers/store', function () {
  let work: string;
  let layout: string;

  // One layout for the whole file: base (2 layers), app-a and app-b (base + one layer each).
  before(function () {
    this.timeout(60_000);
    work = tempDir('store');
    layout = join(work, 'layout');
    umociImage(layout, 'base', [
      (r) => {
        fs.mkdirSync(join(r, 'etc'));
        fs.writeFileSync(join(r, 'etc/os-release'), 'ID=keel\n');
        fs.writeFileSync(join(r, 'etc/motd'), 'hello\n');
      },
      (r) => {
        fs.mkdirSync(join(r, 'bin'));
        fs.writeFileSync(join(r, 'bin/tool'), '#!/bin/sh\necho tool\n', { mode: 0o755 });
        fs.rmSync(join(r, 'etc/motd'));
      },
    ]);
    umociImage(layout, 'app-a', [(r) => fs.writeFileSync(join(r, 'app-a'), 'a\n')], 'base');
    umociImage(layout, 'app-b', [(r) => fs.writeFileSync(join(r, 'app-b'), 'b\n')], 'base');
  });
  after(() => removeDir(work));

  let root: string;
  let store: ImageStore;
  beforeEach(() => {
    root = fs.mkdtempSync(join(work, 'root-'));
    store = new ImageStore(root);
  });
  afterEach(() => removeDir(root));

  const blobFiles = (): string[] => fs.readdirSync(join(root, 'blobs/sha256')).sort();
  const layerEntries = (): string[] => fs.readdirSync(join(root, 'layers')).sort();

  describe('blobs', () => {
    it('putBlob stores data under its digest, from a buffer or a stream', async () => {
      const d1 = await store.putBlob(Buffer.from('one'));
      assert.equal(d1, sha256('one'));
      assert.equal(fs.readFileSync(store.blobPath(d1), 'utf8'), 'one');
      const d2 = await store.putBlob(Readable.from([Buffer.from('tw'), Buffer.from('o')]), sha256('two'));
      assert.equal(d2, sha256('two'));
      assert.ok(store.hasBlob(d2));
      assert.equal(store.blobPath(d2), join(root, 'blobs/sha256', d2.slice(7)));
    });

    it('putBlob rejects a wrong digest and leaves nothing behind', async () => {
      const wrong = sha256('something else');
      await assert.rejects(store.putBlob(Buffer.from('data'), wrong), {
        code: 'EDIGEST',
        message: new RegExp(`expected ${wrong}`),
      });
      await assert.rejects(store.putBlob(Readable.from([Buffer.from('data')]), wrong), { code: 'EDIGEST' });
      assert.deepEqual(blobFiles(), []);
      assert.deepEqual(fs.readdirSync(join(root, 'tmp')), []);
      await assert.rejects(store.putBlob(Buffer.from('data'), 'md5:abc'), { code: 'EUNSUPPORTED' });
    });
  });

  describe('images', () => {
    it('addImage unpacks each layer into layers/<diffID>/ with a marker and records the image', async () => {
      const img = await addFromLayout(store, layout, 'base', ['keel/base:1']);
      assert.equal(img.id, sha256(fs.readFileSync(store.blobPath(img.id))));
      assert.deepEqual(img.refs, ['docker.io/keel/base:1']);
      assert.equal(img.layers.length, 2);
      assert.deepEqual(
        img.layers.map((l) => l.diffId),
        img.config.rootfs.diff_ids,
      );
      const [lower, upper] = store.layerDirs(img);
      assert.equal(lower, join(root, 'layers', img.layers[0].diffId.slice(7)));
      assert.ok(fs.existsSync(`${lower}.json`) && fs.existsSync(`${upper}.json`), 'markers written');
      assert.equal(fs.readFileSync(join(lower, 'etc/os-release'), 'utf8'), 'ID=keel\n');
      assert.equal(fs.statSync(join(upper, 'bin/tool')).mode & 0o777, 0o755);
      assert.ok(fs.lstatSync(join(upper, 'etc/motd')).isCharacterDevice(), 'the deletion is an overlay whiteout');
      assert.ok(store.hasBlob(img.manifestDigest));
      assert.equal(store.list().length, 1);
      assert.deepEqual(store.resolve('keel/base:1'), img);
      // A fresh store object reads the same index.
      assert.deepEqual(new ImageStore(root).list(), [img]);
    });

    it('the image mounts as a working root with overlayfs', async function () {
      const img = await addFromLayout(store, layout, 'app-a', ['app-a']);
      const mnt = fs.mkdtempSync(join(work, 'mnt-'));
      const lowerdir = store.layerDirs(img).reverse().join(':');
      const m = spawnSync('mount', ['-t', 'overlay', 'overlay', '-o', `lowerdir=${lowerdir}`, mnt], {
        encoding: 'utf8',
      });
      assert.equal(m.status, 0, m.stderr);
      try {
        assert.deepEqual(fs.readdirSync(mnt).sort(), ['app-a', 'bin', 'etc']);
        assert.deepEqual(fs.readdirSync(join(mnt, 'etc')), ['os-release']);
      } finally {
        spawnSync('umount', [mnt]);
        fs.rmdirSync(mnt);
      }
    });

    it('layers shared by two images are unpacked once', async () => {
      const a = await addFromLayout(store, layout, 'app-a', ['app-a']);
      const sharedDirs = store.layerDirs(a).slice(0, 2);
      const marker = fs.readFileSync(`${sharedDirs[0]}.json`, 'utf8');
      const inode = fs.statSync(join(sharedDirs[0], 'etc/os-release')).ino;
      const b = await addFromLayout(store, layout, 'app-b', ['app-b']);
      assert.deepEqual(store.layerDirs(b).slice(0, 2), sharedDirs);
      assert.notEqual(store.layerDirs(b)[2], store.layerDirs(a)[2]);
      assert.equal(fs.readFileSync(`${sharedDirs[0]}.json`, 'utf8'), marker, 'marker untouched');
      assert.equal(fs.statSync(join(sharedDirs[0], 'etc/os-release')).ino, inode, 'not unpacked again');
      assert.equal(layerEntries().filter((e) => !e.includes('.')).length, 4);
    });

    it('two images added at the same time share their layers (the layer lock serialises the unpack)', async () => {
      const [a, b] = await Promise.all([
        addFromLayout(store, layout, 'app-a', ['app-a']),
        addFromLayout(store, layout, 'app-b', ['app-b']),
      ]);
      assert.deepEqual(store.layerDirs(a).slice(0, 2), store.layerDirs(b).slice(0, 2));
      assert.deepEqual(
        store
          .list()
          .map((i) => i.refs[0])
          .sort(),
        ['docker.io/library/app-a:latest', 'docker.io/library/app-b:latest'],
      );
      assert.deepEqual(
        layerEntries().filter((e) => e.endsWith('.lock')),
        [],
      );
    });

    it('redoes a layer whose unpack did not finish (no marker)', async () => {
      const first = await addFromLayout(store, layout, 'base', ['base']);
      const dir = store.layerDirs(first)[0];
      fs.rmSync(`${dir}.json`);
      fs.writeFileSync(join(dir, 'half-written'), '');
      await addFromLayout(store, layout, 'base', ['base']);
      assert.ok(fs.existsSync(`${dir}.json`));
      assert.equal(fs.existsSync(join(dir, 'half-written')), false);
    });

    it('rejects a layer whose content does not match the config diff_ids, and keeps nothing of it', async () => {
      const good = await addFromLayout(store, layout, 'base', ['base']);
      const config = structuredClone(good.config);
      config.rootfs.diff_ids[1] = sha256('not the layer');
      const configBytes = Buffer.from(JSON.stringify(config));
      const manifest = Buffer.from(
        JSON.stringify({ schemaVersion: 2, config: { digest: sha256(configBytes) }, layers: good.layers }),
      );
      const before = layerEntries();
      await assert.rejects(
        store.addImage({
          manifest,
          manifestDigest: sha256(manifest),
          config: configBytes,
          layers: good.layers,
          refs: ['bad'],
        }),
        { code: 'EDIFFID', message: new RegExp(`${good.layers[1].digest}.*${config.rootfs.diff_ids[1]}`) },
      );
      assert.deepEqual(layerEntries(), before);
      assert.throws(() => store.resolve('bad'), { code: 'ENOIMAGE' });
      assert.equal(store.hasBlob(sha256(configBytes)), false, 'no config blob of a refused image');
      assert.equal(store.hasBlob(sha256(manifest)), false);
      const short = Buffer.from(
        JSON.stringify({ ...config, rootfs: { type: 'layers', diff_ids: [config.rootfs.diff_ids[0]] } }),
      );
      await assert.rejects(
        store.addImage({ manifest, manifestDigest: sha256(manifest), config: short, layers: good.layers, refs: [] }),
        { code: 'EDIFFID', message: /2 layers but the config lists 1/ },
      );
    });
  });

  describe('refs and ids', () => {
    /** Layer-less images whose ids share their first hex digit (found by trying nonces). */
    async function twoImagesSharingPrefix(): Promise<[ImageRecord, ImageRecord]> {
      const make = (n: number): Buffer =>
        Buffer.from(
          JSON.stringify({ architecture: 'amd64', os: 'linux', rootfs: { type: 'layers', diff_ids: [] }, nonce: n }),
        );
      const byFirst = new Map<string, number>();
      for (let n = 0; ; n++) {
        const first = sha256(make(n))[7];
        const other = byFirst.get(first);
        if (other !== undefined) {
          const add = (k: number, ref: string) => {
            const m = Buffer.from(
              JSON.stringify({ schemaVersion: 2, config: { digest: sha256(make(k)) }, layers: [] }),
            );
            return store.addImage({ manifest: m, manifestDigest: sha256(m), config: make(k), layers: [], refs: [ref] });
          };
          return [await add(other, 'one'), await add(n, 'two')];
        }
        byFirst.set(first, n);
      }
    }

    it('resolves refs in every spelling and unique id prefixes, with or without sha256:', async () => {
      const img = await addFromLayout(store, layout, 'base', ['busybox', 'localhost:5000/x:1', 'user/app']);
      for (const r of [
        'busybox',
        'busybox:latest',
        'docker.io/library/busybox:latest',
        'index.docker.io/library/busybox',
        'localhost:5000/x:1',
        'user/app',
        'docker.io/user/app:latest',
      ]) {
        assert.equal(store.resolve(r).id, img.id, r);
      }
      const hex = img.id.slice(7);
      for (const r of [img.id, hex, hex.slice(0, 12), `sha256:${hex.slice(0, 5)}`])
        assert.equal(store.resolve(r).id, img.id, r);
      assert.equal(store.resolve(`busybox@${img.manifestDigest}`).id, img.id, 'by manifest digest');
      assert.throws(() => store.resolve('busybox:other'), {
        code: 'ENOIMAGE',
        message: /cannot find image busybox:other/,
      });
      assert.throws(() => store.resolve('localhost:5000/x'), { code: 'ENOIMAGE' });
    });

    it('an id prefix that matches two images is ambiguous', async () => {
      const [a, b] = await twoImagesSharingPrefix();
      assert.throws(() => store.resolve(a.id.slice(7, 8)), { code: 'EAMBIGUOUS', message: /matches 2 images/ });
      assert.equal(store.resolve(a.id.slice(7, 30)).id, a.id);
      assert.equal(store.resolve(b.id.slice(0, 30)).id, b.id);
    });

    it('tag moves a ref from one image to another', async () => {
      const [a, b] = await twoImagesSharingPrefix();
      store.tag('one', 'shared:v1');
      assert.equal(store.resolve('shared:v1').id, a.id);
      store.tag(b.id, 'shared:v1');
      assert.equal(store.resolve('shared:v1').id, b.id);
      assert.deepEqual(store.resolve('one').refs, ['docker.io/library/one:latest']);
      assert.throws(() => store.tag('one', `x@${a.id}`), { code: 'EREFERENCE' });
    });

    it('normalizeRef follows Docker', () => {
      const cases: [string, string][] = [
        ['busybox', 'docker.io/library/busybox:latest'],
        ['busybox:1.36', 'docker.io/library/busybox:1.36'],
        ['user/app', 'docker.io/user/app:latest'],
        ['docker.io/library/busybox', 'docker.io/library/busybox:latest'],
        ['index.docker.io/user/app:2', 'docker.io/user/app:2'],
        ['localhost:5000/app', 'localhost:5000/app:latest'],
        ['localhost/app:1', 'localhost/app:1'],
        ['quay.io/org/sub/app:v1.2', 'quay.io/org/sub/app:v1.2'],
        [`busybox@sha256:${'a'.repeat(64)}`, `docker.io/library/busybox@sha256:${'a'.repeat(64)}`],
      ];
      for (const [input, want] of cases) assert.equal(normalizeRef(input), want, input);
      for (const bad of ['Busybox', 'bad::tag', '', 'a@sha256:xyz'])
        assert.throws(() => normalizeRef(bad), { code: 'EREFERENCE' }, bad);
      assert.equal(familiarRef('docker.io/library/busybox:latest'), 'busybox:latest');
      assert.equal(familiarRef('docker.io/user/app:1'), 'user/app:1');
      assert.equal(familiarRef('localhost:5000/app:1'), 'localhost:5000/app:1');
    });
  });

  describe('remove', () => {
    it('untags first; removing the last ref deletes the image and collects its own blobs and layers', async () => {
      const a = await addFromLayout(store, layout, 'app-a', ['app-a', 'alias']);
      const b = await addFromLayout(store, layout, 'app-b', ['app-b']);
      assert.deepEqual(store.remove('alias'), { untagged: ['docker.io/library/alias:latest'], deleted: [] });
      const r = store.remove('app-a');
      assert.deepEqual(r.untagged, ['docker.io/library/app-a:latest']);
      assert.equal(r.deleted[0], a.id);
      assert.deepEqual(
        r.deleted.slice(1).sort(),
        [a.id, a.manifestDigest, a.layers[2].digest].sort(),
        'then the blobs removed',
      );
      for (const d of [a.id, a.manifestDigest, a.layers[2].digest]) assert.equal(store.hasBlob(d), false, d);
      assert.equal(fs.existsSync(store.layerDirs(a)[2]), false, 'its own layer dir is gone');
      assert.equal(fs.existsSync(`${store.layerDirs(a)[2]}.json`), false);
      for (const dir of store.layerDirs(b)) assert.ok(fs.existsSync(`${dir}.json`), 'shared and other layers kept');
      for (const l of b.layers) assert.ok(store.hasBlob(l.digest));
      assert.throws(() => store.resolve('app-a'), { code: 'ENOIMAGE' });
      assert.equal(store.resolve('app-b').id, b.id);
      assert.deepEqual(fs.readdirSync(join(root, 'tmp')), []);
    });

    it('refuses an image in use or named by id with several refs, unless forced', async () => {
      const a = await addFromLayout(store, layout, 'base', ['base', 'other']);
      assert.throws(() => store.remove(a.id), { code: 'ECONFLICT' });
      store.remove('other');
      assert.throws(() => store.remove('base', { inUse: (id) => id === a.id }), {
        code: 'EINUSE',
        message: /a container uses it/,
      });
      assert.equal(store.resolve('base').id, a.id, 'nothing untagged');
      assert.deepEqual(store.remove('base', { force: true, inUse: () => true }).deleted[0], a.id);
      assert.deepEqual(store.list(), []);
      assert.deepEqual(blobFiles(), []);
      assert.deepEqual(layerEntries(), []);
    });
  });

  it('an index lock file left naming a dead or a live (reused) pid does not block; a held one does', () => {
    const lock = join(root, 'index.lock');
    for (const pid of ['999999999', String(process.ppid)]) {
      fs.writeFileSync(lock, `${pid}\n`);
      assert.equal(
        locks.withLockSync(lock, () => 'ran', 1000),
        'ran',
      );
      assert.equal(fs.existsSync(lock), false);
    }
    const held = locks.tryLock(lock)!;
    try {
      assert.throws(() => locks.withLockSync(lock, () => 'ran', 100), { code: 'ELOCKED' });
    } finally {
      held.release();
    }
  });
});
