// The facts Condition*=/Assert*= read on the running machine (init/conditions.ts evaluates them).
import { readFileSync } from 'node:fs';
import { availableParallelism, machine, release, totalmem } from 'node:os';
import { join } from 'node:path';
import { systemdArchitecture, type CheckFacts } from './conditions.js';

const readText = (p: string) => {
  try {
    return readFileSync(p, 'utf8');
  } catch {
    return '';
  }
};

/** The hypervisor from DMI and cpuinfo: 'qemu', 'kvm', 'vm-other' or 'none'. */
export function detectVirt(sys = '/sys', proc = '/proc'): string {
  if (/QEMU/i.test(readText(join(sys, 'class/dmi/id/sys_vendor')))) return 'qemu';
  if (/KVM/i.test(readText(join(sys, 'class/dmi/id/product_name')))) return 'kvm';
  return /hypervisor/.test(readText(join(proc, 'cpuinfo'))) ? 'vm-other' : 'none';
}

/** PID 1's capability bounding set. */
export function capBnd(proc = '/proc'): bigint {
  const m = /^CapBnd:\s*([0-9a-f]+)/m.exec(readText(join(proc, 'self/status')));
  return m ? BigInt(`0x${m[1]}`) : 0n;
}

/** A name from an /etc/passwd or /etc/group file by numeric id, or the id itself. */
function nameOf(file: string, id: number): string {
  const line = readText(file)
    .split('\n')
    .find((l) => l.split(':')[2] === String(id));
  return line ? line.split(':')[0] : String(id);
}

/** The real machine's facts; the identity and first-boot state come from boot. */
export function hostCheckFacts(o: {
  hostname: string;
  machineId: string;
  firstBoot: boolean;
  cgroupRoot: string | null;
  etc: string;
}): CheckFacts {
  const uid = process.getuid?.() ?? 0;
  const gids = [...new Set([process.getgid?.() ?? 0, ...(process.getgroups?.() ?? [])])];
  const env = process.env;
  return {
    root: '/',
    proc: '/proc',
    sys: '/sys',
    cgroupRoot: o.cgroupRoot,
    cmdline: readText('/proc/cmdline'),
    hostname: o.hostname,
    machineId: o.machineId,
    virtualization: detectVirt(),
    container: env.container || 'none',
    capabilities: capBnd(),
    architecture: systemdArchitecture(machine()),
    kernelRelease: release(),
    env: { ...env },
    user: { uid, name: nameOf(join(o.etc, 'passwd'), uid) },
    groups: gids.map((gid) => ({ gid, name: nameOf(join(o.etc, 'group'), gid) })),
    firstBoot: o.firstBoot,
    credentialDirs: [env.CREDENTIALS_DIRECTORY, env.ENCRYPTED_CREDENTIALS_DIRECTORY].filter((d): d is string => !!d),
    cpus: availableParallelism(),
    memoryBytes: totalmem(),
  };
}
