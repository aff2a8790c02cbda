// The control socket (/run/keel/control.sock): newline-delimited JSON requests and replies.
//
// Protocol: the client writes one request per line, {"id":1,"verb":"status","args":{...}}.
// The server answers each with {"id":1,"ok":true,"result":...} or
// {"id":1,"ok":false,"error":{"code":"ENOUNIT","message":"..."}}. A streaming verb (logs with
// follow) sends {"id":1,"event":...} lines until the client closes the connection.
import { chmodSync, mkdirSync, rmSync } from 'node:fs';
import { createServer, type Server, type Socket } from 'node:net';
import { dirname } from 'node:path';
import { lineSplitter } from './journal.js';

/** An error a verb reports to the client, with a stable code. */
export class ControlError extends Error {
  constructor(readonly code: string, message: string) { super(message); }
}

/** What a verb handler gets besides its arguments. */
export interface VerbContext {
  /** Sends one event line (streaming verbs). */
  emit(event: unknown): void;
  /** Called when the client goes away (streaming verbs clean up here). */
  onClose(fn: () => void): void;
  /** Marks the reply as a stream of events: no final result line is sent. */
  streaming(): void;
}

/** A verb: takes arguments, returns a JSON-serialisable result. */
export type VerbHandler = (args: Record<string, unknown>, ctx: VerbContext) => unknown | Promise<unknown>;

/** Starts the control server; every failure of a handler becomes an error reply, never a crash. */
export function startControlServer(path: string, verbs: Record<string, VerbHandler>, onError: (e: unknown) => void = () => {}): Server {
  mkdirSync(dirname(path), { recursive: true });
  rmSync(path, { force: true });
  const server = createServer((sock: Socket) => {
    const closers: (() => void)[] = [];
    sock.on('close', () => { for (const c of closers) { try { c(); } catch (e) { onError(e); } } });
    sock.on('error', () => sock.destroy());
    const send = (obj: unknown) => { if (!sock.destroyed) sock.write(JSON.stringify(obj) + '\n'); };
    const split = lineSplitter((line) => {
      if (!line.trim()) return;
      let req: { id?: unknown; verb?: unknown; args?: unknown };
      try { req = JSON.parse(line); } catch { send({ id: null, ok: false, error: { code: 'EPROTO', message: 'cannot parse request: not JSON' } }); return; }
      const id = req.id ?? null;
      const handler = typeof req.verb === 'string' && Object.hasOwn(verbs, req.verb) ? verbs[req.verb] : undefined;
      if (!handler) { send({ id, ok: false, error: { code: 'EVERB', message: `unknown verb ${JSON.stringify(req.verb)}` } }); return; }
      let streaming = false;
      const ctx: VerbContext = { emit: (event) => send({ id, event }), onClose: (fn) => closers.push(fn), streaming: () => { streaming = true; } };
      Promise.resolve()
        .then(() => handler((req.args ?? {}) as Record<string, unknown>, ctx))
        .then((result) => { if (!streaming) send({ id, ok: true, result: result ?? null }); },
          (e) => {
            if (!(e instanceof ControlError)) onError(e);
            send({ id, ok: false, error: { code: e instanceof ControlError ? e.code : 'EINTERNAL', message: e instanceof Error ? e.message : String(e) } });
          });
    });
    sock.on('data', (d: Buffer) => split.push(d));
  });
  server.on('error', onError);
  server.listen(path, () => { try { chmodSync(path, 0o600); } catch (e) { onError(e); } });
  return server;
}
