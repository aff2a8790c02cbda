// The bridge network as data, without I/O: addresses and leases (IPAM), published ports, the
// nftables ruleset and a container's resolv.conf and hosts, all pure (tested without root). The host
// side that runs ip, nsenter and nft on them is network.ts.
import { IPV4, type PortMapping } from './options.js';
import { ContainerError } from './errors.js';

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

/** As docker ps shows it: 0.0.0.0:8080->80/tcp. */
export function formatPort(p: PortMapping): string {
  return `${p.hostIp}:${p.hostPort}->${p.containerPort}/${p.proto}`;
}

/** Whether two mappings want the same host port (0.0.0.0 overlaps every address). */
export function portsClash(a: PortMapping, b: PortMapping): boolean {
  return (
    a.proto === b.proto &&
    a.hostPort === b.hostPort &&
    (a.hostIp === b.hostIp || a.hostIp === '0.0.0.0' || b.hostIp === '0.0.0.0')
  );
}

/** Throws EPORTINUSE when `ports` clash with each other or with a port another lease publishes. */
export function checkPorts(ports: PortMapping[], others: Pick<Lease, 'id' | 'name' | 'ports'>[]): void {
  ports.forEach((p, i) => {
    const twice = ports.slice(0, i).find((q) => portsClash(p, q));
    if (twice)
      throw new ContainerError(
        'EPORTINUSE',
        `cannot publish ${formatPort(p)}: ${formatPort(twice)} asks for the same host port`,
      );
    for (const o of others) {
      const q = o.ports.find((x) => portsClash(p, x));
      if (q)
        throw new ContainerError(
          'EPORTINUSE',
          `cannot publish ${formatPort(p)}: host port ${p.hostPort}/${p.proto} is already ` +
            `published by container ${o.name} (${o.id.slice(0, 12)}) as ${formatPort(q)}`,
        );
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
  /**
   * The process that runs the container (foreground keel run, or its monitor), and the pid and mount namespaces its
   * pid and root mean something in.
   */
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
export function allocateAddress(
  taken: Iterable<string>,
  last: string | null,
  subnet: { network: string; prefix: number; gateway: string } = SUBNET,
): string {
  const base = ipToInt(subnet.network);
  const size = 2 ** (32 - subnet.prefix);
  const used = new Set([...taken].map(ipToInt));
  used.add(ipToInt(subnet.gateway));
  const first = base + 1,
    count = size - 2;
  const lastN = last ? ipToInt(last) : base;
  const start = lastN >= first && lastN < first + count ? lastN - first + 1 : 0;
  for (let i = 0; i < count; i++) {
    const n = first + ((start + i) % count);
    if (!used.has(n)) return intToIp(n);
  }
  throw new ContainerError(
    'ENOADDRESS',
    `cannot lease an address: every address of ${subnet.network}/${subnet.prefix} is in use`,
  );
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
export function takeLease(
  file: LeaseFile,
  req: LeaseRequest,
  alive: (l: Lease) => boolean,
  now = new Date(),
): { file: LeaseFile; lease: Lease; reclaimed: Lease[] } {
  const reclaimed = file.leases.filter((l) => l.id !== req.id && !alive(l));
  const kept = file.leases.filter((l) => !reclaimed.includes(l));
  const others = kept.filter((l) => l.id !== req.id);
  checkPorts(req.ports, others);
  const prev = kept.find((l) => l.id === req.id);
  const ip =
    prev?.ip ??
    allocateAddress(
      others.map((l) => l.ip),
      file.last,
    );
  const lease: Lease = {
    id: req.id,
    name: req.name,
    root: req.root,
    ip,
    ports: req.ports,
    owner: req.owner,
    created: prev?.created ?? now.toISOString(),
  };
  return { file: { last: prev ? file.last : ip, leases: [...others, lease] }, lease, reclaimed };
}

/** The lease file without `id`'s lease, and without leases `alive` says are dead (returned as `released`). */
export function dropLease(
  file: LeaseFile,
  id: string,
  alive: (l: Lease) => boolean,
): { file: LeaseFile; released: Lease[] } {
  const released = file.leases.filter((l) => l.id === id || !alive(l));
  return { file: { last: file.last, leases: file.leases.filter((l) => !released.includes(l)) }, released };
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
      lines.push(
        `\t\t${daddr}${p.proto} dport ${p.hostPort} dnat to ` +
          `${l.ip}:${p.containerPort} comment ${q(`${l.name} ${formatPort(p)}`)}`,
      );
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
    const ns: string[] = [],
      other: string[] = [];
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
  let from = "the host's /etc/resolv.conf";
  const loopback = h.ns.filter((a) => a.startsWith('127.') || a === '::1');
  if (!ns.length && upstream !== undefined) {
    ns = usable(parse(upstream).ns);
    from = "the host resolver's upstream servers";
  }
  const out = [
    `# Written by keel for a container on ${BRIDGE}, from ${from}.`,
    ...h.other.filter((l) => !l.startsWith('domain ')),
  ];
  if (ns.length) out.push(...[...new Set(ns)].slice(0, 3).map((a) => `nameserver ${a}`));
  else
    out.push(
      loopback.length
        ? `# No nameserver: the host's (${loopback.join(', ')}) are loopback addresses, which a container cannot reach.`
        : '# No nameserver: the host has none.',
    );
  return out.join('\n') + '\n';
}

/** /etc/hosts: localhost, and the container's hostname and name at its address. */
export function containerHosts(ip: string, hostname: string, name: string): string {
  const names = [...new Set([hostname, name].filter(Boolean))].join(' ');
  return `127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n${ip}\t${names}\n`;
}
