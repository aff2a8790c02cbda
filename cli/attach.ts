// keel attach CONTAINER: follow a running container's output from now on until it exits.
// Detached containers have no stdin (it is /dev/null), so there is nothing to send to them.
import type { Verb } from './main.js';
import { ContainerDb } from '../containers/db.js';
import { printContainerLog } from './container-verbs.js';
import { ROOT_OPTION } from './container-common.js';

export const verb: Verb = {
  summary: 'Follow the output of a running container (its stdin is not connected).',
  usage: 'keel attach [--root DIR] CONTAINER',
  options: { ...ROOT_OPTION },
  async run(v, [name]) {
    if (!name) throw new TypeError('keel attach: name a container');
    const db = new ContainerDb(String(v.root));
    const { config, state } = db.resolve(name);
    if (state.status !== 'running') throw new Error(`keel attach: container ${config.name} is not running`);
    await printContainerLog(db, config.id, { follow: true, tail: 0 });
    return db.state(config.id).exitCode ?? 0;
  },
};
