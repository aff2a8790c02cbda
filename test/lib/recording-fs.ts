// node:fs for writeAtomic, with every call recorded by path (fds are named by the path they were
// opened on), and a hook that runs before each write: what a test needs to check the order of
// fsync and rename, and to start a second writer in the middle of a first one.
import * as fs from 'node:fs';
import type { AtomicFs } from '../../lib/atomic.js';

/** One recorded call: its name and the path (or the fd's path) it acted on. */
export interface FsCall {
  call: string;
  path: string;
  to?: string;
}

/** A recording AtomicFs; `beforeWrite` runs (once per call) before each writeSync goes through. */
export function recordingFs(beforeWrite?: (path: string) => void): { fs: AtomicFs; calls: FsCall[] } {
  const calls: FsCall[] = [];
  const fdPaths = new Map<number, string>();
  const at = (fd: number) => fdPaths.get(fd) ?? `fd ${fd}`;
  const rec: AtomicFs = {
    mkdirSync: ((p: fs.PathLike, o?: fs.MakeDirectoryOptions) => {
      calls.push({ call: 'mkdir', path: String(p) });
      return fs.mkdirSync(p, o);
    }) as AtomicFs['mkdirSync'],
    openSync: ((p: fs.PathLike, flags?: fs.OpenMode, mode?: fs.Mode) => {
      const fd = fs.openSync(p, flags ?? 'r', mode);
      fdPaths.set(fd, String(p));
      calls.push({ call: `open ${String(flags)}`, path: String(p) });
      return fd;
    }) as AtomicFs['openSync'],
    writeSync: ((fd: number, ...rest: unknown[]) => {
      beforeWrite?.(at(fd));
      calls.push({ call: 'write', path: at(fd) });
      return (fs.writeSync as (...a: unknown[]) => number)(fd, ...rest);
    }) as AtomicFs['writeSync'],
    fsyncSync: (fd) => {
      calls.push({ call: 'fsync', path: at(fd) });
      fs.fsyncSync(fd);
    },
    closeSync: (fd) => {
      calls.push({ call: 'close', path: at(fd) });
      fdPaths.delete(fd);
      fs.closeSync(fd);
    },
    chownSync: (p, uid, gid) => {
      calls.push({ call: 'chown', path: String(p) });
      fs.chownSync(p, uid, gid);
    },
    renameSync: (from, to) => {
      calls.push({ call: 'rename', path: String(from), to: String(to) });
      fs.renameSync(from, to);
    },
    rmSync: (p, o) => {
      calls.push({ call: 'rm', path: String(p) });
      fs.rmSync(p, o);
    },
  };
  return { fs: rec, calls };
}

/** The calls after the rename of a temp file onto `target`: what makes that rename durable. */
export function callsAfterRename(calls: FsCall[], target: string): FsCall[][] {
  const out: FsCall[][] = [];
  calls.forEach((c, i) => {
    if (c.call === 'rename' && c.to === target) out.push(calls.slice(i + 1, i + 4));
  });
  return out;
}
