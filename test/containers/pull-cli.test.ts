// keel pull and keel run against a real registry: Debian's docker-registry on loopback, fed by
// skopeo with the OCI archive `keel save` makes of the baked busybox image.
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { repoRoot } from '../../builder/bundle.js';
import { addBusybox } from './busybox-fixture.js';
import { ImageStore } from '../../containers/store.js';
import { startRegistry, type RegistryProcess } from './registry-helpers.js';
import { itAsRoot } from '../needs.js';

const KEEL = join(repoRoot(), 'bin/keel');

describe('keel pull / keel run from a registry (docker-registry on loopback)', function () {
  this.timeout(60_000);
  let dir: string;
  let registry: RegistryProcess;
  let ref: string;
  const keel = (root: string, ...args: string[]) => {
    const r = spawnSync(KEEL, [args[0], '--root', root, ...args.slice(1)], { encoding: 'utf8', timeout: 45_000 });
    return { code: r.status, out: r.stdout, err: r.stderr };
  };
  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'keel-pull-cli-'));
    registry = await startRegistry(join(dir, 'registry'), '');
    const src = join(dir, 'src');
    await addBusybox(new ImageStore(src), '/bin/busybox', 1700000000);
    const archive = join(dir, 'busybox-oci.tar');
    assert.equal(keel(src, 'save', '--format', 'oci', '-o', archive, 'busybox').code, 0);
    ref = `127.0.0.1:${registry.port}/tools/busybox:1.0`;
    execFileSync('skopeo', [
      '--insecure-policy',
      'copy',
      '--quiet',
      '--dest-tls-verify=false',
      `oci-archive:${archive}`,
      `docker://${ref}`,
    ]);
  });
  after(async () => {
    await registry?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  itAsRoot('pulls an image by reference and runs it', () => {
    const root = join(dir, 'a');
    const r = keel(root, 'pull', '--insecure', ref);
    assert.equal(r.code, 0, r.err);
    assert.match(
      r.out,
      /^Digest: sha256:[0-9a-f]{64}\nStatus: downloaded 127\.0\.0\.1:\d+\/tools\/busybox:1\.0\nsha256:[0-9a-f]{64}\n$/,
    );
    assert.match(
      keel(root, 'images').out,
      new RegExp(`^127\\.0\\.0\\.1:${registry.port}/tools/busybox +1\\.0 +[0-9a-f]{12} `, 'm'),
    );
    const run = keel(root, 'run', '--rm', ref, 'echo', 'pulled');
    assert.equal(run.out, 'pulled\n', run.err);
  });

  itAsRoot('keel run pulls an image it does not have', () => {
    const root = join(dir, 'b');
    const run = keel(root, 'run', '--rm', '--insecure', ref, 'echo', 'fetched first');
    assert.equal(run.code, 0, run.err);
    assert.equal(run.out, 'fetched first\n');
    assert.match(run.err, /Unable to find image '.*' locally; pulling it/);
  });

  it('refuses plain HTTP without --insecure, and names a missing image', () => {
    const root = join(dir, 'c');
    const tls = keel(root, 'pull', ref);
    assert.notEqual(tls.code, 0);
    assert.match(tls.err, /cannot pull 127\.0\.0\.1:\d+\/tools\/busybox:1\.0/);
    const missing = keel(root, 'pull', '--insecure', `127.0.0.1:${registry.port}/tools/nothing:1`);
    assert.notEqual(missing.code, 0);
    assert.match(missing.err, /cannot pull .*nothing:1/);
  });
});
