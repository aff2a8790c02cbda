// keel attach CONTAINER: docker attach. The container's output from now on (followed in its log)
// until it exits, then its exit status; with -i our stdin goes to it, with -t our window size
// too, over its monitor's attach.sock (containers/attach-protocol.ts). On a -t container typing
// ctrl-p ctrl-q detaches, leaving it running. Without -i nothing is sent (its stdin is /dev/null).
// Our SIGINT, SIGTERM and SIGHUP go to a container without a terminal (docker's --sig-proxy).
import { closeSync, fstatSync, openSync, readSync } from 'node:fs';
import type { Verb } from './main.js';
import { ATTACH_SOCKET, connectAttach, detachScanner, type AttachClient } from '../containers/attach-protocol.js';
import { ContainerDb, processStartTime, type ContainerConfig } from '../containers/db.js';
import { ourSize } from '../containers/pty.js';
import { ROOT_OPTION } from './container-common.js';

/** How often the log and the state are looked at. */
const POLL_MS = 50;
/**
 * How long a container whose process is gone may go without its exit recorded (a monitor that died) before we give up
 * on it.
 */
const RECORD_GRACE_MS = 10_000;

export const verb: Verb = {
  summary:
    'Attach to a running container: its output; our input with -i, our window size with -t (ctrl-p ctrl-q detaches).',
  usage: 'keel attach [--root DIR] CONTAINER',
  options: { ...ROOT_OPTION },
  async run(v, [name]) {
    if (!name) throw new TypeError('keel attach: name a container');
    const db = new ContainerDb(String(v.root));
    const { config, state } = db.resolve(name);
    if (state.status !== 'running') throw new Error(`keel attach: container ${config.name} is not running`);
    // Open once: a --rm container's directory may go before we read its last output.
    const log = openLog(db.path(config.id, 'container.log'));
    let pos = log === null ? 0 : fstatSync(log).size;
    const exitOf = recordedExit(db, config.id, state.startedAt);
    let wake = () => {};
    // docker's --sig-proxy (on by default, for a container without a terminal): our SIGINT, SIGTERM
    // and SIGHUP go to its process (the one running now, should it have been restarted).
    const proxy = config.tty
      ? null
      : (sig: NodeJS.Signals) => {
          try {
            const s = db.state(config.id);
            if (s.status === 'running' && processStartTime(s.pid) === s.startTime) process.kill(s.pid, sig);
          } catch {
            /* gone meanwhile */
          }
        };
    const session = await attachInput(db.path(config.id, ATTACH_SOCKET), config, () => wake(), proxy);
    try {
      for (;;) {
        pos = await copyOut(log, pos);
        if (session?.detached) return 0;
        const code = session?.exitStatus ?? exitOf();
        if (code !== undefined) {
          await copyOut(log, pos);
          return code;
        }
        await new Promise<void>((r) => {
          const t = setTimeout(r, POLL_MS);
          wake = () => {
            clearTimeout(t);
            r();
          };
        });
      }
    } finally {
      session?.close();
      if (log !== null) closeSync(log);
      // Let a piped stdout flush before we return our status.
      const out = process.stdout;
      if (out.writableLength > 0)
        await new Promise<void>((r) => {
          out.once('drain', r);
          out.once('error', r);
        });
    }
  },
};

function openLog(file: string): number | null {
  try {
    return openSync(file, 'r');
  } catch {
    return null;
  }
}

/** Copies what the log has past `pos` to our stdout; returns the new position. */
async function copyOut(log: number | null, pos: number): Promise<number> {
  if (log === null) return pos;
  const buf = Buffer.alloc(64 * 1024);
  for (;;) {
    const n = readSync(log, buf, 0, buf.length, pos);
    if (n === 0) return pos;
    pos += n;
    if (!process.stdout.write(Buffer.from(buf.subarray(0, n))))
      await new Promise<void>((r) => {
        process.stdout.once('drain', r);
        process.stdout.once('error', r);
      });
  }
}

/**
 * The run's exit status once its monitor recorded it, else undefined. A process that is gone is
 * not enough (db.state() then says exited with no status yet): the monitor may still be copying
 * its last output into the log. A restart (another start time) or a removal ends the run too.
 */
