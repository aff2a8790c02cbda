// Signals that ask PID 1 to shut down: SIGTERM, SIGINT (Ctrl-Alt-Del) and friends, and systemd's
// SIGRTMIN+3/+4/+5 (halt, poweroff, reboot), which Node has no names for.
import { readSync } from 'node:fs';
import type { Native } from '../native/native.js';
import { SHUTDOWN_SIGNALS, type ShutdownKind } from './shutdown.js';
import { warn } from '../lib/log.js';

/** Calls `stop` with the kind of shutdown each of these signals asks for. */
export function onShutdownSignals(native: Native, stop: (kind: ShutdownKind) => void): void {
  for (const [sig, kind] of Object.entries(SHUTDOWN_SIGNALS)) process.on(sig as NodeJS.Signals, () => stop(kind));
  try {
    const R = native.constants.SIGRTMIN;
    const kinds: Record<number, ShutdownKind> = { [R + 3]: 'halt', [R + 4]: 'poweroff', [R + 5]: 'reboot' };
    const fd = native.signalPipe(Object.keys(kinds).map(Number));
    native
      .watchFd(fd, () => {
        const b = Buffer.alloc(16);
        let n = 0;
        try {
          n = readSync(fd, b, 0, b.length, null);
        } catch {
          return;
        }
        for (let i = 0; i < n; i++) if (kinds[b[i]]) stop(kinds[b[i]]);
      })
      .unref();
  } catch (e) {
    warn('handle SIGRTMIN+3..5', e);
  }
}
