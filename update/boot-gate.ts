// The boot-complete gate: a slot on trial becomes the committed system (OK=1) only after the
// default target is up, every unit ordered before boot-complete.target succeeded, and nothing of
// that failed for a while. A failure marks the slot bad at once; the caller reboots into the other.
// Also reports a rollback: a boot that did not come from the first slot in ORDER.
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Slot, SlotState } from '../slots/rule.js';
import { bootedSlot, otherSlot, readSlotState, withSlot, writeSlotState } from '../slots/store.js';

/** What happened to an earlier update, as `keel update status` shows it. */
export interface RollbackRecord {
  at: string;
  failed: Slot;
  failedVersion?: string;
  running: Slot;
  runningVersion?: string;
  reason?: string;
}

/** Keeps the last rollback for `keel update status` (rollback.json in the agent's state). */
function recordRollback(stateDir: string, r: RollbackRecord): void {
  mkdirSync(stateDir, { recursive: true });
  writeFileSync(join(stateDir, 'rollback.json'), JSON.stringify(r) + '\n');
}

/** What the gate decides at boot, before any unit runs. Pure. */
export function bootVerdict(
  state: SlotState,
  booted: Slot,
): { trial: boolean; rollback: RollbackRecord | null; next: SlotState | null } {
  const first = state.order[0];
  let next: SlotState | null = null;
  let rollback: RollbackRecord | null = null;
  if (first !== booted && !state[first].ok) {
    // GRUB passed over the first slot: its tries ran out (or it failed to load). Say so once,
    // and put the running slot first again so the next boot does not try the bad one.
    rollback = {
      at: new Date().toISOString(),
      failed: first,
      running: booted,
      ...(state[first].version ? { failedVersion: state[first].version } : {}),
      ...(state[booted].version ? { runningVersion: state[booted].version } : {}),
    };
    next = withSlot(state, first, { ok: false, tries: 0 }, [booted, first]);
  }
  return { trial: !state[booted].ok, rollback, next };
}

/** The units a trial boot must see succeed: ordered before boot-complete.target, or required by it. */
export interface GateUnits {
  /** Starts boot-complete.target; resolves with the job result ('done' on success). */
  startBootComplete(): Promise<string>;
  /** Units ordered before (or required by) boot-complete.target that are in the failed state. */
  failedHealthUnits(): string[];
}

/** Options of the gate. */
export interface GateOptions {
  esp: string;
  cmdline: string;
  stateDir: string;
  healthySeconds: number;
  units: GateUnits;
  log(message: string): void;
  /** Reboots the machine (the gate marked the slot bad). */
  reboot(): void;
  sleep?: (ms: number) => Promise<void>;
  /** True once the machine is shutting down: a boot being stopped is not committed. */
  stopping?: () => boolean;
}

const defaultSleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/** Reports a rollback (journal and rollback.json) and fixes ORDER; says whether this boot is a trial. */
export function reportRollback(o: Pick<GateOptions, 'esp' | 'cmdline' | 'stateDir' | 'log'>): {
  booted: Slot | null;
  trial: boolean;
} {
  const booted = bootedSlot(o.cmdline);
  if (!booted) return { booted: null, trial: false };
  const { state } = readSlotState(o.esp);
  const v = bootVerdict(state, booted);
  if (v.rollback) {
    const r = v.rollback;
    o.log(
      `rollback: slot ${r.failed}` +
        `${r.failedVersion ? ` (version ${r.failedVersion})` : ''} did not boot; ` +
        `running slot ${r.running}${r.runningVersion ? ` (version ${r.runningVersion})` : ''}`,
    );
    recordRollback(o.stateDir, r);
  }
  if (v.next) writeSlotState(o.esp, v.next);
  return { booted, trial: v.trial };
}

/** Runs the gate for a trial boot; resolves 'committed', 'bad' (after asking for the reboot), or
 *  'stopped' when the machine began shutting down first (the slot stays on trial). */
export async function runBootGate(o: GateOptions, booted: Slot): Promise<'committed' | 'bad' | 'stopped'> {
  const stopping = o.stopping ?? (() => false);
  const sleep = o.sleep ?? defaultSleep;
  const bad = (why: string): 'bad' => {
    const { state } = readSlotState(o.esp);
    const other = otherSlot(booted);
    writeSlotState(o.esp, withSlot(state, booted, { ok: false, tries: 0 }, [other, booted]));
    o.log(`slot ${booted} marked bad: ${why}; rebooting into slot ${other}`);
    // The next boot comes from the first slot in ORDER, so it reports nothing: record it here.
    recordRollback(o.stateDir, {
      at: new Date().toISOString(),
      failed: booted,
      running: other,
      reason: why,
      ...(state[booted].version ? { failedVersion: state[booted].version } : {}),
      ...(state[other].version ? { runningVersion: state[other].version } : {}),
    });
    o.reboot();
    return 'bad';
  };
  const result = await o.units.startBootComplete();
  if (result !== 'done')
    return bad(`boot-complete.target failed (${result}; failed: ${o.units.failedHealthUnits().join(', ') || 'none'})`);
  // The wait is counted in time slept, not read from the wall clock: early in a boot the clock
  // may still be stepped (NTP, RTC), which would cut the wait short or stretch it for hours.
  for (let left = o.healthySeconds * 1000; left > 0;) {
    if (stopping()) return 'stopped';
    const failed = o.units.failedHealthUnits();
    if (failed.length) return bad(`${failed.join(', ')} failed`);
    const step = Math.min(1000, left);
    await sleep(step);
    left -= step;
  }
  // Stopping units fails nothing on purpose, but a shutdown is not "stayed healthy" either.
  if (stopping()) return 'stopped';
  const failed = o.units.failedHealthUnits();
  if (failed.length) return bad(`${failed.join(', ')} failed`);
  const { state } = readSlotState(o.esp);
  writeSlotState(o.esp, withSlot(state, booted, { ok: true, tries: 0 }, [booted, otherSlot(booted)]));
  o.log(
    `boot committed: slot ${booted}` +
      `${state[booted].version ? ` (version ${state[booted].version})` : ''} is good ` +
      `after ${o.healthySeconds}s healthy`,
  );
  return 'committed';
}
