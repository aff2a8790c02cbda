// The host side of a service's sandbox: the private /tmp and /var/tmp directories PrivateTmp=
// binds (made on the first start, removed when the service stops, as systemd does) and the empty
// mode-000 file that InaccessiblePaths= binds over files.
import { chmodSync, closeSync, mkdirSync, mkdtempSync, openSync, rmSync } from 'node:fs';
import { join } from 'node:path';

/** A unit's private temporary directories on the host (each a mode-1777 "tmp" in a mode-0700 parent). */
export interface PrivateTmp {
  tmp: string;
  varTmp: string;
  parents: string[];
}

/** Makes /tmp/systemd-private-UNIT-XXXXXX/tmp and the same below /var/tmp. */
export function makePrivateTmp(
  unit: string,
  roots: { tmp: string; varTmp: string } = { tmp: '/tmp', varTmp: '/var/tmp' },
): PrivateTmp {
  const parents: string[] = [];
  const one = (root: string) => {
    mkdirSync(root, { recursive: true });
    const parent = mkdtempSync(join(root, `systemd-private-${unit.replace(/[^A-Za-z0-9@._:-]/g, '_')}-`));
    parents.push(parent);
    chmodSync(parent, 0o700);
    const tmp = join(parent, 'tmp');
    mkdirSync(tmp);
    chmodSync(tmp, 0o1777); // mkdir's mode goes through the umask, and the sticky bit with it
    return tmp;
  };
  try {
    return { tmp: one(roots.tmp), varTmp: one(roots.varTmp), parents };
  } catch (e) {
    removePrivateTmp({ tmp: '', varTmp: '', parents });
    throw e;
  }
}

/** Removes what makePrivateTmp made, with everything the service left in it; best effort. */
export function removePrivateTmp(p: PrivateTmp): void {
  for (const d of p.parents) {
    try {
      rmSync(d, { recursive: true, force: true });
    } catch {
      /* busy or gone */
    }
  }
}

/** `dir`/inaccessible-file: an empty regular file of mode 000, made if missing. */
export function inaccessibleFile(dir: string): string {
  const path = join(dir, 'inaccessible-file');
  mkdirSync(dir, { recursive: true });
  closeSync(openSync(path, 'a', 0o000));
  chmodSync(path, 0o000);
  return path;
}
