// A Keel init running for real as PID 1 of fresh pid and mount namespaces, with its units, runtime
// dir, logs and cgroup in a temp directory: host integration tests drive it over its control socket.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import {
  cpSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  readlinkSync,
  rmSync,
  writeFileSync,
  rmdirSync,
  readdirSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { request } from '../../cli/control-client.js';
import { repoRoot } from '../../builder/bundle.js';

const CGROUP2 = ['/sys/fs/cgroup/unified', '/sys/fs/cgroup'].find((p) => existsSync(join(p, 'cgroup.procs')));

/** One init under test. */
export class ContainedInit {
  output = '';
  readonly dir: string;
  readonly unitDir: string;
  readonly control: string;
  readonly cgroupRoot: string | null;
  private child!: ChildProcess;
  private exit!: Promise<number | null>;

  private constructor(dir: string, cgroupRoot: string | null) {
    this.dir = dir;
    this.unitDir = join(dir, 'etc/systemd/system');
    this.control = join(dir, 'run/keel/control.sock');
    this.cgroupRoot = cgroupRoot;
  }

  /** Writes `units` (name -> text) and starts the init, waiting for its ready line. */
  static async start(
    units: Record<string, string>,
    opts: { defaultTarget?: string; timeoutMs?: number; env?: Record<string, string> } = {},
  ): Promise<ContainedInit> {
    const dir = mkdtempSync(join(tmpdir(), 'keel-init-'));
    let cg: string | null = null;
    if (CGROUP2) {
      cg = join(CGROUP2, `keel-test-${process.pid}-${Date.now()}`);
      mkdirSync(cg);
    }
    const init = new ContainedInit(dir, cg);
    for (const d of [
      'etc/systemd/system',
      'run/systemd/system',
      'usr/lib/systemd/system',
      'run/keel',
      'var/log/keel',
      'var/lib/keel',
      'etc-root',
    ])
      mkdirSync(join(dir, d), { recursive: true });
    writeFileSync(
      join(dir, 'etc-root/passwd'),
      'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin\n',
    );
    writeFileSync(join(dir, 'etc-root/group'), 'root:x:0:\nnogroup:x:65534:\n');
    // The image's own targets (sysinit, basic, shutdown, ...), which default dependencies name.
    const shipped = join(repoRoot(), 'image/rootfs/usr/lib/systemd/system');
    for (const f of readdirSync(shipped).filter((f) => f.endsWith('.target')))
      cpSync(join(shipped, f), join(dir, 'usr/lib/systemd/system', f), { verbatimSymlinks: true });
    init.writeUnits(units);
    const env = {
      ...process.env,
      KEEL_CONTAINED: '1',
      KEEL_UNIT_PATH: ['etc/systemd/system', 'run/systemd/system', 'usr/lib/systemd/system']
        .map((d) => join(dir, d))
        .join(':'),
      KEEL_RUNTIME_DIR: join(dir, 'run/keel'),
      KEEL_LOG_DIR: join(dir, 'var/log/keel'),
      KEEL_STATE_DIR: join(dir, 'var/lib/keel'),
      KEEL_CGROUP_ROOT: cg ?? '',
      KEEL_DEFAULT_TARGET: opts.defaultTarget ?? 'test.target',
      KEEL_ETC: join(dir, 'etc-root'),
      ...opts.env,
    };
    // The image's Node has --disable-sigusr1 (PID 1 must not open the inspector); the host's may not.
    const flags = process.allowedNodeEnvironmentFlags.has('--disable-sigusr1') ? ['--disable-sigusr1'] : [];
    init.child = spawn(
      'unshare',
      [
        '--pid',
        '--mount',
        '--fork',
        '--mount-proc',
        '--kill-child',
        process.execPath,
        ...flags,
        join(repoRoot(), 'dist/init/main.js'),
      ],
      { env, stdio: ['ignore', 'pipe', 'pipe'] },
    );
    init.child.stdout!.on('data', (d) => {
      init.output += d;
    });
    init.child.stderr!.on('data', (d) => {
      init.output += d;
    });
    init.exit = new Promise((r) => init.child.on('exit', (code) => r(code)));
    await init.waitFor(/keel: ready in/, opts.timeoutMs ?? 20_000);
    return init;
  }

