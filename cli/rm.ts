// keel rm [-f] CONTAINER...: remove stopped containers (-f: stop them first).
import type { Verb } from './main.js';
import { ContainerDb } from '../containers/db.js';
import { released } from '../containers/engine.js';
import { stopContainer } from './container-verbs.js';
import { ROOT_OPTION } from './container-common.js';

export const verb: Verb = {
  summary: 'Remove containers.',
  usage: 'keel rm [-f] [--root DIR] CONTAINER...',
  options: { ...ROOT_OPTION, force: { type: 'boolean', short: 'f', default: false } },
  async run(v, names) {
    if (!names.length) throw new TypeError('keel rm: name at least one container');
    const db = new ContainerDb(String(v.root));
    let code = 0;
    for (const n of names) {
      try {
        const { config, state } = db.resolve(n);
        if (state.status === 'running' || state.status === 'restarting') {
          if (!v.force)
            throw new Error(`cannot remove ${state.status} container ${config.name}: stop it first, or use keel rm -f`);
          await stopContainer(db, config.id, 0);
        }
        // Its monitor releases its network when it ends; this covers a monitor that is gone.
        released(db, config.id);
        db.remove(config.id);
        process.stdout.write(`${n}\n`);
      } catch (e) {
        process.stderr.write(`keel rm: ${(e as Error).message}\n`);
        code = 1;
      }
    }
    return code;
  },
};
