// lib/lock.ts on the real flock(2): locks die with their process, pids in lock files mean nothing.
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { lockHolder } from '../../lib/lock.js';
import { locks } from '../../native/locks.js';
import { blockedInFlock, lockChild } from './lock-helpers.js';

describe('lib/lock (flock)', () => {
  let dir: string;
  let path: string;
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'keel-lock-'));
    path = join(dir, 'x.lock');
  });
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  it('tryLock takes a free lock, writes its pid, refuses a second taker, and release removes the file', () => {
    const held = locks.tryLock(path)!;
    assert.ok(held);
    assert.equal(readFileSync(path, 'utf8'), `${process.pid}\n`);
    assert.equal(locks.isLocked(path), true);
    assert.equal(locks.tryLock(path), null, 'another open file of the same process conflicts too');
    const byUs = new RegExp(`held by pid ${process.pid}`);
    assert.throws(() => locks.withLockSync(path, () => 'ran', 50), { code: 'ELOCKED', message: byUs });
    held.release();
    held.release();
    assert.equal(existsSync(path), false);
    assert.equal(locks.isLocked(path), false);
    assert.equal(
      locks.withLockSync(path, () => 'ran'),
      'ran',
    );
  });

  it('a lock held by a process killed with SIGKILL is free at once (its file left behind)', async () => {
    const c = lockChild('hold', path);
    assert.equal(await c.line(), 'locked');
    assert.equal(lockHolder(path), String(c.pid));
    assert.equal(locks.isLocked(path), true);
    assert.equal(locks.tryLock(path), null);
    c.child.kill('SIGKILL');
    assert.equal((await c.exited).signal, 'SIGKILL');
    assert.equal(existsSync(path), true, 'the killed holder could not remove its file');
    assert.equal(locks.isLocked(path), false);
    const held = locks.tryLock(path);
    assert.ok(held, 'taken without waiting for any timeout');
    held.release();
  });

  it('a lock file left on disk naming a live (reused) or dead pid does not block', () => {
    const otherBoot = `${process.ppid} 00000000-0000-4000-8000-000000000000`;
    for (const stale of [`${process.ppid}\n`, '999999999\n', otherBoot, '', 'garbage']) {
      writeFileSync(path, stale);
      assert.equal(locks.isLocked(path), false);
      const held = locks.tryLock(path);
      assert.ok(held, `a file holding ${JSON.stringify(stale)} blocked`);
      assert.equal(readFileSync(path, 'utf8'), `${process.pid}\n`);
      held.release();
    }
  });

  it('two processes contend: a blocking lockSync waits in flock(2), then holds the new file', async () => {
    const held = locks.tryLock(path)!;
    const c = lockChild('block', path);
    try {
      assert.equal(await c.line(), 'waiting');
      // Wait for the kernel to show the child blocked on our lock (an event, not a sleep).
      while (!blockedInFlock(c.pid)) await sleep(5); // a poll interval, not the synchronisation
      writeFileSync(`${path}.witness`, 'written while held');
      held.release();
      // It woke on the file we removed, so it must have locked the path's new one.
      assert.equal(await c.line(), 'got written while held');
      assert.equal(locks.isLocked(path), true, 'the waiter holds the file now at the path');
      assert.equal(lockHolder(path), String(c.pid));
      assert.equal(locks.tryLock(path), null);
    } finally {
      c.child.stdin!.end();
      await c.exited;
    }
    assert.ok(locks.tryLock(path), 'free once the waiter exits');
  });

  it('two processes contend: the asynchronous lock polls (event loop free) and gets it after release', async () => {
    const held = locks.tryLock(path)!;
    const c = lockChild('poll', path);
    try {
      assert.equal(await c.line(), 'waiting');
      writeFileSync(`${path}.witness`, 'written while held');
      held.release();
      assert.equal(await c.line(), 'got written while held', 'it took the lock only after the holder let go');
      assert.equal(locks.isLocked(path), true);
    } finally {
      c.child.stdin!.end();
      await c.exited;
    }
  });

  it("the waiting forms give up with ELOCKED naming the holder's pid", async () => {
    const c = lockChild('hold', path);
    try {
      assert.equal(await c.line(), 'locked');
      const message = new RegExp(`^cannot take lock ${path}: held by pid ${c.pid} `);
      assert.throws(() => locks.lockSync(path, 30), { code: 'ELOCKED', message });
      await assert.rejects(
        locks.withLock(path, async () => 'ran', 30),
        { code: 'ELOCKED' },
      );
    } finally {
      c.child.stdin!.end();
      await c.exited;
    }
  });
});
