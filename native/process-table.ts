// PID 1's process table: starts children through the native helper and reaps every exit with
// waitpid(-1), handing each to the promise of whoever spawned it and counting adopted orphans.
import { constants } from 'node:os';
import { warn as logWarn } from '../lib/log.js';
import type { Native, SpawnOptions, WaitStatus } from './native.js';

/** How a process ended: its exit code, or the name of the signal that killed it. */
export interface ExitStatus {
  pid: number;
  code: number | null;
  signal: string | null;
}

/** What the table needs from the system: PID 1 passes `native`, tests pass a fake. */
export type ProcessSys = Pick<Native, 'spawn' | 'waitpid'> & { constants: { WNOHANG: number } };

/** A started process and the promise of its exit (it never rejects). */
export interface Spawned {
  pid: number;
  exited: Promise<ExitStatus>;
}

/** Hooks and tuning for a ProcessTable. */
export interface ProcessTableOptions {
  /** Called for each reaped process the table did not spawn (an orphan re-parented to us). */
  onOrphan?: (status: ExitStatus) => void;
  /** Best-effort failures (a reap error inside the signal handler); default: the init log. */
  warn?: (what: string, err: unknown) => void;
  /** Period of the safety-net reap; default 5000 ms. */
  safetyIntervalMs?: number;
}

const SIGNAL_NAMES = new Map<number, string>(Object.entries(constants.signals).map(([name, n]) => [n, name]));

/** Names a signal number ('SIGKILL'); numbers Node has no name for (real-time ones) become 'SIG<n>'. */
export function signalName(signal: number): string {
  return SIGNAL_NAMES.get(signal) ?? `SIG${signal}`;
}

/** An ExitStatus for a waitpid result, or null for a stop/continue report (not an exit). */
export function toExitStatus(w: WaitStatus): ExitStatus | null {
  if (w.exited) return { pid: w.pid, code: w.code, signal: null };
  if (w.signaled && w.signal !== null) return { pid: w.pid, code: null, signal: signalName(w.signal) };
  return null;
}

/** Spawns processes and reaps all children, like tini's reap_zombies, but with per-pid promises. */
export class ProcessTable {
  /** How many orphans (exits of processes we did not spawn) have been reaped so far. */
  orphans = 0;
  private readonly waiting = new Map<number, (status: ExitStatus) => void>();
  private timer: NodeJS.Timeout | undefined;
  private readonly onSignal = (): void => this.safeReap();

  constructor(
    private readonly sys: ProcessSys,
    private readonly opts: ProcessTableOptions = {},
  ) {}

  /** Starts a process; throws synchronously (a NativeError) if it could not be started. */
  spawn(opts: SpawnOptions): Spawned {
    const pid = this.sys.spawn(opts);
    // No reap can slip in before this line: reaping runs from the event loop, never inside
    // this synchronous call, so even a child that already died is still a zombie waiting for us.
    const exited = new Promise<ExitStatus>((resolve) => this.waiting.set(pid, resolve));
    return { pid, exited };
  }

  /** Pids spawned through this table that have not been reaped yet. */
  running(): number[] {
    return [...this.waiting.keys()];
  }

  /**
   * Collects every child that has exited, without blocking, and returns them all (ours and
   * orphans). Stops at "nothing ready" or ECHILD (no children at all); other errors throw.
   */
  reap(): ExitStatus[] {
    const reaped: ExitStatus[] = [];
    for (;;) {
      let w: WaitStatus | null;
      try {
        w = this.sys.waitpid(-1, this.sys.constants.WNOHANG);
      } catch (e) {
        if ((e as { code?: unknown }).code === 'ECHILD') break;
        throw e;
      }
      if (w === null) break;
      const status = toExitStatus(w);
      if (!status) continue;
      reaped.push(status);
      this.deliver(status);
    }
    return reaped;
  }

  /** Reaps on every SIGCHLD, plus a slow unref'd safety net; reaps once now for earlier exits. */
  start(): void {
    if (this.timer) return;
    process.on('SIGCHLD', this.onSignal);
    // Signals coalesce and are only noticed by the event loop; one missed or failed reap must
    // not leave zombies forever, so poll slowly too (unref'd: it never keeps a process alive).
    this.timer = setInterval(this.onSignal, this.opts.safetyIntervalMs ?? 5000).unref();
    this.safeReap();
  }

  /** Removes the SIGCHLD handler and the safety net. */
  stop(): void {
    process.off('SIGCHLD', this.onSignal);
    clearInterval(this.timer);
    this.timer = undefined;
  }

  private deliver(status: ExitStatus): void {
    const resolve = this.waiting.get(status.pid);
    if (resolve) {
      this.waiting.delete(status.pid);
      resolve(status);
      return;
    }
    this.orphans++;
    try {
      this.opts.onOrphan?.(status);
    } catch (e) {
      this.warn(`handle the exit of orphan ${status.pid}`, e);
    }
  }

  // Best effort: an exception here would escape a signal handler and could take PID 1 down.
  private safeReap(): void {
    try {
      this.reap();
    } catch (e) {
      this.warn('reap children', e);
    }
  }

  private warn(what: string, err: unknown): void {
    try {
      (this.opts.warn ?? logWarn)(what, err);
    } catch {
      /* logging must not break reaping either */
    }
  }
}
