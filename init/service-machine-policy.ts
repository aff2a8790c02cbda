// The service machine's pure tables: sub-state to active state, which exits count as clean, the
// Restart= policy table and the start rate limiter, each as in systemd's service.c/exit-status.c.
import type { ServiceConfig, UnitConfig } from '../units/types.js';
import type { ServiceResult, ServiceSubState, StartLimits, UnitActiveState } from './service-machine-types.js';

/** Sub-state to active state (systemd's state_translation_table). */
export const ACTIVE_STATE: Readonly<Record<ServiceSubState, UnitActiveState>> = {
  dead: 'inactive',
  condition: 'activating',
  'start-pre': 'activating',
  start: 'activating',
  'start-post': 'activating',
  running: 'active',
  exited: 'active',
  reload: 'reloading',
  'reload-notify': 'reloading',
  stop: 'deactivating',
  'stop-sigterm': 'deactivating',
  'stop-sigkill': 'deactivating',
  'stop-post': 'deactivating',
  'final-sigterm': 'deactivating',
  'final-sigkill': 'deactivating',
  failed: 'failed',
  'auto-restart': 'activating',
};

// Type=idle never delays other jobs, so systemd counts its start phases as active already
// (state_translation_table_idle).
const IDLE_ACTIVE: ReadonlySet<ServiceSubState> = new Set(['condition', 'start-pre', 'start', 'start-post']);

/** The active state of `sub` for a service of `type` (Type=idle maps its start phases to active). */
export function activeStateOf(sub: ServiceSubState, type: ServiceConfig['type'] = 'simple'): UnitActiveState {
  return type === 'idle' && IDLE_ACTIVE.has(sub) ? 'active' : ACTIVE_STATE[sub];
}

/** 'SIGTERM', 'sigterm' and 'TERM' all become 'SIGTERM'. */
export function normalizeSignal(name: string): string {
  const up = name.trim().toUpperCase();
  return up.startsWith('SIG') ? up : `SIG${up}`;
}

// Daemons commonly die of these when told to stop without installing handlers; systemd counts
// them as clean for main processes of non-oneshot services (is_clean_exit, EXIT_CLEAN_DAEMON).
const CLEAN_DAEMON_SIGNALS: ReadonlySet<string> = new Set(['SIGHUP', 'SIGINT', 'SIGTERM', 'SIGPIPE']);

/** How a process ended, as the exited event reports it. */
export interface ExitInfo {
  code: number | null;
  signal: string | null;
  coreDumped?: boolean;
}

/**
 * systemd's is_clean_exit(): exit 0 or a SuccessExitStatus= code/signal is clean; a daemon (the
 * main or forking process of a non-oneshot service) may also die of SIGHUP/SIGINT/SIGTERM/SIGPIPE.
 */
export function isCleanExit(exit: ExitInfo, daemon: boolean, success: ServiceConfig['successExitStatus']): boolean {
  if (exit.signal === null) return exit.code === 0 || (exit.code !== null && success.codes.includes(exit.code));
  const sig = normalizeSignal(exit.signal);
  return (daemon && CLEAN_DAEMON_SIGNALS.has(sig)) || success.signals.some((s) => normalizeSignal(s) === sig);
}

/** The result an exit maps to: success, or exit-code / signal / core-dump. */
export function exitResult(
  exit: ExitInfo,
  daemon: boolean,
  success: ServiceConfig['successExitStatus'],
): ServiceResult {
  if (isCleanExit(exit, daemon, success)) return 'success';
  if (exit.signal === null) return 'exit-code';
  return exit.coreDumped ? 'core-dump' : 'signal';
}

/** Restart= as the table in systemd.service(5) (service_shall_restart without the exit-status overrides). */
export function restartWanted(policy: ServiceConfig['restart'], result: ServiceResult): boolean {
  switch (policy) {
    case 'no':
      return false;
    case 'always':
      return result !== 'exec-condition';
    case 'on-success':
      return result === 'success';
    case 'on-failure':
      return result !== 'success' && result !== 'exec-condition';
    case 'on-abnormal':
      return !['success', 'exit-code', 'exec-condition'].includes(result);
    case 'on-watchdog':
      return result === 'watchdog';
    case 'on-abort':
      return result === 'signal' || result === 'core-dump';
  }
}

/**
 * systemd's ratelimit_below() for StartLimit*: a fixed window opened by the first start; a start is
 * allowed while the window holds at most `burst` starts. Returns the verdict and the new counter.
 */
export function startAllowed(
  limit: { windowStart: number | null; count: number },
  limits: StartLimits,
  now: number,
): { allowed: boolean; limit: { windowStart: number | null; count: number } } {
  if (!(limits.intervalMs > 0) || !(limits.burst > 0)) return { allowed: true, limit };
  if (limit.windowStart === null || now - limit.windowStart > limits.intervalMs) {
    return { allowed: true, limit: { windowStart: now, count: 1 } };
  }
  const count = limit.count + 1;
  return { allowed: count <= limits.burst, limit: { windowStart: limit.windowStart, count } };
}

/** The start limits of a loaded unit, in the shape transition() takes. */
export function startLimitsOf(unit: Pick<UnitConfig, 'startLimitIntervalMs' | 'startLimitBurst'>): StartLimits {
  return { intervalMs: unit.startLimitIntervalMs, burst: unit.startLimitBurst };
}

/** Whether a reload request means anything for this service (systemd's service_can_reload). */
export function canReload(config: Pick<ServiceConfig, 'execReload'>): boolean {
  return config.execReload.length > 0;
}
