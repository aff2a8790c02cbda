// The vocabulary of the service state machine: its state, the events a runner feeds it and the
// effects it asks the runner to perform. Pure types; the machine is in service-machine.ts.
import type { ExecCommand } from '../units/types.js';

/** systemd's service sub-states (SERVICE_* in service.c), spelled as `systemctl show -p SubState`. */
export type ServiceSubState =
  | 'dead'
  | 'condition'
  | 'start-pre'
  | 'start'
  | 'start-post'
  | 'running'
  | 'exited'
  | 'reload'
  | 'reload-notify'
  | 'stop'
  | 'stop-sigterm'
  | 'stop-sigkill'
  | 'stop-post'
  | 'final-sigterm'
  | 'final-sigkill'
  | 'failed'
  | 'auto-restart';

/** The unit-level state every unit type maps onto (`systemctl show -p ActiveState`). */
export type UnitActiveState = 'inactive' | 'activating' | 'active' | 'reloading' | 'deactivating' | 'failed';

/** Why the service last stopped or failed, as systemd's service_result_table spells it. */
export type ServiceResult =
  | 'success'
  | 'resources'
  | 'protocol'
  | 'timeout'
  | 'exit-code'
  | 'signal'
  | 'core-dump'
  | 'watchdog'
  | 'start-limit-hit'
  | 'oom-kill'
  /** ExecCondition= exited 1..254: the start was skipped; the unit ends inactive, not failed. */
  | 'exec-condition';

/** Which Exec*= list a spawned process comes from. */
export type ExecKind = 'condition' | 'start-pre' | 'start' | 'start-post' | 'reload' | 'stop' | 'stop-post';

/** What an armed timer is for (systemd uses one timer per service; so do we). */
export type TimerReason = 'start' | 'stop' | 'reload' | 'restart';

/** StartLimitIntervalSec= / StartLimitBurst= of the unit; interval or burst 0 disables the limit. */
export interface StartLimits {
  intervalMs: number;
  burst: number;
}

/** How the main process last ended (systemd's ExecMainStatus and friends). */
export interface ExecMainStatus {
  pid: number;
  /** Exit code, or null when killed by a signal. */
  code: number | null;
  /** Signal name ('SIGTERM') when killed, else null. */
  signal: string | null;
  coreDumped: boolean;
  /** When the exit was seen (event `now`, ms). */
  at: number;
}

/** Everything the machine remembers about one service. Plain data: serialisable, never mutated by transition(). */
export interface ServiceState {
  sub: ServiceSubState;
  /** Result of the current or last run; kept until the next start (or reset-failed). */
  result: ServiceResult;
  /** Result of the last reload (ExecReload= / RELOADING=1 cycle). */
  reloadResult: ServiceResult;
  /** When `sub` last changed (ms, from events). */
  since: number;
  mainPid: number | null;
  /** The main pid was learnt this run (spawned, PIDFile, MAINPID=); a null mainPid then means "it exited". */
  mainPidKnown: boolean;
  controlPid: number | null;
  /** Index into ExecStart= of the main command running (oneshot steps through the list). */
  mainCommand: { index: number } | null;
  /** Which control command runs: the list and the index in it. */
  controlCommand: { kind: ExecKind; index: number } | null;
  /** A spawn effect was emitted and its `spawned`/`spawn-failed` answer is due next. */
  spawning: { kind: ExecKind; index: number; main: boolean } | null;
  /** Waiting for a `pidfile` answer after a forking start ('start') or after ExecStartPost= ('start-post');
   *  `watching`: the file was missing and the runner watches for it. */
  awaitingPidfile: { phase: 'start' | 'start-post'; watching: boolean } | null;
  /** The armed timer, if any; `due` is absolute ms. */
  timer: { reason: TimerReason; due: number } | null;
  /** Whether the cgroup may still hold processes (set by spawns, cleared by cgroup-empty). */
  cgroupPopulated: boolean;
  /** Automatic restarts since the last explicit start (NRestarts=). */
  nRestarts: number;
  /** systemd's fixed-window start rate limiter: window start (ms) and starts counted in it. */
  startLimit: { windowStart: number | null; count: number };
  /** Set by an explicit stop: the coming dead state must not auto-restart. */
  forbidRestart: boolean;
  /** A start (or the start half of a restart) waits for the service to become inactive. */
  pendingStart: boolean;
  /** Last READY=1 / RELOADING=1 / STOPPING=1 seen this run. */
  notifyState: 'ready' | 'reloading' | 'stopping' | null;
  /** STATUS= text and ERRNO= value from sd_notify. */
  statusText: string | null;
  statusErrno: number | null;
  execMainStatus: ExecMainStatus | null;
}

