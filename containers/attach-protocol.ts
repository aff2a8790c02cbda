// attach.sock: how `keel attach` reaches a detached container's input and terminal. The monitor
// (cli/container-monitor.ts) of a container started with -i or -t listens on a unix stream socket
// in the container's directory (mode 0600) for as long as it supervises it; the output is not on
// it (attach follows container.log, as `keel logs -f` does).
//
// Frames, both ways: 1 byte type, 4 bytes big-endian payload length, the payload.
//   client → monitor  INPUT  (1): bytes for the container's stdin (dropped unless it has -i)
//                     RESIZE (2): rows, cols as two big-endian u16 (a tty's window; else dropped)
//   monitor → client  EXIT   (3): the exit status as a big-endian u32, once the container has
//                                 exited and its output is all in the log (one per run: with a
//                                 restart policy another run follows)
// A frame may arrive in pieces or several in one read; an unknown type or a payload over
// MAX_PAYLOAD ends the connection.
import { chmodSync, closeSync, openSync, rmSync } from 'node:fs';
import { createConnection, createServer, type Server, type Socket } from 'node:net';
import { basename, dirname } from 'node:path';

/** The socket's name in the container's directory. */
export const ATTACH_SOCKET = 'attach.sock';

export const FRAME = { input: 1, resize: 2, exit: 3 } as const;
const TYPES = new Set<number>(Object.values(FRAME));

/** Larger frames are refused (stdin arrives in chunks of 64 KiB at most). */
export const MAX_PAYLOAD = 1 << 20;

/** docker's default detach keys: ctrl-p ctrl-q. */
export const DETACH_KEYS: readonly number[] = [0x10, 0x11];

export interface Frame {
  type: number;
  payload: Buffer;
}

/** One frame's bytes. */
export function encodeFrame(type: number, payload: Buffer = Buffer.alloc(0)): Buffer {
  const head = Buffer.alloc(5);
  head.writeUInt8(type, 0);
  head.writeUInt32BE(payload.length, 1);
  return Buffer.concat([head, payload]);
}

/** A RESIZE frame. */
export function resizeFrame(rows: number, cols: number): Buffer {
  const p = Buffer.alloc(4);
  p.writeUInt16BE(rows, 0);
  p.writeUInt16BE(cols, 2);
  return encodeFrame(FRAME.resize, p);
}

/** Splits a byte stream into frames: push() each chunk read, get the frames it completed. */
export function frameReader(): (chunk: Buffer) => Frame[] {
  let buf: Buffer = Buffer.alloc(0);
  return (chunk) => {
    buf = buf.length ? Buffer.concat([buf, chunk]) : chunk;
    const out: Frame[] = [];
    while (buf.length >= 5) {
      const type = buf.readUInt8(0);
      const len = buf.readUInt32BE(1);
      if (!TYPES.has(type)) throw new TypeError(`attach: unknown frame type ${type}`);
      if (len > MAX_PAYLOAD) throw new TypeError(`attach: frame of ${len} bytes is over ${MAX_PAYLOAD}`);
      if (buf.length < 5 + len) break;
      out.push({ type, payload: Buffer.from(buf.subarray(5, 5 + len)) });
      buf = buf.subarray(5 + len);
    }
    return out;
  };
}

/**
 * docker's escape proxy: finds the detach keys in typed input, possibly split across reads.
 * Bytes that start the sequence are held back until the next byte says whether it goes on; then
 * they are forwarded (no match) or dropped with everything after them (detach).
 */
export function detachScanner(
  keys: readonly number[] = DETACH_KEYS,
): (chunk: Buffer) => { forward: Buffer; detach: boolean } {
  let matched = 0;
  return (chunk) => {
    if (matched === 0 && !chunk.includes(keys[0])) return { forward: chunk, detach: false };
    const out: number[] = [];
    for (const b of chunk) {
      if (b === keys[matched]) {
        if (++matched === keys.length) return { forward: Buffer.from(out), detach: true };
        continue;
      }
      if (matched > 0) {
        out.push(...keys.slice(0, matched));
        matched = b === keys[0] ? 1 : 0;
        if (matched) continue;
      }
      out.push(b);
    }
    return { forward: Buffer.from(out), detach: false };
  };
}

/**
 * Calls `use` with a name for `path` that fits a unix socket address (sun_path: 108 bytes with its
 * NUL; a container's directory under a long --root does not): a long one goes through
 * /proc/self/fd/N of its directory, which the kernel resolves to the directory itself.
 */
