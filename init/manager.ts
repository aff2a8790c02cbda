// The service manager: units, their states, jobs, and what the control socket asks of them.
import { readFileSync } from 'node:fs';
import type { Native } from '../native/native.js';
import type { ProcessTable } from '../native/process-table.js';
import type { Journal, JournalEntry } from './journal.js';
import type { InitConfig } from './config.js';
import type { Check, UnitConfig } from '../units/types.js';
import type { UnitFs } from '../units/load.js';
import { loadRegistry, type Registry } from './unit-registry.js';
import { loadUnit } from '../units/load.js';
import { isInstance } from '../units/names.js';
import { withDefaultDependencies } from '../units/defaults.js';
import { runTransaction, type JobResult } from './jobs.js';
import { ServiceRunner } from './service-runner.js';
import { firstFailure, type CheckFacts } from './conditions.js';
import { cgroupUsage } from './cgroup.js';
import { monotonicMs } from './journal.js';
import type { UnitStatus } from './unit-status.js';
import type { ServiceEffect } from './service-machine.js';
import { TriggerUnits } from './trigger-units.js';
import { UnitFiles } from './unit-files.js';

type ActiveState = UnitStatus['activeState'];
type Change = Extract<ServiceEffect, { type: 'state-changed' }>;

/** What the manager keeps per unit besides its configuration. */
export interface UnitRuntime {
  config: UnitConfig;
  active: ActiveState;
  sub: string;
  result: string;
  since: number | null;
  runner?: ServiceRunner;
  times: { activating?: number; active?: number; inactive?: number };
  /** Why the last start was skipped or refused by a Condition*=/Assert*= (undefined: they held). */
  condition?: string;
  waiters: Set<(c: { to: ActiveState; result: string; autoRestart: boolean; limitHit?: boolean }) => void>;
}

/** Everything the manager needs from outside. */
export interface ManagerDeps {
  cfg: InitConfig;
  native: Native;
  table: ProcessTable;
  journal: Journal;
  fs: UnitFs;
  facts: () => CheckFacts;
  ids: { hostname: string; machineId: string; bootId: string };
  notifySocket: string | null;
  log(message: string): void;
}

/** The manager of one boot. */
export class Manager {
  private reg: Registry = { units: new Map(), aliases: new Map(), diagnostics: [] };
  readonly runtimes = new Map<string, UnitRuntime>();
  readonly triggers: TriggerUnits;
  readonly files: UnitFiles;
  private queued = 0;
  private inStartup = true;
  startedAt = monotonicMs();

  constructor(private readonly d: ManagerDeps) {
    this.triggers = new TriggerUnits(this, d);
    this.files = new UnitFiles(
      d.cfg,
      d.fs,
      () => this.reg.units,
      (n: string) => this.lookup(n),
    );
  }

  /** Reads every unit file (again); runtimes of units still present keep their state. */
  load(): string[] {
    this.reg = loadRegistry(this.d.fs, this.d.cfg.unitPath, { ...this.d.ids, runtimeDir: '/run' }, this.d.cfg.quadlet);
    for (const [name, config] of this.reg.units) {
      const rt = this.runtimes.get(name);
      if (rt) {
        rt.config = config;
        if (rt.runner) rt.runner.config = config;
      } else
        this.runtimes.set(name, {
          config,
          active: 'inactive',
          sub: 'dead',
          result: 'success',
          since: null,
          times: {},
          waiters: new Set(),
        });
    }
    for (const [name, rt] of this.runtimes) {
      if (!this.reg.units.has(name) && rt.active === 'inactive') {
        rt.runner?.dispose();
        this.runtimes.delete(name);
      }
    }
    return this.reg.diagnostics.filter((x) => x.severity === 'error').map((x) => `${x.file}:${x.line}: ${x.message}`);
  }

