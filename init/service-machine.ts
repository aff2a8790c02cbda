// systemd's service state machine as a pure function: transition(state, event) -> { state, effects }.
// Like s6-supervise's state table, it never touches a process, clock or timer; a runner performs
// the effects and feeds back what happened. Steps are in service-machine-steps.ts (one per
// service_enter_*()), process exits in service-machine-exits.ts, tables in service-machine-policy.ts.
import type { ServiceConfig } from '../units/types.js';
import { onCgroupEmpty, onExited, onPidfile } from './service-machine-exits.js';
import { canReload } from './service-machine-policy.js';
import {
  type Ctx,
  STARTING,
  STOPPING,
  enterDead,
  enterReload,
  enterReloadByNotify,
  enterRestart,
  enterSignal,
  enterStartPost,
  enterStop,
  enterStopByNotify,
  enterStopPost,
  log,
  reloadFinish,
  setSub,
  startService,
} from './service-machine-steps.js';
import type {
  ExecKind,
  ServiceEvent,
  ServiceState,
  ServiceSubState,
  StartLimits,
  Transition,
} from './service-machine-types.js';

export * from './service-machine-types.js';
export {
  ACTIVE_STATE,
  activeStateOf,
  canReload,
  exitResult,
  isCleanExit,
  normalizeSignal,
  restartWanted,
  startAllowed,
  startLimitsOf,
} from './service-machine-policy.js';

/** No StartLimit*: every start is allowed. */
export const NO_START_LIMIT: StartLimits = { intervalMs: 0, burst: 0 };

/** A service that was never started: dead, result success. */
export function initialServiceState(now = 0): ServiceState {
  return {
    sub: 'dead',
    result: 'success',
    reloadResult: 'success',
    since: now,
    mainPid: null,
    mainPidKnown: false,
    controlPid: null,
    mainCommand: null,
    controlCommand: null,
    spawning: null,
    awaitingPidfile: null,
    timer: null,
    cgroupPopulated: false,
    nRestarts: 0,
    startLimit: { windowStart: null, count: 0 },
    forbidRestart: false,
    pendingStart: false,
    notifyState: null,
    statusText: null,
    statusErrno: null,
    execMainStatus: null,
  };
}

/**
 * One step of the service `config` (whose unit has start `limits`): the state after `event` and the
 * effects to perform, in order. `state` is not modified. Throws `BUG:` when the runner breaks the
 * spawn contract (an event other than the answer to a pending spawn, or an answer to none).
 */
export function transition(
  state: ServiceState,
  event: ServiceEvent,
  config: ServiceConfig,
  limits: StartLimits = NO_START_LIMIT,
): Transition {
  const c: Ctx = { s: structuredClone(state), cfg: config, limits, now: event.now, fx: [] };
  const answer = event.type === 'spawned' || event.type === 'spawn-failed';
  if (answer !== (c.s.spawning !== null)) {
    throw new Error(
      c.s.spawning
        ? `BUG: service event '${event.type}' arrived while spawning '${c.s.spawning.kind}' awaits its answer`
        : `BUG: '${event.type}' arrived but no spawn was pending`,
    );
  }
  switch (event.type) {
    case 'start':
      onStart(c);
      break;
    case 'stop':
      c.s.pendingStart = false;
      requestStop(c);
      break;
    case 'restart':
      onRestart(c);
      break;
    case 'reload':
      onReload(c);
      break;
    case 'reset-failed':
      onResetFailed(c);
      break;
    case 'spawned':
      onSpawned(c, event.pid);
      break;
    case 'spawn-failed':
      onSpawnFailed(c, event.kind, event.error);
      break;
    case 'exited':
      onExited(c, event);
      break;
    case 'timeout':
    case 'restart-timer':
      onTimeout(c);
      break;
    case 'notify':
      onNotify(c, event.pid, event.fields);
      break;
    case 'pidfile':
      onPidfile(c, event.pid);
      break;
    case 'cgroup-empty':
      onCgroupEmpty(c);
      break;
  }
  return { state: c.s, effects: c.fx };
}

function onStart(c: Ctx): void {
  const sub = c.s.sub;
  if (sub === 'auto-restart')
    enterRestart(c, true); // a start hurries the pending restart along
  else if (sub === 'dead' || sub === 'failed') startService(c, true);
  else if (STOPPING.has(sub)) c.s.pendingStart = true; // runs once the stop has finished
  // Activating or active already: nothing to do.
}

