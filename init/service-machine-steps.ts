// The service machine's steps, one per systemd service_enter_*() function (src/core/service.c).
// Each works on the transition's private copy of the state in a Ctx and appends effects.
import type { ExecCommand, ServiceConfig } from '../units/types.js';
import { activeStateOf, normalizeSignal, restartWanted, startAllowed } from './service-machine-policy.js';
import type {
  ExecKind,
  ServiceEffect,
  ServiceResult,
  ServiceState,
  ServiceSubState,
  StartLimits,
  TimerReason,
} from './service-machine-types.js';

/** One transition's working set: a private copy of the state, the inputs, and the effects so far. */
export interface Ctx {
  s: ServiceState;
  cfg: ServiceConfig;
  limits: StartLimits;
  now: number;
  fx: ServiceEffect[];
}

const WITH_MAIN: ReadonlySet<ServiceSubState> = new Set([
  'start',
  'start-post',
  'running',
  'reload',
  'reload-notify',
  'stop',
  'stop-sigterm',
  'stop-sigkill',
  'stop-post',
  'final-sigterm',
  'final-sigkill',
]);
const WITH_CONTROL: ReadonlySet<ServiceSubState> = new Set([
  'condition',
  'start-pre',
  'start',
  'start-post',
  'reload',
  'stop',
  'stop-sigterm',
  'stop-sigkill',
  'stop-post',
  'final-sigterm',
  'final-sigkill',
]);
/** Sub-states where no timer may run (and the cgroup is pruned on entry). */
const RESTING: ReadonlySet<ServiceSubState> = new Set(['dead', 'failed', 'exited']);
/** Sub-states of a start in progress. */
export const STARTING: ReadonlySet<ServiceSubState> = new Set(['condition', 'start-pre', 'start', 'start-post']);
/** Sub-states of a stop in progress. */
export const STOPPING: ReadonlySet<ServiceSubState> = new Set([
  'stop',
  'stop-sigterm',
  'stop-sigkill',
  'stop-post',
  'final-sigterm',
  'final-sigkill',
]);

type SignalState = 'stop-sigterm' | 'stop-sigkill' | 'final-sigterm' | 'final-sigkill';

/** Appends a log effect. */
export function log(c: Ctx, level: Extract<ServiceEffect, { type: 'log' }>['level'], text: string): void {
  c.fx.push({ type: 'log', level, text });
}

/** The Exec*= list behind `kind`. */
export function execList(cfg: ServiceConfig, kind: ExecKind): ExecCommand[] {
  switch (kind) {
    case 'condition':
      return cfg.execCondition;
    case 'start-pre':
      return cfg.execStartPre;
    case 'start':
      return cfg.execStart;
    case 'start-post':
      return cfg.execStartPost;
    case 'reload':
      return cfg.execReload;
    case 'stop':
      return cfg.execStop;
    case 'stop-post':
      return cfg.execStopPost;
  }
}

// systemd parses TimeoutStartSec=0/TimeoutStopSec=0 as "no timeout" (parse_sec_fix_0).
const timeoutOf = (ms: number): number => (ms > 0 ? ms : Infinity);

/** service_set_state(): forgets what the new sub-state cannot have and reports active-state changes. */
export function setSub(c: Ctx, sub: ServiceSubState, autoRestart = false): void {
  const s = c.s;
  const old = s.sub;
  if (old !== sub) s.since = c.now;
  s.sub = sub;
  s.awaitingPidfile = null;
  if (RESTING.has(sub)) disarmTimer(c);
  if (!WITH_MAIN.has(sub)) {
    s.mainPid = null;
    s.mainCommand = null;
  }
  if (!WITH_CONTROL.has(sub)) {
    s.controlPid = null;
    s.controlCommand = null;
  }
  if (RESTING.has(sub) && !RESTING.has(old)) c.fx.push({ type: 'cleanup-cgroup' });
  const from = activeStateOf(old, c.cfg.type);
  const to = activeStateOf(sub, c.cfg.type);
  if (from !== to)
    c.fx.push({ type: 'state-changed', from, to, sub, result: s.result, reloadResult: s.reloadResult, autoRestart });
}

