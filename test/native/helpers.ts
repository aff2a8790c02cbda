// What the native-helper tests share: checking a thrown NativeError, and finding zombies.
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { isNativeError, type NativeError } from '../../native/native.js';

/** Runs `fn`, which must throw a NativeError with the given code, syscall, path and message. */
export function expectNativeError(
  fn: () => unknown,
  want: { code: string; syscall: string; path?: string; message?: RegExp },
): NativeError {
  let caught: unknown;
  try {
    fn();
  } catch (e) {
    caught = e;
  }
  assert.ok(isNativeError(caught), `expected a NativeError, got ${String(caught)}`);
  assert.equal(caught.code, want.code);
  assert.equal(caught.syscall, want.syscall);
  if (want.path !== undefined) assert.equal(caught.path, want.path);
  if (want.message) assert.match(caught.message, want.message);
  return caught;
}

/** Zombie children of `ppid`, from /proc. */
export function zombiesOf(ppid: number): number[] {
  return readdirSync('/proc')
    .filter((n) => /^\d+$/.test(n))
    .filter((n) => {
      try {
        const s = readFileSync(`/proc/${n}/status`, 'utf8');
        return /^State:\s*Z/m.test(s) && new RegExp(`^PPid:\\s*${ppid}$`, 'm').test(s);
      } catch {
        return false;
      } // gone meanwhile
    })
    .map(Number);
}
