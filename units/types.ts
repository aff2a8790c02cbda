// The shared vocabulary of the unit-file language: parsed files, typed unit configuration, and
// the diagnostics the parser and `keel analyze verify` report. Pure types, no code.

/** A problem found in a unit file, named by file and line as systemd-analyze verify does. */
export interface Diagnostic {
  file: string;
  line: number;
  severity: 'error' | 'warning';
  message: string;
}

/** One `Key=Value` assignment as written (after continuation joining), with where it came from. */
export interface Assignment {
  section: string;
  key: string;
  value: string;
  file: string;
  line: number;
}

/** The unit types Keel supervises ('automount' is loaded, so Debian's units parse, but not acted on). */
export type UnitType =
  'service' | 'target' | 'timer' | 'socket' | 'mount' | 'path' | 'slice' | 'container' | 'automount';

/** A command line of an Exec*= directive, after prefix and quoting rules (variables still unexpanded). */
export interface ExecCommand {
  /** argv as written, with $VAR/${VAR} still in place (they are expanded at spawn time). */
  argv: string[];
  /** Path of the program (argv[0] unless '@' gave a separate argv0). */
  path: string;
  /** '-': a failing exit status is ignored. */
  ignoreFailure: boolean;
  /** '@': argv[0] passed to the program differs from path. */
  argv0Override: boolean;
  /** ':': no environment variable substitution. */
  noSubstitution: boolean;
  /** '+' / '!' / '!!': privileged execution (User= etc. not applied). */
  privileged: boolean;
  /** Which of those prefixes: '+' full privileges, '!' no user switch, '!!' only without ambient capabilities. */
  privilegeMode?: '+' | '!' | '!!';
}

/** Dependencies and ordering from [Unit] (and implicit ones added by the loader). All unit names. */
export interface UnitDeps {
  requires: string[];
  requisite: string[];
  wants: string[];
  bindsTo: string[];
  partOf: string[];
  conflicts: string[];
  after: string[];
  before: string[];
  onFailure: string[];
  /** From [Install] of other units' enablement: .wants/ and .requires/ directories. */
  wantedByLinks?: string[];
}

/** A Condition*= or Assert*= check. */
export interface Check {
  kind: string; // e.g. 'PathExists', 'KernelCommandLine'
  assert: boolean; // Assert* (failure fails the unit) vs Condition* (skips it)
  trigger: boolean; // '|' prefix: any one of the triggering checks suffices
  negate: boolean; // '!' prefix
  value: string;
  file: string;
  line: number;
}

/** [Service] settings, typed; times in milliseconds (Infinity for "infinity"). */
export interface ServiceConfig {
  type: 'simple' | 'exec' | 'oneshot' | 'forking' | 'notify' | 'idle';
  execCondition: ExecCommand[];
  execStartPre: ExecCommand[];
  execStart: ExecCommand[];
  execStartPost: ExecCommand[];
  execReload: ExecCommand[];
  execStop: ExecCommand[];
  execStopPost: ExecCommand[];
  remainAfterExit: boolean;
  restart: 'no' | 'always' | 'on-success' | 'on-failure' | 'on-abnormal' | 'on-abort' | 'on-watchdog';
  restartSec: number;
  timeoutStartSec: number;
  timeoutStopSec: number;
  killMode: 'control-group' | 'mixed' | 'process' | 'none';
  killSignal: string;
  sendSIGKILL: boolean;
  /** Extra exit codes and signal names counted as success. */
  successExitStatus: { codes: number[]; signals: string[] };
  pidFile: string | null;
  environment: [string, string][];
  environmentFiles: { path: string; optional: boolean }[];
  user: string | null;
  group: string | null;
  /** '~' means the home directory of User=. */
  workingDirectory: string | null;
  /** WorkingDirectory=-/path: a missing directory is not an error. */
  workingDirectoryMissingOk?: boolean;
  umask: number | null;
  nice: number | null;
  limits: { nofile?: [number, number]; nproc?: [number, number]; core?: [number, number] };
  /** 'socket': the connection of an Accept=yes socket (or the one listening socket), inetd style. */
  standardInput: 'null' | 'tty' | 'tty-force' | 'tty-fail' | 'socket';
  standardOutput: 'journal' | 'null' | 'tty' | 'inherit' | 'kmsg' | 'journal+console' | 'socket';
  standardError: 'journal' | 'null' | 'tty' | 'inherit' | 'kmsg' | 'journal+console' | 'socket';
  /** cgroup v1 names mapped onto v2 (units/interpret-resources.ts): MemoryLimit= (bytes or %), CPUShares=, ... */
  memoryLimit?: number;
  memoryLimitPercent?: number;
  cpuShares?: number;
  startupCpuShares?: number;
  blockIOWeight?: number;
  /** OOMScoreAdjust=, -1000 to 1000. */
  oomScoreAdjust?: number;
  /** Delegate=: 'all' controllers or the named ones (unset: no delegation). */
  delegate?: 'all' | string[];
  ttyPath: string | null;
  memoryMax: number | null; // bytes
  /** MemoryMax=N%: percent of physical memory (memoryMax is then null). */
  memoryMaxPercent?: number;
  cpuQuota: number | null; // percent of one CPU (e.g. 50 for "50%")
  tasksMax: number | null;
  /** TasksMax=N%: percent of the kernel's pid_max (tasksMax is then null). */
  tasksMaxPercent?: number;
  /** PrivateTmp=, ProtectSystem= and the other namespace settings; absent when none is set. */
  sandbox?: SandboxConfig;
}