/** (Re)arms the one timer; an infinite timeout disarms it instead. */
export function armTimer(c: Ctx, ms: number, reason: TimerReason): void {
  if (!Number.isFinite(ms)) return disarmTimer(c);
  c.s.timer = { reason, due: c.now + ms };
  c.fx.push({ type: 'arm-timer', ms, reason });
}

/** Disarms the timer if one is armed. */
export function disarmTimer(c: Ctx): void {
  if (c.s.timer === null) return;
  c.s.timer = null;
  c.fx.push({ type: 'disarm-timer' });
}

function forgetControl(c: Ctx): void {
  c.s.controlPid = null;
  c.s.controlCommand = null;
}

/** The variables systemd passes to a step: MAINPID, PIDFILE, and SERVICE_RESULT/EXIT_* for the stop steps. */
function spawnEnv(c: Ctx, kind: ExecKind): Record<string, string> {
  const env: Record<string, string> = {};
  if (c.s.mainPid !== null) env.MAINPID = String(c.s.mainPid);
  if (c.cfg.pidFile) env.PIDFILE = c.cfg.pidFile;
  if (kind === 'stop' || kind === 'stop-post') {
    env.SERVICE_RESULT = c.s.result;
    const m = c.s.execMainStatus;
    if (m) {
      env.EXIT_CODE = m.signal === null ? 'exited' : m.coreDumped ? 'dumped' : 'killed';
      env.EXIT_STATUS = m.signal === null ? String(m.code) : normalizeSignal(m.signal).slice(3);
    }
  }
  return env;
}

/**
 * service_spawn(): arms the step's timeout and asks for command `index` of `kind`; the sub-state follows on
 * `spawned`.
 */
export function spawnStep(c: Ctx, kind: ExecKind, index: number): void {
  const { cfg, s } = c;
  const main = kind === 'start' && cfg.type !== 'forking';
  const startMs = timeoutOf(cfg.timeoutStartSec);
  if (kind === 'stop' || kind === 'stop-post') armTimer(c, timeoutOf(cfg.timeoutStopSec), 'stop');
  else if (kind === 'reload') armTimer(c, startMs, 'reload');
  // simple/idle have no start timeout on the main process (it is running as soon as it is spawned).
  else armTimer(c, kind === 'start' && (cfg.type === 'simple' || cfg.type === 'idle') ? Infinity : startMs, 'start');
  if (main) s.mainCommand = { index };
  else s.controlCommand = { kind, index };
  s.spawning = { kind, index, main };
  c.fx.push({ type: 'spawn', kind, index, command: execList(cfg, kind)[index], main, env: spawnEnv(c, kind) });
}

/** Whether the service still does something: main alive, or (main unknown) the cgroup populated. */
function serviceGood(s: ServiceState): boolean {
  if (s.mainPid !== null) return true;
  return !s.mainPidKnown && s.cgroupPopulated;
}

/** service_enter_dead(): dead or failed, then maybe auto-restart; then a queued start runs. */
export function enterDead(c: Ctx, f: ServiceResult, allowRestart: boolean): void {
  const s = c.s;
  if (s.result === 'success') s.result = f;
  const skipped = s.result === 'exec-condition';
  const end = s.result === 'success' || skipped ? 'dead' : 'failed';
  if (s.result === 'success') log(c, 'info', 'Deactivated successfully.');
  else if (skipped) log(c, 'info', `Skipped due to '${s.result}'.`);
  else log(c, 'warning', `Failed with result '${s.result}'.`);
  if (allowRestart && !s.forbidRestart && restartWanted(c.cfg.restart, s.result)) {
    // Two state changes, as systemd since v254: watchers see every failure, then the activation.
    setSub(c, end, true);
    armTimer(c, c.cfg.restartSec, 'restart');
    setSub(c, 'auto-restart', true);
  } else {
    setSub(c, end);
  }
  s.forbidRestart = false;
  s.notifyState = null;
  if (c.cfg.pidFile) c.fx.push({ type: 'remove-pidfile', path: c.cfg.pidFile });
  if (s.pendingStart) {
    s.pendingStart = false;
    if (s.sub === 'auto-restart') enterRestart(c, true);
    else startService(c, true);
  }
}

