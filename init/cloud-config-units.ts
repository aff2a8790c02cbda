// What cloud-config needs from PID 1: the machine's addresses, coreos.units done by the manager,
// and the user-data script run as a oneshot service.
import { KeelError } from '../lib/errors.js';
import { mkdirSync, writeFileSync } from 'node:fs';
import { networkInterfaces } from 'node:os';
import type { Manager } from './manager.js';
import type { UnitOps } from '../cloud-config/apply.js';

/** The machine's addresses for $private_ipv4 and friends: what the interfaces have now (a static
 *  address from an earlier boot, say); empty on a first boot before DHCP. */
export function machineAddresses(): { private_ipv4?: string; private_ipv6?: string } {
  const all = Object.values(networkInterfaces())
    .flat()
    .filter((a): a is NonNullable<typeof a> => !!a && !a.internal);
  const v4 = all.find((a) => a.family === 'IPv4')?.address;
  const v6 = all.find((a) => a.family === 'IPv6' && !a.address.startsWith('fe80'))?.address;
  return { ...(v4 ? { private_ipv4: v4 } : {}), ...(v6 ? { private_ipv6: v6 } : {}) };
}

/** For user-data using $private_ipv4 on a machine with no address yet (a first boot before DHCP): starts
 *  the network early (the drivers, then dhcp.service) and waits for an address, at most `timeoutMs`. The
 *  kernel has no event for "an address appeared" that Node can wait on, so the interfaces are polled. */
export async function awaitAddresses(
  m: Pick<Manager, 'job' | 'lookup'>,
  log: (message: string) => void,
  o: { timeoutMs?: number; pollMs?: number; addresses?: typeof machineAddresses } = {},
): Promise<ReturnType<typeof machineAddresses>> {
  const read = o.addresses ?? machineAddresses;
  let a = read();
  if (a.private_ipv4) return a;
  log('cloud-config: the user-data uses $private_ipv4: bringing the network up first');
  for (const unit of NETWORK_UNITS) if (m.lookup(unit)) await m.job(unit, 'start');
  const deadline = Date.now() + (o.timeoutMs ?? 60_000);
  while (!(a = read()).private_ipv4 && Date.now() < deadline) await new Promise((r) => setTimeout(r, o.pollMs ?? 200));
  log(
    a.private_ipv4
      ? `cloud-config: $private_ipv4 is ${a.private_ipv4}`
      : 'cloud-config: no address came up: $private_ipv4 stays empty',
  );
  return a;
}

/** What brings the network up in the image: the drivers for present devices, then DHCP or .network files. */
const NETWORK_UNITS = ['keel-coldplug.service', 'dhcp.service'];

/** cloud-config's coreos.units operations, done by the manager in this process. */
export function cloudConfigUnitOps(m: Manager): UnitOps {
  const active = (n: string) => ['active', 'reloading', 'activating'].includes(m.status(n, 0).activeState);
  return {
    daemonReload: () => {
      m.load();
    },
    enable: (n) => {
      m.files.enable(n);
    },
    mask: (n) => {
      m.files.mask(n);
    },
    unmask: (n) => {
      m.files.unmask(n);
    },
    command: async (n, c) => {
      switch (c) {
        case 'start':
        case 'stop':
        case 'restart':
        case 'reload':
          return m.job(n, c);
        case 'try-restart':
          return active(n) ? m.job(n, 'restart') : 'done';
        case 'reload-or-restart':
          return m.job(n, m.lookup(n)?.service?.execReload.length ? 'reload' : 'restart');
        case 'reload-or-try-restart':
          return active(n) ? m.job(n, m.lookup(n)?.service?.execReload.length ? 'reload' : 'restart') : 'done';
        default:
          throw new KeelError('ECOMMAND', `cannot run ${n}: unknown command "${c}"`);
      }
    },
  };
}

/** Runs a user-data script as user-data-script.service (a failure is logged by the manager). */
export function runUserDataScript(m: Manager, path: string): void {
  mkdirSync('/run/systemd/system', { recursive: true });
  writeFileSync(
    '/run/systemd/system/user-data-script.service',
    `[Unit]\nDescription=User-data script\n[Service]\nType=oneshot\nExecStart=${path}\n`,
  );
  m.load();
  void m.backgroundJob('user-data-script.service', 'start', { unit: 'cloud-config', why: 'the user-data script' });
}
