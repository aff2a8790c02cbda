// Docker's default bridge network for `keel run`: the bridge keel0 (10.88.0.1/16, podman's
// default range), an address per container, NAT out and published ports in (nftables).
//
// Per container:
// - a lease: its address (and MAC, derived from it as docker did) and its published ports, in
//   /run/keel/network/leases.json, changed only under /run/keel/network/lock;
// - a network namespace kept in a file, /run/keel/netns/<id> (busybox `unshare --net=FILE`), with
//   eth0 (the address, a default route via 10.88.0.1) and lo; eth0's veth peer is on the host as
//   veth<8 hex of the id>, a port of keel0;
// - its own nftables chain in table `ip keel` holding its DNAT rules;
// - /etc/resolv.conf, /etc/hosts and /etc/hostname, files in its directory bound into it.
// All of it goes when the container stops for good (its netns file is unmounted and removed,
// which deletes the veth pair; the lease and chain go), and a lease whose container no longer
// exists, or whose holder (the foreground `keel run` or the detached monitor) is dead, is
// reclaimed the same way by the next CLI that takes the lock.
//
// The leases live in /run, next to the netns files, the bridge and the nftables table they
// describe, rather than under the container root: those are one per machine (and gone on
// reboot, as /run is), so two roots (tests use temporary ones) must not hand out the same
// address or port twice.
//
// The commands are busybox's (`busybox ip`, `nsenter`, `unshare`, `umount`) on the host and in the
// image alike, so both behave the same; NAT needs `nft`.

import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, readlinkSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { locks } from '../native/locks.js';
import { processStartTime } from './db.js';
import { ContainerError } from './errors.js';
import {
  BRIDGE,
  checkPorts,
  containerHosts,
  containerResolvConf,
  NETNS_DIR,
  NETWORK_DIR,
  nftRuleset,
  NFT_TABLE,
  SUBNET,
  takeLease,
  dropLease,
  macFor,
  type Lease,
  type LeaseFile,
  type Owner,
  type PortMapping,
} from './network-plan.js';
import type { VolumeSpec } from './runtime.js';
import { writeAtomic } from '../lib/atomic.js';

// The plan's names stay importable from here, where callers found them before the split.
export * from './network-plan.js';

// ------------------------------------------------------------------ liveness of leases

/** Whether the process `pid` started at `startTime` still runs (a zombie, killed and not yet reaped, does not). */
export function processAlive(pid: number, startTime: string): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return f[19] === startTime && f[0] !== 'Z' && f[0] !== 'X';
  } catch {
    return false;
  }
}

const namespaceOf = (kind: 'pid' | 'mnt'): string => {
  try {
    return readlinkSync(`/proc/self/ns/${kind}`);
  } catch {
    return '';
  }
};

/** This process as the owner of a lease. */
export function selfOwner(): Owner {
  return {
    pid: process.pid,
    startTime: processStartTime(process.pid) ?? '',
    pidns: namespaceOf('pid'),
    mntns: namespaceOf('mnt'),
  };
}

/**
 * A lease is alive while its container exists and the process running it does. A lease taken in
 * other pid or mount namespaces (a keel inside a container sharing /run/keel) cannot be judged
 * from here, and is left alone.
 */
export function leaseAlive(l: Lease): boolean {
  const mine = selfOwner();
  if (l.owner.mntns && l.owner.mntns !== mine.mntns) return true;
  if (!existsSync(join(l.root, 'containers', l.id, 'config.json'))) return false;
  if (l.owner.pidns && l.owner.pidns !== mine.pidns) return true;
  return processAlive(l.owner.pid, l.owner.startTime);
}

// ------------------------------------------------------------------ the host side

