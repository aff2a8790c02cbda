// A Keel machine under test: QEMU with the serial console on pipes, driven like a person at it.
import type { ChildProcess } from 'node:child_process';
import { launchVm, type LaunchOptions } from '../../builder/qemu.js';

const ANSI = /\x1b\[[0-9;?]*[A-Za-z]|\x1b[()][A-Z0-9]|\r/g;

/** A booted (or booting) VM whose console text accumulates in `console`. */
export class Vm {
  console = '';
  private child: ChildProcess;
  private exit: Promise<number | null>;
  private waiters = new Set<() => void>();
  private seq = 0;
  readonly stateDir: string;

  private constructor(vm: ReturnType<typeof launchVm>) {
    this.child = vm.child;
    this.stateDir = vm.stateDir;
    const onData = (d: Buffer) => {
      this.console += d.toString('utf8').replace(ANSI, '');
      for (const w of this.waiters) w();
    };
    this.child.stdout!.on('data', onData);
    this.child.stderr!.on('data', onData);
    this.exit = new Promise((resolve) =>
      this.child.on('exit', (code) => {
        for (const w of this.waiters) w();
        resolve(code);
      }),
    );
  }

  /** Starts QEMU on an overlay of the image. */
  static start(opts: Omit<LaunchOptions, 'interactive'>): Vm {
    return new Vm(launchVm({ ...opts, interactive: false }));
  }

  /** Where the console text ends now: pass to waitFor to match only what comes after. */
  mark(): number {
    return this.console.length;
  }

  /** Waits until `re` matches the console after `from`; fails with the console's tail on timeout. */
  waitFor(re: RegExp, timeoutMs = 180_000, from = 0): Promise<RegExpMatchArray> {
    return new Promise((resolve, reject) => {
      const check = () => {
        const m = this.console.slice(from).match(re);
        if (m) {
          done();
          resolve(m);
          return true;
        }
        if (this.child.exitCode !== null || this.child.signalCode !== null) {
          done();
          reject(new Error(`QEMU exited while waiting for ${re}\n--- console ---\n${this.tail()}`));
          return true;
        }
        return false;
      };
      const timer = setTimeout(() => {
        done();
        reject(new Error(`timed out after ${timeoutMs / 1000}s waiting for ${re}\n--- console ---\n${this.tail()}`));
      }, timeoutMs);
      const done = () => {
        clearTimeout(timer);
        this.waiters.delete(waiter);
      };
      const waiter = () => {
        check();
      };
      if (!check()) this.waiters.add(waiter);
    });
  }

  /** Waits for the init's ready line after `from`; returns seconds since kernel start. */
  async ready(from = 0, timeoutMs = 180_000): Promise<number> {
    const m = await this.waitFor(/keel: ready in ([\d.]+)s/, timeoutMs, from);
    return Number(m[1]);
  }

  /** Types `line` on the serial console. */
  type(line: string): void {
    this.child.stdin!.write(line + '\n');
  }

  /** Runs a shell command on the console; returns its output and exit status. */
  async sh(cmd: string, timeoutMs = 60_000): Promise<{ out: string; code: number }> {
    const n = ++this.seq;
    const from = this.mark();
    // The markers are split by quotes so the terminal's echo of the command line never matches.
    this.type(`echo "@@S""TART-${n}@@"; ${cmd}; echo "@@E""ND-${n}-$?@@"`);
    const m = await this.waitFor(new RegExp(`@@START-${n}@@\\n([\\s\\S]*?)@@END-${n}-(\\d+)@@`), timeoutMs, from);
    return { out: m[1].replace(/\n$/, ''), code: Number(m[2]) };
  }

  /** Waits for QEMU to exit on its own; returns its exit code. */
  async exited(timeoutMs = 120_000): Promise<number | null> {
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(
        () => reject(new Error(`QEMU did not exit within ${timeoutMs / 1000}s\n--- console ---\n${this.tail()}`)),
        timeoutMs,
      );
    });
    try {
      return await Promise.race([this.exit, timeout]);
    } finally {
      clearTimeout(timer);
    }
  }

  /** The last part of the console, for failure messages. */
  tail(chars = 6000): string {
    return this.console.slice(-chars);
  }

  /** Kills QEMU (cleanup after a failed test). */
  kill(): void {
    if (this.child.exitCode === null) this.child.kill('SIGKILL');
  }
}
