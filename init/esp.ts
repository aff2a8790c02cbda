// The ESP at boot: found by its GPT name, mounted at /run/keel/esp, and the two grubenv copies
// checked; a bad copy is repaired from the good one, in place (GRUB's save_env writes those
// same blocks), so the next update never starts from a torn state.
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { decodeGrubenv, encodeGrubenv } from '../slots/grubenv.js';
import { slotState, slotVars } from '../slots/rule.js';
import { writeInPlace } from '../slots/store.js';

/** /dev/NAME of the partition whose GPT name is `label`, from sysfs, or null. */
export function findPartition(label: string, sysBlock = '/sys/class/block'): string | null {
  let names: string[] = [];
  try {
    names = readdirSync(sysBlock);
  } catch {
    return null;
  }
  for (const n of names.sort()) {
    let uevent = '';
    try {
      uevent = readFileSync(join(sysBlock, n, 'uevent'), 'utf8');
    } catch {
      continue;
    }
    if (uevent.split('\n').includes(`PARTNAME=${label}`)) return `/dev/${/^DEVNAME=(.*)$/m.exec(uevent)?.[1] ?? n}`;
  }
  return null;
}

function valid(buf: Buffer | null): boolean {
  if (!buf) return false;
  try {
    decodeGrubenv(buf);
    return true;
  } catch {
    return false;
  }
}

/** Checks keel/grubenv and keel/grubenv2 under `esp`; returns which copies were rewritten. */
export function repairGrubenv(esp: string, cmdline = ''): string[] {
  const files = [join(esp, 'keel/grubenv'), join(esp, 'keel/grubenv2')];
  const data = files.map((f) => {
    try {
      return readFileSync(f);
    } catch {
      return null;
    }
  });
  const ok = data.map(valid);
  if (ok[0] && ok[1]) return [];
  // Both bad: GRUB booted its defaults (slot A good, with the root hash grub.cfg was built with,
  // which is on this boot's command line); write exactly that state back.
  const aHash = /(?:^|\s)keel\.slot=A\s(?:.*\s)?keel\.verity=([0-9a-f]{64})(?:\s|$)/.exec(cmdline)?.[1];
  const defaults = slotState(new Map(aHash ? [['KEEL_A_HASH', aHash]] : []));
  const good = ok[0] ? data[0]! : ok[1] ? data[1]! : encodeGrubenv(slotVars(defaults));
  const repaired: string[] = [];
  // The second copy first, as every writer of the slot state does.
  for (const i of [1, 0]) {
    if (ok[i] || data[i] === null) continue;
    writeInPlace(files[i], good);
    repaired.push(files[i]);
  }
  return repaired;
}