function recordedExit(db: ContainerDb, id: string, startedAt: string | null): () => number | undefined {
  let goneAt = 0;
  return () => {
    let s;
    try {
      s = db.state(id);
    } catch {
      return 0; /* removed (--rm): its status is gone with it */
    }
    if (s.startedAt !== startedAt || s.finishedAt !== null) return s.startedAt === startedAt ? (s.exitCode ?? 0) : 0;
    if (s.status === 'running') return undefined;
    goneAt ||= Date.now();
    return Date.now() - goneAt > RECORD_GRACE_MS ? (s.exitCode ?? 0) : undefined;
  };
}

interface InputSession {
  /** Set once the detach keys were typed. */
  detached: boolean;
  /** The EXIT the monitor sent, if it did. */
  exitStatus: number | undefined;
  close(): void;
}

/**
 * Our stdin (with -i) and window size (with -t) to the container through attach.sock. Raw mode
 * when it has a tty, takes our input and stdin is a terminal, restored on every way out (close(),
 * exit, SIGINT/SIGTERM/SIGHUP). `changed` is called on a detach or an exit.
 */
async function attachInput(
  sock: string,
  config: ContainerConfig,
  changed: () => void,
  proxy: ((sig: NodeJS.Signals) => void) | null,
): Promise<InputSession | null> {
  let client: AttachClient;
  try {
    client = await connectAttach(sock);
  } catch (e) {
    // Without -i or -t the socket only brings the exit status, which the state file gives too.
    if (config.interactive || config.tty)
      process.stderr.write(
        `keel attach: cannot send input to ${config.name}: ${(e as Error).message} (following its output only)\n`,
      );
    return null;
  }
  const stdin = process.stdin;
  const stdout = process.stdout;
  const session: InputSession = { detached: false, exitStatus: undefined, close };
  let closed = false;
  void client.exit.then((status) => {
    if (status !== null) {
      session.exitStatus = status;
      changed();
    }
  });
  const raw = config.tty && config.interactive && stdin.isTTY;
  const restore = () => {
    if (raw && stdin.isRaw)
      try {
        stdin.setRawMode(false);
      } catch {
        /* gone */
      }
  };
  // Proxied to the container, or (with a terminal, where ^C is a byte like any other) the end of us.
  const onSignal = (sig: NodeJS.Signals) => {
    if (proxy) return proxy(sig);
    close();
    process.kill(process.pid, sig);
  };
  const signals = ['SIGINT', 'SIGTERM', 'SIGHUP'] as const;
  for (const sig of signals) {
    if (proxy) process.on(sig, onSignal);
    else process.once(sig, onSignal);
  }
  process.once('exit', restore);
  const onResize = () => {
    const size = ourSize();
    if (size) client.resize(size.rows, size.cols);
  };
  // docker's escape proxy is for terminals: on a plain -i container every byte is input.
  const scan = config.tty ? detachScanner() : null;
  const onInput = (chunk: Buffer) => {
    if (session.detached) return;
    const { forward, detach } = scan ? scan(chunk) : { forward: chunk, detach: false };
    if (forward.length && !client.input(forward)) {
      stdin.pause();
      void client.drained().then(() => {
        if (!closed) stdin.resume();
      });
    }
    if (detach) {
      session.detached = true;
      changed();
    }
  };
  if (config.interactive) {
    if (raw) stdin.setRawMode(true);
    // Our stdin's EOF is not passed on: the container's stdin stays open for the next attach, as docker's -d -i.
    stdin.on('data', onInput);
    stdin.resume();
  }
  // Last, once our terminal is raw: a new size makes a shell redraw its prompt, inviting input.
  if (config.tty) {
    onResize();
    stdout.on('resize', onResize);
  }
  function close() {
    if (closed) return;
    closed = true;
    restore();
    for (const sig of signals) process.off(sig, onSignal);
    process.off('exit', restore);
    stdout.off('resize', onResize);
    if (config.interactive) {
      stdin.off('data', onInput);
      stdin.pause();
    }
    client.close();
  }
  return session;
}
