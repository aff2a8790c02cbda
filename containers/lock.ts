// A lock file shared by concurrent CLIs: created with O_EXCL and holding the owner's pid; a lock
// whose pid is dead is stale and taken over.
import * as fs from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';
import { ContainerError } from './errors.js';

const POLL_MS = 25;
const DEFAULT_TIMEOUT_MS = 60_000;
/** A lock file without a pid yet may be one being written: stale only after this long. */
const EMPTY_LOCK_GRACE_MS = 10_000;

/** Runs `fn` holding the lock at `path`, waiting (blocking the thread) for it when it is held. */
export function withLockSync<T>(path: string, fn: () => T, timeoutMs = DEFAULT_TIMEOUT_MS): T {
  const deadline = Date.now() + timeoutMs;
  while (!tryLock(path)) {
    if (Date.now() > deadline) throw lockTimeout(path);
    Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, POLL_MS);
  }
  try {
    return fn();
  } finally {
    unlock(path);
  }
}

/** Runs `fn` holding the lock at `path`, waiting asynchronously for it when it is held. */
export async function withLock<T>(path: string, fn: () => Promise<T>, timeoutMs = DEFAULT_TIMEOUT_MS): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  while (!tryLock(path)) {
    if (Date.now() > deadline) throw lockTimeout(path);
    await sleep(POLL_MS);
  }
  try {
    return await fn();
  } finally {
    unlock(path);
  }
}

/** Takes the lock if it is free or stale; false when a live process holds it. */
export function tryLock(path: string): boolean {
  for (let attempt = 0; attempt < 3; attempt++) {
    try {
      const fd = fs.openSync(path, 'wx', 0o644);
      try {
        fs.writeSync(fd, `${process.pid}\n`);
      } finally {
        fs.closeSync(fd);
      }
      return true;
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
    }
    const holder = readHolder(path);
    if (holder === null || !isStale(path, holder)) return false;
    // Remove it only if it is still the stale one we looked at.
    if (readHolder(path) === holder) fs.rmSync(path, { force: true });
  }
  return false;
}

/** True when the lock exists and its holder is alive. */
export function isLocked(path: string): boolean {
  const holder = readHolder(path);
  return holder !== null && !isStale(path, holder);
}

function unlock(path: string): void {
  if (readHolder(path) === String(process.pid)) fs.rmSync(path, { force: true });
}

/** The pid text in the lock file, '' for an empty one, null when there is no lock. */
function readHolder(path: string): string | null {
  try {
    return fs.readFileSync(path, 'utf8').trim();
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw e;
  }
}

function isStale(path: string, holder: string): boolean {
  const pid = Number(holder);
  if (!Number.isInteger(pid) || pid <= 0) {
    try {
      return Date.now() - fs.statSync(path).mtimeMs > EMPTY_LOCK_GRACE_MS;
    } catch {
      return false;
    }
  }
  try {
    process.kill(pid, 0);
    return false;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'ESRCH';
  }
}

function lockTimeout(path: string): ContainerError {
  return new ContainerError('ELOCKED', `cannot take lock ${path}: held by pid ${readHolder(path) ?? '?'} for too long`);
}
