// Condition*= and Assert*= of systemd.unit(5) (v252): whether a unit should start at all. Every
// check reads the facts and the roots it is given (`/`, /proc, /sys), so tests use temp dirs.
import { accessSync, constants, lstatSync, readFileSync, readdirSync, statSync } from 'node:fs';
import { dirname, join } from 'node:path';
import type { Check } from '../units/types.js';
import { compareVersions, fnmatch, orderHolds, splitOperator, type CompareOp } from './condition-match.js';
import { parseSize } from '../units/values.js';

/** What checks look at; PID 1 passes the real system, tests temp dirs and made-up values. */
export interface CheckFacts {
  /** Prefix of the paths path conditions name, and of /etc, /usr and /var ('/' on the machine). */
  root: string;
  proc: string;
  sys: string;
  /** The cgroup2 mount (cgroup.controllers lives there). */
  cgroupRoot: string | null;
  cmdline: string;
  hostname: string;
  machineId: string;
  virtualization: string; // 'qemu', 'kvm', 'none', ...
  container: string; // 'docker', 'lxc', ..., 'none'
  capabilities: bigint; // CapBnd of PID 1
  architecture: string; // systemd's name: 'x86-64', 'arm64', ...
  kernelRelease: string; // uname -r
  env: Record<string, string | undefined>;
  user: { uid: number; name: string };
  groups: { gid: number; name: string }[];
  firstBoot: boolean;
  credentialDirs: string[];
  cpus: number;
  memoryBytes: number;
}

const CAPS = [
  'CAP_CHOWN',
  'CAP_DAC_OVERRIDE',
  'CAP_DAC_READ_SEARCH',
  'CAP_FOWNER',
  'CAP_FSETID',
  'CAP_KILL',
  'CAP_SETGID',
  'CAP_SETUID',
  'CAP_SETPCAP',
  'CAP_LINUX_IMMUTABLE',
  'CAP_NET_BIND_SERVICE',
  'CAP_NET_BROADCAST',
  'CAP_NET_ADMIN',
  'CAP_NET_RAW',
  'CAP_IPC_LOCK',
  'CAP_IPC_OWNER',
  'CAP_SYS_MODULE',
  'CAP_SYS_RAWIO',
  'CAP_SYS_CHROOT',
  'CAP_SYS_PTRACE',
  'CAP_SYS_PACCT',
  'CAP_SYS_ADMIN',
  'CAP_SYS_BOOT',
  'CAP_SYS_NICE',
  'CAP_SYS_RESOURCE',
  'CAP_SYS_TIME',
  'CAP_SYS_TTY_CONFIG',
  'CAP_MKNOD',
  'CAP_LEASE',
  'CAP_AUDIT_WRITE',
  'CAP_AUDIT_CONTROL',
  'CAP_SETFCAP',
  'CAP_MAC_OVERRIDE',
  'CAP_MAC_ADMIN',
  'CAP_SYSLOG',
  'CAP_WAKE_ALARM',
  'CAP_BLOCK_SUSPEND',
  'CAP_AUDIT_READ',
  'CAP_PERFMON',
  'CAP_BPF',
  'CAP_CHECKPOINT_RESTORE',
];
const VMS = [
  'qemu',
  'kvm',
  'amazon',
  'zvm',
  'vmware',
  'microsoft',
  'oracle',
  'powervm',
  'xen',
  'bochs',
  'uml',
  'parallels',
  'bhyve',
  'qnx',
  'acrn',
  'apple',
  'sre',
  'vm-other',
];

/** systemd's architecture name for uname -m. */
export function systemdArchitecture(machine: string): string {
  const map: Record<string, string> = {
    x86_64: 'x86-64',
    i386: 'x86',
    i486: 'x86',
    i586: 'x86',
    i686: 'x86',
    aarch64: 'arm64',
    aarch64_be: 'arm64-be',
    armv7l: 'arm',
    armv6l: 'arm',
    ppc64le: 'ppc64-le',
    ppc64: 'ppc64',
    ppc: 'ppc',
    s390x: 's390x',
    s390: 's390',
    riscv64: 'riscv64',
    riscv32: 'riscv32',
    mips64: 'mips64-le',
    mips: 'mips-le',
    loongarch64: 'loongarch64',
    alpha: 'alpha',
  };
  return map[machine] ?? machine;
}

