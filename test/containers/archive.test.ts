// Image archives: docker-save and OCI archives made by skopeo from a umoci-built image are loaded;
// what saveArchive writes is accepted by skopeo (which checks every digest and diffID on copy)
// and loads back to the same image.
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import { join } from 'node:path';
import * as zlib from 'node:zlib';
import { gzipSync } from 'node:zlib';
import { loadArchive, saveArchive } from '../../containers/archive.js';
import { ImageStore } from '../../containers/store.js';
import { makeZstdArchive, ZSTD_MARKER } from '../fixtures/zstd-archive.js';
import { rawTar, removeDir, run, tempDir, umociImage } from './helpers.js';
import { describeAsRoot } from '../needs.js';

// umoci unpacks the fixtures as root (owners and device nodes kept).
describeAsRoot('containers/archive', function () {
  this.timeout(60_000);
  let work: string;
  let layout: string;
  let dockerTar: string;
  let ociTar: string;

  before(() => {
    work = tempDir('archive');
    layout = join(work, 'layout');
    umociImage(layout, 't', [
      (r) => {
        fs.mkdirSync(join(r, 'etc'));
        fs.writeFileSync(join(r, 'etc/hello'), 'hello\n');
        fs.mkdirSync(join(r, 'data'));
        fs.writeFileSync(join(r, 'data/old'), 'old\n');
      },
      (r) => {
        fs.rmSync(join(r, 'etc/hello'));
        fs.writeFileSync(join(r, 'etc/new'), 'new\n');
      },
    ]);
    run('umoci', ['config', '--image', `${layout}:t`, '--config.cmd', '/bin/sh', '--config.env', 'KEEL=1']);
    dockerTar = join(work, 'docker.tar');
    ociTar = join(work, 'oci.tar');
    run('skopeo', ['copy', '-q', `oci:${layout}:t`, `docker-archive:${dockerTar}:myimg:v1`]);
    run('skopeo', ['copy', '-q', `oci:${layout}:t`, `oci-archive:${ociTar}:myimg:v1`]);
  });
  after(() => removeDir(work));

  let store: ImageStore;
  let root: string;
  beforeEach(() => {
    root = fs.mkdtempSync(join(work, 'root-'));
    store = new ImageStore(root);
  });
  afterEach(() => removeDir(root));

  const layerFile = (img: { layers: { diffId: string }[] }, n: number, path: string): string =>
    fs.readFileSync(join(store.layerDir(img.layers[n].diffId), path), 'utf8');
  const configDigest = (): string =>
    JSON.parse(
      fs.readFileSync(
        join(
          layout,
          'blobs/sha256',
          JSON.parse(fs.readFileSync(join(layout, 'index.json'), 'utf8')).manifests[0].digest.slice(7),
        ),
        'utf8',
      ),
    ).config.digest;

  it('loads a docker-save archive (uncompressed layers, legacy layout with symlinks)', async () => {
    const [img] = await loadArchive(store, dockerTar);
    assert.equal(img.id, configDigest());
    assert.deepEqual(img.refs, ['docker.io/library/myimg:v1']);
    assert.equal(img.layers.length, 2);
    assert.ok(img.layers.every((l) => l.mediaType === 'application/vnd.oci.image.layer.v1.tar'));
    assert.deepEqual(img.config.config.Cmd, ['/bin/sh']);
    assert.equal(layerFile(img, 0, 'etc/hello'), 'hello\n');
    assert.equal(layerFile(img, 1, 'etc/new'), 'new\n');
    assert.equal(store.resolve('myimg:v1').id, img.id);
    assert.deepEqual(fs.readdirSync(join(root, 'tmp')), [], 'the unpacked archive is removed');
  });

  it('takes refs from the legacy repositories file when manifest.json has no RepoTags', async () => {
    const dir = join(work, 'legacy');
    fs.mkdirSync(dir);
    run('tar', ['-xf', dockerTar, '-C', dir]);
    const manifest = JSON.parse(fs.readFileSync(join(dir, 'manifest.json'), 'utf8'));
    delete manifest[0].RepoTags;
    fs.chmodSync(join(dir, 'manifest.json'), 0o644);
    fs.writeFileSync(join(dir, 'manifest.json'), JSON.stringify(manifest));
    const top = manifest[0].Layers.at(-1).split('/')[0];
    fs.writeFileSync(join(dir, 'repositories'), JSON.stringify({ 'legacy/app': { v0: top } }));
    const legacy = join(work, 'legacy.tar');
    run('tar', ['-cf', legacy, '-C', dir, '.']);
    const [img] = await loadArchive(store, legacy);
    assert.deepEqual(img.refs, ['docker.io/legacy/app:v0']);
  });

  it('loads an OCI archive (skopeo oci-archive:file:name:tag) and a gzip-compressed one', async () => {
    const [img] = await loadArchive(store, ociTar);
    assert.equal(img.id, configDigest());
    assert.deepEqual(img.refs, ['docker.io/library/myimg:v1']);
    assert.ok(img.layers.every((l) => l.mediaType === 'application/vnd.oci.image.layer.v1.tar+gzip'));
    assert.equal(layerFile(img, 0, 'data/old'), 'old\n');

    const gz = join(work, 'docker.tar.gz');
    fs.writeFileSync(gz, gzipSync(fs.readFileSync(dockerTar)));
    const [again] = await loadArchive(store, gz);
    assert.equal(again.id, img.id, 'the same image from the other format');
    assert.equal(store.list().length, 1);
  });

  it('loads a tarred umoci layout whose ref.name is a bare tag', async () => {
    const tarred = join(work, 'layout.tar');
    run('tar', ['-cf', tarred, '-C', layout, '.']);
    const [img] = await loadArchive(store, tarred);
    assert.deepEqual(img.refs, ['docker.io/library/t:latest']);
  });

  for (const format of ['docker', 'oci'] as const) {
    it(`saves a ${format} archive that skopeo reads and copies, and that loads back to the same image`, async () => {
      const [img] = await loadArchive(store, ociTar);
      store.tag('myimg:v1', 'localhost:5000/other:2');
      const saved = join(work, `saved-${format}.tar`);
      await saveArchive(store, ['myimg:v1', 'localhost:5000/other:2'], saved, format);

      const transport = format === 'docker' ? 'docker-archive' : 'oci-archive';
      const inspected = JSON.parse(run('skopeo', ['inspect', `${transport}:${saved}${format === 'oci' ? ':v1' : ''}`]));
      assert.equal(inspected.Layers.length, 2);
      assert.ok(inspected.Env.includes('KEEL=1'), inspected.Env);
      // A copy reads every blob and checks it against the manifest and the config's diff_ids.
      const copied = join(work, `copied-${format}`);
      run('skopeo', [
        'copy',
        '-q',
        `${transport}:${saved}${format === 'docker' ? ':myimg:v1' : ':v1'}`,
        `oci:${copied}:c`,
      ]);
      assert.match(run('umoci', ['stat', '--image', `${copied}:c`]), /LAYER/);

      const fresh = new ImageStore(fs.mkdtempSync(join(work, 'fresh-')));
      const loaded = await loadArchive(fresh, saved);
      assert.equal(loaded.length, 1);
      assert.equal(loaded[0].id, img.id);
      assert.deepEqual(fresh.resolve('myimg:v1').refs, ['docker.io/library/myimg:v1', 'localhost:5000/other:2']);
      assert.equal(fs.readFileSync(join(fresh.layerDirs(loaded[0])[1], 'etc/new'), 'utf8'), 'new\n');
      if (format === 'oci')
        assert.equal(loaded[0].manifestDigest, img.manifestDigest, 'OCI manifests are kept byte for byte');
      removeDir(fresh.root);
    });
  }

  it('saves an image named by id without tags', async () => {
    const [img] = await loadArchive(store, dockerTar);
    const saved = join(work, 'by-id.tar');
    await saveArchive(store, [img.id.slice(7, 19)], saved, 'docker');
    const manifest = JSON.parse(run('tar', ['-xOf', saved, 'manifest.json']));
    assert.deepEqual(manifest[0].RepoTags, null);
    assert.equal(manifest[0].Config, `blobs/sha256/${img.id.slice(7)}`);
  });

  it(
    'loads an image with a zstd layer where Node has zstd; elsewhere ' +
      'refuses it naming the layer and the Node needed',
    async () => {
      const dir = fs.mkdtempSync(join(work, 'zstd-'));
      const archive = await makeZstdArchive(dir);
      if (typeof (zlib as unknown as Record<string, unknown>).createZstdDecompress === 'function') {
        const [img] = await loadArchive(store, archive.file);
        assert.equal(img.id, archive.id);
        assert.deepEqual(
          img.layers.map((l) => l.mediaType),
          ['application/vnd.oci.image.layer.v1.tar+gzip', 'application/vnd.oci.image.layer.v1.tar+zstd'],
        );
        assert.equal(
          fs.readFileSync(join(store.layerDirs(img)[1], ZSTD_MARKER.path), 'utf8'),
          `${ZSTD_MARKER.content}\n`,
        );
        return;
      }
      await assert.rejects(loadArchive(store, archive.file), {
        code: 'EUNSUPPORTED',
        message: new RegExp(
          `^cannot open layer \\S*${archive.zstdDigest.slice(7)}: zstd needs Node 22\\.15 or ` +
            `later \\(this is ${process.version.replace(/\./g, '\\.')}\\)$`,
        ),
      });
      assert.deepEqual(store.list(), [], 'nothing of the refused image is kept');
      assert.deepEqual(fs.readdirSync(join(root, 'blobs/sha256')), []);
    },
  );

  it('refuses hostile archives and bad blobs, leaving the store as it was', async () => {
    const outside = join(work, 'keel-archive-evil');
    const evil = join(work, 'evil.tar');
    fs.writeFileSync(
      evil,
      rawTar([
        { name: 'manifest.json', data: '[]' },
        { name: '../keel-archive-evil', data: 'x' },
      ]),
    );
    await assert.rejects(loadArchive(store, evil), {
      code: 'EUNSAFE',
      message: /cannot load archive .*evil\.tar: cannot unpack entry \.\.\/keel-archive-evil/,
    });
    assert.equal(fs.existsSync(outside), false);
    assert.equal(fs.existsSync(join(root, 'keel-archive-evil')), false);

    const escape = join(work, 'escape.tar');
    fs.writeFileSync(
      escape,
      rawTar([{ name: 'manifest.json', data: JSON.stringify([{ Config: '../../../etc/passwd', Layers: [] }]) }]),
    );
    await assert.rejects(loadArchive(store, escape), { code: 'EUNSAFE' });
    fs.writeFileSync(
      escape,
      rawTar([
        { name: 'cfg', type: '2', linkname: '/etc/passwd' },
        { name: 'manifest.json', data: JSON.stringify([{ Config: 'cfg', Layers: [] }]) },
      ]),
    );
    await assert.rejects(loadArchive(store, escape), { code: 'EUNSAFE', message: /cfg leads outside the archive/ });

    // An OCI archive whose layer blob was altered: its digest no longer matches.
    const dir = join(work, 'tampered');
    fs.mkdirSync(dir);
    run('tar', ['-xf', ociTar, '-C', dir]);
    const index = JSON.parse(fs.readFileSync(join(dir, 'index.json'), 'utf8'));
    const manifest = JSON.parse(fs.readFileSync(join(dir, 'blobs/sha256', index.manifests[0].digest.slice(7)), 'utf8'));
    const layer = join(dir, 'blobs/sha256', manifest.layers[1].digest.slice(7));
    fs.chmodSync(layer, 0o644);
    fs.appendFileSync(layer, 'junk');
    const tampered = join(work, 'tampered.tar');
    run('tar', ['-cf', tampered, '-C', dir, '.']);
    await assert.rejects(loadArchive(store, tampered), {
      code: 'EDIGEST',
      message: new RegExp(manifest.layers[1].digest),
    });

    // A docker-save archive whose top layer is not the one the config's diff_ids name.
    const swapped = join(work, 'swapped');
    fs.mkdirSync(swapped);
    run('tar', ['-xf', dockerTar, '-C', swapped]);
    const top = join(swapped, JSON.parse(fs.readFileSync(join(swapped, 'manifest.json'), 'utf8'))[0].Layers[1]);
    fs.chmodSync(top, 0o644);
    fs.writeFileSync(top, rawTar([{ name: 'etc/other', data: 'not the layer' }]));
    const swappedTar = join(work, 'swapped.tar');
    run('tar', ['-cf', swappedTar, '-C', swapped, '.']);
    await assert.rejects(loadArchive(store, swappedTar), { code: 'EDIFFID' });

    assert.deepEqual(store.list(), []);
    assert.deepEqual(fs.readdirSync(join(root, 'tmp')), []);
    assert.deepEqual(fs.readdirSync(join(root, 'layers')), []);
    assert.deepEqual(fs.readdirSync(join(root, 'blobs/sha256')), [], 'no blob of a refused archive is kept');
  });
});
