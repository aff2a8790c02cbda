// Advisory file locks on flock(2): the kernel drops a lock when the last fd of its open file closes,
// so a lock dies with its process (exit, SIGKILL, power cut) and no pid written in the file is trusted.
// The pid is still written, for the error message of whoever waits too long.
import * as fs from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';
import { KeelError } from './errors.js';

/** The syscall this module needs, as native/native.ts types it (passed in: lib/ imports nothing of ours). */
export interface FlockSys {
  flock(fd: number, operation: number): boolean;
  constants: { readonly LOCK_SH: number; readonly LOCK_EX: number; readonly LOCK_NB: number };
}

/** A lock this process holds. */
export interface HeldLock {
  readonly path: string;
  /** Removes the file and drops the lock; idempotent. */
  release(): void;
}

const POLL_MS = 25;
/** How long the waiting forms wait by default before giving up with ELOCKED. */
export const DEFAULT_LOCK_TIMEOUT_MS = 60_000;
/** Rounds of "locked a file someone removed meanwhile": each needs another process to win a race. */
const MAX_ROUNDS = 100;

/** Locks on files, through an injected flock(2) (`fileLocks(native)`). */
export class FileLocks {
  constructor(private readonly sys: FlockSys) {}

  /** Takes the lock at `path` (creating the file) if no process holds it; null when one does. Never blocks. */
  tryLock(path: string): HeldLock | null {
    const { LOCK_EX, LOCK_NB } = this.sys.constants;
    return this.take(path, (fd) => this.sys.flock(fd, LOCK_EX | LOCK_NB));
  }

  /**
   * Takes the lock, waiting up to `timeoutMs` (polling; the thread sleeps) or, with Infinity, in
   * a blocking flock(2). Blocks the thread either way: for CLI processes, never for PID 1.
   */
  lockSync(path: string, timeoutMs = DEFAULT_LOCK_TIMEOUT_MS): HeldLock {
    if (timeoutMs === Infinity) {
      const held = this.take(path, (fd) => this.sys.flock(fd, this.sys.constants.LOCK_EX));
      if (!held) throw new KeelError('BUG', `BUG: a blocking flock of ${path} returned without the lock`, { path });
      return held;
    }
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const held = this.tryLock(path);
      if (held) return held;
      if (Date.now() > deadline) throw lockTimeout(path, timeoutMs);
      Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, POLL_MS);
    }
  }

  /** Takes the lock, polling without blocking the event loop, for up to `timeoutMs`. */
  async lock(path: string, timeoutMs = DEFAULT_LOCK_TIMEOUT_MS): Promise<HeldLock> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const held = this.tryLock(path);
      if (held) return held;
      if (Date.now() > deadline) throw lockTimeout(path, timeoutMs);
      await sleep(POLL_MS);
    }
  }

  /** Runs `fn` holding the lock at `path` (see lockSync). */
  withLockSync<T>(path: string, fn: () => T, timeoutMs = DEFAULT_LOCK_TIMEOUT_MS): T {
    const held = this.lockSync(path, timeoutMs);
    try {
      return fn();
    } finally {
      held.release();
    }
  }

  /** Runs `fn` holding the lock at `path`, waiting asynchronously for it (see lock). */
  async withLock<T>(path: string, fn: () => Promise<T>, timeoutMs = DEFAULT_LOCK_TIMEOUT_MS): Promise<T> {
    const held = await this.lock(path, timeoutMs);
    try {
      return await fn();
    } finally {
      held.release();
    }
  }

  /** True when a process (this one included) holds the lock at `path`. */
  isLocked(path: string): boolean {
    let fd: number;
    try {
      fd = fs.openSync(path, 'r');
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') return false;
      throw e;
    }
    try {
      // A shared probe: it fails only against a holder's exclusive lock, and is dropped by close.
      const { LOCK_SH, LOCK_NB } = this.sys.constants;
      return !this.sys.flock(fd, LOCK_SH | LOCK_NB);
    } finally {
      fs.closeSync(fd);
    }
  }

  private take(path: string, flock: (fd: number) => boolean): HeldLock | null {
    for (let round = 0; round < MAX_ROUNDS; round++) {
      // Node opens with O_CLOEXEC: no spawned child inherits the fd and, with it, the lock.
      const fd = fs.openSync(path, fs.constants.O_RDWR | fs.constants.O_CREAT, 0o644);
      let held = false;
      try {
        if (!flock(fd)) return null;
        // The previous holder removes the file before unlocking it; whoever opened it before that
        // now holds a lock on a file no one else can find, and must lock the path's new file.
        if (!sameFile(fd, path)) continue;
        fs.ftruncateSync(fd, 0);
        fs.writeSync(fd, `${process.pid}\n`, 0);
        held = true;
        return heldLock(fd, path);
      } finally {
        if (!held) fs.closeSync(fd);
      }
    }
    const why = `its file was replaced ${MAX_ROUNDS} times in a row`;
    throw new KeelError('ELOCKED', `cannot take lock ${path}: ${why}`, { path });
  }
}

/** The locks of a process, on its flock(2) binding. */
export function fileLocks(sys: FlockSys): FileLocks {
  return new FileLocks(sys);
}

/** The pid the holder wrote into the lock file ('' when none is readable). Informative only. */
export function lockHolder(path: string): string {
  try {
    return fs.readFileSync(path, 'utf8').trim().split(/\s+/)[0] ?? '';
  } catch {
    return '';
  }
}

function heldLock(fd: number, path: string): HeldLock {
  let open = true;
  return {
    path,
    release() {
      if (!open) return;
      open = false;
      try {
        // Removed while still locked, so a process that opens the path afterwards makes a new file.
        if (sameFile(fd, path)) fs.rmSync(path, { force: true });
      } finally {
        fs.closeSync(fd);
      }
    },
  };
}

function sameFile(fd: number, path: string): boolean {
  const a = fs.fstatSync(fd);
  try {
    const b = fs.statSync(path);
    return a.ino === b.ino && a.dev === b.dev;
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return false;
    throw e;
  }
}

function lockTimeout(path: string, timeoutMs: number): KeelError {
  const pid = lockHolder(path);
  const who = pid ? `pid ${pid}` : 'another process';
  const message = `cannot take lock ${path}: held by ${who} for more than ${timeoutMs / 1000} s`;
  return new KeelError('ELOCKED', message, { path });
}
