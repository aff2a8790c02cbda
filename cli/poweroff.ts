// keel poweroff: stop every unit in order, then poweroff the machine.
import type { Verb } from './main.js';
import { request } from './control-client.js';

export const verb: Verb = {
  summary: 'Poweroff the machine after stopping all units.',
  usage: 'keel poweroff',
  options: {},
  async run() {
    await request('shutdown', { kind: 'poweroff' });
    return 0;
  },
};
