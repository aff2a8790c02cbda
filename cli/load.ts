// keel load -i ARCHIVE: images from a `docker save` archive or an OCI archive.
import type { Verb } from './main.js';
import { loadArchive } from '../containers/archive.js';
import { familiarRef } from '../containers/store.js';
import { ROOT_OPTION, storeAt } from './container-common.js';

export const verb: Verb = {
  summary: 'Load images from a docker-save or OCI archive (plain, gzip or zstd).',
  usage: 'keel load -i ARCHIVE [--root DIR]',
  options: { ...ROOT_OPTION, input: { type: 'string', short: 'i' } },
  async run(v, rest) {
    const file = (v.input as string | undefined) ?? rest[0];
    if (!file) throw new TypeError('keel load: give the archive with -i FILE');
    for (const i of await loadArchive(storeAt(v), file)) {
      process.stdout.write(
        i.refs.length ? i.refs.map((r) => `Loaded image: ${familiarRef(r)}\n`).join('') : `Loaded image ID: ${i.id}\n`,
      );
    }
    return 0;
  },
};
