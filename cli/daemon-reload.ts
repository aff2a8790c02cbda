// keel daemon-reload: PID 1 reads every unit file again.
import type { Verb } from './main.js';
import { request } from './control-client.js';

export const verb: Verb = {
  summary: 'Reload all unit files.',
  usage: 'keel daemon-reload',
  options: {},
  async run() {
    const r = (await request('daemon-reload')) as { units: number; diagnostics: string[] };
    for (const d of r.diagnostics) process.stderr.write(`${d}\n`);
    return 0;
  },
};