function tool(candidates: string[], name: string): string {
  const found = candidates.find((p) => existsSync(p));
  if (!found)
    throw new ContainerError(
      'ENETWORK',
      `cannot set up the bridge network: no ${name} (looked for ` +
        `${candidates.join(', ')}); use --network none or --network host`,
    );
  return found;
}
const busybox = () => tool(['/usr/bin/busybox', '/bin/busybox'], 'busybox');
const nftBinary = () => tool(['/usr/sbin/nft', '/sbin/nft', '/usr/bin/nft'], 'nft');

function exec(file: string, args: string[], what: string, input?: string): string {
  const r = spawnSync(file, args, {
    encoding: 'utf8',
    input,
    stdio: [input === undefined ? 'ignore' : 'pipe', 'pipe', 'pipe'],
    timeout: 30_000,
  });
  if (r.error) throw new ContainerError('ENETWORK', `cannot ${what}: ${file}: ${r.error.message}`, { cause: r.error });
  if (r.status !== 0) {
    const cmd = [
      file.endsWith('/busybox') ? 'busybox' : file,
      ...args.map((a) => (a.endsWith('/busybox') ? 'busybox' : a)),
    ].join(' ');
    throw new ContainerError(
      'ENETWORK',
      `cannot ${what}: \`${cmd}\` failed: ${(r.stderr || r.stdout).trim() || `exit status ${r.status}`}`,
    );
  }
  return r.stdout;
}

const ip = (args: string[], what: string) => exec(busybox(), ['ip', ...args], what);
/** `busybox ip ARGS` inside the network namespace file `ns`. */
const ipIn = (ns: string, args: string[], what: string) =>
  exec(busybox(), ['nsenter', `--net=${ns}`, busybox(), 'ip', ...args], what);
const tryRun = (f: () => unknown) => {
  try {
    f();
    return true;
  } catch {
    return false;
  }
};

export const netnsPathOf = (id: string): string => join(NETNS_DIR, id);
export const hostVethOf = (id: string): string => `veth${id.slice(0, 8)}`;

function writeSysctl(path: string, value: string): void {
  try {
    if (readFileSync(path, 'utf8').trim() === value) return;
    writeFileSync(path, value);
  } catch (e) {
    throw new ContainerError(
      'ENETWORK',
      `cannot set up the bridge network: cannot write ${value} to ${path}: ${(e as Error).message}`,
      { cause: e },
    );
  }
}

/** keel0 with its address, up; IP forwarding on. */
export function ensureBridge(): void {
  if (!tryRun(() => ip(['link', 'show', BRIDGE], 'look at the bridge'))) {
    try {
      ip(['link', 'add', BRIDGE, 'type', 'bridge'], `create the bridge ${BRIDGE}`);
    } catch (e) {
      // Another CLI (with another root) may have made it meanwhile.
      if (!tryRun(() => ip(['link', 'show', BRIDGE], 'look at the bridge'))) throw e;
    }
  }
  const cidr = `${SUBNET.gateway}/${SUBNET.prefix}`;
  if (!ip(['-o', '-4', 'addr', 'show', 'dev', BRIDGE], 'look at the bridge').includes(` ${cidr} `)) {
    ip(['addr', 'add', cidr, 'dev', BRIDGE], `give ${BRIDGE} its address`);
  }
  ip(['link', 'set', BRIDGE, 'up'], `bring ${BRIDGE} up`);
  writeSysctl('/proc/sys/net/ipv4/ip_forward', '1');
  // Published ports reached at 127.0.0.1 are DNATed to keel0 with their loopback source.
  writeSysctl(`/proc/sys/net/ipv4/conf/${BRIDGE}/route_localnet`, '1');
}

/** Whether `path` is a mount point of an nsfs (a kept network namespace). */
function isNsMount(path: string): boolean {
  try {
    return readFileSync('/proc/self/mountinfo', 'utf8')
      .split('\n')
      .some((l) => {
        const f = l.split(' ');
        const sep = f.indexOf('-');
        return f[4]?.replace(/\\040/g, ' ') === path && sep > 0 && f[sep + 1] === 'nsfs';
      });
  } catch {
    return false;
  }
}

