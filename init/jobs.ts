// Running a transaction: jobs start as soon as everything ordered before them has finished, so
// independent units start in parallel; a failed hard dependency fails its dependents.
import { buildTransaction, dependentsToFail, ready, type Transaction } from '../units/transaction.js';
import type { UnitConfig } from '../units/types.js';

/** How a job ended, as systemctl reports it. */
export type JobResult = 'done' | 'failed' | 'dependency' | 'skipped' | 'canceled' | 'timeout' | 'assert';

/** Runs one unit's job and says how it ended. */
export type JobExecutor = (unit: string, job: 'start' | 'stop' | 'verify-active' | 'restart') => Promise<JobResult>;

/** Builds and runs the transaction for `anchor`; resolves with the anchor's result. */
export async function runTransaction(
  units: ReadonlyMap<string, UnitConfig>,
  anchor: { unit: string; job: 'start' | 'stop' | 'restart' },
  active: ReadonlySet<string>,
  exec: JobExecutor,
  log: (m: string) => void,
): Promise<{ result: JobResult; tx: Transaction }> {
  const tx = buildTransaction(units, anchor, active);
  for (const b of tx.brokenCycles)
    log(`Found ordering cycle: ${b.cycle.join(' -> ')}; job ${b.deleted} deleted to break it`);
  const anchorFailure =
    tx.failures.find((f) => f.unit === tx.anchor) ?? (tx.jobs.size === 0 ? tx.failures[0] : undefined);
  for (const f of tx.failures) log(`${f.unit}: ${f.reason}`);
  if (anchorFailure || (tx.jobs.size === 0 && tx.failures.length)) return { result: 'failed', tx };
  const done = new Set<string>();
  const failed = new Set<string>();
  const running = new Set<string>();
  const results = new Map<string, JobResult>();
  await new Promise<void>((resolve) => {
    const finish = (u: string, r: JobResult) => {
      running.delete(u);
      results.set(u, r);
      if (r === 'done' || r === 'skipped') done.add(u);
      else {
        failed.add(u);
        for (const d of dependentsToFail(tx, u)) {
          if (!results.has(d) && !running.has(d)) {
            results.set(d, 'dependency');
            failed.add(d);
            log(`Dependency failed for ${d}.`);
          }
        }
      }
      pump();
    };
    const pump = () => {
      for (const u of ready(tx, done, failed, running)) {
        running.add(u);
        const job = tx.jobs.get(u)!;
        exec(u, job).then(
          (r) => finish(u, r),
          (e) => {
            log(`${u}: ${(e as Error).message}`);
            finish(u, 'failed');
          },
        );
      }
      if (running.size === 0 && results.size >= tx.jobs.size) resolve();
      else if (running.size === 0 && ready(tx, done, failed, running).length === 0) resolve();
    };
    pump();
  });
  return { result: results.get(tx.anchor) ?? (failed.size ? 'failed' : 'done'), tx };
}
