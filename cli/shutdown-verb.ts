// reboot, poweroff, halt: ask PID 1 to stop every unit in order and then end the machine.
import type { Verb } from './main.js';
import { request } from './control-client.js';

/** The verb for one kind of shutdown. */
export function shutdownVerb(kind: 'reboot' | 'poweroff' | 'halt'): Verb {
  return {
    summary: `${kind[0].toUpperCase()}${kind.slice(1)} the machine after stopping all units.`,
    usage: `keel ${kind}`,
    options: {},
    async run() {
      await request('shutdown', { kind });
      return 0;
    },
  };
}
