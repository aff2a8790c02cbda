// The control socket (/run/keel/control.sock): newline-delimited JSON requests and replies.
//
// Protocol: the client writes one request per line, {"id":1,"verb":"status","args":{...}}.
// The server answers each with {"id":1,"ok":true,"result":...} or
// {"id":1,"ok":false,"error":{"code":"ENOUNIT","message":"..."}}. A streaming verb (logs with
// follow) sends {"id":1,"event":...} lines until the client closes the connection.
import { KeelError } from '../lib/errors.js';
import { chmodSync, mkdirSync, rmSync } from 'node:fs';
import { createServer, type Server, type Socket } from 'node:net';
import { dirname } from 'node:path';
import { lineSplitter } from './journal.js';

/** An error a verb reports to the client, with a stable code. */
export class ControlError extends KeelError {
  constructor(code: string, message: string) {
    super(code, message);
    this.name = 'ControlError';
  }
}

/** What a verb handler gets besides its arguments. */
export interface VerbContext {
  /** Sends one event line (streaming verbs). */
  emit(event: unknown): void;
  /** Called when the client goes away (streaming verbs clean up here). */
  onClose(fn: () => void): void;
  /** Marks the reply as a stream of events: no final result line is sent. */
  streaming(): void;
  /** uid of the peer as the kernel saw it at connect (SO_PEERCRED); -1 when unknown. */
  uid: number;
}

/** Options of the control server: who may call what. */
export interface ControlOptions {
  /** uid of the process at the other end of a connection. */
  peerUid?: (sock: Socket) => number;
  /** Verbs anyone may call; the rest need uid 0. */
  readOnly?: Set<string>;
  onError?: (e: unknown) => void;
}

/** A verb: takes arguments, returns a JSON-serialisable result. */
export type VerbHandler = (args: Record<string, unknown>, ctx: VerbContext) => unknown | Promise<unknown>;

/** Starts the control server; every failure of a handler becomes an error reply, never a crash. */
export function startControlServer(
  path: string,
  verbs: Record<string, VerbHandler>,
  opts: ControlOptions = {},
): Server {
  const onError = opts.onError ?? (() => {});
  mkdirSync(dirname(path), { recursive: true });
  rmSync(path, { force: true });
  const server = createServer((sock: Socket) => {
    const closers: (() => void)[] = [];
    let uid = -1;
    try {
      uid = opts.peerUid ? opts.peerUid(sock) : -1;
    } catch {
      uid = -1;
    }
    sock.on('close', () => {
      for (const c of closers) {
        try {
          c();
        } catch (e) {
          onError(e);
        }
      }
    });
    sock.on('error', () => sock.destroy());
    const send = (obj: unknown) => {
      if (!sock.destroyed) sock.write(JSON.stringify(obj) + '\n');
    };
    const split = lineSplitter((line) => {
      if (!line.trim()) return;
      let req: { id?: unknown; verb?: unknown; args?: unknown };
      try {
        req = JSON.parse(line);
      } catch {
        send({ id: null, ok: false, error: { code: 'EPROTO', message: 'cannot parse request: not JSON' } });
        return;
      }
      const id = req.id ?? null;
      const handler = typeof req.verb === 'string' && Object.hasOwn(verbs, req.verb) ? verbs[req.verb] : undefined;
      if (!handler) {
        send({ id, ok: false, error: { code: 'EVERB', message: `unknown verb ${JSON.stringify(req.verb)}` } });
        return;
      }
      if (uid !== 0 && opts.peerUid && !opts.readOnly?.has(req.verb as string)) {
        send({ id, ok: false, error: { code: 'EPERM', message: `${req.verb as string}: access denied (needs root)` } });
        return;
      }
      let streaming = false;
      const ctx: VerbContext = {
        emit: (event) => send({ id, event }),
        onClose: (fn) => closers.push(fn),
        streaming: () => {
          streaming = true;
        },
        uid,
      };
      Promise.resolve()
        .then(() => handler((req.args ?? {}) as Record<string, unknown>, ctx))
        .then(
          (result) => {
            if (!streaming) send({ id, ok: true, result: result ?? null });
          },
          (e) => {
            if (!(e instanceof ControlError)) onError(e);
            send({
              id,
              ok: false,
              error: {
                code: e instanceof ControlError ? e.code : 'EINTERNAL',
                message: e instanceof Error ? e.message : String(e),
              },
            });
          },
        );
    }, 1 << 20); // requests are small; a runaway client cannot grow PID 1's memory
    sock.on('data', (d: Buffer) => split.push(d));
  });
  server.on('error', onError);
  // Anyone may connect (status works for every user, as systemctl status does); what a peer may
  // do is checked per verb against its uid.
  server.listen(path, () => {
    try {
      chmodSync(path, opts.peerUid ? 0o666 : 0o600);
    } catch (e) {
      onError(e);
    }
  });
  return server;
}