const read = (p: string): string | null => {
  try {
    return readFileSync(p, 'utf8');
  } catch {
    return null;
  }
};
const stat = (p: string) => {
  try {
    return statSync(p);
  } catch {
    return null;
  }
};
const exists = (p: string) => stat(p) !== null;
const words = (v: string) => v.split(/\s+/).filter(Boolean);

/** "OP number" with `>=` when no operator is written (ConditionMemory=, ConditionCPUs=). */
function compareNumber(v: string, actual: number, parse: (s: string) => number): boolean {
  const o = splitOperator(v) ?? { op: '>=' as CompareOp, rest: v };
  return orderHolds(o.op, Math.sign(actual - parse(o.rest)));
}

/** "KEYopVALUE": = and != compare text, the others order versions (ConditionOSRelease=, smbios-field). */
function compareField(expr: string, lookup: (key: string) => string | undefined): boolean {
  const m = /^([^<>=!]+)(<=|>=|!=|<|>|=)(.*)$/.exec(expr);
  if (!m) return false;
  const actual = lookup(m[1].trim()) ?? '';
  const op = m[2] as CompareOp;
  const want = m[3].trim();
  if (op === '=' || op === '!=') return (actual === want) === (op === '=');
  return orderHolds(op, compareVersions(actual, want));
}

/** The device behind a path, and whether dm-crypt is somewhere below it (ConditionPathIsEncrypted=). */
function encrypted(sys: string, path: string): boolean {
  let dev: bigint;
  try {
    dev = statSync(path, { bigint: true }).dev;
  } catch {
    return false;
  }
  // Linux's dev_t: major in bits 8-19 and 32-43, minor in bits 0-7 and 20-43.
  const major = ((dev >> 8n) & 0xfffn) | ((dev >> 32n) & ~0xfffn);
  const minor = (dev & 0xffn) | ((dev >> 12n) & ~0xffn);
  const walk = (dir: string, depth: number): boolean => {
    if (depth > 8) return false;
    if ((read(join(dir, 'dm/uuid')) ?? '').startsWith('CRYPT-')) return true;
    let slaves: string[] = [];
    try {
      slaves = readdirSync(join(dir, 'slaves'));
    } catch {
      return false;
    }
    return slaves.some((x) => walk(join(sys, 'class/block', x), depth + 1));
  };
  return walk(join(sys, 'dev/block', `${major}:${minor}`), 0);
}

/** Mount points from mountinfo (field 5, octal escapes decoded). */
function mountPoints(proc: string): Map<string, string[]> {
  const out = new Map<string, string[]>();
  for (const line of (read(join(proc, 'self/mountinfo')) ?? '').split('\n')) {
    const f = line.split(' ');
    if (f.length < 6) continue;
    out.set(
      f[4].replace(/\\([0-7]{3})/g, (_, o) => String.fromCharCode(parseInt(o, 8))),
      f[5].split(','),
    );
  }
  return out;
}

function isMountPoint(f: CheckFacts, p: string): boolean {
  const s = stat(p);
  const parent = stat(dirname(p));
  if (!s) return false;
  if (parent && (parent.dev !== s.dev || parent.ino === s.ino)) return true; // another filesystem, or /
  return mountPoints(f.proc).has(p);
}

function isReadOnly(f: CheckFacts, p: string): boolean {
  try {
    accessSync(p, constants.W_OK);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'EROFS') return true;
  }
  let best = '';
  let ro = false;
  for (const [m, opts] of mountPoints(f.proc)) {
    if ((p === m || p.startsWith(m.endsWith('/') ? m : `${m}/`)) && m.length >= best.length) {
      best = m;
      ro = opts.includes('ro');
    }
  }
  return ro;
}