/** A path of ReadOnlyPaths= and friends; optional: the "-" prefix, a missing path is skipped. */
export interface SandboxPath {
  path: string;
  optional: boolean;
}

/** The sandboxing settings of systemd.exec(5) that a mount namespace gives (and NoNewPrivileges=). */
export interface SandboxConfig {
  privateTmp: boolean;
  privateDevices: boolean;
  protectSystem: 'no' | 'yes' | 'full' | 'strict';
  protectHome: 'no' | 'yes' | 'read-only' | 'tmpfs';
  readOnlyPaths: SandboxPath[];
  readWritePaths: SandboxPath[];
  inaccessiblePaths: SandboxPath[];
  noNewPrivileges: boolean;
}

/** [Timer] settings; times in milliseconds. */
export interface TimerConfig {
  onBootSec: number[];
  onStartupSec: number[];
  onActiveSec: number[];
  onUnitActiveSec: number[];
  onUnitInactiveSec: number[];
  onCalendar: string[];
  persistent: boolean;
  randomizedDelaySec: number;
  accuracySec: number;
  unit: string; // defaults to the timer's name with .service
}

/** [Socket] settings. */
export interface SocketConfig {
  listenStream: string[];
  listenDatagram: string[];
  socketMode: number;
  accept: boolean;
  service: string; // defaults to the socket's name with .service (with Accept=yes the template PREFIX@.service)
  /** SocketUser=, SocketGroup=: owner of the AF_UNIX socket file (null or absent: root). */
  socketUser?: string | null;
  socketGroup?: string | null;
  /** DirectoryMode=: mode of the parent directories made for a socket file (default 0755). */
  directoryMode?: number;
}

/** [Mount] settings. */
export interface MountConfig {
  what: string;
  where: string;
  type: string | null;
  options: string | null;
}

/** [Path] settings. */
export interface PathConfig {
  pathExists: string[];
  pathChanged: string[];
  directoryNotEmpty: string[];
  unit: string;
}

/** [Install] settings. */
export interface InstallConfig {
  wantedBy: string[];
  requiredBy: string[];
  alias: string[];
  also: string[];
  defaultInstance: string | null;
}

/** A fully loaded unit: everything the manager needs, nothing it has to parse again. */
export interface UnitConfig {
  name: string;
  type: UnitType;
  /** Main file (null for units that exist only through drop-ins or are synthesised). */
  fragmentPath: string | null;
  dropInPaths: string[];
  masked: boolean;
  aliases: string[];
  description: string;
  documentation: string[];
  deps: UnitDeps;
  defaultDependencies: boolean;
  requiresMountsFor: string[];
  startLimitIntervalMs: number;
  startLimitBurst: number;
  conditions: Check[];
  service?: ServiceConfig;
  timer?: TimerConfig;
  socket?: SocketConfig;
  mount?: MountConfig;
  path?: PathConfig;
  install: InstallConfig;
  diagnostics: Diagnostic[];
}
