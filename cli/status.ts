// keel status [UNIT...]: the state of units (or of the system) from PID 1.
import type { Verb } from './main.js';
import { wholeNumber } from './options.js';
import { request } from './control-client.js';
import { formatStatus, type UnitStatus } from './unit-status.js';

export const verb: Verb = {
  summary: 'Show the state of units, with their latest log lines.',
  usage: 'keel status [UNIT...] [-n LINES]',
  options: { lines: { type: 'string', short: 'n', default: '10' } },
  async run(v, units) {
    if (units.length === 0) {
      const sys = (await request('system-status')) as {
        state: string;
        jobs: number;
        failed: string[];
        units: number;
        bootId: string;
        cloudConfig?: { source: string; kind: string; report: string[]; applied: boolean; errors: string[] }[];
      };
      process.stdout.write(
        `State: ${sys.state}\nJobs: ${sys.jobs} queued\n` +
          `Failed: ${sys.failed.length} units` +
          `${sys.failed.length ? ` (${sys.failed.join(', ')})` : ''}\n` +
          `Units: ${sys.units} loaded\nBoot: ${sys.bootId}\n`,
      );
      for (const c of sys.cloudConfig ?? []) {
        process.stdout.write(
          `User-data: ${c.source} (${c.kind}): ${c.applied ? 'applied' : 'not applied'}` +
            `${c.errors.length ? `, ${c.errors.length} errors` : ''}\n`,
        );
        for (const r of [...c.report, ...c.errors]) process.stdout.write(`  ${r}\n`);
      }
      return sys.state === 'running' ? 0 : 1;
    }
    let code = 0;
    for (const name of units) {
      const s = (await request('status', {
        unit: name,
        lines: wholeNumber(v.lines, '-n', 'keel status') ?? undefined,
      })) as UnitStatus;
      process.stdout.write(formatStatus(s));
      if (s.loadState === 'not-found') code = Math.max(code, 4);
      else if (s.activeState !== 'active' && s.activeState !== 'reloading') code = Math.max(code, 3);
    }
    return code;
  },
};
