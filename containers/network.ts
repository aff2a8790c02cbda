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
import { processStartTime } from './db.js';
import { ContainerError } from './errors.js';
import { withLockSync } from './lock.js';
import type { VolumeSpec } from './runtime.js';
import { writeFileAtomic } from './store.js';

/** The bridge every bridge-network container is a port of. */
export const BRIDGE = 'keel0';
/** Podman's default range; the bridge (the containers' gateway) has its first address. */
export const SUBNET = { network: '10.88.0.0', prefix: 16, gateway: '10.88.0.1' } as const;
export const SUBNET_CIDR = `${SUBNET.network}/${SUBNET.prefix}`;
/** The nftables table (family ip) holding every rule keel adds. */
export const NFT_TABLE = 'keel';
export const NETNS_DIR = '/run/keel/netns';
export const NETWORK_DIR = '/run/keel/network';

// ------------------------------------------------------------------ published ports

// -p's parser is in options.ts (pure: a .container unit's PublishPort= goes through it too).
export { parsePublish, type PortMapping } from './options.js';
import { IPV4, type PortMapping } from './options.js';

/** As docker ps shows it: 0.0.0.0:8080->80/tcp. */
export function formatPort(p: PortMapping): string {
  return `${p.hostIp}:${p.hostPort}->${p.containerPort}/${p.proto}`;
}

/** Whether two mappings want the same host port (0.0.0.0 overlaps every address). */
export function portsClash(a: PortMapping, b: PortMapping): boolean {
  return a.proto === b.proto && a.hostPort === b.hostPort && (a.hostIp === b.hostIp || a.hostIp === '0.0.0.0' || b.hostIp === '0.0.0.0');
}

/** Throws EPORTINUSE when `ports` clash with each other or with a port another lease publishes. */
export function checkPorts(ports: PortMapping[], others: Pick<Lease, 'id' | 'name' | 'ports'>[]): void {
  ports.forEach((p, i) => {
    const twice = ports.slice(0, i).find((q) => portsClash(p, q));
    if (twice) throw new ContainerError('EPORTINUSE', `cannot publish ${formatPort(p)}: ${formatPort(twice)} asks for the same host port`);
    for (const o of others) {
      const q = o.ports.find((x) => portsClash(p, x));
      if (q) throw new ContainerError('EPORTINUSE', `cannot publish ${formatPort(p)}: host port ${p.hostPort}/${p.proto} is already published by container ${o.name} (${o.id.slice(0, 12)}) as ${formatPort(q)}`);
    }
  });
}

// ------------------------------------------------------------------ addresses (IPAM)

export interface Lease {
  id: string;
  name: string;
  /** The container root (--root) the container is in: gone from there, the lease is reclaimed. */
  root: string;
  ip: string;
  ports: PortMapping[];
  /** The process that runs the container (foreground keel run, or its monitor), and the pid and mount namespaces its pid and root mean something in. */
  owner: Owner;
  created: string;
}

export interface Owner {
  pid: number;
  startTime: string;
  /** e.g. "pid:[4026531836]", "mnt:[4026531832]". */
  pidns?: string;
  mntns?: string;
}

export interface LeaseFile {
  /** The last address handed out: the next lease starts after it (addresses are not reused at once). */
  last: string | null;
  leases: Lease[];
}

export const ipToInt = (ip: string): number => ip.split('.').reduce((n, o) => n * 256 + Number(o), 0);
export const intToIp = (n: number): string => [24, 16, 8, 0].map((s) => Math.floor(n / 2 ** s) % 256).join('.');

/** The next free host address of the subnet after `last` (round robin), never the gateway; throws when none is left. */
export function allocateAddress(taken: Iterable<string>, last: string | null, subnet: { network: string; prefix: number; gateway: string } = SUBNET): string {
  const base = ipToInt(subnet.network);
  const size = 2 ** (32 - subnet.prefix);
  const used = new Set([...taken].map(ipToInt));
  used.add(ipToInt(subnet.gateway));
  const first = base + 1, count = size - 2;
  const lastN = last ? ipToInt(last) : base;
  const start = lastN >= first && lastN < first + count ? lastN - first + 1 : 0;
  for (let i = 0; i < count; i++) {
    const n = first + ((start + i) % count);
    if (!used.has(n)) return intToIp(n);
  }
  throw new ContainerError('ENOADDRESS', `cannot lease an address: every address of ${subnet.network}/${subnet.prefix} is in use`);
}

