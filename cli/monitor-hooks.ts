// A test seam for keel container-monitor: with KEEL_MONITOR_HOOKS=SOCKET the monitor connects to
// that unix socket, says each point of its loop as a line ("sleep 1") and waits there until the
// test answers a line ("go"), so a test stops it at a chosen moment. Unset, nothing waits.
import { connect, type Socket } from 'node:net';

/** Where the monitor stops for a test, and what it tells it. */
export interface MonitorHooks {
  /** Says `point` and resolves once the test lets us go on (at once without a test). */
  at(point: string): Promise<void>;
  /** Says `event` without waiting. */
  say(event: string): void;
  close(): void;
}

const NONE: MonitorHooks = { at: async () => {}, say: () => {}, close: () => {} };

/** The hooks KEEL_MONITOR_HOOKS names (its socket connected), or none. */
export async function monitorHooks(socket: string | undefined): Promise<MonitorHooks> {
  if (!socket) return NONE;
  const sock: Socket = connect(socket);
  await new Promise<void>((ok, fail) => {
    sock.once('connect', ok);
    sock.once('error', fail);
  });
  sock.on('error', () => {
    /* the test went away: nobody lets us go on */
  });
  sock.unref();
  const waiting: (() => void)[] = [];
  let buf = '';
  sock.on('data', (d: Buffer) => {
    buf += d;
    for (let nl = buf.indexOf('\n'); nl >= 0; nl = buf.indexOf('\n')) {
      buf = buf.slice(nl + 1);
      waiting.shift()?.();
    }
  });
  return {
    at(point) {
      sock.ref();
      sock.write(`${point}\n`);
      return new Promise((r) =>
        waiting.push(() => {
          if (!waiting.length) sock.unref();
          r();
        }),
      );
    },
    say(event) {
      sock.write(`${event}\n`);
    },
    close() {
      sock.end();
    },
  };
}
