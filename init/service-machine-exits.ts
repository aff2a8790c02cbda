// How the service machine reacts to its processes ending: main and control exits (systemd's
// service_sigchld_event), the PID file answers of forking services, and an emptied cgroup.
import { exitResult, normalizeSignal } from './service-machine-policy.js';
import {
  type Ctx,
  enterDead,
  enterRunning,
  enterSignal,
  enterStart,
  enterStartPost,
  enterStartPre,
  enterStop,
  enterStopPost,
  execList,
  log,
  reloadFinish,
  spawnStep,
} from './service-machine-steps.js';
import type { ServiceEvent, ServiceResult } from './service-machine-types.js';

type Exited = Extract<ServiceEvent, { type: 'exited' }>;

/** "code=exited, status=1" / "code=killed, signal=TERM", as systemd logs process exits. */
function exitText(ev: Exited): string {
  if (ev.signal === null) return `code=exited, status=${ev.code}`;
  return `code=${ev.coreDumped ? 'dumped' : 'killed'}, signal=${normalizeSignal(ev.signal).slice(3)}`;
}

/** An `exited` event: dispatches to the main or control handler; other pids are ignored. */
export function onExited(c: Ctx, ev: Exited): void {
  if (ev.cgroupEmpty) {
    onCgroupEmpty(c);
    if (c.s.spawning) return; // the empty cgroup already moved us on; this pid is no longer ours
  }
  if (c.s.mainPid !== null && ev.pid === c.s.mainPid) mainExited(c, ev);
  else if (c.s.controlPid !== null && ev.pid === c.s.controlPid) controlExited(c, ev);
}

function mainExited(c: Ctx, ev: Exited): void {
  const { s, cfg } = c;
  let f = exitResult(ev, cfg.type !== 'oneshot', cfg.successExitStatus);
  s.mainPid = null;
  s.execMainStatus = { pid: ev.pid, code: ev.code, signal: ev.signal, coreDumped: ev.coreDumped ?? false, at: c.now };
  // A '-' on the running ExecStart= (or on the first, for a main pid learnt otherwise) forgives the exit.
  if (cfg.execStart[s.mainCommand?.index ?? 0]?.ignoreFailure) f = 'success';
  log(c, f === 'success' ? 'debug' : 'notice', `Main process exited, ${exitText(ev)}`);
  if (s.result === 'success') s.result = f;
  const next = (s.mainCommand?.index ?? -1) + 1;
  if (cfg.type === 'oneshot' && s.mainCommand && f === 'success' && next < cfg.execStart.length) {
    return spawnStep(c, 'start', next);
  }
  s.mainCommand = null;
  switch (s.sub) {
    case 'start-post':
    case 'reload':
    case 'reload-notify':
      // Nothing left to finish this step cleanly: stop now, unless a control process still runs.
      if (s.controlPid === null) enterStop(c, f);
      return;
    case 'start':
      if (cfg.type === 'oneshot') return f === 'success' ? enterStartPost(c) : enterSignal(c, 'stop-sigterm', f);
      // A notify service that exits before READY=1 never became ready: a protocol error.
      if (cfg.type === 'notify') return enterSignal(c, 'stop-sigterm', f === 'success' ? 'protocol' : f);
      return enterRunning(c, f);
    case 'running':
      return enterRunning(c, f);
    case 'stop-sigterm':
    case 'stop-sigkill':
      if (s.controlPid === null) enterStopPost(c, f);
      return;
    case 'stop-post':
      if (s.controlPid === null) enterSignal(c, 'final-sigterm', f);
      return;
    case 'final-sigterm':
    case 'final-sigkill':
      if (s.controlPid === null) enterDead(c, f, true);
      return;
    default:
      return; // 'stop': ExecStop= is still running; it decides.
  }
}

