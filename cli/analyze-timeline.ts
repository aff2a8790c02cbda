// keel analyze blame | critical-chain | time: the boot timeline PID 1 recorded, shown the way
// systemd-analyze shows it.

/** One unit's activation as the control socket's `timeline` verb reports it (ms since kernel start). */
export interface TimelineEntry {
  unit: string;
  activating: number;
  active: number | null;
  after: string[];
}

const fmt = (ms: number) => (ms >= 1000 ? `${(ms / 1000).toFixed(3)}s` : `${Math.round(ms)}ms`);

/** Units by how long they took to become active, slowest first. */
export function blame(t: TimelineEntry[]): string {
  return (
    t
      .filter((e) => e.active !== null)
      .map((e) => ({ unit: e.unit, took: e.active! - e.activating }))
      .sort((a, b) => b.took - a.took)
      .map((e) => `${fmt(e.took).padStart(9)} ${e.unit}`)
      .join('\n') + '\n'
  );
}

/**
 * The chain of units that held up `target`: from it, repeatedly the After= dependency that
 * became active last, as systemd-analyze critical-chain prints it (@ when active, + how long).
 */
export function criticalChain(t: TimelineEntry[], target: string): string {
  const by = new Map(t.map((e) => [e.unit, e]));
  const lines: string[] = [];
  const seen = new Set<string>();
  for (let e = by.get(target); e && !seen.has(e.unit);) {
    seen.add(e.unit);
    const took = e.active !== null ? e.active - e.activating : 0;
    lines.push(
      `${'  '.repeat(lines.length)}${lines.length ? '└─' : ''}${e.unit} ` +
        `@${fmt(e.active ?? e.activating)}${took > 0 ? ` +${fmt(took)}` : ''}`,
    );
    const deps = e.after.map((u) => by.get(u)).filter((x): x is TimelineEntry => !!x && x.active !== null);
    e = deps.sort((a, b) => b.active! - a.active!)[0];
  }
  return lines.length ? lines.join('\n') + '\n' : `${target} has not started\n`;
}

/** "Startup finished in ..." from the target's activation. */
export function startupTime(t: TimelineEntry[], target: string): string {
  const e = t.find((x) => x.unit === target);
  return e?.active !== null && e
    ? `Startup finished in ${fmt(e.active!)} (kernel start to ${target})\n`
    : `${target} has not been reached\n`;
}