  /** Loads a template instance named at run time (an Accept=yes connection's service); false if none can be. */
  addInstance(name: string): boolean {
    if (this.reg.units.has(name)) return true;
    let unit: UnitConfig;
    try {
      const specifiers = { ...this.d.ids, runtimeDir: '/run' };
      unit = loadUnit(name, this.d.fs, { searchPaths: this.d.cfg.unitPath, specifiers });
    } catch (e) {
      this.d.log(`cannot load ${name}: ${(e as Error).message}`);
      return false;
    }
    const config = withDefaultDependencies(new Map([[name, unit]])).get(name)!;
    this.reg.units.set(name, config);
    const rt: UnitRuntime = {
      config,
      active: 'inactive',
      sub: 'dead',
      result: 'success',
      since: null,
      times: {},
      waiters: new Set(),
    };
    this.runtimes.set(name, rt);
    return true;
  }

  /** Drops an instance added by addInstance once it is down, as systemd collects a finished connection's service. */
  forgetInstance(name: string): void {
    const rt = this.runtimes.get(name);
    if (!rt || (rt.active !== 'inactive' && rt.active !== 'failed')) return;
    rt.runner?.dispose();
    this.runtimes.delete(name);
    this.reg.units.delete(name);
  }

  /** Real name of a unit or alias. */
  resolve(name: string): string {
    return this.reg.aliases.get(name) ?? name;
  }

  lookup(name: string): UnitConfig | undefined {
    return this.reg.units.get(this.resolve(name));
  }

  units(): Map<string, UnitConfig> {
    return this.reg.units;
  }

  private activeSet(): Set<string> {
    return new Set(
      [...this.runtimes]
        .filter(([, r]) => r.active === 'active' || r.active === 'reloading' || r.active === 'activating')
        .map(([n]) => n),
    );
  }

  /** Queues a job for `unit` and resolves when the whole transaction has run. */
  async job(unit: string, job: 'start' | 'stop' | 'restart' | 'reload'): Promise<JobResult> {
    // An instance of a template named for the first time (keel start greet@alice.service) is loaded now, as systemd
    // does.
    if (job !== 'stop' && !this.reg.units.has(this.resolve(unit)) && isInstance(unit)) this.addInstance(unit);
    const name = this.resolve(unit);
    if (job === 'reload') return this.reload(name);
    this.queued++;
    try {
      const { result } = await runTransaction(
        this.reg.units,
        { unit: name, job },
        this.activeSet(),
        (u, j) => this.execute(u, j),
        (m) => this.d.log(m),
      );
      return result;
    } finally {
      this.queued--;
    }
  }

  get queuedJobs(): number {
    return this.queued;
  }

  /**
   * Runs a job nobody waits for (OnFailure=, BindsTo=, a timer, path or socket, a control request
   * with wait=false); a job that does not end "done" leaves a journal line naming the job, what
   * triggered it and why it failed. Never rejects.
   */
  async backgroundJob(
    unit: string,
    job: 'start' | 'stop' | 'restart' | 'reload',
    trigger: { unit: string; why: string },
  ): Promise<JobResult | null> {
    let outcome: string;
    let result: JobResult | null = null;
    try {
      result = await this.job(unit, job);
      if (result === 'done' || result === 'skipped') return result;
      const rt = this.runtime(unit);
      outcome = `result ${result}${rt && rt.result !== 'success' ? `, unit result ${rt.result}` : ''}`;
    } catch (e) {
      outcome = (e as Error).message;
    }
    const line = `Job ${this.resolve(unit)}/${job} triggered by ${trigger.why} of ${trigger.unit} failed: ${outcome}.`;
    this.d.journal.append(trigger.unit, line, { priority: 3 });
    this.d.log(line);
    return result;
  }

  private runtime(name: string): UnitRuntime | undefined {
    return this.runtimes.get(this.resolve(name));
  }

