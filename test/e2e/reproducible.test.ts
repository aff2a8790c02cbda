// The same inputs, seed and SOURCE_DATE_EPOCH give a bit-identical image.
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { buildImage } from '../../builder/build.js';
import { repoRoot } from '../../builder/bundle.js';
import { sha256File } from '../../builder/cache.js';
import { testImage } from './image.js';

describe('reproducible builds', function () {
  this.timeout(900_000);

  it('rebuilds bit-identical without the step cache (same seed and epoch)', async () => {
    const image = await testImage();
    const manifest = JSON.parse(readFileSync(image.replace(/keel\.img$/, 'keel.manifest.json'), 'utf8'));
    const out = mkdtempSync(join(tmpdir(), 'keel-repro-'));
    try {
      const r = await buildImage({
        definition: join(repoRoot(), 'image/keel.yaml'),
        outDir: out,
        useCache: false,
        epoch: manifest.sourceDateEpoch,
        seed: manifest.seed,
      });
      assert.equal(await sha256File(r.image), await sha256File(image), 'keel.img differs');
      assert.equal(
        await sha256File(r.qcow2),
        await sha256File(image.replace(/\.img$/, '.qcow2')),
        'keel.qcow2 differs',
      );
      assert.equal(JSON.parse(readFileSync(r.manifest, 'utf8')).usr.sha256, manifest.usr.sha256);
    } finally {
      rmSync(out, { recursive: true, force: true });
    }
  });
});