/** The network namespace file of a container, with eth0 set up; reused when it is there already. */
function setUpNamespace(id: string, address: string): string {
  const ns = netnsPathOf(id);
  const veth = hostVethOf(id);
  const what = `set up the network of container ${id.slice(0, 12)}`;
  const configured = () => {
    try {
      return ipIn(ns, ['-o', '-4', 'addr', 'show', 'dev', 'eth0'], what).includes(` ${address}/`);
    } catch {
      return false;
    }
  };
  if (isNsMount(ns) && configured()) {
    ip(['link', 'set', veth, 'master', BRIDGE], what);
    ip(['link', 'set', veth, 'up'], what);
    return ns;
  }
  removeNamespace(id);
  mkdirSync(NETNS_DIR, { recursive: true });
  writeFileSync(ns, '');
  exec(busybox(), ['unshare', `--net=${ns}`, 'true'], `create the network namespace of container ${id.slice(0, 12)}`);
  // Made inside (where no name can clash), the pair's other end renamed there, then moved out.
  // busybox ip ignores `peer name`: the peer is the eth0@PEER of `ip link show`.
  ipIn(ns, ['link', 'add', 'eth0', 'type', 'veth', 'peer', 'name', veth], what);
  const peer = /^\d+:\s+eth0@([^:\s]+):/m.exec(ipIn(ns, ['-o', 'link', 'show'], what))?.[1];
  if (!peer) throw new ContainerError('ENETWORK', `cannot ${what}: no eth0@PEER in its \`ip link show\``);
  if (peer !== veth) ipIn(ns, ['link', 'set', peer, 'name', veth], what);
  ipIn(ns, ['link', 'set', veth, 'netns', String(process.pid)], what);
  ip(['link', 'set', veth, 'master', BRIDGE], what);
  ip(['link', 'set', veth, 'up'], what);
  ipIn(ns, ['link', 'set', 'eth0', 'address', macFor(address)], what);
  ipIn(ns, ['addr', 'add', `${address}/${SUBNET.prefix}`, 'dev', 'eth0'], what);
  ipIn(ns, ['link', 'set', 'eth0', 'up'], what);
  ipIn(ns, ['link', 'set', 'lo', 'up'], what);
  ipIn(ns, ['route', 'add', 'default', 'via', SUBNET.gateway], what);
  return ns;
}

/** Deletes the host end of the pair (and so eth0), unmounts and removes the netns file. */
function removeNamespace(id: string): void {
  const ns = netnsPathOf(id);
  tryRun(() => ip(['link', 'del', hostVethOf(id)], 'remove the veth'));
  for (let i = 0; i < 5 && isNsMount(ns); i++) {
    if (!tryRun(() => exec(busybox(), ['umount', ns], `unmount ${ns}`)))
      tryRun(() => exec(busybox(), ['umount', '-l', ns], `unmount ${ns}`));
  }
  rmSync(ns, { force: true });
}

function applyRules(leases: Lease[]): void {
  exec(nftBinary(), ['-f', '-'], `set up NAT and published ports (table ip ${NFT_TABLE})`, nftRuleset(leases));
}

const LEASES = () => join(NETWORK_DIR, 'leases.json');
const LOCK = () => join(NETWORK_DIR, 'lock');

export function readLeases(): LeaseFile {
  try {
    const f = JSON.parse(readFileSync(LEASES(), 'utf8')) as LeaseFile;
    return { last: f.last ?? null, leases: Array.isArray(f.leases) ? f.leases : [] };
  } catch (e) {
    if ((e as { code?: string }).code === 'ENOENT') return { last: null, leases: [] };
    throw new ContainerError('ENETWORK', `cannot read ${LEASES()}: ${(e as Error).message}`, { cause: e });
  }
}