/** docker's MAC for an address: 02:42 and the address's four bytes. */
export function macFor(ip: string): string {
  return ['02', '42', ...ip.split('.').map((o) => Number(o).toString(16).padStart(2, '0'))].join(':');
}

/** What a container asks for. */
export interface LeaseRequest {
  id: string;
  name: string;
  root: string;
  ports: PortMapping[];
  owner: Owner;
}

/**
 * The lease file after `req` is leased (a lease of the same id keeps its address): leases for
 * which `alive` says false are dropped first and returned as `reclaimed`; ports that clash with
 * another live lease throw EPORTINUSE and change nothing.
 */
export function takeLease(file: LeaseFile, req: LeaseRequest, alive: (l: Lease) => boolean, now = new Date()): { file: LeaseFile; lease: Lease; reclaimed: Lease[] } {
  const reclaimed = file.leases.filter((l) => l.id !== req.id && !alive(l));
  const kept = file.leases.filter((l) => !reclaimed.includes(l));
  const others = kept.filter((l) => l.id !== req.id);
  checkPorts(req.ports, others);
  const prev = kept.find((l) => l.id === req.id);
  const ip = prev?.ip ?? allocateAddress(others.map((l) => l.ip), file.last);
  const lease: Lease = { id: req.id, name: req.name, root: req.root, ip, ports: req.ports, owner: req.owner, created: prev?.created ?? now.toISOString() };
  return { file: { last: prev ? file.last : ip, leases: [...others, lease] }, lease, reclaimed };
}

/** The lease file without `id`'s lease, and without leases `alive` says are dead (returned as `released`). */
export function dropLease(file: LeaseFile, id: string, alive: (l: Lease) => boolean): { file: LeaseFile; released: Lease[] } {
  const released = file.leases.filter((l) => l.id === id || !alive(l));
  return { file: { last: file.last, leases: file.leases.filter((l) => !released.includes(l)) }, released };
}

/** Whether the process `pid` started at `startTime` still runs (a zombie, killed and not yet reaped, does not). */
export function processAlive(pid: number, startTime: string): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return f[19] === startTime && f[0] !== 'Z' && f[0] !== 'X';
  } catch { return false; }
}

const namespaceOf = (kind: 'pid' | 'mnt'): string => { try { return readlinkSync(`/proc/self/ns/${kind}`); } catch { return ''; } };

