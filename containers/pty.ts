// Pseudo-terminals for `keel run -t` and `keel exec -t`, as docker gives them. The container's PID 1
// (or the exec'd command) opens the pty itself, in its own root: a container's /dev/pts is its own
// devpts instance, so inside `tty` names the terminal (/dev/pts/0) as in docker. The master comes
// back to us over a unix socket (spawn()'s `console`, runc's console socket); the window size is
// set before the program starts. We keep the master and relay: our stdin to it (with -i; raw mode
// when stdin is a terminal, so ^C, ^D and ^Z reach the slave's line discipline and the container's
// foreground process, not us), its output to our stdout, our window size to it on every resize.
import { closeSync } from 'node:fs';
import type { Socket } from 'node:net';
import { ReadStream } from 'node:tty';
import { native } from '../native/native.js';
import { ContainerError } from './errors.js';
import type { ConsoleSocket, ContainerExit } from './runtime.js';

/** docker's refusal of -it when stdin is not a terminal, word for word. */
export const NOT_A_TTY = 'the input device is not a TTY';

export interface Terminal {
  /** Our end; closed by relayTerminal (or close()). */
  master: number;
  /** Closes the master if the relay never started. */
  close(): void;
}

/** Our terminal's size, from stdout when it is one (else none is known). */
export function ourSize(out: NodeJS.WriteStream = process.stdout): { rows: number; cols: number } | null {
  if (!out.isTTY) return null;
  const [cols, rows] = out.getWindowSize();
  return cols > 0 && rows > 0 ? { rows, cols } : null;
}

/** A console the container (or command) is to open: the socket to give spawn(), then the master it sent. */
export interface PendingConsole {
  /** ContainerSpec.console / ExecOptions.console. */
  request: ConsoleSocket;
  /** The master the child sent before its execve; call once spawn() has returned. */
  receive(): Terminal;
  /** Closes both ends of the socket (idempotent); call however the start went. */
  close(): void;
}

/** A socket pair for a console, with `size` (default ours) as the pty's first window size. */
export function requestConsole(size = ourSize()): PendingConsole {
  const [ours, theirs] = native.socketPair();
  let open = true;
  const close = () => {
    if (open) {
      open = false;
      closeSync(ours);
      closeSync(theirs);
    }
  };
  return {
    request: { socket: theirs, ...(size ? { rows: size.rows, cols: size.cols } : {}) },
    receive() {
      const master = native.recvFd(ours);
      close();
      if (master === null) throw new ContainerError('ETERMINAL', 'the container started without sending its terminal');
      let closed = false;
      return {
        master,
        close() {
          if (!closed) {
            closed = true;
            closeSync(master);
          }
        },
      };
    },
    close,
  };
}

export interface RelayOptions {
  /** -i: forward our stdin (docker's -t alone gives the program a terminal that never has input). */
  interactive: boolean;
  /**
   * How long to keep reading after the process ended, should something else (a background child of an exec'd shell)
   * hold the slave open.
   */
  drainMs?: number;
}

/**
 * Relays between our stdio and `t`'s master until the program is done, then resolves with its
 * exit: output is copied until the master reports EIO or EOF (every holder of the slave closed it)
 * and `wait()` has resolved; once `wait()` has, at most `drainMs` (default 1 s) more. Our stdin is
 * in raw mode meanwhile when it is a terminal and `interactive`, and restored however this ends
 * (including exit by a signal or an uncaught error). Closes the master.
 */
export async function relayTerminal(
  t: Terminal,
  wait: () => Promise<ContainerExit>,
  o: RelayOptions,
): Promise<ContainerExit> {
  const stdin = process.stdin;
  const stdout = process.stdout;
  const raw = o.interactive && stdin.isTTY;
  const restore = () => {
    if (raw && stdin.isRaw)
      try {
        stdin.setRawMode(false);
      } catch {
        /* gone */
      }
  };
  // The one reader of the master (holdTerminal); our stdout's back-pressure pauses it.
  const held: HeldTerminal = holdTerminal(t, (chunk) => {
    if (!stdout.write(chunk)) {
      held.input.pause();
      stdout.once('drain', () => held.input.resume());
    }
  });
  const master = held.input;
  const eof = held.eof.then((e) => {
    if (e) process.stderr.write(`keel: ${e.message}\n`);
  });
  const onResize = () => {
    const size = ourSize();
    if (size) held.resize(size.rows, size.cols);
  };
  stdout.on('resize', onResize);
  const onInput = (chunk: Buffer) => {
    if (!master.destroyed) master.write(chunk);
  };
  // Not forwarding EOF of a piped stdin as a hangup: the program sees ^D only if typed or piped.
  if (o.interactive) {
    if (raw) stdin.setRawMode(true);
    stdin.on('data', onInput);
    stdin.resume();
  }
  const onExit = () => restore();
  process.once('exit', onExit);
  try {
    const exited = wait();
    const drained = exited.then(() => new Promise<void>((r) => setTimeout(r, o.drainMs ?? 1000).unref()));
    await Promise.race([eof, drained]);
    return await exited;
  } finally {
    restore();
    process.off('exit', onExit);
    stdout.off('resize', onResize);
    if (o.interactive) {
      stdin.off('data', onInput);
      stdin.pause();
    }
    held.close();
    // Output already written: let a piped stdout flush before we return our status.
    if (stdout.writableLength > 0)
      await new Promise<void>((r) => {
        stdout.once('drain', r);
        stdout.once('error', r);
      });
  }
}

/** A console the monitor of a detached container keeps (keel run -dt): nobody's stdio is on it. */
export interface HeldTerminal {
  /** Writes to the master: input for the container (attach.sock's). */
  input: Socket;
  /** The slave's window size (its foreground process group gets SIGWINCH). */
  resize(rows: number, cols: number): void;
  /**
   * Resolves once the master's output is over: with null when every holder of the slave closed it
   * (EIO or EOF on the master), with the error when reading it failed otherwise (a ContainerError
   * ETERMINAL, "cannot read the terminal: reason"; the output ends there).
   */
  eof: Promise<ContainerError | null>;
  /** Closes the master. */
  close(): void;
}

/** The one reader of `t`'s master: gives its output to `out` until it ends (`eof`); closes the master on close(). */
export function holdTerminal(t: Terminal, out: (chunk: Buffer) => void): HeldTerminal {
  // A TTY handle (net.Socket does not take one): tty.ReadStream's, made writable too.
  const master = new ReadStream(t.master, { writable: true } as ConstructorParameters<typeof ReadStream>[1]);
  let done!: (e: ContainerError | null) => void;
  const eof = new Promise<ContainerError | null>((r) => {
    done = r;
  });
  master.on('data', out);
  master.on('end', () => done(null));
  master.on('close', () => done(null));
  // EIO: the last holder of the slave closed it (Linux's way of saying EOF on a master); anything else is an error.
  master.on('error', (e: NodeJS.ErrnoException) => {
    done(
      e.code === 'EIO' ? null : new ContainerError('ETERMINAL', `cannot read the terminal: ${e.message}`, { cause: e }),
    );
  });
  return {
    input: master,
    resize(rows, cols) {
      if (!master.destroyed)
        try {
          native.setWindowSize(t.master, rows, cols);
        } catch {
          /* closed */
        }
    },
    eof,
    close() {
      master.destroy();
    },
  };
}
