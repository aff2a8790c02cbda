// The thin shell around the pure service machine: it performs the machine's effects (spawn,
// kill, timers, PID files, cgroups) and feeds back what happened as events.
import { KeelError } from '../lib/errors.js';
import { closeSync, existsSync, readFileSync, rmSync, watch, writeFileSync, type FSWatcher } from 'node:fs';
import { totalmem } from 'node:os';
import { Socket } from 'node:net';
import { basename, dirname, join } from 'node:path';
import type { Native, SpawnOptions } from '../native/native.js';
import type { ExitStatus, ProcessTable } from '../native/process-table.js';
import type { Journal } from './journal.js';
import { lineSplitter } from './journal.js';
import {
  initialServiceState,
  startLimitsOf,
  transition,
  type ServiceEffect,
  type ServiceEvent,
  type ServiceState,
} from './service-machine.js';
import type { ExecCommand, UnitConfig } from '../units/types.js';
import { expandCommandVariables } from '../units/exec.js';
import { buildEnvironment, envList } from './exec-env.js';
import { resolveCredentials } from './users.js';
import {
  cgroupPids,
  cpuSharesToWeight,
  createUnitCgroup,
  killCgroup,
  removeCgroup,
  type UnitLimits,
} from './cgroup.js';
import { BASE_ENV } from './console-shell.js';
import { needsMountNamespace, sandboxSpawnOptions } from './sandbox.js';
import { inaccessibleFile, makePrivateTmp, removePrivateTmp, type PrivateTmp } from './sandbox-dirs.js';

/** What a runner needs from the manager around it. */
export interface RunnerContext {
  native: Native;
  table: ProcessTable;
  journal: Journal;
  cgroupRoot: string | null;
  etc: string;
  notifySocket: string | null;
  /** Listening fds handed to this service (socket activation), in order. */
  socketFds(unit: string): { fds: number[]; names: string[] };
  /** Called on every active-state change (jobs, OnFailure=, dependents). */
  onStateChange(unit: string, change: Extract<ServiceEffect, { type: 'state-changed' }>): void;
  onStartLimitHit(unit: string): void;
  /** Where the sandbox's host-side files live (the inaccessible file); default /run/keel. */
  runtimeDir?: string;
  /** True until the default target is reached (StartupCPUShares= applies meanwhile). */
  inStartup?(): boolean;
  now(): number;
  log(message: string): void;
}

/** A machine event without its time: the runner stamps it. */
type EventIn = ServiceEvent extends infer E ? (E extends unknown ? Omit<E, 'now'> : never) : never;

/** Where a service's stdout and stderr go. */
type StdioFds = Pick<SpawnOptions, 'stdout' | 'stderr'>;

const PRIORITY = { debug: 7, info: 6, notice: 5, warning: 4, error: 3 } as const;

/** One service: its machine state and the live resources behind it. */
export class ServiceRunner {
  state: ServiceState;
  private timer: NodeJS.Timeout | undefined;
  private cgroup: string | null = null;
  private cgroupWatch: FSWatcher | undefined;
  private pidfileWatch: FSWatcher | undefined;
  private live = new Set<number>();
  private privateTmp: PrivateTmp | null = null;

  constructor(
    public config: UnitConfig,
    private readonly ctx: RunnerContext,
  ) {
    this.state = initialServiceState(ctx.now());
  }

  get name(): string {
    return this.config.name;
  }

  /** Feeds one event to the machine and performs the effects it returns. Never throws. */
  dispatch(event: EventIn): void {
    const svc = this.config.service;
    if (!svc) return;
    let step;
    try {
      step = transition(this.state, { ...event, now: this.ctx.now() } as ServiceEvent, svc, startLimitsOf(this.config));
    } catch (e) {
      this.ctx.log(`warning: cannot handle ${event.type} for ${this.name}: ${(e as Error).message}`);
      return;
    }
    this.state = step.state;
    for (const effect of step.effects) {
      try {
        this.perform(effect);
      } catch (e) {
        this.ctx.log(`warning: cannot ${effect.type} for ${this.name}: ${(e as Error).message}`);
      }
    }
  }

