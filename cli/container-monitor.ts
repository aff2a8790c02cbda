// keel container-monitor ID (started by keel run -d): runs the container with its output in
// the container's log, records how it ended, restarts it as its policy says, removes it for --rm.
import { closeSync, openSync } from 'node:fs';
import type { Verb } from './main.js';
import { ContainerDb } from '../containers/db.js';
import { finished, released, shouldRestart, start } from '../containers/engine.js';
import { ROOT_OPTION, storeAt } from './container-common.js';

export const verb: Verb = {
  summary: 'Supervise one detached container (started by keel run -d; not for direct use).',
  usage: 'keel container-monitor [--root DIR] ID',
  options: { ...ROOT_OPTION },
  async run(v, [id]) {
    const db = new ContainerDb(String(v.root));
    const store = storeAt(v);
    const { config } = db.resolve(id);
    let stopped = false;
    let restarts = 0;
    try {
      for (;;) {
        const log = openSync(db.path(config.id, 'container.log'), 'a');
        const nul = openSync('/dev/null', 'r');
        let c;
        try { c = start(db, store, config, { stdin: nul, stdout: log, stderr: log }, restarts); } finally { closeSync(log); closeSync(nul); }
        // keel stop signals the container directly; SIGTERM to us means the same.
        process.once('SIGTERM', () => { stopped = true; void c.stop(10_000); });
        const exit = await c.wait();
        finished(db, config.id, exit);
        if (!shouldRestart(config, exit, restarts, stopped || db.stopRequested(config.id))) break;
        restarts++;
        await new Promise((r) => setTimeout(r, Math.min(100 * 2 ** restarts, 10_000)));
      }
    } finally {
      // Stopped for good: its address, published ports and network namespace go (kept across restarts).
      released(db, config.id);
      if (config.autoRemove) db.remove(config.id);
    }
    return 0;
  },
};
