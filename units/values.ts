// Value syntaxes of unit-file settings (booleans, sizes, limits, signals, exit statuses, modes),
// as systemd's parse-util.c reads them. Each parser throws a TypeError naming the value. Pure.

const bad = (what: string, value: string) => new TypeError(`cannot parse ${what}: ${JSON.stringify(value)}`);

/** parse_boolean: 1/yes/y/true/t/on and 0/no/n/false/f/off, case-insensitive. */
export function parseBoolean(value: string): boolean {
  const v = value.toLowerCase();
  if (['1', 'yes', 'y', 'true', 't', 'on'].includes(v)) return true;
  if (['0', 'no', 'n', 'false', 'f', 'off'].includes(v)) return false;
  throw bad('boolean', value);
}

/** An unsigned decimal integer within [min, max]. */
export function parseInteger(value: string, min: number, max: number, what = 'integer'): number {
  if (!/^[+-]?\d+$/.test(value.trim())) throw bad(what, value);
  const n = Number(value.trim());
  if (!Number.isSafeInteger(n) || n < min || n > max) throw bad(what, value);
  return n;
}

/** An octal mode such as 0644 or 022 (at most 07777). */
export function parseMode(value: string): number {
  if (!/^[0-7]{1,5}$/.test(value)) throw bad('file mode', value);
  const n = parseInt(value, 8);
  if (n > 0o7777) throw bad('file mode', value);
  return n;
}

const SIZE_UNITS: Record<string, number> = {
  '': 1,
  B: 1,
  K: 2 ** 10,
  M: 2 ** 20,
  G: 2 ** 30,
  T: 2 ** 40,
  P: 2 ** 50,
  E: 2 ** 60,
};

/** parse_size with base 1024: "512", "64K", "1.5G". */
export function parseSize(value: string): number {
  const m = /^(\d+(?:\.\d+)?)\s*([KMGTPEB]?)$/.exec(value.trim());
  if (!m) throw bad('size', value);
  return Math.floor(Number(m[1]) * SIZE_UNITS[m[2]]);
}

/** A size, "N%" or "infinity": MemoryMax=, TasksMax= style. */
export function parseSizeOrPercent(
  value: string,
  plain: (v: string) => number = parseSize,
): { value: number } | { percent: number } {
  if (value === 'infinity') return { value: Infinity };
  const pm = /^(\d+(?:\.\d+)?)%$/.exec(value);
  if (pm) {
    const percent = Number(pm[1]);
    if (percent > 100) throw bad('percentage', value);
    return { percent };
  }
  return { value: plain(value) };
}

/** A resource limit "soft:hard" or one value for both; "infinity" is Infinity. */
export function parseLimit(value: string, sizes: boolean): [number, number] {
  const one = (v: string) =>
    v === 'infinity' ? Infinity : sizes ? parseSize(v) : parseInteger(v, 0, Number.MAX_SAFE_INTEGER, 'resource limit');
  const parts = value.split(':');
  if (parts.length > 2) throw bad('resource limit', value);
  try {
    const soft = one(parts[0]);
    const hard = parts.length === 2 ? one(parts[1]) : soft;
    if (soft > hard) throw bad('resource limit', value);
    return [soft, hard];
  } catch {
    throw bad('resource limit', value);
  }
}

const SIGNALS = [
  '',
  'HUP',
  'INT',
  'QUIT',
  'ILL',
  'TRAP',
  'ABRT',
  'BUS',
  'FPE',
  'KILL',
  'USR1',
  'SEGV',
  'USR2',
  'PIPE',
  'ALRM',
  'TERM',
  'STKFLT',
  'CHLD',
  'CONT',
  'STOP',
  'TSTP',
  'TTIN',
  'TTOU',
  'URG',
  'XCPU',
  'XFSZ',
  'VTALRM',
  'PROF',
  'WINCH',
  'IO',
  'PWR',
  'SYS',
];
const SIGRTMIN = 34;
const SIGRTMAX = 64;

