// What the control socket answers: each verb calls the manager or the journal.
import { ControlError, type VerbHandler } from './control.js';
import type { Manager } from './manager.js';
import type { Journal } from './journal.js';
import type { ShutdownKind } from './shutdown.js';
import type { FileChange } from './unit-files.js';

const str = (v: unknown, what: string): string => {
  if (typeof v !== 'string' || !v) throw new ControlError('EARG', `missing ${what}`);
  return v;
};

/** Verbs any user may call; the others change the system and need root. Logs need root too. */
export const READ_ONLY_VERBS = new Set(['system-status', 'status', 'list-units', 'timeline']);

/** The verb table for startControlServer. */
export function controlVerbs(
  m: Manager,
  journal: Journal,
  bootId: string,
  shutdown: (kind: ShutdownKind) => void,
  cloudConfig: () => unknown[] = () => [],
): Record<string, VerbHandler> {
  const fileOp =
    (op: 'enable' | 'disable' | 'mask' | 'unmask'): VerbHandler =>
    async (args) => {
      const units = Array.isArray(args.units) ? args.units.map(String) : [];
      const changes: FileChange[] = [];
      const failed: string[] = [];
      for (const u of units) {
        try {
          changes.push(...m.files[op](u));
        } catch (e) {
          failed.push(u);
          throw new ControlError('EUNIT', (e as Error).message);
        }
      }
      m.load();
      if (args.now) {
        for (const u of units) await m.job(u, op === 'enable' ? 'start' : 'stop');
      }
      return { changes, failed };
    };
  return {
    'system-status': () => ({
      state: m.queuedJobs > 0 ? 'starting' : m.failed().length ? 'degraded' : 'running',
      jobs: m.queuedJobs,
      failed: m.failed(),
      units: m.runtimes.size,
      bootId,
      cloudConfig: cloudConfig(),
    }),
    // Only root sees log lines in status, as only privileged users read the journal.
    status: (args, ctx) =>
      m.status(
        str(args.unit, 'unit'),
        ctx.uid === 0 && typeof args.lines === 'number' ? args.lines : ctx.uid === 0 ? 10 : 0,
      ),
    'list-units': () => m.list(),
    job: async (args) => {
      const unit = str(args.unit, 'unit');
      const job = str(args.job, 'job');
      if (!['start', 'stop', 'restart', 'reload'].includes(job))
        throw new ControlError('EARG', `unknown job type ${job}`);
      if (args.wait === false) {
        void m.backgroundJob(unit, job as 'start', { unit: 'keel', why: 'a control request' });
        return { unit: m.resolve(unit), result: 'queued' };
      }
      return { unit: m.resolve(unit), result: await m.job(unit, job as 'start') };
    },
    enable: fileOp('enable'),
    disable: fileOp('disable'),
    mask: fileOp('mask'),
    unmask: fileOp('unmask'),
    'daemon-reload': () => ({ diagnostics: m.load(), units: m.runtimes.size }),
    logs: (args, ctx) => {
      const q = {
        unit: typeof args.unit === 'string' ? m.resolve(args.unit) : undefined,
        lines: typeof args.lines === 'number' ? args.lines : undefined,
        since: typeof args.since === 'number' ? args.since : undefined,
        currentBoot: args.currentBoot === true,
      };
      const entries = journal.query(q);
      if (!args.follow) return entries;
      ctx.streaming();
      for (const e of entries) ctx.emit(e);
      ctx.onClose(journal.follow({ ...q, lines: undefined }, (e) => ctx.emit(e)));
      return undefined;
    },
    timeline: () => m.timeline(),
    shutdown: (args) => {
      const kind = str(args.kind, 'kind');
      if (!['poweroff', 'reboot', 'halt'].includes(kind))
        throw new ControlError('EARG', `unknown shutdown kind ${kind}`);
      setImmediate(() => shutdown(kind as ShutdownKind));
      return { kind };
    },
  };
}
