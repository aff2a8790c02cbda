// The A/B slot state as the running system reads and writes it: two grubenv copies on the ESP
// (mounted at /run/keel/esp by the init). GRUB reads the first good copy; every writer writes the
// second copy first, in place with fsync, so a torn write always leaves one whole copy.
import { closeSync, fsyncSync, openSync, readFileSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { decodeGrubenv, encodeGrubenv } from './grubenv.js';
import { slotState, slotVars, type Slot, type SlotState } from './rule.js';

/** Where the init mounts the ESP. */
export const ESP_DIR = '/run/keel/esp';

/** The two copies, in the order GRUB reads them. */
export function grubenvFiles(esp = ESP_DIR): [string, string] {
  return [join(esp, 'keel/grubenv'), join(esp, 'keel/grubenv2')];
}

/** The other slot. */
export const otherSlot = (s: Slot): Slot => (s === 'A' ? 'B' : 'A');

/** The slot this boot came from (keel.slot= on the kernel command line), or null. */
export function bootedSlot(cmdline: string): Slot | null {
  const m = /(?:^|\s)keel\.slot=([AB])(?:\s|$)/.exec(cmdline);
  return m ? (m[1] as Slot) : null;
}

/** A copy's variables, or null when it is missing or not a valid grubenv. */
export function readCopy(file: string): Map<string, string> | null {
  try {
    return decodeGrubenv(readFileSync(file));
  } catch {
    return null;
  }
}

/** The state from the first good copy (as GRUB reads it); GRUB's defaults when neither is good. */
export function readSlotState(esp = ESP_DIR): { state: SlotState; vars: Map<string, string>; copy: string | null } {
  for (const f of grubenvFiles(esp)) {
    const vars = readCopy(f);
    if (vars) return { state: slotState(vars), vars, copy: f };
  }
  return { state: slotState(new Map()), vars: new Map(), copy: null };
}

/** Overwrites an existing file's bytes in place and fsyncs it (no rename: GRUB's save_env writes these blocks). */
export function writeInPlace(path: string, data: Buffer): void {
  const fd = openSync(path, 'r+');
  try {
    writeSync(fd, data, 0, data.length, 0);
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
}

/** Writes `state` to both copies, second first; variables it does not own are kept. */
export function writeSlotState(
  esp: string,
  state: SlotState,
  keep: Map<string, string> = readSlotState(esp).vars,
): void {
  const vars = new Map([...keep].filter(([k]) => !/^KEEL_(ORDER|[AB]_(OK|TRIES|HASH|VERSION))$/.test(k)));
  for (const [k, v] of slotVars(state)) vars.set(k, v);
  const data = encodeGrubenv([...vars]);
  const [first, second] = grubenvFiles(esp);
  writeInPlace(second, data);
  writeInPlace(first, data);
}

/** A copy of a state with one slot changed. */
export function withSlot(s: SlotState, slot: Slot, info: Partial<SlotState['A']> | null, order?: Slot[]): SlotState {
  const next: SlotState = { order: order ?? [...s.order], A: { ...s.A }, B: { ...s.B } };
  if (info === null) next[slot] = { ok: false, tries: 0 };
  else next[slot] = { ...next[slot], ...info };
  return next;
}

/** One line per slot for people: "A: good, version 0.1.0 (booted)". */
export function describeSlots(s: SlotState, booted: Slot | null): string[] {
  return (['A', 'B'] as Slot[]).map((x) => {
    const i = s[x];
    const what = i.ok
      ? 'good'
      : i.tries > 0
        ? `new, ${i.tries} ${i.tries === 1 ? 'try' : 'tries'} left`
        : i.hash
          ? 'bad'
          : 'empty';
    const notes = [x === s.order[0] ? 'boots next' : '', x === booted ? 'booted' : ''].filter(Boolean);
    return `${x}: ${what}${i.version ? `, version ${i.version}` : ''}${notes.length ? ` (${notes.join(', ')})` : ''}`;
  });
}
