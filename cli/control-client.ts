// The keel CLI's side of the control socket: one request, one reply (or a stream of events).
import { KeelError } from '../lib/errors.js';
import { connect } from 'node:net';
import { lineSplitter } from '../init/journal.js';

/** Where PID 1 listens; KEEL_CONTROL overrides it (tests run an init in a namespace). */
export function controlPath(env: NodeJS.ProcessEnv = process.env): string {
  return env.KEEL_CONTROL || '/run/keel/control.sock';
}

/** An error reply from PID 1, or a failure to reach it. */
export class RemoteError extends KeelError {
  constructor(code: string, message: string) {
    super(code, message);
    this.name = 'RemoteError';
  }
}

/** Sends one request; resolves with the result, or calls onEvent for each event until the stream ends. */
export function request(
  verb: string,
  args: Record<string, unknown> = {},
  onEvent?: (e: unknown) => void,
  path = controlPath(),
): Promise<unknown> {
  return new Promise((resolve, reject) => {
    const sock = connect(path);
    let settled = false;
    const done = (fn: () => void) => {
      if (!settled) {
        settled = true;
        fn();
      }
    };
    sock.on('error', (e: NodeJS.ErrnoException) =>
      done(() =>
        reject(new RemoteError(e.code ?? 'ECONNECT', `cannot reach the init at ${path}: ${e.code ?? e.message}`)),
      ),
    );
    const split = lineSplitter((line) => {
      let msg: { event?: unknown; ok?: boolean; result?: unknown; error?: { code?: string; message?: string } };
      try {
        msg = JSON.parse(line);
      } catch {
        return;
      }
      if ('event' in msg) {
        onEvent?.(msg.event);
        return;
      }
      sock.end();
      if (msg.ok) done(() => resolve(msg.result));
      else done(() => reject(new RemoteError(msg.error?.code ?? 'EUNKNOWN', msg.error?.message ?? 'unknown error')));
    });
    sock.on('data', (d: Buffer) => split.push(d));
    sock.on('close', () => done(() => resolve(undefined)));
    sock.write(JSON.stringify({ id: 1, verb, args }) + '\n');
  });
}