/** Every event carries the current time in ms (monotonic); the machine never reads a clock. */
interface At {
  now: number;
}

/** What the runner (or the manager, for requests) tells the machine. */
export type ServiceEvent = At &
  /** Requests, from jobs. */
  (
    | { type: 'start' }
    | { type: 'stop' }
    | { type: 'restart' }
    | { type: 'reload' }
    | { type: 'reset-failed' }
    /** Answer to a `spawn` effect, fed before any other event: the process runs (Type=exec: execve() succeeded). */
    | { type: 'spawned'; pid: number }
    /** Answer to a `spawn` effect: nothing was started. */
    | { type: 'spawn-failed'; kind: ExecKind; error: string }
    /** A process of ours ended (main or control; others are ignored). `cgroupEmpty`: the runner knows the
     *  service's cgroup is empty now (same as a cgroup-empty event just before this one). */
    | {
        type: 'exited';
        pid: number;
        code: number | null;
        signal: string | null;
        coreDumped?: boolean;
        cgroupEmpty?: boolean;
      }
    /** The armed timer fired. Both names are accepted; the machine dispatches on its sub-state like systemd. */
    | { type: 'timeout' }
    | { type: 'restart-timer' }
    /** An sd_notify datagram from `pid`, split into fields (READY, RELOADING, STOPPING, MAINPID, STATUS, ERRNO). */
    | { type: 'notify'; pid: number; fields: Record<string, string> }
    /** Answer to `read-pidfile`/`watch-pidfile`: the pid found, or null (missing, unreadable, unsuitable). */
    | { type: 'pidfile'; pid: number | null }
    /** The service's cgroup has no processes left. */
    | { type: 'cgroup-empty' }
  );

/** What the machine asks the runner to do, in order. */
export type ServiceEffect =
  /** Start `command`; answer at once with `spawned` or `spawn-failed`. At most one per batch, always last.
   *  `main`: it becomes the main process. `env`: variables systemd sets for this step (MAINPID, SERVICE_RESULT...). */
  | { type: 'spawn'; kind: ExecKind; index: number; command: ExecCommand; main: boolean; env: Record<string, string> }
  /** Send `signal`; follow it with SIGCONT unless it is SIGKILL (as systemd does, so stopped processes see it).
   *  who 'cgroup': every process in the service's cgroup (main/control may be included; pid is null). */
  | { type: 'kill'; who: 'main' | 'control' | 'cgroup'; pid: number | null; signal: string }
  /** (Re)arm the service's one timer; it replaces any armed one. Fire `timeout` (or `restart-timer`). */
  | { type: 'arm-timer'; ms: number; reason: TimerReason }
  | { type: 'disarm-timer' }
  /** Read PIDFile= `path` (null: no PIDFile=, guess the main pid from the cgroup) and answer with `pidfile`. */
  | { type: 'read-pidfile'; path: string | null }
  /** The PID file was missing: answer with `pidfile` once it appears (until the state moves on). */
  | { type: 'watch-pidfile'; path: string }
  /** The service is dead: delete its stale PID file (best effort). */
  | { type: 'remove-pidfile'; path: string }
  | { type: 'log'; level: 'debug' | 'info' | 'notice' | 'warning' | 'error'; text: string }
  /** The active state changed: the manager resolves jobs, triggers OnFailure=/OnSuccess=, propagates.
   *  `autoRestart`: part of a failure-then-restart pair (failed/inactive, then activating). */
  | {
      type: 'state-changed';
      from: UnitActiveState;
      to: UnitActiveState;
      sub: ServiceSubState;
      result: ServiceResult;
      reloadResult: ServiceResult;
      autoRestart: boolean;
    }
  /** A start was refused by the start rate limit (the start job fails; StartLimitAction= applies). */
  | { type: 'start-limit-hit' }
  /** The service reached dead/failed/exited: remove its cgroup (best effort; it may still hold processes). */
  | { type: 'cleanup-cgroup' };

/** One step of the machine. */
export interface Transition {
  state: ServiceState;
  effects: ServiceEffect[];
}