  private perform(e: ServiceEffect): void {
    switch (e.type) {
      case 'spawn':
        return this.spawn(e.command, e.kind, e.env);
      case 'kill':
        return this.kill(e.who, e.pid, e.signal);
      case 'arm-timer':
        clearTimeout(this.timer);
        if (e.ms === Infinity || e.ms > 2 ** 31 - 1) return;
        this.timer = setTimeout(
          () => this.dispatch({ type: e.reason === 'restart' ? 'restart-timer' : 'timeout' }),
          Math.max(0, e.ms),
        );
        return;
      case 'disarm-timer':
        clearTimeout(this.timer);
        this.timer = undefined;
        return;
      case 'read-pidfile':
        return this.readPidfile(e.path);
      case 'watch-pidfile':
        return this.watchPidfile(e.path);
      case 'remove-pidfile':
        rmSync(e.path, { force: true });
        return;
      case 'log':
        this.ctx.journal.append(this.name, e.text, { priority: PRIORITY[e.level] });
        return;
      case 'state-changed':
        if ((e.to === 'inactive' || e.to === 'failed') && !e.autoRestart) this.releaseSandbox();
        return this.ctx.onStateChange(this.name, e);
      case 'start-limit-hit':
        return this.ctx.onStartLimitHit(this.name);
      case 'cleanup-cgroup':
        return this.cleanupCgroup();
    }
  }

  private ensureCgroup(): string | null {
    if (this.cgroup || !this.ctx.cgroupRoot) return this.cgroup;
    const s = this.config.service!;
    try {
      const delegate = s.delegate
        ? { controllers: s.delegate, owner: resolveCredentials(s.user, s.group, this.ctx.etc) }
        : undefined;
      const made = createUnitCgroup(this.ctx.cgroupRoot, this.name, this.limits(), delegate);
      this.cgroup = made.dir;
      if (made.failed.length)
        this.ctx.log(
          `warning: cannot set ${made.failed.join(', ')} in the cgroup of ${this.name} (controller not enabled?)`,
        );
      const events = join(this.cgroup, 'cgroup.events');
      this.cgroupWatch = watch(events, () => {
        let text = '';
        try {
          text = readFileSync(events, 'utf8');
        } catch {
          return;
        }
        if (/^populated 0$/m.test(text) && this.state.cgroupPopulated) this.dispatch({ type: 'cgroup-empty' });
      });
      this.cgroupWatch.on('error', () => {});
    } catch (e) {
      this.ctx.log(`warning: cannot create the cgroup of ${this.name}: ${(e as Error).message}`);
      this.cgroup = null;
    }
    return this.cgroup;
  }

  /** The cgroup limits of the unit now (percentages resolved, startup shares while starting up). */
  private limits(): UnitLimits {
    const s = this.config.service!;
    const pct = (p: number | undefined) => (p === undefined ? undefined : Math.floor((totalmem() * p) / 100));
    const startup = s.startupCpuShares !== undefined && (this.ctx.inStartup?.() ?? false);
    return {
      memoryMax: s.memoryMax ?? pct(s.memoryMaxPercent) ?? null,
      cpuQuota: s.cpuQuota,
      tasksMax: s.tasksMax,
      memoryLimit: s.memoryLimit ?? pct(s.memoryLimitPercent) ?? null,
      cpuShares: startup ? s.startupCpuShares : (s.cpuShares ?? null),
      blockIOWeight: s.blockIOWeight ?? null,
    };
  }

  /** Startup is over: StartupCPUShares= gives way to CPUShares= (or the default weight). */
  endStartup(): void {
    const s = this.config.service;
    if (!this.cgroup || s?.startupCpuShares === undefined) return;
    try {
      writeFileSync(
        join(this.cgroup, 'cpu.weight'),
        String(s.cpuShares !== undefined ? cpuSharesToWeight(s.cpuShares) : 100),
      );
    } catch (e) {
      this.ctx.log(`warning: cannot set cpu.weight of ${this.name}: ${(e as Error).message}`);
    }
  }

  private cleanupCgroup(): void {
    if (!this.cgroup) return;
    if (removeCgroup(this.cgroup)) {
      this.cgroupWatch?.close();
      this.cgroupWatch = undefined;
      this.cgroup = null;
    }
  }