  /** Moves a unit to a new active state (all unit types) and tells its waiters. */
  setState(name: string, to: ActiveState, sub: string, result: string, autoRestart = false): void {
    const rt = this.runtime(name);
    if (!rt) return;
    const from = rt.active;
    rt.active = to;
    rt.sub = sub;
    rt.result = result;
    if (from !== to) {
      rt.since = Date.now();
      const t = Math.round(monotonicMs());
      if (to === 'activating') rt.times.activating = t;
      if (to === 'active') {
        rt.times.active = t;
        rt.times.activating ??= t;
      }
      if (to === 'inactive' || to === 'failed') rt.times.inactive = t;
      if (to === 'active') this.d.journal.append(name, `Started ${rt.config.description || name}.`);
      // (Services log their own failure from the state machine.)
      if (to === 'failed' && rt.config.type !== 'service')
        this.d.journal.append(name, `Failed with result '${result}'.`, { priority: 3 });
      if ((to === 'inactive' || to === 'failed') && (from === 'active' || from === 'deactivating'))
        this.d.journal.append(name, `Stopped ${rt.config.description || name}.`);
    }
    for (const w of [...rt.waiters]) w({ to, result, autoRestart });
    if (from !== to) this.triggers.onUnitStateChange(name);
    if (to === 'failed' && from !== 'failed') {
      for (const u of rt.config.deps.onFailure) void this.backgroundJob(u, 'start', { unit: name, why: 'OnFailure=' });
    }
    if ((to === 'inactive' || to === 'failed') && from !== 'inactive' && from !== 'failed') {
      // BindsTo=: a unit bound to this one stops with it.
      for (const [other, ort] of this.runtimes) {
        if (!ort.config.deps.bindsTo.includes(name) || (ort.active !== 'active' && ort.active !== 'activating'))
          continue;
        void this.backgroundJob(other, 'stop', { unit: name, why: 'BindsTo=' });
      }
    }
  }

  private onServiceChange(name: string, c: Change): void {
    this.setState(name, c.to, c.sub, c.result, c.autoRestart);
  }

  /** Waits for the unit's state to satisfy `decide` (which returns a result or undefined to keep waiting). */
  private waitFor(
    rt: UnitRuntime,
    decide: (c: { to: ActiveState; result: string; autoRestart: boolean; limitHit?: boolean }) => JobResult | undefined,
  ): Promise<JobResult> {
    return new Promise((resolve) => {
      const w = (c: Parameters<typeof decide>[0]) => {
        const r = decide(c);
        if (r) {
          rt.waiters.delete(w);
          resolve(r);
        }
      };
      rt.waiters.add(w);
    });
  }

  /** Runs one job of one unit (the transaction's executor). */
  private async execute(name: string, job: 'start' | 'stop' | 'verify-active' | 'restart'): Promise<JobResult> {
    const rt = this.runtime(name);
    if (!rt) return job === 'stop' ? 'done' : 'failed';
    if (job === 'verify-active') return rt.active === 'active' ? 'done' : 'failed';
    if (job === 'restart') {
      const r = await this.execute(name, 'stop');
      return r === 'done' ? this.execute(name, 'start') : r;
    }
    return job === 'start' ? this.startUnit(name, rt) : this.stopUnit(name, rt);
  }

  private async startUnit(name: string, rt: UnitRuntime): Promise<JobResult> {
    const c = rt.config;
    if (c.masked) {
      this.d.log(`${name} is masked`);
      return 'failed';
    }
    if (rt.active === 'active' || rt.active === 'reloading') return 'done';
    const facts = this.d.facts();
    const failedCond = firstFailure(c.conditions, facts, false);
    const shown = (x: Check) =>
      `${x.assert ? 'Assert' : 'Condition'}${x.kind}=${x.trigger ? '|' : ''}${x.negate ? '!' : ''}${x.value}`;
    // A failed condition skips the unit (it stays inactive, not failed); a failed assert fails the job.
    rt.condition = failedCond ? `start condition failed: ${shown(failedCond)} was not met` : undefined;
    if (failedCond) {
      this.d.journal.append(name, `Condition check resulted in ${name} being skipped (${shown(failedCond)}).`);
      return 'skipped';
    }
    const failedAssert = firstFailure(c.conditions, facts, true);
    if (failedAssert) {
      rt.condition = `start assertion failed: ${shown(failedAssert)} was not met`;
      this.d.journal.append(name, `Assertion failed for ${name} (${shown(failedAssert)}).`, { priority: 3 });
      this.setState(name, 'failed', 'failed', 'assert');
      return 'assert';
    }
    if (c.type === 'service') {
      rt.runner ??= new ServiceRunner(c, this.runnerContext());
      const waiting = this.waitFor(rt, (s) => {
        if (s.limitHit) return 'failed';
        if (s.to === 'active' || s.to === 'reloading') return 'done';
        if (s.to === 'failed') return 'failed';
        if (s.to === 'inactive' && !s.autoRestart)
          return s.result === 'success' || s.result === 'exec-condition' ? 'done' : 'failed';
        return undefined;
      });
      rt.runner.dispatch({ type: 'start' });
      return waiting;
    }
    if (c.type === 'target' || c.type === 'slice') {
      this.setState(name, 'active', 'active', 'success');
      return 'done';
    }
    return this.triggers.start(name, rt);
  }

