// A directory tree as a tar (layer or archive), deterministic for a given tree; with `whiteouts`,
// an overlayfs upper directory as an OCI layer.
import * as fs from 'node:fs';
import { join, resolve } from 'node:path';
import type { Readable } from 'node:stream';
import { devNumbers } from '../native/native.js';
import { writeTar, type TarWriteEntry } from './tar.js';
import { isOpaque, OPAQUE_MARKER, WHITEOUT_PREFIX } from './whiteouts.js';

export interface PackOptions {
  /**
   * Turn overlayfs whiteouts back into OCI ones: a character device 0:0 becomes `.wh.NAME`, an
   * opaque directory gets a `.wh..wh..opq` entry (reading trusted.* xattrs needs root). For packing
   * an upper dir.
   */
  whiteouts?: boolean;
}

/**
 * A tar of the contents of `dir` (not the directory itself), in a deterministic order: names
 * sorted, each directory before its contents; hard links kept; sockets left out.
 */
export function packDir(dir: string, opts: PackOptions = {}): Readable {
  return writeTar(dirEntries(resolve(dir), opts.whiteouts ?? false));
}

function* dirEntries(root: string, whiteouts: boolean): Generator<TarWriteEntry> {
  const seenInodes = new Map<string, string>();
  function* walk(rel: string): Generator<TarWriteEntry> {
    const abs = rel === '' ? root : join(root, rel);
    const names = fs.readdirSync(abs).sort();
    if (whiteouts && isOpaque(abs))
      yield {
        header: { name: rel === '' ? OPAQUE_MARKER : `${rel}/${OPAQUE_MARKER}`, type: 'file' },
        data: Buffer.alloc(0),
      };
    for (const name of names) {
      const childRel = rel === '' ? name : `${rel}/${name}`;
      const st = fs.lstatSync(join(root, childRel));
      const base = { mode: st.mode & 0o7777, uid: st.uid, gid: st.gid, mtime: Math.floor(st.mtimeMs / 1000) };
      if (st.isDirectory()) {
        yield { header: { ...base, name: `${childRel}/`, type: 'dir' } };
        yield* walk(childRel);
      } else if (st.isFile()) {
        const key = `${st.dev}:${st.ino}`;
        const first = st.nlink > 1 ? seenInodes.get(key) : undefined;
        if (first !== undefined) {
          yield { header: { ...base, name: childRel, type: 'hardlink', linkname: first } };
          continue;
        }
        if (st.nlink > 1) seenInodes.set(key, childRel);
        yield { header: { ...base, name: childRel, type: 'file', size: st.size }, file: join(root, childRel) };
      } else if (st.isSymbolicLink()) {
        yield { header: { ...base, name: childRel, type: 'symlink', linkname: fs.readlinkSync(join(root, childRel)) } };
      } else if (st.isCharacterDevice() && st.rdev === 0 && whiteouts) {
        yield {
          header: {
            ...base,
            mode: 0o644,
            name: rel === '' ? `${WHITEOUT_PREFIX}${name}` : `${rel}/${WHITEOUT_PREFIX}${name}`,
            type: 'file',
          },
          data: Buffer.alloc(0),
        };
      } else if (st.isCharacterDevice() || st.isBlockDevice()) {
        const { major, minor } = devNumbers(st.rdev);
        yield {
          header: {
            ...base,
            name: childRel,
            type: st.isCharacterDevice() ? 'char' : 'block',
            devmajor: major,
            devminor: minor,
          },
        };
      } else if (st.isFIFO()) {
        yield { header: { ...base, name: childRel, type: 'fifo' } };
      }
    }
  }
  yield* walk('');
}
