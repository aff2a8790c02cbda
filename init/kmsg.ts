// Kernel messages into the journal: /dev/kmsg read without blocking whenever it is readable.
import { constants, openSync, readSync } from 'node:fs';
import type { Native } from '../native/native.js';
import { parseKmsg, type Journal } from './journal.js';

/** Starts copying kernel messages (from the start of the ring) into the journal as unit "kernel". */
export function followKmsg(native: Native, journal: Journal, path = '/dev/kmsg'): () => void {
  const fd = openSync(path, constants.O_RDONLY | constants.O_NONBLOCK);
  const buf = Buffer.alloc(8192);
  const drain = () => {
    for (;;) {
      let n: number;
      try {
        n = readSync(fd, buf, 0, buf.length, null);
      } catch (e) {
        const code = (e as NodeJS.ErrnoException).code;
        // EPIPE: records were overwritten before we read them; the next read continues.
        if (code === 'EPIPE') continue;
        return;
      }
      if (n <= 0) return;
      const rec = parseKmsg(buf.toString('utf8', 0, n));
      if (rec) journal.append('kernel', rec.message, { priority: rec.priority });
    }
  };
  drain();
  const w = native.watchFd(fd, drain);
  return () => w.close();
}