  private async stopUnit(name: string, rt: UnitRuntime): Promise<JobResult> {
    if (rt.active === 'inactive' || rt.active === 'failed') return 'done';
    if (rt.config.type === 'service' && rt.runner) {
      const waiting = this.waitFor(rt, (s) => (s.to === 'inactive' || s.to === 'failed' ? 'done' : undefined));
      rt.runner.dispatch({ type: 'stop' });
      return waiting;
    }
    if (rt.config.type === 'target' || rt.config.type === 'slice') {
      this.setState(name, 'inactive', 'dead', 'success');
      return 'done';
    }
    return this.triggers.stop(name, rt);
  }

  private async reload(name: string): Promise<JobResult> {
    const rt = this.runtime(name);
    if (!rt?.runner || rt.active !== 'active') return 'failed';
    if (!rt.config.service?.execReload.length) {
      this.d.log(`${name}: job type reload is not applicable`);
      return 'failed';
    }
    const waiting = this.waitFor(rt, (s) =>
      s.to === 'active' ? 'done' : s.to === 'failed' || s.to === 'inactive' ? 'failed' : undefined,
    );
    rt.runner.dispatch({ type: 'reload' });
    return waiting;
  }

  private runnerContext() {
    return {
      native: this.d.native,
      table: this.d.table,
      journal: this.d.journal,
      cgroupRoot: this.d.cfg.cgroupRoot,
      etc: this.d.cfg.etc,
      notifySocket: this.d.notifySocket,
      runtimeDir: this.d.cfg.runtimeDir,
      socketFds: (unit: string) => this.triggers.socketFdsFor(unit),
      onStateChange: (unit: string, c: Change) => this.onServiceChange(unit, c),
      onStartLimitHit: (unit: string) => {
        const rt = this.runtime(unit);
        this.d.journal.append(unit, 'Start request repeated too quickly.', { priority: 3 });
        for (const w of [...(rt?.waiters ?? [])])
          w({ to: rt!.active, result: 'start-limit-hit', autoRestart: false, limitHit: true });
      },
      inStartup: () => this.inStartup,
      now: () => monotonicMs(),
      log: (m: string) => this.d.log(m),
    };
  }

  /** The default target was reached (or failed): startup-only settings give way to the normal ones. */
  endStartup(): void {
    this.inStartup = false;
    for (const rt of this.runtimes.values()) rt.runner?.endStartup();
  }

  /** The unit a notify datagram's sender belongs to: main pid, or by its cgroup. */
  unitOfPid(pid: number): ServiceRunner | undefined {
    for (const rt of this.runtimes.values())
      if (rt.runner && (rt.runner.state.mainPid === pid || rt.runner.state.controlPid === pid)) return rt.runner;
    let cg = '';
    try {
      cg = readFileSync(`/proc/${pid}/cgroup`, 'utf8');
    } catch {
      return undefined;
    }
    const m = /system\.slice\/([^/\n]+)/.exec(cg);
    return m ? this.runtimes.get(m[1])?.runner : undefined;
  }

  /** An exit of a process we did not spawn: a forking service's main process, or a stray orphan. */
  onOrphanExit(st: { pid: number; code: number | null; signal: string | null }): void {
    for (const rt of this.runtimes.values()) {
      if (rt.runner && rt.runner.state.mainPid === st.pid) {
        rt.runner.dispatch({ type: 'exited', pid: st.pid, code: st.code, signal: st.signal });
        return;
      }
    }
  }

