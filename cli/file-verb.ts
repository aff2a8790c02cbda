// enable, disable, mask, unmask: change unit-file links through PID 1 and print what changed.
import type { Verb } from './main.js';
import { request } from './control-client.js';

/** A verb that edits links for each unit, like systemctl's unit-file commands. */
export function fileVerb(op: 'enable' | 'disable' | 'mask' | 'unmask', summary: string): Verb {
  const withNow = op === 'enable' || op === 'disable' || op === 'mask';
  return {
    summary,
    usage: `keel ${op} UNIT...${withNow ? ' [--now]' : ''}`,
    options: withNow ? { now: { type: 'boolean', default: false } } : {},
    async run(v, units) {
      if (units.length === 0) throw new TypeError(`keel ${op}: name at least one unit`);
      const r = (await request(op, { units, now: !!v.now })) as {
        changes: { type: 'symlink' | 'unlink'; path: string; target?: string }[];
        failed: string[];
      };
      for (const c of r.changes)
        process.stderr.write(
          c.type === 'symlink' ? `Created symlink ${c.path} → ${c.target}.\n` : `Removed "${c.path}".\n`,
        );
      return r.failed.length ? 1 : 0;
    },
  };
}
