// keel reboot: stop every unit in order, then reboot the machine.
import type { Verb } from './main.js';
import { request } from './control-client.js';

export const verb: Verb = {
  summary: 'Reboot the machine after stopping all units.',
  usage: 'keel reboot',
  options: {},
  async run() {
    await request('shutdown', { kind: 'reboot' });
    return 0;
  },
};