function withNetworkLock<T>(fn: () => T): T {
  mkdirSync(NETWORK_DIR, { recursive: true });
  return locks.withLockSync(LOCK(), fn);
}

/** Throws EPORTINUSE (before anything is created) when these ports clash with each other or with live leases. */
export function checkPublishable(ports: PortMapping[]): void {
  checkPorts(ports, readLeases().leases.filter(leaseAlive));
}

/** A container on the bridge: its address, its netns file, and the files to bind into it. */
export interface Attachment {
  ip: string;
  mac: string;
  gateway: string;
  netnsPath: string;
  ports: PortMapping[];
  /** /etc/resolv.conf (read-only), /etc/hosts and /etc/hostname. */
  files: VolumeSpec[];
}

export interface ConnectRequest {
  id: string;
  name: string;
  hostname: string;
  /** The container root (--root). */
  root: string;
  /** Where its resolv.conf, hosts and hostname are written. */
  dir: string;
  ports: PortMapping[];
}

/**
 * Puts a container on keel0 (creating the bridge and the table on first use): leases its
 * address, makes its network namespace, installs its port rules, writes its files. Run again
 * for a restart, it keeps the address and the namespace. On failure nothing of it is left.
 */
export function connect(
  req: ConnectRequest,
  hostResolv = '/etc/resolv.conf',
  upstreamResolv = '/run/systemd/resolve/resolv.conf',
): Attachment {
  const owner = selfOwner();
  nftBinary(); // no nft: say so before anything is created
  const lease = withNetworkLock(() => {
    const taken = takeLease(
      readLeases(),
      { id: req.id, name: req.name, root: req.root, ports: req.ports, owner },
      leaseAlive,
    );
    for (const l of taken.reclaimed) removeNamespace(l.id);
    writeAtomic(LEASES(), JSON.stringify(taken.file, null, 2) + '\n');
    try {
      ensureBridge();
      setUpNamespace(req.id, taken.lease.ip);
      applyRules(taken.file.leases);
    } catch (e) {
      removeNamespace(req.id);
      const left = dropLease(taken.file, req.id, () => true).file;
      writeAtomic(LEASES(), JSON.stringify(left, null, 2) + '\n');
      tryRun(() => applyRules(left.leases));
      throw e;
    }
    return taken.lease;
  });
  const read = (f: string) => {
    try {
      return readFileSync(f, 'utf8');
    } catch {
      return undefined;
    }
  };
  const files: [string, string, string, boolean][] = [
    ['resolv.conf', '/etc/resolv.conf', containerResolvConf(read(hostResolv) ?? '', read(upstreamResolv)), true],
    ['hosts', '/etc/hosts', containerHosts(lease.ip, req.hostname, req.name), false],
    ['hostname', '/etc/hostname', `${req.hostname}\n`, false],
  ];
  mkdirSync(req.dir, { recursive: true });
  for (const [file, , text] of files) writeAtomic(join(req.dir, file), text);
  return {
    ip: lease.ip,
    mac: macFor(lease.ip),
    gateway: SUBNET.gateway,
    netnsPath: netnsPathOf(req.id),
    ports: lease.ports,
    files: files.map(([file, container, , ro]) => ({ host: join(req.dir, file), container, ro })),
  };
}

/**
 * Takes a container off the bridge for good: its lease, its rules, its namespace (and veth);
 * dead leases of other containers go too. A no-op (touching neither bridge nor table) when it
 * has nothing there.
 */
export function disconnect(id: string): void {
  if (!existsSync(LEASES()) && !existsSync(netnsPathOf(id))) return;
  withNetworkLock(() => {
    const before = readLeases();
    const { file, released } = dropLease(before, id, leaseAlive);
    for (const l of released) removeNamespace(l.id);
    removeNamespace(id);
    if (!released.length) return;
    writeAtomic(LEASES(), JSON.stringify(file, null, 2) + '\n');
    applyRules(file.leases);
  });
}