/** service_stop(): explicit stops never auto-restart. */
function requestStop(c: Ctx): void {
  const sub = c.s.sub;
  c.s.forbidRestart = true;
  if (sub === 'auto-restart')
    setSub(c, 'dead'); // give up on the restart
  else if (STARTING.has(sub) || sub === 'reload' || sub === 'reload-notify') enterSignal(c, 'stop-sigterm', 'success');
  else if (sub === 'running' || sub === 'exited') enterStop(c, 'success');
  // Stopping, dead or failed already: nothing to do.
}

/** A restart job: stop (if up), then start; from inactive it is a plain start. */
function onRestart(c: Ctx): void {
  const sub = c.s.sub;
  if (sub === 'dead' || sub === 'failed') return startService(c, true);
  if (sub === 'auto-restart') return enterRestart(c, true);
  c.s.pendingStart = true;
  requestStop(c);
}

function onReload(c: Ctx): void {
  if (c.s.sub !== 'running' && c.s.sub !== 'exited') return log(c, 'debug', `Reload ignored in state ${c.s.sub}.`);
  if (!canReload(c.cfg)) return log(c, 'debug', 'Reload ignored: no ExecReload= configured.');
  enterReload(c);
}

/** service_reset_failed() + the unit's start rate limiter reset. */
function onResetFailed(c: Ctx): void {
  if (c.s.sub === 'failed') setSub(c, 'dead');
  c.s.result = 'success';
  c.s.reloadResult = 'success';
  c.s.nRestarts = 0;
  c.s.startLimit = { windowStart: null, count: 0 };
}

const SUB_OF: Readonly<Record<ExecKind, ServiceSubState>> = {
  condition: 'condition',
  'start-pre': 'start-pre',
  start: 'start',
  'start-post': 'start-post',
  reload: 'reload',
  stop: 'stop',
  'stop-post': 'stop-post',
};

/** The spawn succeeded: record the pid, enter the step's sub-state (simple/exec/idle are up already). */
function onSpawned(c: Ctx, pid: number): void {
  const s = c.s;
  const sp = s.spawning!;
  s.spawning = null;
  s.cgroupPopulated = true;
  if (!sp.main) {
    s.controlPid = pid;
    return setSub(c, SUB_OF[sp.kind]);
  }
  s.mainPid = pid;
  s.mainPidKnown = true;
  if (sp.index > 0) return; // oneshot's next ExecStart=: still 'start'
  const t = c.cfg.type;
  // Type=exec: the runner reports execve() success with `spawned`, so it becomes simple's case.
  if (t === 'simple' || t === 'idle' || t === 'exec') return enterStartPost(c);
  setSub(c, 'start'); // oneshot waits for the exit, notify for READY=1
}

/** The fail paths of each spawn site in service.c. */
function onSpawnFailed(c: Ctx, kind: ExecKind, error: string): void {
  const sp = c.s.spawning!;
  if (sp.kind !== kind) throw new Error(`BUG: spawn-failed for '${kind}' but '${sp.kind}' was pending`);
  c.s.spawning = null;
  if (sp.main) c.s.mainCommand = null;
  else c.s.controlCommand = null;
  log(c, 'warning', `Failed to spawn '${kind}' task: ${error}`);
  const first = sp.index === 0;
  switch (kind) {
    case 'condition':
    case 'start-pre':
      return first ? enterDead(c, 'resources', true) : enterSignal(c, 'stop-sigterm', 'resources');
    case 'start':
      return first ? enterSignal(c, 'stop-sigterm', 'resources') : enterStop(c, 'resources');
    case 'start-post':
      return first ? enterStop(c, 'resources') : enterSignal(c, 'stop-sigterm', 'resources');
    case 'reload':
      return reloadFinish(c, 'resources');
    case 'stop':
      return enterSignal(c, 'stop-sigterm', 'resources');
    case 'stop-post':
      return first ? enterSignal(c, 'final-sigterm', 'resources') : enterDead(c, 'resources', true);
  }
}

