// The shape of a unit's status as PID 1 reports it, and how `keel status` prints it.
import type { JournalEntry } from '../init/journal.js';
import type { UnitStatus } from '../init/unit-status.js';

export type { UnitStatus };

const BULLET: Record<string, string> = {
  active: '●',
  reloading: '●',
  failed: '×',
  activating: '●',
  deactivating: '●',
  inactive: '○',
};

function bytes(n: number): string {
  for (const [u, s] of [
    ['G', 2 ** 30],
    ['M', 2 ** 20],
    ['K', 1024],
  ] as const)
    if (n >= s) return `${(n / s).toFixed(1)}${u}`;
  return `${n}B`;
}

/** Renders a status the way `systemctl status` lays it out. */
export function formatStatus(s: UnitStatus, now = Date.now()): string {
  const lines = [`${BULLET[s.activeState] ?? '●'} ${s.name} - ${s.description}`];
  const where = s.fragmentPath ? `${s.fragmentPath}; ${s.enabled}` : s.enabled;
  lines.push(`     Loaded: ${s.loadState}${s.loadState === 'loaded' ? ` (${where})` : ''}`);
  if (s.dropIns.length) lines.push(`    Drop-In: ${s.dropIns.join('\n             ')}`);
  const since = s.since
    ? ` since ${new Date(s.since)
        .toISOString()
        .replace('T', ' ')
        .replace(/\.\d+Z$/, ' UTC')}; ${Math.max(0, Math.round((now - s.since) / 1000))}s ago`
    : '';
  lines.push(
    `     Active: ${s.activeState} (${s.subState})` +
      `${s.result && s.result !== 'success' ? ` (Result: ${s.result})` : ''}${since}`,
  );
  if (s.statusText) lines.push(`     Status: "${s.statusText}"`);
  if (s.mainPid) lines.push(`   Main PID: ${s.mainPid}`);
  if (s.tasks !== null) lines.push(`      Tasks: ${s.tasks}`);
  if (s.memory !== null) lines.push(`     Memory: ${bytes(s.memory)}`);
  if (s.logs?.length) {
    lines.push('');
    for (const e of s.logs)
      lines.push(
        `${new Date(e.ts).toISOString().slice(0, 19).replace('T', ' ')} ` +
          `${e.unit}${e.pid ? `[${e.pid}]` : ''}: ${e.message}`,
      );
  }
  return lines.join('\n') + '\n';
}

/** One journal entry as `keel logs` prints it. */
export function formatEntry(e: JournalEntry): string {
  return (
    `${new Date(e.ts).toISOString().slice(0, 23).replace('T', ' ')} ` +
    `${e.unit}${e.pid ? `[${e.pid}]` : ''}: ${e.message}\n`
  );
}
