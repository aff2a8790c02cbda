// keel inspect NAME...: containers or images as JSON.
import type { Verb } from './main.js';
import { ContainerDb } from '../containers/db.js';
import { ROOT_OPTION, storeAt } from './container-common.js';

export const verb: Verb = {
  summary: 'Show containers or images as JSON.',
  usage: 'keel inspect [--root DIR] CONTAINER|IMAGE...',
  options: { ...ROOT_OPTION, format: { type: 'string' } },
  async run(v, names) {
    if (!names.length) throw new TypeError('keel inspect: name at least one container or image');
    const db = new ContainerDb(String(v.root));
    const store = storeAt(v);
    const out: unknown[] = [];
    for (const n of names) {
      try {
        const c = db.resolve(n);
        out.push({ ...c.config, state: c.state });
        continue;
      } catch {
        /* an image, then */
      }
      try {
        out.push(store.resolve(n));
      } catch (e) {
        if ((e as { code?: string }).code === 'ENOIMAGE')
          throw new Error(`keel inspect: no such container or image: ${n}`, { cause: e });
        throw e;
      }
    }
    process.stdout.write(JSON.stringify(out, null, 2) + '\n');
    return 0;
  },
};