  /** Writes unit files into /etc/systemd/system (call daemonReload after). */
  writeUnits(units: Record<string, string>): void {
    for (const [name, text] of Object.entries(units)) {
      const p = join(this.unitDir, name);
      mkdirSync(dirname(p), { recursive: true });
      writeFileSync(p, text);
    }
  }

  /** Waits until the init's output matches. */
  async waitFor(re: RegExp, timeoutMs = 20_000): Promise<RegExpMatchArray> {
    const until = Date.now() + timeoutMs;
    for (;;) {
      const m = this.output.match(re);
      if (m) return m;
      if (this.child.exitCode !== null)
        throw new Error(`init exited (${this.child.exitCode}) while waiting for ${re}\n${this.output}`);
      if (Date.now() > until) throw new Error(`timed out waiting for ${re}\n${this.output}`);
      await new Promise((r) => setTimeout(r, 20));
    }
  }

  /** One control request. */
  ctl(verb: string, args: Record<string, unknown> = {}): Promise<any> {
    return request(verb, args, undefined, this.control);
  }

  /** Polls a unit until `pred` holds for its status. */
  async until(unit: string, pred: (s: any) => boolean, timeoutMs = 15_000): Promise<any> {
    const until = Date.now() + timeoutMs;
    for (;;) {
      const s = await this.ctl('status', { unit, lines: 50 });
      if (pred(s)) return s;
      if (Date.now() > until)
        throw new Error(
          `timed out waiting on ${unit}: ${JSON.stringify(s, null, 1)}\n--- init output ---\n${this.output}`,
        );
      await new Promise((r) => setTimeout(r, 50));
    }
  }

  /** Runs the keel CLI against this init. */
  keel(...args: string[]): { code: number; stdout: string; stderr: string } {
    const r = spawnSync(process.execPath, [join(repoRoot(), 'bin/keel'), ...args], {
      env: { ...process.env, KEEL_CONTROL: this.control },
      encoding: 'utf8',
    });
    return { code: r.status ?? -1, stdout: r.stdout, stderr: r.stderr };
  }

  /** The init's pid namespace as the host names it (readlink of /proc/PID/ns/pid): its child of unshare. */
  pidNamespace(): string {
    for (const pid of readdirSync('/proc').filter((p) => /^\d+$/.test(p))) {
      let status = '';
      try {
        status = readFileSync(`/proc/${pid}/status`, 'utf8');
      } catch {
        continue;
      }
      if (new RegExp(`^PPid:\\s+${this.child.pid}$`, 'm').test(status) && /^NSpid:\s+\d+\s+1$/m.test(status)) {
        return readlinkSync(`/proc/${pid}/ns/pid`);
      }
    }
    throw new Error(`cannot find the init of unshare ${this.child.pid} in /proc`);
  }

  /** Asks for a poweroff and waits for the namespace to end; kills it if it will not. */
  async stop(): Promise<number | null> {
    if (this.child.exitCode === null) {
      this.ctl('shutdown', { kind: 'poweroff' }).catch(() => {});
      const t = setTimeout(() => this.child.kill('SIGKILL'), 15_000);
      await this.exit;
      clearTimeout(t);
    }
    this.cleanup();
    return this.child.exitCode;
  }

  private cleanup(): void {
    if (this.cgroupRoot) {
      const rm = (d: string) => {
        for (const e of readdirSync(d, { withFileTypes: true })) if (e.isDirectory()) rm(join(d, e.name));
        try {
          rmdirSync(d);
        } catch {
          /* busy */
        }
      };
      try {
        rm(this.cgroupRoot);
      } catch {
        /* gone */
      }
    }
    rmSync(this.dir, { recursive: true, force: true });
  }
}

/** A target the tests boot into, wanting `units`. */
export function testTarget(...units: string[]): string {
  return (
    '[Unit]\nDescription=Test target\n' +
    `${units.length ? `Wants=${units.join(' ')}\nAfter=${units.join(' ')}\n` : ''}`
  );
}
