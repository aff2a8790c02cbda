// The init bundled into one JavaScript file with esbuild, and the native addon beside it.
import { existsSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { build } from 'esbuild';
import { BuildError } from './errors.js';

/** The checkout this builder runs from (two levels above dist/builder/). */
export function repoRoot(): string {
  return resolve(dirname(fileURLToPath(import.meta.url)), '../..');
}

/** Bundles init/main.ts into `out` (ESM, for the image's Node). */
export async function bundleInit(out: string, nodeVersion: string, stamp = ''): Promise<void> {
  const entry = join(repoRoot(), 'init/main.ts');
  if (!existsSync(entry)) throw new BuildError('ENOINIT', `cannot bundle the init: ${entry} is missing`);
  const major = nodeVersion.split('.')[0];
  await build({
    entryPoints: [entry], outfile: out, bundle: true, platform: 'node', format: 'esm', target: `node${major}`,
    logLevel: 'error', legalComments: 'none', sourcemap: false, minify: false,
    banner: { js: `// Keel init: bundled by keel build from init/.${stamp ? ` ${stamp}` : ''}` },
  });
}

/** The native addon built by node-gyp (npm ci); a clear error when it was not built. */
export function nativeAddon(): string {
  const p = join(repoRoot(), 'build/Release/keel_native.node');
  if (!existsSync(p)) throw new BuildError('ENONATIVE', `cannot find the native helper ${p}: run make deps (npm ci builds it with node-gyp)`);
  return p;
}