/** service_enter_stop_post(): runs ExecStopPost=, then the final kill. */
export function enterStopPost(c: Ctx, f: ServiceResult): void {
  if (c.s.result === 'success') c.s.result = f;
  forgetControl(c);
  if (c.cfg.execStopPost.length > 0) spawnStep(c, 'stop-post', 0);
  else enterSignal(c, 'final-sigterm', 'success');
}

/** unit_kill_context(): signals per KillMode=; true when something was signalled that we wait for. */
function killProcesses(c: Ctx, sigkill: boolean): boolean {
  const { s, cfg } = c;
  if (cfg.killMode === 'none') return false;
  const signal = sigkill ? 'SIGKILL' : normalizeSignal(cfg.killSignal || 'SIGTERM');
  let wait = false;
  if (s.mainPid !== null) {
    c.fx.push({ type: 'kill', who: 'main', pid: s.mainPid, signal });
    wait = true;
  }
  if (s.controlPid !== null) {
    c.fx.push({ type: 'kill', who: 'control', pid: s.controlPid, signal });
    wait = true;
  }
  // control-group: everything, always; mixed: only the SIGKILL round reaches the rest of the cgroup.
  if ((cfg.killMode === 'control-group' || (cfg.killMode === 'mixed' && sigkill)) && s.cgroupPopulated) {
    c.fx.push({ type: 'kill', who: 'cgroup', pid: null, signal });
    wait = true;
  }
  return wait;
}

/** service_enter_signal(): kill, then wait (TimeoutStopSec=) or move straight on. */
export function enterSignal(c: Ctx, target: SignalState, f: ServiceResult): void {
  if (c.s.result === 'success') c.s.result = f;
  if (killProcesses(c, target === 'stop-sigkill' || target === 'final-sigkill')) {
    armTimer(c, timeoutOf(c.cfg.timeoutStopSec), 'stop');
    setSub(c, target);
  } else if (target === 'stop-sigterm' && c.cfg.sendSIGKILL) enterSignal(c, 'stop-sigkill', 'success');
  else if (target === 'stop-sigterm' || target === 'stop-sigkill') enterStopPost(c, 'success');
  else if (target === 'final-sigterm' && c.cfg.sendSIGKILL) enterSignal(c, 'final-sigkill', 'success');
  else enterDead(c, 'success', true);
}

/** service_enter_stop(): runs ExecStop=, then kills. */
export function enterStop(c: Ctx, f: ServiceResult): void {
  if (c.s.result === 'success') c.s.result = f;
  forgetControl(c);
  if (c.cfg.execStop.length > 0) spawnStep(c, 'stop', 0);
  else enterSignal(c, 'stop-sigterm', 'success');
}

/** service_enter_running(): running, exited (RemainAfterExit=), or on to stopping. */
export function enterRunning(c: Ctx, f: ServiceResult): void {
  const s = c.s;
  if (s.result === 'success') s.result = f;
  forgetControl(c);
  if (s.result !== 'success') enterSignal(c, 'stop-sigterm', f);
  else if (serviceGood(s)) {
    if (s.notifyState === 'reloading') enterReloadByNotify(c);
    else if (s.notifyState === 'stopping') enterStopByNotify(c);
    else {
      disarmTimer(c);
      setSub(c, 'running');
    } // No RuntimeMaxSec=: nothing times a running service.
  } else if (c.cfg.remainAfterExit) setSub(c, 'exited');
  else enterStop(c, 'success');
}

