// Where PID 1 finds and keeps things. The real system uses the defaults; host tests run the init
// as PID 1 of a fresh pid and mount namespace with everything pointed into a temp directory.

import { DEFAULT_KEEL_BIN, type QuadletOptions } from '../units/quadlet.js';

/** The init's paths and switches. */
export interface InitConfig {
  /** Host tests: no API mounts, hostname, lo, Ctrl-Alt-Del, /var setup or console shell. */
  contained: boolean;
  unitPath: string[];
  configDir: string;
  runtimeUnitDir: string;
  runtimeDir: string;
  logDir: string | null;
  stateDir: string;
  cgroupRoot: string | null;
  defaultTarget: string;
  etc: string;
  /** Size at which a journal file is rotated (tests set it small). */
  journalMaxBytes: number | null;
  /** How .container services call the keel CLI (absent: /usr/bin/keel and its default store). */
  quadlet?: QuadletOptions;
}

/** $KEEL_BIN (default /usr/bin/keel) and $KEEL_CONTAINERS_ROOT: the CLI and store .container services use. */
export function quadletOptionsFromEnv(env: NodeJS.ProcessEnv): QuadletOptions {
  const root = env.KEEL_CONTAINERS_ROOT;
  return { keelBin: env.KEEL_BIN || DEFAULT_KEEL_BIN, ...(root ? { containersRoot: root } : {}) };
}

/** Reads the configuration from KEEL_* variables (the real boot sets none of them). */
export function configFromEnv(env: NodeJS.ProcessEnv): InitConfig {
  const contained = env.KEEL_CONTAINED === '1';
  const unitPath = env.KEEL_UNIT_PATH
    ? env.KEEL_UNIT_PATH.split(':').filter(Boolean)
    : ['/etc/systemd/system', '/run/systemd/system', '/usr/lib/systemd/system'];
  return {
    contained,
    unitPath,
    configDir: unitPath[0],
    runtimeUnitDir: unitPath[1] ?? unitPath[0],
    runtimeDir: env.KEEL_RUNTIME_DIR ?? '/run/keel',
    logDir: env.KEEL_LOG_DIR === '' ? null : (env.KEEL_LOG_DIR ?? '/var/log/keel'),
    stateDir: env.KEEL_STATE_DIR ?? '/var/lib/keel',
    cgroupRoot: env.KEEL_CGROUP_ROOT === '' ? null : (env.KEEL_CGROUP_ROOT ?? '/sys/fs/cgroup'),
    defaultTarget: env.KEEL_DEFAULT_TARGET ?? 'default.target',
    etc: env.KEEL_ETC ?? '/etc',
    journalMaxBytes: env.KEEL_JOURNAL_MAX_BYTES ? Number(env.KEEL_JOURNAL_MAX_BYTES) : null,
    quadlet: quadletOptionsFromEnv(env),
  };
}
