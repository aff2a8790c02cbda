// The image shared by every end-to-end test of a run: built once (cached) unless already there.
import { existsSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { buildImage } from '../../builder/build.js';
import { repoRoot } from '../../builder/bundle.js';

let built: Promise<string> | undefined;

/** Path of out/keel.img, building it first if this run has none (make test builds it before mocha). */
export function testImage(): Promise<string> {
  const image = process.env.KEEL_IMAGE ? resolve(process.env.KEEL_IMAGE) : join(repoRoot(), 'out/keel.img');
  if (existsSync(image)) return Promise.resolve(image);
  built ??= buildImage({ definition: join(repoRoot(), 'image/keel.yaml'), outDir: join(repoRoot(), 'out') }).then(
    (r) => r.image,
  );
  return built;
}
