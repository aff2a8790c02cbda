// keel rmi REF...: untag images, and delete those left without a tag (and their unused layers).
import type { Verb } from './main.js';
import { familiarRef } from '../containers/store.js';
import { ROOT_OPTION, storeAt } from './container-common.js';

export const verb: Verb = {
  summary: 'Remove images (untag; delete when no tag is left).',
  usage: 'keel rmi [-f] [--root DIR] REF...',
  options: { ...ROOT_OPTION, force: { type: 'boolean', short: 'f', default: false } },
  async run(v, refs) {
    if (!refs.length) throw new TypeError('keel rmi: name at least one image');
    const store = storeAt(v);
    let code = 0;
    for (const ref of refs) {
      try {
        const r = store.remove(ref, { force: Boolean(v.force) });
        for (const u of r.untagged) process.stdout.write(`Untagged: ${familiarRef(u)}\n`);
        for (const d of r.deleted) process.stdout.write(`Deleted: ${d}\n`);
      } catch (e) {
        process.stderr.write(`keel rmi: ${(e as Error).message}\n`);
        code = 1;
      }
    }
    return code;
  },
};
