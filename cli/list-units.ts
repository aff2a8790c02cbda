// keel list-units: every loaded unit with its load, active and sub state.
import type { Verb } from './main.js';
import { request } from './control-client.js';
import type { UnitStatus } from './unit-status.js';

export const verb: Verb = {
  summary: 'List loaded units.',
  usage: 'keel list-units [--all] [--state STATE] [--format json]',
  options: {
    all: { type: 'boolean', short: 'a', default: false },
    state: { type: 'string' },
    format: { type: 'string' },
  },
  async run(v) {
    let units = (await request('list-units')) as UnitStatus[];
    if (!v.all) units = units.filter((u) => u.activeState !== 'inactive' || u.loadState !== 'loaded');
    if (v.state) units = units.filter((u) => u.activeState === v.state || u.subState === v.state);
    if (v.format === 'json') {
      process.stdout.write(JSON.stringify(units, null, 2) + '\n');
      return 0;
    }
    const w = Math.max(4, ...units.map((u) => u.name.length));
    process.stdout.write(`${'UNIT'.padEnd(w)} LOAD      ACTIVE     SUB          DESCRIPTION\n`);
    for (const u of units)
      process.stdout.write(
        `${u.name.padEnd(w)} ${u.loadState.padEnd(9)} ` +
          `${u.activeState.padEnd(10)} ${u.subState.padEnd(12)} ${u.description}\n`,
      );
    process.stdout.write(`\n${units.length} units listed.\n`);
    return 0;
  },
};
