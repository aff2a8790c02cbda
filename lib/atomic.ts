// Writing files atomically: a temp file in the same directory, fsync, rename, fsync the directory.
import { randomBytes } from 'node:crypto';
import * as nodeFs from 'node:fs';
import { basename, dirname, join } from 'node:path';

/** The file system calls writeAtomic makes; tests pass a recording or interleaving wrapper of node:fs. */
export type AtomicFs = Pick<
  typeof nodeFs,
  'mkdirSync' | 'openSync' | 'writeSync' | 'fsyncSync' | 'closeSync' | 'chownSync' | 'renameSync' | 'rmSync'
>;

/** Options of writeAtomic: the new file's mode and owner, and the file system calls to use. */
export interface AtomicOptions {
  mode?: number;
  uid?: number;
  gid?: number;
  fs?: AtomicFs;
}

// Errors a file system gives for fsync of a directory it cannot sync (the rename is done then).
const DIR_FSYNC_UNSUPPORTED = new Set(['EINVAL', 'ENOTSUP', 'EOPNOTSUPP']);

/** The temp name next to `path`: unique per call, so concurrent writers never share one. */
export function tempNameFor(path: string): string {
  return join(dirname(path), `.${basename(path)}.keel-${process.pid}-${randomBytes(6).toString('hex')}`);
}

/** Writes `data` to `path`: a reader sees the old file or the new one, never half, and a power cut keeps one. */
export function writeAtomic(path: string, data: Buffer | string, opts: AtomicOptions = {}): void {
  const fs = opts.fs ?? nodeFs;
  const dir = dirname(path);
  fs.mkdirSync(dir, { recursive: true });
  const tmp = tempNameFor(path);
  // 'wx': the name is fresh; an existing file there is someone else's, never ours to truncate.
  const fd = fs.openSync(tmp, 'wx', opts.mode ?? 0o644);
  try {
    const buf = typeof data === 'string' ? Buffer.from(data) : data;
    for (let off = 0; off < buf.length;) off += fs.writeSync(fd, buf, off, buf.length - off);
    fs.fsyncSync(fd);
  } catch (e) {
    fs.closeSync(fd);
    fs.rmSync(tmp, { force: true });
    throw e;
  }
  fs.closeSync(fd);
  try {
    if (opts.uid !== undefined || opts.gid !== undefined) fs.chownSync(tmp, opts.uid ?? -1, opts.gid ?? -1);
    fs.renameSync(tmp, path);
  } catch (e) {
    fs.rmSync(tmp, { force: true });
    throw e;
  }
  // The rename is durable only once the directory is synced.
  const d = fs.openSync(dir, 'r');
  try {
    fs.fsyncSync(d);
  } catch (e) {
    if (!DIR_FSYNC_UNSUPPORTED.has((e as NodeJS.ErrnoException).code ?? '')) throw e;
  } finally {
    fs.closeSync(d);
  }
}