/** service_enter_start_post(): runs ExecStartPost=, then running. */
export function enterStartPost(c: Ctx): void {
  forgetControl(c);
  if (c.cfg.execStartPost.length > 0) spawnStep(c, 'start-post', 0);
  else enterRunning(c, 'success');
}

/** service_enter_start(): spawns ExecStart= (the main process, or the forking parent as control). */
export function enterStart(c: Ctx): void {
  forgetControl(c);
  c.s.mainPid = null;
  c.s.mainCommand = null;
  if (c.cfg.execStart.length > 0) return spawnStep(c, 'start', 0);
  if (c.cfg.type !== 'oneshot') {
    log(c, 'error', "There's no 'start' task anymore we could start.");
    return enterSignal(c, 'stop-sigterm', 'resources');
  }
  // A oneshot without ExecStart= still passes through activating, so the manager sees a start.
  setSub(c, 'start');
  enterStartPost(c);
}

/** service_enter_start_pre(). */
export function enterStartPre(c: Ctx): void {
  forgetControl(c);
  if (c.cfg.execStartPre.length > 0) spawnStep(c, 'start-pre', 0);
  else enterStart(c);
}

/** service_enter_condition(). */
export function enterCondition(c: Ctx): void {
  forgetControl(c);
  if (c.cfg.execCondition.length > 0) spawnStep(c, 'condition', 0);
  else enterStartPre(c);
}

/** service_test_startable() + service_start(): the rate limit, a fresh run, then ExecCondition=. */
export function startService(c: Ctx, explicit: boolean): void {
  const s = c.s;
  const verdict = startAllowed(s.startLimit, c.limits, c.now);
  s.startLimit = verdict.limit;
  if (!verdict.allowed) {
    log(c, 'warning', 'Start request repeated too quickly.');
    c.fx.push({ type: 'start-limit-hit' });
    return enterDead(c, 'start-limit-hit', false);
  }
  s.mainPidKnown = false;
  s.forbidRestart = false;
  if (explicit) s.nRestarts = 0; // An automatic restart keeps counting.
  s.result = 'success';
  s.reloadResult = 'success';
  s.statusText = null;
  s.statusErrno = null;
  s.notifyState = null;
  s.execMainStatus = null;
  enterCondition(c);
}

/** service_enter_restart(): the restart timer fired (or a start cut it short). */
export function enterRestart(c: Ctx, shortcut: boolean): void {
  c.s.nRestarts++;
  log(
    c,
    'info',
    `Scheduled restart job${shortcut ? ' immediately on client request' : ''}, restart counter is at ${c.s.nRestarts}.`,
  );
  disarmTimer(c);
  startService(c, false);
}

/** service_enter_reload(): runs ExecReload=. */
export function enterReload(c: Ctx): void {
  c.s.reloadResult = 'success';
  if (c.s.notifyState === 'reloading') c.s.notifyState = null;
  forgetControl(c);
  if (c.cfg.execReload.length > 0) spawnStep(c, 'reload', 0);
  else reloadFinish(c, 'success');
}

/** service_reload_finish(): notes the reload result; the service keeps running either way. */
export function reloadFinish(c: Ctx, f: ServiceResult): void {
  c.s.reloadResult = f;
  if (c.s.notifyState === 'reloading') c.s.notifyState = null;
  enterRunning(c, 'success');
}

/** RELOADING=1 from a running notify service: reloading until READY=1. */
export function enterReloadByNotify(c: Ctx): void {
  armTimer(c, timeoutOf(c.cfg.timeoutStartSec), 'reload');
  setSub(c, 'reload-notify');
}

/** STOPPING=1: as if we had sent SIGTERM; wait for the main process to go. */
export function enterStopByNotify(c: Ctx): void {
  armTimer(c, timeoutOf(c.cfg.timeoutStopSec), 'stop');
  setSub(c, 'stop-sigterm');
}
