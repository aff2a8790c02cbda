// Condition*= and Assert*=: whether a unit should start at all. Pure given the facts passed in.
import type { Check } from '../units/types.js';

/** What checks look at; PID 1 passes the real system, tests a fake. */
export interface CheckFacts {
  stat(path: string): { isDirectory: boolean; size: number; mode: number } | null;
  readdir(path: string): string[] | null;
  cmdline: string;
  hostname: string;
  machineId: string;
  virtualization: string;   // 'qemu', 'kvm', 'none', ...
  capabilities: bigint;     // CapBnd of PID 1
}

const CAPS = ['CAP_CHOWN', 'CAP_DAC_OVERRIDE', 'CAP_DAC_READ_SEARCH', 'CAP_FOWNER', 'CAP_FSETID', 'CAP_KILL', 'CAP_SETGID', 'CAP_SETUID',
  'CAP_SETPCAP', 'CAP_LINUX_IMMUTABLE', 'CAP_NET_BIND_SERVICE', 'CAP_NET_BROADCAST', 'CAP_NET_ADMIN', 'CAP_NET_RAW', 'CAP_IPC_LOCK',
  'CAP_IPC_OWNER', 'CAP_SYS_MODULE', 'CAP_SYS_RAWIO', 'CAP_SYS_CHROOT', 'CAP_SYS_PTRACE', 'CAP_SYS_PACCT', 'CAP_SYS_ADMIN', 'CAP_SYS_BOOT',
  'CAP_SYS_NICE', 'CAP_SYS_RESOURCE', 'CAP_SYS_TIME', 'CAP_SYS_TTY_CONFIG', 'CAP_MKNOD', 'CAP_LEASE', 'CAP_AUDIT_WRITE', 'CAP_AUDIT_CONTROL',
  'CAP_SETFCAP', 'CAP_MAC_OVERRIDE', 'CAP_MAC_ADMIN', 'CAP_SYSLOG', 'CAP_WAKE_ALARM', 'CAP_BLOCK_SUSPEND', 'CAP_AUDIT_READ', 'CAP_PERFMON',
  'CAP_BPF', 'CAP_CHECKPOINT_RESTORE'];

/** One check, before negation. Unknown kinds pass (the loader already warned). */
export function checkHolds(c: Check, f: CheckFacts): boolean {
  const v = c.value;
  switch (c.kind) {
    case 'PathExists': return f.stat(v) !== null;
    case 'PathIsDirectory': return f.stat(v)?.isDirectory === true;
    case 'FileNotEmpty': { const s = f.stat(v); return !!s && !s.isDirectory && s.size > 0; }
    case 'DirectoryNotEmpty': return (f.readdir(v)?.length ?? 0) > 0;
    case 'FileIsExecutable': { const s = f.stat(v); return !!s && !s.isDirectory && (s.mode & 0o111) !== 0; }
    case 'KernelCommandLine': {
      const args = f.cmdline.trim().split(/\s+/);
      return v.includes('=') ? args.includes(v) : args.some((a) => a === v || a.startsWith(`${v}=`));
    }
    case 'Host': return v === f.hostname || v.toLowerCase() === f.machineId;
    case 'Virtualization':
      if (v === 'yes' || v === 'true') return f.virtualization !== 'none';
      if (v === 'no' || v === 'false') return f.virtualization === 'none';
      if (v === 'vm') return ['qemu', 'kvm', 'vmware', 'xen', 'microsoft', 'oracle'].includes(f.virtualization);
      return v === f.virtualization;
    case 'Capability': {
      const i = CAPS.indexOf(v);
      return i >= 0 && (f.capabilities & (1n << BigInt(i))) !== 0n;
    }
    default: return true;
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
