// keel pull REF: fetch an image from a registry (OCI distribution API) into the store.
import { readInsecureRegistries } from '../containers/insecure-registries.js';
import type { Verb } from './main.js';
import { pullImage } from '../containers/registry.js';
import { blobDirOf, humanSize, ROOT_OPTION, storeAt } from './container-common.js';

export const verb: Verb = {
  summary: 'Pull an image from a registry.',
  usage: 'keel pull [--insecure] [--platform linux/amd64] [--root DIR] REF',
  options: {
    ...ROOT_OPTION,
    insecure: { type: 'boolean', default: false },
    platform: { type: 'string' },
    quiet: { type: 'boolean', short: 'q', default: false },
  },
  async run(v, [ref, ...extra]) {
    if (!ref || extra.length)
      throw new TypeError('keel pull: give exactly one image reference, e.g. keel pull busybox');
    const [os, architecture, variant] = String(v.platform ?? 'linux/amd64').split('/');
    const store = storeAt(v);
    const done = new Map<string, number>();
    let last = 0;
    const pulled = await pullImage(ref, {
      blobDir: blobDirOf(v),
      insecure: Boolean(v.insecure),
      insecureRegistries: readInsecureRegistries(),
      platform: { os, architecture, ...(variant ? { variant } : {}) },
      auth: process.env.KEEL_REGISTRY_USER
        ? { username: process.env.KEEL_REGISTRY_USER, password: process.env.KEEL_REGISTRY_PASSWORD ?? '' }
        : undefined,
      progress: v.quiet
        ? undefined
        : (p) => {
            done.set(p.digest, p.doneBytes);
            if (Date.now() - last < 500 && p.doneBytes < p.totalBytes) return;
            last = Date.now();
            const got = [...done.values()].reduce((a, b) => a + b, 0);
            process.stderr.write(
              `${p.digest.slice(7, 19)}: ${humanSize(p.doneBytes)}/` +
                `${humanSize(p.totalBytes)} (all: ${humanSize(got)})\n`,
            );
          },
    });
    const image = await store.addImage({
      manifest: pulled.manifest,
      manifestDigest: pulled.manifestDigest,
      config: pulled.config,
      layers: pulled.layers,
      refs: [pulled.ref],
    });
    if (!v.quiet)
      process.stdout.write(
        `Digest: ${pulled.indexDigest ?? pulled.manifestDigest}\nStatus: downloaded ${pulled.ref}\n`,
      );
    process.stdout.write(`${image.id}\n`);
    return 0;
  },
};