function controlExited(c: Ctx, ev: Exited): void {
  const { s, cfg } = c;
  const cc = s.controlCommand;
  // The forking parent is judged as a daemon; every other control process as a command.
  let f: ServiceResult = exitResult(ev, cc?.kind === 'start' && cfg.type !== 'oneshot', cfg.successExitStatus);
  s.controlPid = null;
  const list = cc ? execList(cfg, cc.kind) : [];
  if (cc && list[cc.index]?.ignoreFailure) f = 'success';
  // ExecCondition= exiting 1..254 skips the start; 255 or a signal is a real failure.
  const skip = s.sub === 'condition' && f === 'exit-code' && ev.code !== null && ev.code < 255;
  if (skip) f = 'exec-condition';
  const what = s.sub === 'condition' ? 'Condition check process' : 'Control process';
  log(c, f === 'success' || skip ? 'debug' : 'notice', `${what} exited, ${exitText(ev)}`);
  if (s.sub !== 'reload' && s.sub !== 'reload-notify' && s.result === 'success') s.result = f;
  if (cc && f === 'success' && cc.index + 1 < list.length) return spawnStep(c, cc.kind, cc.index + 1);
  s.controlCommand = null;
  switch (s.sub) {
    case 'condition':
      return f === 'success' ? enterStartPre(c) : enterSignal(c, 'stop-sigterm', f);
    case 'start-pre':
      return f === 'success' ? enterStart(c) : enterSignal(c, 'stop-sigterm', f);
    case 'start':
      if (cfg.type !== 'forking') return;
      return f === 'success' ? askPidfile(c, 'start') : enterSignal(c, 'stop-sigterm', f);
    case 'start-post':
      if (f !== 'success') return enterSignal(c, 'stop-sigterm', f);
      if (cfg.type === 'forking' && (cfg.pidFile !== null || !s.mainPidKnown)) return askPidfile(c, 'start-post');
      return enterRunning(c, 'success');
    case 'reload':
      return reloadFinish(c, f);
    case 'stop':
      return enterSignal(c, 'stop-sigterm', f);
    case 'stop-sigterm':
    case 'stop-sigkill':
      if (s.mainPid === null) enterStopPost(c, f);
      return;
    case 'stop-post':
      if (s.mainPid === null) enterSignal(c, 'final-sigterm', f);
      return;
    case 'final-sigterm':
    case 'final-sigkill':
      if (s.mainPid === null) enterDead(c, f, true);
      return;
    default:
      return;
  }
}

/** Asks the runner for the main pid: PIDFile=, or a guess from the cgroup without one. */
function askPidfile(c: Ctx, phase: 'start' | 'start-post'): void {
  c.s.awaitingPidfile = { phase, watching: false };
  c.fx.push({ type: 'read-pidfile', path: c.cfg.pidFile });
}

/** A `pidfile` answer: the main pid is known, or we must wait for the file, or go on without it. */
export function onPidfile(c: Ctx, pid: number | null): void {
  const { s, cfg } = c;
  const a = s.awaitingPidfile;
  if (!a) return; // stale: the state moved on since we asked
  const next = (): void => (a.phase === 'start' ? enterStartPost(c) : enterRunning(c, 'success'));
  if (pid !== null && Number.isInteger(pid) && pid > 1 && pid !== s.controlPid) {
    s.awaitingPidfile = null;
    s.mainPid = pid;
    s.mainPidKnown = true;
    log(c, 'debug', `Main PID ${cfg.pidFile ? 'loaded' : 'guessed'}: ${pid}`);
    return next();
  }
  // Without PIDFile= a failed guess is fine (the cgroup stands in); with it, ExecStartPost= may still write it.
  const path = cfg.pidFile;
  if (path === null || (a.phase === 'start' && cfg.execStartPost.length > 0)) {
    s.awaitingPidfile = null;
    return next();
  }
  if (!s.cgroupPopulated) {
    log(c, 'warning', `PID file ${path} not readable and the service left no processes. Failing.`);
    s.awaitingPidfile = null;
    return a.phase === 'start' ? enterSignal(c, 'stop-sigterm', 'protocol') : enterStop(c, 'protocol');
  }
  if (!a.watching) {
    log(c, 'info', `Can't open PID file '${path}' (yet?) after ${s.sub}.`);
    a.watching = true;
    c.fx.push({ type: 'watch-pidfile', path });
  }
}

/** service_notify_cgroup_empty_event(). */
export function onCgroupEmpty(c: Ctx): void {
  const { s, cfg } = c;
  s.cgroupPopulated = false;
  const none = s.mainPid === null && s.controlPid === null;
  switch (s.sub) {
    case 'start':
    case 'start-post':
      if (s.sub === 'start' && cfg.type === 'notify' && s.mainPidKnown && none) {
        return enterStopPost(c, 'protocol'); // no READY=1 can come any more
      }
      if (s.awaitingPidfile?.watching && none) {
        log(c, 'warning', 'Daemon never wrote its PID file. Failing.');
        return s.sub === 'start' ? enterStopPost(c, 'protocol') : enterStop(c, 'protocol');
      }
      return;
    case 'running':
      return enterRunning(c, 'success');
    case 'stop-sigterm':
    case 'stop-sigkill':
      if (none) enterStopPost(c, 'success');
      return;
    case 'stop-post':
    case 'final-sigterm':
    case 'final-sigkill':
      if (none) enterDead(c, 'success', true);
      return;
    case 'auto-restart':
      c.fx.push({ type: 'cleanup-cgroup' });
      return;
    default:
      return;
  }
}