/** This process as the owner of a lease. */
export function selfOwner(): Owner {
  return { pid: process.pid, startTime: processStartTime(process.pid) ?? '', pidns: namespaceOf('pid'), mntns: namespaceOf('mnt') };
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

// ------------------------------------------------------------------ nftables

/** The chain of a container's DNAT rules. */
export const chainOf = (id: string): string => `ctr_${id.slice(0, 12)}`;

/**
 * The whole `ip keel` table for these leases, as `nft -f -` input that replaces the table in
 * one transaction (so applying it twice is applying it once):
 * - postrouting: containers' traffic leaving through any interface but keel0 is masqueraded,
 *   and so are packets from 127.0.0.0/8 DNATed to a container (a published port reached at
 *   127.0.0.1 on the machine itself; keel0 has route_localnet for them), and a container's
 *   packets DNATed back onto keel0 (another container's port reached at a host address);
 * - prerouting (from outside) and output (from the machine itself): packets to a local address
 *   go through `published`, which jumps to every container's chain, whose rules DNAT its ports.
 */
export function nftRuleset(leases: Pick<Lease, 'id' | 'name' | 'ip' | 'ports'>[]): string {
  const withPorts = leases.filter((l) => l.ports.length).sort((a, b) => a.id.localeCompare(b.id));
  const q = (s: string) => JSON.stringify(s.replace(/["\\]/g, ''));
  const lines = [
    `table ip ${NFT_TABLE} {}`,
    `delete table ip ${NFT_TABLE}`,
    `table ip ${NFT_TABLE} {`,
    '\tchain prerouting {',
    '\t\ttype nat hook prerouting priority -100; policy accept;',
    '\t\tfib daddr type local jump published',
    '\t}',
    '\tchain output {',
    '\t\ttype nat hook output priority -100; policy accept;',
    '\t\tfib daddr type local jump published',
    '\t}',
    '\tchain postrouting {',
    '\t\ttype nat hook postrouting priority 100; policy accept;',
    `\t\tip saddr ${SUBNET_CIDR} oifname != "${BRIDGE}" masquerade`,
    `\t\tip saddr 127.0.0.0/8 oifname "${BRIDGE}" masquerade`,
    `\t\tip saddr ${SUBNET_CIDR} oifname "${BRIDGE}" ct status dnat masquerade`,
    '\t}',
    '\tchain published {',
    ...withPorts.map((l) => `\t\tjump ${chainOf(l.id)}`),
    '\t}',
  ];
  for (const l of withPorts) {
    lines.push(`\tchain ${chainOf(l.id)} {`);
    for (const p of l.ports) {
      const daddr = p.hostIp === '0.0.0.0' ? '' : `ip daddr ${p.hostIp} `;
      lines.push(`\t\t${daddr}${p.proto} dport ${p.hostPort} dnat to ${l.ip}:${p.containerPort} comment ${q(`${l.name} ${formatPort(p)}`)}`);
    }
    lines.push('\t}');
  }
  lines.push('}');
  return lines.join('\n') + '\n';
}

// ------------------------------------------------------------------ DNS and names

/**
 * A container's resolv.conf from the host's: its IPv4 nameservers but loopback ones (a
 * systemd-resolved or dnsmasq on 127.0.0.x answers on the host's lo, which the container does
 * not share); when those are all there is, the nameservers of `upstream` (systemd-resolved's
 * /run/systemd/resolve/resolv.conf, as docker does); when none is left, no nameserver and a
 * comment saying why (docker would fall back to Google's public DNS: keel sends no queries
 * anywhere the host would not). search and options lines are kept.
 */
export function containerResolvConf(host: string, upstream?: string): string {
  const parse = (text: string) => {
    const ns: string[] = [], other: string[] = [];
    for (const line of text.split('\n')) {
      const f = line.trim().split(/\s+/);
      if (f[0] === 'nameserver' && f[1]) ns.push(f[1]);
      else if (['search', 'domain', 'options'].includes(f[0]) && f.length > 1) other.push(f.join(' '));
    }
    return { ns, other };
  };
  const usable = (ns: string[]) => ns.filter((a) => IPV4.test(a) && !a.startsWith('127.'));
  const h = parse(host);
  let ns = usable(h.ns);
  let from = 'the host\'s /etc/resolv.conf';
  const loopback = h.ns.filter((a) => a.startsWith('127.') || a === '::1');
  if (!ns.length && upstream !== undefined) {
    ns = usable(parse(upstream).ns);
    from = 'the host resolver\'s upstream servers';
  }
  const out = [`# Written by keel for a container on ${BRIDGE}, from ${from}.`, ...h.other.filter((l) => !l.startsWith('domain '))];
  if (ns.length) out.push(...[...new Set(ns)].slice(0, 3).map((a) => `nameserver ${a}`));
  else out.push(loopback.length
    ? `# No nameserver: the host's (${loopback.join(', ')}) are loopback addresses, which a container cannot reach.`
    : '# No nameserver: the host has none.');
  return out.join('\n') + '\n';
}

/** /etc/hosts: localhost, and the container's hostname and name at its address. */
export function containerHosts(ip: string, hostname: string, name: string): string {
  const names = [...new Set([hostname, name].filter(Boolean))].join(' ');
  return `127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n${ip}\t${names}\n`;
}

// ------------------------------------------------------------------ the host side

function tool(candidates: string[], name: string): string {
  const found = candidates.find((p) => existsSync(p));
  if (!found) throw new ContainerError('ENETWORK', `cannot set up the bridge network: no ${name} (looked for ${candidates.join(', ')}); use --network none or --network host`);
  return found;
}
const busybox = () => tool(['/usr/bin/busybox', '/bin/busybox'], 'busybox');
const nftBinary = () => tool(['/usr/sbin/nft', '/sbin/nft', '/usr/bin/nft'], 'nft');

function exec(file: string, args: string[], what: string, input?: string): string {
  const r = spawnSync(file, args, { encoding: 'utf8', input, stdio: [input === undefined ? 'ignore' : 'pipe', 'pipe', 'pipe'], timeout: 30_000 });
  if (r.error) throw new ContainerError('ENETWORK', `cannot ${what}: ${file}: ${r.error.message}`, { cause: r.error });
  if (r.status !== 0) {
    const cmd = [file.endsWith('/busybox') ? 'busybox' : file, ...args.map((a) => (a.endsWith('/busybox') ? 'busybox' : a))].join(' ');
    throw new ContainerError('ENETWORK', `cannot ${what}: \`${cmd}\` failed: ${(r.stderr || r.stdout).trim() || `exit status ${r.status}`}`);
  }
  return r.stdout;
}

const ip = (args: string[], what: string) => exec(busybox(), ['ip', ...args], what);
/** `busybox ip ARGS` inside the network namespace file `ns`. */
const ipIn = (ns: string, args: string[], what: string) => exec(busybox(), ['nsenter', `--net=${ns}`, busybox(), 'ip', ...args], what);
const tryRun = (f: () => unknown) => { try { f(); return true; } catch { return false; } };

export const netnsPathOf = (id: string): string => join(NETNS_DIR, id);
export const hostVethOf = (id: string): string => `veth${id.slice(0, 8)}`;

function writeSysctl(path: string, value: string): void {
  try {
    if (readFileSync(path, 'utf8').trim() === value) return;
    writeFileSync(path, value);
  } catch (e) {
    throw new ContainerError('ENETWORK', `cannot set up the bridge network: cannot write ${value} to ${path}: ${(e as Error).message}`, { cause: e });
  }
}

/** keel0 with its address, up; IP forwarding on. */
export function ensureBridge(): void {
  if (!tryRun(() => ip(['link', 'show', BRIDGE], 'look at the bridge'))) {
    try { ip(['link', 'add', BRIDGE, 'type', 'bridge'], `create the bridge ${BRIDGE}`); } catch (e) {
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
    return readFileSync('/proc/self/mountinfo', 'utf8').split('\n').some((l) => {
      const f = l.split(' ');
      const sep = f.indexOf('-');
      return f[4]?.replace(/\\040/g, ' ') === path && sep > 0 && f[sep + 1] === 'nsfs';
    });
  } catch { return false; }
}

/** The network namespace file of a container, with eth0 set up; reused when it is there already. */
function setUpNamespace(id: string, address: string): string {
  const ns = netnsPathOf(id);
  const veth = hostVethOf(id);
  const what = `set up the network of container ${id.slice(0, 12)}`;
  const configured = () => { try { return ipIn(ns, ['-o', '-4', 'addr', 'show', 'dev', 'eth0'], what).includes(` ${address}/`); } catch { return false; } };
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
    if (!tryRun(() => exec(busybox(), ['umount', ns], `unmount ${ns}`))) tryRun(() => exec(busybox(), ['umount', '-l', ns], `unmount ${ns}`));
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
  return withLockSync(LOCK(), fn);
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
export function connect(req: ConnectRequest, hostResolv = '/etc/resolv.conf', upstreamResolv = '/run/systemd/resolve/resolv.conf'): Attachment {
  const owner = selfOwner();
  nftBinary(); // no nft: say so before anything is created
  const lease = withNetworkLock(() => {
    const taken = takeLease(readLeases(), { id: req.id, name: req.name, root: req.root, ports: req.ports, owner }, leaseAlive);
    for (const l of taken.reclaimed) removeNamespace(l.id);
    writeFileAtomic(LEASES(), JSON.stringify(taken.file, null, 2) + '\n');
    try {
      ensureBridge();
      setUpNamespace(req.id, taken.lease.ip);
      applyRules(taken.file.leases);
    } catch (e) {
      removeNamespace(req.id);
      const left = dropLease(taken.file, req.id, () => true).file;
      writeFileAtomic(LEASES(), JSON.stringify(left, null, 2) + '\n');
      tryRun(() => applyRules(left.leases));
      throw e;
    }
    return taken.lease;
  });
  const read = (f: string) => { try { return readFileSync(f, 'utf8'); } catch { return undefined; } };
  const files: [string, string, string, boolean][] = [
    ['resolv.conf', '/etc/resolv.conf', containerResolvConf(read(hostResolv) ?? '', read(upstreamResolv)), true],
    ['hosts', '/etc/hosts', containerHosts(lease.ip, req.hostname, req.name), false],
    ['hostname', '/etc/hostname', `${req.hostname}\n`, false],
  ];
  mkdirSync(req.dir, { recursive: true });
  for (const [file, , text] of files) writeFileAtomic(join(req.dir, file), text);
  return {
    ip: lease.ip, mac: macFor(lease.ip), gateway: SUBNET.gateway, netnsPath: netnsPathOf(req.id), ports: lease.ports,
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
    writeFileAtomic(LEASES(), JSON.stringify(file, null, 2) + '\n');
    applyRules(file.leases);
  });
}
