// The UnitFs of the running system (or of a directory tree given by absolute paths), for
// `keel analyze verify` and tests over temp copies. The only file access of the unit loader.
import { lstatSync, readFileSync, readdirSync, readlinkSync } from 'node:fs';
import type { UnitFs } from './load-index.js';

/** A UnitFs over the real file system; lstat gives null for a missing path. */
export function realUnitFs(): UnitFs {
  return {
    readFile: (p) => readFileSync(p, 'utf8'),
    readdir: (p) => readdirSync(p),
    lstat: (p) => {
      try {
        const st = lstatSync(p);
        return { isDirectory: st.isDirectory(), isSymbolicLink: st.isSymbolicLink(), isFile: st.isFile() };
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code === 'ENOENT' || (e as NodeJS.ErrnoException).code === 'ENOTDIR')
          return null;
        throw e;
      }
    },
    readlink: (p) => readlinkSync(p),
  };
}
