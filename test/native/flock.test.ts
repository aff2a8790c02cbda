// The helper's flock(2): LOCK_NB reports a held lock as false, other failures throw.
import assert from 'node:assert/strict';
import { closeSync, mkdtempSync, openSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { native } from '../../native/native.js';
import { expectNativeError } from './helpers.js';

describe('native flock', () => {
  const { LOCK_EX, LOCK_SH, LOCK_UN, LOCK_NB } = native.constants;

  it('an exclusive lock on one open file refuses LOCK_NB takers on another, until LOCK_UN', () => {
    const dir = mkdtempSync(join(tmpdir(), 'keel-flock-'));
    const a = openSync(join(dir, 'f'), 'w');
    const b = openSync(join(dir, 'f'), 'r');
    try {
      assert.equal(native.flock(a, LOCK_EX), true);
      assert.equal(native.flock(b, LOCK_EX | LOCK_NB), false);
      assert.equal(native.flock(b, LOCK_SH | LOCK_NB), false);
      assert.equal(native.flock(a, LOCK_UN), true);
      assert.equal(native.flock(b, LOCK_SH | LOCK_NB), true);
    } finally {
      closeSync(a);
      closeSync(b);
      rmSync(dir, { recursive: true });
    }
  });

  it('throws EBADF naming flock for a closed fd, and a TypeError for a bad operation', () => {
    const message = /^flock\(987654, LOCK_EX\|LOCK_NB\): EBADF/;
    expectNativeError(() => native.flock(987654, LOCK_EX | LOCK_NB), { code: 'EBADF', syscall: 'flock', message });
    assert.throws(() => native.flock(0, 1024), TypeError);
  });
});