async function viaShortPath<T>(path: string, use: (p: string) => Promise<T>): Promise<T> {
  if (Buffer.byteLength(path) < 100) return use(path);
  const dir = openSync(dirname(path), 'r');
  try {
    return await use(`/proc/self/fd/${dir}/${basename(path)}`);
  } finally {
    closeSync(dir);
  }
}

/** What the monitor does with clients' frames. */
export interface AttachHandlers {
  /** Input bytes; returning false pauses that client until `resume` is called (backpressure). */
  input(data: Buffer, resume: () => void): boolean;
  resize(rows: number, cols: number): void;
}

export interface AttachServer {
  /** Sends EXIT to every client connected. */
  exited(status: number): void;
  /** Stops listening, drops the clients, removes the socket file. */
  close(): void;
}

/** Listens on `path` (a stale socket there is removed; mode 0600) and serves clients' frames. */
export async function listenAttach(path: string, h: AttachHandlers): Promise<AttachServer> {
  rmSync(path, { force: true });
  const clients = new Set<Socket>();
  const server: Server = createServer((c) => {
    clients.add(c);
    const read = frameReader();
    c.on('data', (chunk: Buffer) => {
      let frames: Frame[];
      try {
        frames = read(chunk);
      } catch {
        c.destroy();
        return;
      }
      for (const f of frames) {
        if (f.type === FRAME.input && !h.input(f.payload, () => c.resume())) c.pause();
        else if (f.type === FRAME.resize && f.payload.length === 4)
          h.resize(f.payload.readUInt16BE(0), f.payload.readUInt16BE(2));
      }
    });
    c.on('error', () => {
      /* a client that went away */
    });
    c.on('close', () => clients.delete(c));
  });
  // Bound with a umask that leaves only the owner (root) able to connect, then chmod'ed to say so.
  const umask = process.umask(0o177);
  try {
    await viaShortPath(
      path,
      (p) =>
        new Promise<void>((resolve, reject) => {
          server.once('error', reject);
          server.listen(p, () => {
            server.off('error', reject);
            resolve();
          });
        }),
    );
  } finally {
    process.umask(umask);
  }
  chmodSync(path, 0o600);
  return {
    exited(status) {
      const p = Buffer.alloc(4);
      p.writeUInt32BE(status >>> 0, 0);
      for (const c of clients) c.write(encodeFrame(FRAME.exit, p));
    },
    close() {
      server.close();
      for (const c of clients) c.end();
      // Clients that do not close their end in time are dropped.
      setTimeout(() => {
        for (const c of clients) c.destroy();
      }, 1000).unref();
      rmSync(path, { force: true });
    },
  };
}

/** keel attach's end of the socket. */
export interface AttachClient {
  /** Sends input; false: wait for drained() before sending more. */
  input(data: Buffer): boolean;
  drained(): Promise<void>;
  resize(rows: number, cols: number): void;
  /** The first EXIT's status; null if the monitor went away without one. */
  exit: Promise<number | null>;
  close(): void;
}

/** Connects to a monitor's attach.sock; rejects (ENOENT, ECONNREFUSED) when none listens there. */
export async function connectAttach(path: string): Promise<AttachClient> {
  const sock = await viaShortPath(
    path,
    (p) =>
      new Promise<Socket>((resolve, reject) => {
        const s = createConnection(p);
        s.once('connect', () => resolve(s));
        s.once('error', (e: NodeJS.ErrnoException) =>
          reject(Object.assign(new Error(`cannot connect to ${path}: ${e.code ?? e.message}`), { code: e.code })),
        );
      }),
  );
  sock.on('error', () => {
    /* the monitor went away: exit resolves null */
  });
  const exit = new Promise<number | null>((resolve) => {
    const read = frameReader();
    sock.on('data', (chunk: Buffer) => {
      let frames: Frame[];
      try {
        frames = read(chunk);
      } catch {
        sock.destroy();
        return;
      }
      for (const f of frames) if (f.type === FRAME.exit && f.payload.length === 4) resolve(f.payload.readUInt32BE(0));
    });
    sock.on('close', () => resolve(null));
  });
  return {
    input: (data) => (sock.destroyed ? true : sock.write(encodeFrame(FRAME.input, data))),
    drained: () =>
      new Promise<void>((r) => {
        if (sock.destroyed || !sock.writableNeedDrain) r();
        else {
          sock.once('drain', r);
          sock.once('close', r);
        }
      }),
    resize: (rows, cols) => {
      if (!sock.destroyed) sock.write(resizeFrame(rows, cols));
    },
    exit,
    close: () => sock.destroy(),
  };
}
