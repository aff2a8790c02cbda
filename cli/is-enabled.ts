// keel is-enabled UNIT...: enabled, disabled, static, masked, alias, indirect (exit 0 if enabled).
import type { Verb } from './main.js';
import { request } from './control-client.js';
import type { UnitStatus } from './unit-status.js';

const ENABLED = new Set(['enabled', 'enabled-runtime', 'static', 'alias', 'indirect', 'generated']);

export const verb: Verb = {
  summary: 'Print whether units are enabled (exit 0 if all are enabled or static).',
  usage: 'keel is-enabled UNIT... [-q]',
  options: { quiet: { type: 'boolean', short: 'q', default: false } },
  async run(v, units) {
    let code = 0;
    for (const unit of units) {
      const s = (await request('status', { unit, lines: 0 })) as UnitStatus;
      if (s.loadState === 'not-found') {
        process.stderr.write(`Failed to get unit file state for ${unit}: No such file or directory\n`);
        code = 4;
        continue;
      }
      if (!v.quiet) process.stdout.write(`${s.enabled}\n`);
      if (!ENABLED.has(s.enabled)) code = Math.max(code, 1);
    }
    return code;
  },
};