  /** Builds environment, credentials, stdio and cgroup, then spawns; answers spawned/spawn-failed. */
  private spawn(cmd: ExecCommand, kind: string, stepEnv: Record<string, string>): void {
    const s = this.config.service!;
    let pid: number;
    let exited: Promise<ExitStatus>;
    const closeAfter: number[] = [];
    try {
      const creds = cmd.privileged ? null : resolveCredentials(s.user, s.group, this.ctx.etc);
      const sockets = kind === 'start' ? this.ctx.socketFds(this.name) : { fds: [], names: [] };
      const extra: Record<string, string> = { ...stepEnv };
      if (creds) Object.assign(extra, { USER: creds.name, LOGNAME: creds.name, HOME: creds.home });
      if (this.ctx.notifySocket && s.type === 'notify') extra.NOTIFY_SOCKET = this.ctx.notifySocket;
      // LISTEN_PID is the child's own pid: the helper writes it in after fork (the 0 is a placeholder).
      if (sockets.fds.length)
        Object.assign(extra, {
          LISTEN_FDS: String(sockets.fds.length),
          LISTEN_FDNAMES: sockets.names.join(':'),
          LISTEN_PID: '0',
        });
      const env = buildEnvironment(BASE_ENV, s.environment, s.environmentFiles, extra);
      const argv = cmd.noSubstitution ? cmd.argv : expandCommandVariables(cmd.argv, env);
      const socketIn = s.standardInput === 'socket' ? this.stdinSocket() : undefined;
      const stdio = this.stdio(s.standardOutput, s.standardError, closeAfter, socketIn);
      const cgroup = this.ensureCgroup();
      const cwd =
        s.workingDirectory === '~'
          ? (creds?.home ?? '/root')
          : (s.workingDirectory?.replace(/^-/, '') ?? (creds ? '/' : '/'));
      const opts: SpawnOptions = {
        file: cmd.path,
        argv: cmd.argv0Override ? argv.slice(1) : argv,
        env: envList(env),
        cwd,
        ...stdio,
        ...(socketIn !== undefined ? { stdin: socketIn } : {}),
        ...(creds ? { uid: creds.uid, gid: creds.gid, groups: creds.groups } : {}),
        ...(s.umask !== null ? { umask: s.umask } : {}),
        ...(s.nice !== null ? { nice: s.nice } : {}),
        ...(cgroup ? { cgroup } : {}),
        ...(sockets.fds.length ? { fds: sockets.fds } : {}),
        rlimits: (Object.entries(s.limits) as [string, [number, number]][]).map(([k, [soft, hard]]) => ({
          resource: k.toUpperCase() as 'NOFILE',
          soft,
          hard,
        })),
        setsid: true,
      };
      if (s.standardInput !== 'null' && s.ttyPath) opts.tty = s.ttyPath;
      // '+' runs with full privileges: no sandbox (systemd.service(5)).
      if (cmd.privilegeMode !== '+') Object.assign(opts, this.sandbox());
      ({ pid, exited } = this.ctx.table.spawn(opts));
    } catch (e) {
      for (const fd of closeAfter) {
        try {
          closeSync(fd);
        } catch {
          /* already closed */
        }
      }
      const msg = (e as Error).message;
      this.ctx.journal.append(this.name, `Failed to execute ${cmd.path}: ${msg}`, { priority: 3 });
      this.dispatch({ type: 'spawn-failed', kind: kind as never, error: msg });
      return;
    }
    for (const fd of closeAfter) {
      try {
        closeSync(fd);
      } catch {
        /* already closed */
      }
    }
    // OOMScoreAdjust=: set from here right after the fork (the helper has no option for it).
    if (s.oomScoreAdjust !== undefined) {
      try {
        writeFileSync(`/proc/${pid}/oom_score_adj`, String(s.oomScoreAdjust));
      } catch (e) {
        this.ctx.journal.append(this.name, `Failed to adjust OOM setting: ${(e as Error).message}`, { priority: 4 });
      }
    }
    this.live.add(pid);
    exited.then((st) => {
      this.live.delete(pid);
      const empty = this.cgroup ? cgroupPids(this.cgroup).length === 0 : this.live.size === 0;
      this.dispatch({ type: 'exited', pid, code: st.code, signal: st.signal, cgroupEmpty: empty });
    });
    this.dispatch({ type: 'spawned', pid });
  }

  /** The spawn options of the unit's sandbox; the private /tmp directories are made on first use. */
  private sandbox(): Partial<SpawnOptions> {
    const sb = this.config.service!.sandbox;
    if (!sb) return {};
    if (sb.privateTmp && needsMountNamespace(sb)) this.privateTmp ??= makePrivateTmp(this.name);
    const dirs = { tmp: this.privateTmp?.tmp ?? null, varTmp: this.privateTmp?.varTmp ?? null, inaccessibleFile: '' };
    if (sb.inaccessiblePaths.length || sb.protectHome === 'yes') {
      dirs.inaccessibleFile = inaccessibleFile(this.ctx.runtimeDir ?? '/run/keel');
    }
    return sandboxSpawnOptions(sb, dirs);
  }

  /** Removes the private /tmp directories once the service is down (not between auto-restarts). */
  private releaseSandbox(): void {
    if (!this.privateTmp || this.live.size > 0) return;
    removePrivateTmp(this.privateTmp);
    this.privateTmp = null;
  }

