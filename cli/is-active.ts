// keel is-active UNIT...: prints each active state; exit 0 when all are active (systemctl's rule).
import type { Verb } from './main.js';
import { request } from './control-client.js';
import type { UnitStatus } from './unit-status.js';

export const verb: Verb = {
  summary: 'Print whether units are active (exit 0 if all are, 3 otherwise).',
  usage: 'keel is-active UNIT... [-q]',
  options: { quiet: { type: 'boolean', short: 'q', default: false } },
  async run(v, units) {
    let code = 0;
    for (const unit of units) {
      const s = (await request('status', { unit, lines: 0 })) as UnitStatus;
      if (!v.quiet) process.stdout.write(`${s.activeState}\n`);
      if (s.activeState !== 'active' && s.activeState !== 'reloading') code = 3;
    }
    return code;
  },
};
