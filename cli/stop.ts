// keel stop UNIT...: stop units through PID 1 and wait for the job's result; keel stop CONTAINER...
// stops containers (SIGTERM, then SIGKILL after -t seconds) as docker stop does.
import type { Verb } from './main.js';
import { jobVerb } from './job-verb.js';
import { asContainers, stopContainer } from './container-verbs.js';
import { wholeNumber } from './options.js';
import { DEFAULT_ROOT } from '../containers/store.js';

const units = jobVerb('stop', 'Stop units.');

export const verb: Verb = {
  summary: 'Stop units, or containers.',
  usage: 'keel stop UNIT... | keel stop [-t SECONDS] [--root DIR] CONTAINER...',
  options: {
    ...units.options,
    time: { type: 'string', short: 't', default: '10' },
    root: { type: 'string', default: DEFAULT_ROOT },
  },
  async run(v, names) {
    const db = process.env.KEEL_PROGRAM === 'systemctl' ? null : asContainers(names, String(v.root));
    if (!db) return units.run(v, names);
    const seconds = wholeNumber(v.time, '-t', 'keel stop')!;
    for (const n of names) {
      await stopContainer(db, n, seconds);
      process.stdout.write(`${n}\n`);
    }
    return 0;
  },
};