  /** StandardInput=socket: the service's one socket (an Accept=yes connection, or the one listener). */
  private stdinSocket(): number {
    const { fds } = this.ctx.socketFds(this.name);
    if (fds.length === 1) return fds[0];
    throw new KeelError(
      'ESOCKET',
      `cannot use StandardInput=socket: ${this.name} has ${fds.length} sockets, not exactly one`,
    );
  }

  /**
   * stdout/stderr: a pipe into the journal (the default), /dev/null, the console, or the socket of
   * StandardInput=socket (StandardOutput=socket, or inherit, which means "as stdin").
   */
  private stdio(out: string, err: string, closeAfter: number[], socketIn?: number): StdioFds {
    const r: Pick<SpawnOptions, 'stdout' | 'stderr'> = {};
    const journalPipe = () => {
      const [rd, wr] = this.ctx.native.pipe();
      closeAfter.push(wr);
      const sock = new Socket({ fd: rd, readable: true, writable: false });
      // A process that never prints a newline must not grow PID 1's memory without bound: 16 KiB lines.
      const split = lineSplitter(
        (line) => this.ctx.journal.append(this.name, line, { pid: this.state.mainPid ?? undefined }),
        16 * 1024,
      );
      sock.on('data', (d: Buffer) => split.push(d));
      sock.on('end', () => split.end());
      sock.on('error', () => split.end());
      return wr;
    };
    const wantsJournal = (x: string) => x === 'journal' || x === 'journal+console' || x === 'kmsg';
    const wantsConsole = (x: string) => x === 'tty' || x === 'inherit';
    let outFd: number | undefined;
    if (socketIn !== undefined && (out === 'socket' || out === 'inherit')) r.stdout = socketIn;
    else if (out === 'socket')
      throw new KeelError('ESOCKET', 'cannot use StandardOutput=socket without StandardInput=socket');
    else if (wantsJournal(out)) r.stdout = outFd = journalPipe();
    else if (wantsConsole(out)) r.stdout = 1;
    // StandardError=inherit (systemd's default) means: wherever stdout goes.
    if (err === 'inherit') {
      if (r.stdout !== undefined) r.stderr = r.stdout;
    } else if (wantsJournal(err)) r.stderr = wantsJournal(out) && outFd !== undefined ? outFd : journalPipe();
    else if (wantsConsole(err)) r.stderr = 2;
    else if (err === 'socket') {
      if (socketIn === undefined)
        throw new KeelError('ESOCKET', 'cannot use StandardError=socket without StandardInput=socket');
      r.stderr = socketIn;
    }
    return r;
  }

  private kill(who: 'main' | 'control' | 'cgroup', pid: number | null, signal: string): void {
    const sig = signal as NodeJS.Signals;
    const send = (p: number | null) => {
      if (!p) return;
      try {
        process.kill(p, sig);
        if (sig !== 'SIGKILL') process.kill(p, 'SIGCONT');
      } catch {
        /* already gone */
      }
    };
    if (who !== 'cgroup') return send(pid);
    if (this.cgroup) {
      killCgroup(this.cgroup, sig);
      if (sig !== 'SIGKILL') killCgroup(this.cgroup, 'SIGCONT');
      return;
    }
    // No cgroups (containers, tests): the process groups of what we spawned.
    for (const p of this.live) {
      try {
        process.kill(-p, sig);
      } catch {
        send(p);
      }
    }
  }

  private readPidfile(path: string | null): void {
    let pid: number | null = null;
    if (path) {
      try {
        pid = Number.parseInt(readFileSync(path, 'utf8').trim(), 10) || null;
      } catch {
        pid = null;
      }
    } else if (this.cgroup) {
      pid = cgroupPids(this.cgroup)[0] ?? null;
    }
    if (pid !== null) {
      try {
        process.kill(pid, 0);
      } catch {
        pid = null;
      }
    }
    this.dispatch({ type: 'pidfile', pid });
  }

  private watchPidfile(path: string): void {
    this.pidfileWatch?.close();
    const dir = dirname(path);
    if (!existsSync(dir)) {
      this.dispatch({ type: 'pidfile', pid: null });
      return;
    }
    this.pidfileWatch = watch(dir, (_ev, name) => {
      if (name !== basename(path) || !existsSync(path) || !this.state.awaitingPidfile) return;
      this.pidfileWatch?.close();
      this.pidfileWatch = undefined;
      this.readPidfile(path);
    });
    this.pidfileWatch.on('error', () => {});
  }

  /** Memory and tasks for status. */
  cgroupDir(): string | null {
    return this.cgroup;
  }

  /** Releases timers and watchers (daemon-reload of a removed unit, shutdown). */
  dispose(): void {
    clearTimeout(this.timer);
    this.cgroupWatch?.close();
    this.pidfileWatch?.close();
  }
}
