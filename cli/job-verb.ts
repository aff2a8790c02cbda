// start, stop, restart, reload and friends: ask PID 1 to run a job and wait for its result.
import type { Verb } from './main.js';
import { request } from './control-client.js';

/** A verb that sends `job` for each named unit and reports failures like systemctl. */
export function jobVerb(job: string, summary: string): Verb {
  return {
    summary,
    usage: `keel ${job} UNIT...${job === 'start' || job === 'restart' ? ' [--no-block]' : ''}`,
    options: { 'no-block': { type: 'boolean', default: false } },
    async run(v, units) {
      if (units.length === 0) throw new TypeError(`keel ${job}: name at least one unit`);
      let code = 0;
      for (const unit of units) {
        const r = (await request('job', { unit, job, wait: !v['no-block'] })) as { result: string; unit: string };
        if (r.result !== 'done' && r.result !== 'queued') {
          process.stderr.write(
            `Job for ${r.unit} failed (${r.result}). See "keel status ${r.unit}" ` +
              `and "keel logs -u ${r.unit}" for details.\n`,
          );
          code = 1;
        }
      }
      return code;
    },
  };
}
