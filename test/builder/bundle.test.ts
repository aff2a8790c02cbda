// Regression: the image's bundles crashed at import with esbuild's "Dynamic require of "process" is
// not supported" once a CommonJS package (yaml) was bundled into ESM; as PID 1 that was a kernel
// panic on every boot. Both bundles are built and loaded here with the host's Node.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { bundleCli, bundleInit, nativeAddon } from '../../builder/bundle.js';

describe('builder: the init and CLI bundles load', function () {
  this.timeout(60_000);
  let dir: string;
  before(() => {
    dir = mkdtempSync(join(tmpdir(), 'keel-bundle-'));
  });
  after(() => rmSync(dir, { recursive: true, force: true }));
  const node = (file: string, args: string[]) =>
    spawnSync(process.execPath, [file, ...args], {
      encoding: 'utf8',
      env: { ...process.env, KEEL_NATIVE: nativeAddon() },
    });

  it('the init bundle imports every module and says it must run as PID 1', async () => {
    const out = join(dir, 'init.mjs');
    await bundleInit(out, process.versions.node);
    const r = node(out, []);
    assert.equal(r.stderr, 'keel init: must run as PID 1 (it is started by the initramfs)\n');
    assert.equal(r.status, 1);
  });

  it('the CLI bundle runs keel --help and a verb that loads cloud-config', async () => {
    const out = join(dir, 'keel.mjs');
    await bundleCli(out, process.versions.node);
    const help = node(out, ['--help']);
    assert.equal(help.status, 0, help.stderr);
    assert.match(help.stdout, /^usage: keel VERB/);
    const v = node(out, ['validate', '--help']);
    assert.equal(v.status, 0, v.stderr);
  });
});
