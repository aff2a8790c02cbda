// keel save -o FILE REF...: images into a docker-save (default) or OCI archive.
import type { Verb } from './main.js';
import { saveArchive } from '../containers/archive.js';
import { ROOT_OPTION, storeAt } from './container-common.js';

export const verb: Verb = {
  summary: 'Save images to an archive `keel load` and docker load read.',
  usage: 'keel save -o FILE [--format docker|oci] [--root DIR] REF...',
  options: { ...ROOT_OPTION, output: { type: 'string', short: 'o' }, format: { type: 'string', default: 'docker' } },
  async run(v, refs) {
    if (!v.output) throw new TypeError('keel save: give the archive with -o FILE');
    if (!refs.length) throw new TypeError('keel save: name at least one image');
    if (v.format !== 'docker' && v.format !== 'oci')
      throw new TypeError(`keel save: unknown --format ${JSON.stringify(v.format)} (use: docker, oci)`);
    await saveArchive(storeAt(v), refs, String(v.output), v.format);
    return 0;
  },
};
