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

/** CommonJS packages in an ESM bundle (yaml's `require('process')`) need a real require: esbuild's stub
 *  throws "Dynamic require of X is not supported" at import, which as PID 1 is a kernel panic. */
const REQUIRE_SHIM =
  "import { createRequire as __keelCreateRequire } from 'node:module'; " +
  'const require = __keelCreateRequire(import.meta.url);';

/** Bundles init/main.ts into `out` (ESM, for the image's Node). */
export async function bundleInit(out: string, nodeVersion: string, stamp = ''): Promise<void> {
  const entry = join(repoRoot(), 'init/main.ts');
  if (!existsSync(entry)) throw new BuildError('ENOINIT', `cannot bundle the init: ${entry} is missing`);
  const major = nodeVersion.split('.')[0];
  await build({
    entryPoints: [entry],
    outfile: out,
    bundle: true,
    platform: 'node',
    format: 'esm',
    target: `node${major}`,
    logLevel: 'error',
    legalComments: 'none',
    sourcemap: false,
    minify: false,
    banner: { js: `// Keel init: bundled by keel build from init/.${stamp ? ` ${stamp}` : ''}\n${REQUIRE_SHIM}` },
  });
}

/** Verbs that only make sense on a build host: the image's CLI gets a stub that says so. */
const HOST_ONLY = /\/cli\/(build|qemu|payload|keys|serve)\.js$/;

/** Bundles cli/entry.ts into `out`: the keel command inside the OS (also systemctl and journalctl). */
export async function bundleCli(out: string, nodeVersion: string): Promise<void> {
  await build({
    entryPoints: [join(repoRoot(), 'cli/entry.ts')],
    outfile: out,
    bundle: true,
    platform: 'node',
    format: 'esm',
    target: `node${nodeVersion.split('.')[0]}`,
    logLevel: 'error',
    legalComments: 'none',
    banner: { js: `// keel CLI: bundled by keel build from cli/.\n${REQUIRE_SHIM}` },
    plugins: [
      {
        name: 'host-only-verbs',
        setup(b) {
          b.onResolve({ filter: /\.\/(build|qemu|payload|keys|serve)\.js$/ }, (args) =>
            HOST_ONLY.test(join(args.resolveDir, args.path)) ? { path: args.path, namespace: 'host-only' } : undefined,
          );
          b.onLoad({ filter: /.*/, namespace: 'host-only' }, (args) => {
            const name = args.path.replace(/^\.\/|\.js$/g, '');
            return {
              contents:
                `export const verb = { summary: 'keel ${name} (build host only)', usage: ` +
                `'keel ${name}', options: {}, async run() { throw new Error('keel ${name} ` +
                `runs on a build host, not inside Keel'); } };`,
              loader: 'js',
            };
          });
        },
      },
    ],
  });
}

/** The native addon built by node-gyp (npm ci); a clear error when it was not built. */
export function nativeAddon(): string {
  const p = join(repoRoot(), 'build/Release/keel_native.node');
  if (!existsSync(p))
    throw new BuildError(
      'ENONATIVE',
      `cannot find the native helper ${p}: run make deps (npm ci builds it with node-gyp)`,
    );
  return p;
}
