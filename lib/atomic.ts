// Writing files atomically: a temp file in the same directory, fsync, rename, fsync the directory.
import { chownSync, closeSync, fsyncSync, mkdirSync, openSync, renameSync, rmSync, writeSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';

/** Writes `data` to `path` so a reader sees the old file or the new one, never half of it. */
export function writeAtomic(path: string, data: Buffer | string, opts: { mode?: number; uid?: number; gid?: number } = {}): void {
  const dir = dirname(path);
  mkdirSync(dir, { recursive: true });
  const tmp = join(dir, `.${basename(path)}.keel-${process.pid}`);
  const fd = openSync(tmp, 'w', opts.mode ?? 0o644);
  try {
    const buf = typeof data === 'string' ? Buffer.from(data) : data;
    for (let off = 0; off < buf.length;) off += writeSync(fd, buf, off);
    fsyncSync(fd);
  } catch (e) {
    closeSync(fd);
    rmSync(tmp, { force: true });
    throw e;
  }
  closeSync(fd);
  try {
    if (opts.uid !== undefined || opts.gid !== undefined) chownSync(tmp, opts.uid ?? -1, opts.gid ?? -1);
    renameSync(tmp, path);
  } catch (e) {
    rmSync(tmp, { force: true });
    throw e;
  }
  try { const d = openSync(dir, 'r'); fsyncSync(d); closeSync(d); } catch { /* some filesystems refuse; the rename is done */ }
}