/** Expands a glob path one component at a time (ConditionPathExistsGlob=). */
function globExists(pattern: string): boolean {
  const parts = pattern.split('/').filter(Boolean);
  const step = (dir: string, i: number): boolean => {
    if (i === parts.length) return true;
    const part = parts[i];
    if (!/[*?[]/.test(part)) {
      const next = join(dir, part);
      return exists(next) && step(next, i + 1);
    }
    let names: string[] = [];
    try {
      names = readdirSync(dir);
    } catch {
      return false;
    }
    return names.some(
      (n) => !(n.startsWith('.') && !part.startsWith('.')) && fnmatch(part, n) && step(join(dir, n), i + 1),
    );
  };
  return step('/', 0);
}

/** On AC power: a Mains supply online, or none known (ConditionACPower=). */
function onACPower(sys: string): boolean {
  let found = false;
  let names: string[] = [];
  try {
    names = readdirSync(join(sys, 'class/power_supply'));
  } catch {
    return true;
  }
  for (const n of names) {
    const dir = join(sys, 'class/power_supply', n);
    if ((read(join(dir, 'type')) ?? '').trim() !== 'Mains' || (read(join(dir, 'scope')) ?? '').trim() === 'Device')
      continue;
    found = true;
    if ((read(join(dir, 'online')) ?? '').trim() === '1') return true;
  }
  return !found;
}

/** PSI below a threshold: "N%[/10sec|1min|5min]", optionally "SLICE:" first (ConditionMemoryPressure= ...). */
function pressureBelow(f: CheckFacts, resource: 'memory' | 'cpu' | 'io', v: string): boolean {
  const m = /^(?:([^:]+\.slice):)?\s*(\d+(?:\.\d+)?)%\s*(?:\/\s*(10sec|1min|5min))?$/.exec(v);
  if (!m) return false;
  const file =
    m[1] && f.cgroupRoot
      ? join(f.cgroupRoot, m[1] === '-.slice' ? '' : m[1], `${resource}.pressure`)
      : join(f.proc, 'pressure', resource);
  const text = read(file);
  if (text === null) return true; // no PSI in this kernel: the condition holds, as in systemd
  const avg = { '10sec': 'avg10', '1min': 'avg60', '5min': 'avg300' }[m[3] ?? '5min']!;
  const some = new RegExp(`^some .*\\b${avg}=([\\d.]+)`, 'm').exec(text);
  return some ? Number(some[1]) < Number(m[2]) : true;
}

function security(f: CheckFacts, v: string): boolean {
  switch (v) {
    case 'selinux':
      return exists(join(f.sys, 'fs/selinux/enforce'));
    case 'apparmor':
      return (read(join(f.sys, 'module/apparmor/parameters/enabled')) ?? '').trim() === 'Y';
    case 'tomoyo':
      return exists(join(f.sys, 'kernel/security/tomoyo'));
    case 'ima':
      return exists(join(f.sys, 'kernel/security/ima'));
    case 'smack':
      return exists(join(f.sys, 'fs/smackfs'));
    case 'audit':
      return exists(join(f.proc, 'self/loginuid'));
    case 'uefi-secureboot': {
      let raw: Buffer;
      try {
        raw = readFileSync(join(f.sys, 'firmware/efi/efivars/SecureBoot-8be4df61-93ca-11d2-aa0d-00e098032b8c'));
      } catch {
        return false;
      }
      return raw.length >= 5 && raw[4] === 1; // 4 bytes of attributes, then the value
    }
    case 'tpm2': {
      try {
        return readdirSync(join(f.sys, 'class/tpmrm')).length > 0;
      } catch {
        return false;
      }
    }
    default:
      return false;
  }
}

function firmware(f: CheckFacts, v: string): boolean {
  if (v === 'uefi') return exists(join(f.sys, 'firmware/efi'));
  if (v === 'device-tree') return exists(join(f.sys, 'firmware/devicetree'));
  const dt = /^device-tree-compatible\((.+)\)$/.exec(v);
  if (dt) return (read(join(f.proc, 'device-tree/compatible')) ?? '').split('\0').includes(dt[1]);
  const sm = /^smbios-field\((.+)\)$/.exec(v);
  if (sm)
    return compareField(sm[1], (k) => (/^[a-z_]+$/.test(k) ? read(join(f.sys, 'class/dmi/id', k))?.trim() : undefined));
  return false;
}

/** KernelVersion=: every expression holds; one without an operator is a glob on uname -r. */
function kernelVersion(release: string, v: string): boolean {
  return words(v).every((w) => {
    const o = splitOperator(w);
    return o ? orderHolds(o.op, compareVersions(release, o.rest)) : fnmatch(w, release);
  });
}

function osRelease(f: CheckFacts, v: string): boolean {
  const text = read(join(f.root, 'etc/os-release')) ?? read(join(f.root, 'usr/lib/os-release')) ?? '';
  const fields = new Map<string, string>();
  for (const line of text.split('\n')) {
    const m = /^([A-Z0-9_]+)=(.*)$/.exec(line.trim());
    if (m) fields.set(m[1], m[2].replace(/^(["'])(.*)\1$/, '$2'));
  }
  return words(v).every((w) => compareField(w, (k) => fields.get(k)));
}

/** /etc or /var needs an update when /usr is newer than its .updated stamp (ConditionNeedsUpdate=). */
function needsUpdate(f: CheckFacts, v: string): boolean {
  const dir = join(f.root, v);
  if (isReadOnly(f, dir)) return false;
  const usr = stat(join(f.root, 'usr'));
  const stamp = stat(join(dir, '.updated'));
  if (!usr) return false;
  return !stamp || usr.mtimeMs > stamp.mtimeMs;
}

function virtualization(f: CheckFacts, v: string): boolean {
  const vm = f.virtualization !== 'none';
  const ct = f.container !== 'none';
  switch (v) {
    case 'vm':
      return vm && VMS.includes(f.virtualization);
    case 'container':
      return ct;
    case 'private-users':
      return (
        (read(join(f.proc, 'self/uid_map')) ?? '0 0 4294967295').trim().split(/\s+/).join(' ') !== '0 0 4294967295'
      );
    default: {
      let b: boolean | null = null;
      if (/^(1|yes|y|true|t|on)$/.test(v)) b = true;
      else if (/^(0|no|n|false|f|off)$/.test(v)) b = false;
      if (b !== null) return (vm || ct) === b;
      return v === f.virtualization || v === f.container;
    }
  }
}

const bool = (v: string): boolean => /^(1|yes|y|true|t|on)$/i.test(v);

/** A boolean kernel command line override, as systemd reads them (the last one wins); null when absent. */
function cmdlineBool(f: CheckFacts, key: string): boolean | null {
  const last = f.cmdline
    .trim()
    .split(/\s+/)
    .filter((a) => a === key || a.startsWith(`${key}=`))
    .pop();
  return last === undefined ? null : last === key || bool(last.slice(key.length + 1));
}

/** One check, before negation. Unknown kinds pass (the loader already warned). */
export function checkHolds(c: Check, f: CheckFacts): boolean {
  const v = c.value;
  const path = () => join(f.root, v);
  switch (c.kind) {
    case 'PathExists':
      return exists(path());
    case 'PathExistsGlob':
      return globExists(path());
    case 'PathIsDirectory':
      return stat(path())?.isDirectory() === true;
    case 'PathIsSymbolicLink': {
      try {
        return lstatSync(path()).isSymbolicLink();
      } catch {
        return false;
      }
    }
    case 'PathIsMountPoint':
      return isMountPoint(f, path());
    case 'PathIsReadWrite':
      return exists(path()) && !isReadOnly(f, path());
    case 'PathIsEncrypted':
      return encrypted(f.sys, path());
    case 'DirectoryNotEmpty': {
      try {
        return readdirSync(path()).length > 0;
      } catch {
        return false;
      }
    }
    case 'FileNotEmpty': {
      const s = stat(path());
      return !!s && s.isFile() && s.size > 0;
    }
    case 'FileIsExecutable': {
      const s = stat(path());
      return !!s && s.isFile() && (s.mode & 0o111) !== 0;
    }
    case 'KernelCommandLine': {
      const args = f.cmdline.trim().split(/\s+/);
      return v.includes('=') ? args.includes(v) : args.some((a) => a === v || a.startsWith(`${v}=`));
    }
    case 'KernelVersion':
      return kernelVersion(f.kernelRelease, v);
    case 'Architecture':
      return v === 'native' || v === f.architecture;
    case 'Firmware':
      return firmware(f, v);
    case 'Virtualization':
      return virtualization(f, v);
    case 'Host':
      return /^[0-9a-fA-F]{32}$/.test(v) ? v.toLowerCase() === f.machineId : fnmatch(v, f.hostname, true);
    case 'Security':
      return security(f, v);
    case 'Capability': {
      const i = CAPS.indexOf(v);
      return i >= 0 && (f.capabilities & (1n << BigInt(i))) !== 0n;
    }
    case 'ACPower':
      return onACPower(f.sys) === bool(v);
    case 'NeedsUpdate':
      return cmdlineBool(f, 'systemd.condition-needs-update') ?? needsUpdate(f, v);
    case 'FirstBoot':
      return (cmdlineBool(f, 'systemd.condition-first-boot') ?? f.firstBoot) === bool(v);
    case 'User':
      if (v === '@system') return f.user.uid <= 999;
      return /^\d+$/.test(v) ? Number(v) === f.user.uid : v === f.user.name;
    case 'Group':
      return f.groups.some((g) => (/^\d+$/.test(v) ? Number(v) === g.gid : v === g.name));
    case 'ControlGroupController': {
      if (v === 'v2') return f.cgroupRoot !== null;
      if (v === 'v1') return false; // Keel mounts only the unified hierarchy
      const have = words(f.cgroupRoot ? (read(join(f.cgroupRoot, 'cgroup.controllers')) ?? '') : '');
      return words(v).every((x) => have.includes(x));
    }
    case 'Memory':
      return compareNumber(v, f.memoryBytes, parseSize);
    case 'CPUs':
      return compareNumber(v, f.cpus, Number);
    case 'CPUFeature': {
      const flags = /^flags\s*:(.*)$/m.exec(read(join(f.proc, 'cpuinfo')) ?? '')?.[1] ?? '';
      return words(flags).includes(v.toLowerCase());
    }
    case 'Environment':
      return v.includes('=')
        ? f.env[v.slice(0, v.indexOf('='))] === v.slice(v.indexOf('=') + 1)
        : f.env[v] !== undefined;
    case 'OSRelease':
      return osRelease(f, v);
    case 'Credential':
      return !v.includes('/') && f.credentialDirs.some((d) => exists(join(d, v)));
    case 'MemoryPressure':
      return pressureBelow(f, 'memory', v);
    case 'CPUPressure':
      return pressureBelow(f, 'cpu', v);
    case 'IOPressure':
      return pressureBelow(f, 'io', v);
    case 'Null':
      return bool(v);
    default:
      return true;
  }
}

/**
 * Evaluates a unit's checks as systemd does: every non-triggering check must hold, and if there
 * are triggering (|) checks at least one of them must. Returns the first failing check, or null.
 */
export function firstFailure(checks: Check[], f: CheckFacts, asserts: boolean): Check | null {
  const mine = checks.filter((c) => c.assert === asserts);
  const holds = (c: Check) => checkHolds(c, f) !== c.negate;
  const triggers = mine.filter((c) => c.trigger);
  for (const c of mine) if (!c.trigger && !holds(c)) return c;
  if (triggers.length && !triggers.some(holds)) return triggers[0];
  return null;
}
