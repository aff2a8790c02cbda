// PID 1's log: one line per event on the console, with a fixed prefix so tests and people can grep.
import { writeSync } from 'node:fs';

/** Writes "keel: message" to the console (fd 1) synchronously, so it is out before a reboot. */
export function log(message: string): void {
  try {
    writeSync(1, `keel: ${message}\n`);
  } catch {
    /* a console that is gone must not kill PID 1 */
  }
}

/** Logs a best-effort step that failed and goes on: "keel: warning: cannot X: reason". */
export function warn(what: string, err: unknown): void {
  log(`warning: cannot ${what}: ${err instanceof Error ? err.message : String(err)}`);
}