  /** A unit's status for `keel status`. */
  status(unit: string, lines = 10): UnitStatus {
    const name = this.resolve(unit);
    const rt = this.runtimes.get(name);
    const logs: JournalEntry[] = lines > 0 ? this.d.journal.query({ unit: name, lines, currentBoot: true }) : [];
    if (!rt) {
      return {
        name: unit,
        description: unit,
        loadState: 'not-found',
        activeState: 'inactive',
        subState: 'dead',
        result: 'success',
        enabled: 'disabled',
        fragmentPath: null,
        dropIns: [],
        mainPid: null,
        since: null,
        memory: null,
        tasks: null,
        logs,
      };
    }
    const c = rt.config;
    const cg = rt.runner?.cgroupDir();
    const usage = cg ? cgroupUsage(cg) : { memory: null, tasks: null };
    return {
      name,
      description: c.description || name,
      loadState: c.masked ? 'masked' : c.diagnostics.some((x) => x.severity === 'error') ? 'bad-setting' : 'loaded',
      activeState: rt.active,
      subState: rt.sub,
      result: rt.result,
      enabled: this.files.enabledState(name),
      fragmentPath: c.fragmentPath,
      dropIns: c.dropInPaths,
      mainPid: rt.runner?.state.mainPid ?? null,
      since: rt.since,
      memory: usage.memory,
      tasks: usage.tasks,
      ...(rt.condition ? { condition: rt.condition } : {}),
      ...(rt.runner?.state.statusText ? { statusText: rt.runner.state.statusText } : {}),
      logs,
    };
  }

  /** Every loaded unit, for list-units. */
  list(): UnitStatus[] {
    return [...this.runtimes.keys()].sort().map((n) => ({ ...this.status(n, 0), logs: undefined }));
  }

  /** Failed units, for the system state. */
  failed(): string[] {
    return [...this.runtimes].filter(([, r]) => r.active === 'failed').map(([n]) => n);
  }

  /** Boot timeline: when each unit started activating and became active (ms since kernel start). */
  timeline(): { unit: string; activating: number; active: number | null; after: string[] }[] {
    return [...this.runtimes]
      .filter(([, r]) => r.times.activating !== undefined)
      .map(([unit, r]) => ({
        unit,
        activating: r.times.activating!,
        active: r.times.active ?? null,
        after: r.config.deps.after,
      }))
      .sort((a, b) => a.activating - b.activating);
  }

  /** Stops every active unit, dependents first (reverse start order), within `deadlineMs` overall. */
  async stopAll(deadlineMs = 90_000): Promise<void> {
    const until = Date.now() + deadlineMs;
    for (;;) {
      const active = [...this.runtimes].filter(([, r]) => r.active !== 'inactive' && r.active !== 'failed');
      if (active.length === 0 || Date.now() > until) return;
      const names = new Set(active.map(([n]) => n));
      // A unit ordered after another active unit stops first.
      const leaves = active.filter(
        ([n]) =>
          !active.some(
            ([o, r]) =>
              o !== n && (r.config.deps.after.includes(n) || this.runtimes.get(n)!.config.deps.before.includes(o)),
          ),
      );
      const batch = (leaves.length ? leaves : active).map(([n]) => n);
      await Promise.race([
        Promise.all(batch.map((n) => this.stopUnit(n, this.runtimes.get(n)!).catch(() => 'failed' as const))),
        new Promise((r) => setTimeout(r, Math.max(0, until - Date.now())).unref()),
      ]);
      for (const n of batch) {
        const r = this.runtimes.get(n);
        if (r && names.has(n) && r.active !== 'inactive' && r.active !== 'failed' && r.config.type !== 'service')
          this.setState(n, 'inactive', 'dead', 'success');
      }
      if (
        batch.every((n) => {
          const a = this.runtimes.get(n)?.active;
          return a === 'inactive' || a === 'failed';
        }) === false &&
        Date.now() > until
      )
        return;
    }
  }
}