/** service_dispatch_timer() with the default TimeoutStartFailureMode=/TimeoutStopFailureMode=terminate. */
function onTimeout(c: Ctx): void {
  const s = c.s;
  if (s.timer === null) return; // not armed (any more): stale
  s.timer = null;
  const sigkill = c.cfg.sendSIGKILL;
  switch (s.sub) {
    case 'condition':
    case 'start-pre':
    case 'start':
    case 'start-post':
      log(c, 'warning', `${s.sub} operation timed out. Terminating.`);
      return enterSignal(c, 'stop-sigterm', 'timeout');
    case 'running':
      log(c, 'warning', 'Service reached runtime time limit. Stopping.');
      return enterStop(c, 'timeout');
    case 'reload':
    case 'reload-notify':
      log(c, 'warning', 'Reload operation timed out. Killing reload process.');
      if (s.controlPid !== null) c.fx.push({ type: 'kill', who: 'control', pid: s.controlPid, signal: 'SIGKILL' });
      return reloadFinish(c, 'timeout');
    case 'stop':
      log(c, 'warning', 'Stopping timed out. Terminating.');
      return enterSignal(c, 'stop-sigterm', 'timeout');
    case 'stop-sigterm':
      log(c, 'warning', `State 'stop-sigterm' timed out. ${sigkill ? 'Killing.' : 'Skipping SIGKILL.'}`);
      return sigkill ? enterSignal(c, 'stop-sigkill', 'timeout') : enterStopPost(c, 'timeout');
    case 'stop-sigkill':
      log(c, 'warning', 'Processes still around after SIGKILL. Ignoring.');
      return enterStopPost(c, 'timeout');
    case 'stop-post':
      log(c, 'warning', "State 'stop-post' timed out. Terminating.");
      return enterSignal(c, 'final-sigterm', 'timeout');
    case 'final-sigterm':
      log(
        c,
        'warning',
        `State 'final-sigterm' timed out. ${sigkill ? 'Killing.' : 'Skipping SIGKILL. Entering failed mode.'}`,
      );
      return sigkill ? enterSignal(c, 'final-sigkill', 'timeout') : enterDead(c, 'timeout', false);
    case 'final-sigkill':
      log(c, 'warning', 'Processes still around after final SIGKILL. Entering failed mode.');
      return enterDead(c, 'timeout', true);
    case 'auto-restart':
      return enterRestart(c, false);
    default:
      return;
  }
}

const MAINPID_STATES: ReadonlySet<ServiceSubState> = new Set([
  'start',
  'start-post',
  'running',
  'reload',
  'reload-notify',
  'stop',
  'stop-sigterm',
]);

/** service_notify_message() with NotifyAccess=main (Type=notify's default; other types accept none). */
function onNotify(c: Ctx, pid: number, fields: Record<string, string>): void {
  const s = c.s;
  if (c.cfg.type !== 'notify' || s.mainPid === null || pid !== s.mainPid) {
    return log(
      c,
      'debug',
      `Got notification message from PID ${pid}, but reception only permitted for ` +
        `main PID ${s.mainPid ?? 'which is currently not known'}.`,
    );
  }
  if (fields.MAINPID !== undefined) {
    const p = Number(fields.MAINPID);
    if (Number.isInteger(p) && p > 1 && p !== s.controlPid && MAINPID_STATES.has(s.sub)) {
      s.mainPid = p;
      s.mainPidKnown = true;
    } else log(c, 'warning', `Ignoring MAINPID=${fields.MAINPID} in state ${s.sub}.`);
  }
  // STOPPING=1 wins over the others, READY=1 over RELOADING=1; a stopping service cannot come back.
  if (fields.STOPPING === '1') {
    s.notifyState = 'stopping';
    if (s.sub === 'running' || s.sub === 'reload-notify') enterStopByNotify(c);
  } else if (s.notifyState !== 'stopping') {
    if (fields.READY === '1') {
      s.notifyState = 'ready';
      if (s.sub === 'start') enterStartPost(c);
      else if (s.sub === 'reload-notify') reloadFinish(c, 'success');
    } else if (fields.RELOADING === '1') {
      s.notifyState = 'reloading';
      if (s.sub === 'running') enterReloadByNotify(c);
    }
  }
  if (fields.STATUS !== undefined) s.statusText = fields.STATUS === '' ? null : fields.STATUS;
  if (fields.ERRNO !== undefined) {
    const n = Number(fields.ERRNO);
    if (Number.isInteger(n) && n >= 0) s.statusErrno = n;
    else log(c, 'warning', `Failed to parse ERRNO= field value '${fields.ERRNO}' in notification message.`);
  }
}
