// The process's file locks (lib/lock.ts) on the helper's flock(2).
import { fileLocks, type FileLocks } from '../lib/lock.js';
import { native } from './native.js';

/** flock(2) locks for the container store, the network leases and the update agent. */
export const locks: FileLocks = fileLocks(native);