/** signal_from_string: "SIGTERM", "TERM", "15", "RTMIN+3"; returns the canonical "SIGTERM" form. */
export function parseSignal(value: string): string {
  const v = value.startsWith('SIG') ? value.slice(3) : value;
  if (/^\d+$/.test(value)) {
    const n = Number(value);
    if (n >= 1 && n < SIGNALS.length) return `SIG${SIGNALS[n]}`;
    if (n >= SIGRTMIN && n <= SIGRTMAX) return n === SIGRTMIN ? 'SIGRTMIN' : `SIGRTMIN+${n - SIGRTMIN}`;
    throw bad('signal', value);
  }
  if (v === 'IOT') return 'SIGABRT';
  if (v === 'POLL') return 'SIGIO';
  if (SIGNALS.includes(v) && v !== '') return `SIG${v}`;
  const rt = /^RT(MIN|MAX)(?:([+-])(\d+))?$/.exec(v);
  if (rt) {
    const off = rt[3] ? Number(rt[3]) * (rt[2] === '+' ? 1 : -1) : 0;
    const n = (rt[1] === 'MIN' ? SIGRTMIN : SIGRTMAX) + off;
    if ((rt[1] === 'MIN' && off >= 0 && n <= SIGRTMAX) || (rt[1] === 'MAX' && off <= 0 && n >= SIGRTMIN)) {
      return n === SIGRTMIN ? 'SIGRTMIN' : `SIGRTMIN+${n - SIGRTMIN}`;
    }
  }
  throw bad('signal', value);
}

/** Exit status names systemd accepts (LSB, BSD sysexits and its own), src/basic/exit-status.c. */
const EXIT_STATUS: Record<string, number> = {
  SUCCESS: 0,
  FAILURE: 1,
  INVALIDARGUMENT: 2,
  NOTIMPLEMENTED: 3,
  NOPERMISSION: 4,
  NOTINSTALLED: 5,
  NOTCONFIGURED: 6,
  NOTRUNNING: 7,
  USAGE: 64,
  DATAERR: 65,
  NOINPUT: 66,
  NOUSER: 67,
  NOHOST: 68,
  UNAVAILABLE: 69,
  SOFTWARE: 70,
  OSERR: 71,
  OSFILE: 72,
  CANTCREAT: 73,
  IOERR: 74,
  TEMPFAIL: 75,
  PROTOCOL: 76,
  NOPERM: 77,
  CONFIG: 78,
  CHDIR: 200,
  NICE: 201,
  FDS: 202,
  EXEC: 203,
  MEMORY: 204,
  LIMITS: 205,
  OOM_ADJUST: 206,
  SIGNAL_MASK: 207,
  STDIN: 208,
  STDOUT: 209,
  CHROOT: 210,
  IOPRIO: 211,
  TIMERSLACK: 212,
  SECUREBITS: 213,
  SETSCHEDULER: 214,
  CPUAFFINITY: 215,
  GROUP: 216,
  USER: 217,
  CAPABILITIES: 218,
  CGROUP: 219,
  SETSID: 220,
  CONFIRM: 221,
  STDERR: 222,
  PAM: 224,
  NETWORK: 225,
  NAMESPACE: 226,
  NO_NEW_PRIVILEGES: 227,
  SECCOMP: 228,
  SELINUX_CONTEXT: 229,
  PERSONALITY: 230,
  APPARMOR_PROFILE: 231,
  ADDRESS_FAMILIES: 232,
  RUNTIME_DIRECTORY: 233,
  CHOWN: 235,
  SMACK_PROCESS_LABEL: 236,
  KEYRING: 237,
  STATE_DIRECTORY: 238,
  CACHE_DIRECTORY: 239,
  LOGS_DIRECTORY: 240,
  CONFIGURATION_DIRECTORY: 241,
  NUMA_POLICY: 242,
  CREDENTIALS: 243,
  BPF: 245,
  EXCEPTION: 255,
};

/** One word of SuccessExitStatus=: an exit code (0-255 or a name) or a signal. */
export function parseExitStatusOrSignal(value: string): { code: number } | { signal: string } {
  if (/^\d+$/.test(value)) return { code: parseInteger(value, 0, 255, 'exit status') };
  if (value in EXIT_STATUS) return { code: EXIT_STATUS[value] };
  try {
    return { signal: parseSignal(value) };
  } catch {
    throw bad('exit status or signal', value);
  }
}

/** Whether a string is a valid environment variable name. */
export function isEnvName(name: string): boolean {
  return /^[A-Za-z_][A-Za-z0-9_]*$/.test(name);
}

/** Whether a user or group name is acceptable (systemd's relaxed valid_user_group_name, or a numeric id). */
export function isUserGroupName(name: string): boolean {
  if (/^\d+$/.test(name)) return Number(name) < 4294967295;
  return /^[A-Za-z0-9_][A-Za-z0-9_.-]*\$?$/.test(name) && name.length <= 256 && name !== '.' && name !== '..';
}
