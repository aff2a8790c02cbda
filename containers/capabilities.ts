// Linux capabilities for containers: names and numbers, Docker's default set, and Docker's
// --cap-add/--cap-drop rules, as the bigint mask (bit n = capability n) spawn() takes.
import { ContainerError } from './errors.js';

/** Capability names without CAP_, indexed by number (linux/capability.h, CAP_CHOWN=0 … CAP_CHECKPOINT_RESTORE=40). */
export const CAPABILITIES = [
  'CHOWN',
  'DAC_OVERRIDE',
  'DAC_READ_SEARCH',
  'FOWNER',
  'FSETID',
  'KILL',
  'SETGID',
  'SETUID',
  'SETPCAP',
  'LINUX_IMMUTABLE',
  'NET_BIND_SERVICE',
  'NET_BROADCAST',
  'NET_ADMIN',
  'NET_RAW',
  'IPC_LOCK',
  'IPC_OWNER',
  'SYS_MODULE',
  'SYS_RAWIO',
  'SYS_CHROOT',
  'SYS_PTRACE',
  'SYS_PACCT',
  'SYS_ADMIN',
  'SYS_BOOT',
  'SYS_NICE',
  'SYS_RESOURCE',
  'SYS_TIME',
  'SYS_TTY_CONFIG',
  'MKNOD',
  'LEASE',
  'AUDIT_WRITE',
  'AUDIT_CONTROL',
  'SETFCAP',
  'MAC_OVERRIDE',
  'MAC_ADMIN',
  'SYSLOG',
  'WAKE_ALARM',
  'BLOCK_SUSPEND',
  'AUDIT_READ',
  'PERFMON',
  'BPF',
  'CHECKPOINT_RESTORE',
] as const;

export type CapabilityName = (typeof CAPABILITIES)[number];

/** Docker's default capabilities (moby's oci/caps/defaults.go). */
export const DEFAULT_CAPABILITIES: readonly CapabilityName[] = [
  'CHOWN',
  'DAC_OVERRIDE',
  'FSETID',
  'FOWNER',
  'MKNOD',
  'NET_RAW',
  'SETGID',
  'SETUID',
  'SETFCAP',
  'SETPCAP',
  'NET_BIND_SERVICE',
  'SYS_CHROOT',
  'KILL',
  'AUDIT_WRITE',
];

/** Every capability this module knows (0 … 40). */
export const ALL_CAPABILITIES_MASK: bigint = (1n << BigInt(CAPABILITIES.length)) - 1n;

/** Capability number of 'SYS_ADMIN', 'cap_sys_admin', 'CAP_SYS_ADMIN'…; throws for an unknown name. */
export function capabilityNumber(name: string, context = 'capability'): number {
  const bare = name.trim().toUpperCase().replace(/^CAP_/, '');
  const n = (CAPABILITIES as readonly string[]).indexOf(bare);
  if (n < 0)
    throw new ContainerError(
      'ECAPABILITY',
      `cannot use ${context} "${name}": no such capability (known: ${CAPABILITIES.join(', ')}, or ALL)`,
    );
  return n;
}

/** 'CAP_SYS_ADMIN' for 21; numbers beyond the table become 'CAP_<n>'. */
export function capabilityName(n: number): string {
  return `CAP_${CAPABILITIES[n] ?? n}`;
}

/** The mask of a list of names. */
export function capabilityMask(names: readonly string[]): bigint {
  return names.reduce((m, name) => m | (1n << BigInt(capabilityNumber(name))), 0n);
}

/** The names ('CAP_…') of the bits set in a mask, in number order. */
export function capabilityNames(mask: bigint): string[] {
  const out: string[] = [];
  for (let n = 0; mask >> BigInt(n) !== 0n; n++) if ((mask >> BigInt(n)) & 1n) out.push(capabilityName(n));
  return out;
}

const isAll = (name: string) => /^(CAP_)?ALL$/i.test(name.trim());

/**
 * Docker's --cap-add/--cap-drop (moby's TweakCapabilities): with ALL added, every capability but
 * the dropped ones; with ALL dropped, only the added ones; otherwise the base set minus the dropped
 * plus the added (an added one wins over the same one dropped). Names may carry CAP_ or not, in
 * any case; an unknown name throws ECAPABILITY.
 */
export function resolveCapabilities(
  capAdd: readonly string[] = [],
  capDrop: readonly string[] = [],
  base: readonly string[] = DEFAULT_CAPABILITIES,
): bigint {
  const add = capAdd.filter((c) => !isAll(c)),
    drop = capDrop.filter((c) => !isAll(c));
  const addMask = add.reduce((m, c) => m | (1n << BigInt(capabilityNumber(c, 'cap-add'))), 0n);
  const dropMask = drop.reduce((m, c) => m | (1n << BigInt(capabilityNumber(c, 'cap-drop'))), 0n);
  if (capAdd.some(isAll)) return ALL_CAPABILITIES_MASK & ~dropMask;
  if (capDrop.some(isAll)) return addMask;
  return (capabilityMask(base) & ~dropMask) | addMask;
}

/** A "Cap…:" line of /proc/PID/status ('CapEff', 'CapBnd', …) as a mask. */
export function statusCapabilities(
  status: string,
  field: 'CapInh' | 'CapPrm' | 'CapEff' | 'CapBnd' | 'CapAmb',
): bigint {
  const m = new RegExp(`^${field}:\\s*([0-9a-f]+)$`, 'm').exec(status);
  if (!m) throw new ContainerError('EINVAL', `cannot read ${field}: not in the status text`);
  return BigInt(`0x${m[1]}`);
}
