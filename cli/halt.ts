// keel halt: stop every unit in order, then halt the machine.
import type { Verb } from './main.js';
import { request } from './control-client.js';

export const verb: Verb = {
  summary: 'Halt the machine after stopping all units.',
  usage: 'keel halt',
  options: {},
  async run() {
    await request('shutdown', { kind: 'halt' });
    return 0;
  },
};
