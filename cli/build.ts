// keel build: make out/keel.img and out/keel.qcow2 from an image definition.
import type { Verb } from './main.js';
import { buildImage } from '../builder/build.js';
import { consoleProgress } from '../builder/progress.js';

export const verb: Verb = {
  summary: 'Build a Keel disk image (no root needed).',
  usage: 'keel build [--definition image/keel.yaml] [--out out] [--no-cache] [--seed S]',
  options: {
    definition: { type: 'string', short: 'd', default: 'image/keel.yaml' },
    out: { type: 'string', short: 'o', default: 'out' },
    'no-cache': { type: 'boolean', default: false },
    seed: { type: 'string' },
  },
  async run(v) {
    const r = await buildImage({
      definition: String(v.definition),
      outDir: String(v.out),
      useCache: !v['no-cache'],
      seed: v.seed as string | undefined,
      progress: consoleProgress(),
    });
    process.stdout.write(
      `built ${r.image} and ${r.qcow2} in ${r.seconds.toFixed(1)}s (USR ` +
        `${(r.usrBytes / 2 ** 20).toFixed(1)} MiB)\nmanifest: ${r.manifest}\n`,
    );
    return 0;
  },
};
