// The values of `keel run`'s options, parsed without I/O: the command line (cli/run.ts) and a
// Quadlet .container unit (units/quadlet.ts) both call these, so both accept exactly the same
// values. Each throws a ContainerError (code EOPTION, or EPUBLISH for -p) naming the option and value.
import { ContainerError } from './errors.js';
import { HOSTNAME_RULE, isHostname } from './hostname.js';

/** A published port: -p [IP:]HOST:CONTAINER[/tcp|udp]. */
export interface PortMapping {
  /** '0.0.0.0': every address of the host. */
  hostIp: string;
  hostPort: number;
  containerPort: number;
  proto: 'tcp' | 'udp';
}

/** A dotted-quad IPv4 address. */
export const IPV4 = /^(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)(\.(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)){3}$/;

/** The networks keel run has (--network): no named ones. */
export const NETWORKS = ['bridge', 'none', 'host'] as const;

const bad = (option: string, s: string, why: string): never => {
  throw new ContainerError('EOPTION', `invalid ${option} ${JSON.stringify(s)} (${why})`);
};

/** Docker's --memory: 512m, 1g, 100k, 1048576 (bytes). */
export function parseMemory(s: string): number {
  const m = /^(\d+(?:\.\d+)?)([bkmg]?)b?$/i.exec(s.trim());
  if (!m) bad('--memory', s, 'use e.g. 512m or 1g');
  return Math.round(Number(m![1]) * 1024 ** ' kmg'.indexOf((m![2] || ' ').toLowerCase()));
}

/** --cpus N: CPUs as a decimal, at least 0.01 (cpu.max's smallest quota); 0 is no limit (null), as docker's. */
export function parseCpus(s: string): number | null {
  const n = Number(s.trim());
  if (!/^\d+(\.\d+)?$/.test(s.trim()) || (n !== 0 && n < 0.01)) {
    bad('--cpus', s, 'use a number of CPUs such as 0.5 or 2, at least 0.01; 0 for no limit');
  }
  return n === 0 ? null : n;
}

/** --pids-limit N: processes at most; 0 and -1 are no limit (null), as docker's. */
export function parsePidsLimit(s: string): number | null {
  if (!/^(-1|\d+)$/.test(s.trim())) bad('--pids-limit', s, 'use a number of processes; 0 or -1 for no limit');
  const n = Number(s.trim());
  return n <= 0 ? null : n;
}

/** --hostname: an RFC 1123 name of at most 64 bytes (containers/hostname.ts). */
export function parseHostname(s: string): string {
  if (!isHostname(s)) bad('--hostname', s, HOSTNAME_RULE);
  return s;
}

/** --restart no | on-failure[:N] | always (| unless-stopped, treated as always). */
export function parseRestart(s: string): { policy: 'no' | 'on-failure' | 'always'; max: number } {
  const m = /^(no|always|unless-stopped|on-failure)(?::(\d+))?$/.exec(s);
  if (!m || (m[2] !== undefined && m[1] !== 'on-failure')) bad('--restart', s, 'use: no, on-failure[:N], always');
  const policy = m![1] === 'unless-stopped' ? 'always' : (m![1] as 'no' | 'always' | 'on-failure');
  return { policy, max: m![2] ? Number(m![2]) : 0 };
}

/** --network bridge | none | host. */
export function parseNetwork(s: string): (typeof NETWORKS)[number] {
  if (!(NETWORKS as readonly string[]).includes(s)) {
    throw new ContainerError('EOPTION', `unknown --network ${JSON.stringify(s)} (use: ${NETWORKS.join(', ')})`);
  }
  return s as (typeof NETWORKS)[number];
}

/** The name of an -e KEY[=VALUE] (or --env-file line): anything up to '=' without blanks. */
export function parseEnvAssignment(kv: string, where: string): { key: string; value: string | null } {
  const eq = kv.indexOf('=');
  const key = eq < 0 ? kv : kv.slice(0, eq);
  if (!/^[^=\s]+$/.test(key)) {
    throw new ContainerError('EENV', `invalid environment variable ${JSON.stringify(kv)} (${where})`);
  }
  return { key, value: eq < 0 ? null : kv.slice(eq + 1) };
}

function badPublish(spec: string, why: string): never {
  throw new ContainerError('EPUBLISH', `invalid -p ${JSON.stringify(spec)}: ${why}`);
}

/** Docker's -p HOST:CONTAINER[/tcp|udp] or IP:HOST:CONTAINER[/tcp|udp] (no ranges, no random host ports). */
export function parsePublish(spec: string): PortMapping {
  const slash = spec.lastIndexOf('/');
  const proto = slash < 0 ? 'tcp' : spec.slice(slash + 1);
  if (proto !== 'tcp' && proto !== 'udp') badPublish(spec, `protocol ${JSON.stringify(proto)} is not tcp or udp`);
  const parts = (slash < 0 ? spec : spec.slice(0, slash)).split(':');
  if (parts.length === 1) {
    badPublish(spec, 'name the host port too: HOST:CONTAINER (keel does not pick random host ports)');
  }
  if (parts.length > 3) badPublish(spec, 'use HOST:CONTAINER or IP:HOST:CONTAINER (IPv6 addresses are not supported)');
  const [hostIp, host, ctr] = parts.length === 3 ? parts : ['0.0.0.0', ...parts];
  if (!IPV4.test(hostIp)) badPublish(spec, `${JSON.stringify(hostIp)} is not an IPv4 address`);
  const port = (s: string, what: string) => {
    if (s === '') badPublish(spec, `no ${what} port (keel does not pick random host ports)`);
    const ranges = s.includes('-') ? ' (port ranges are not supported)' : '';
    if (!/^\d+$/.test(s)) badPublish(spec, `${what} port ${JSON.stringify(s)} is not a number${ranges}`);
    const n = Number(s);
    if (n < 1 || n > 65535) badPublish(spec, `${what} port ${s} is not in 1-65535`);
    return n;
  };
  return { hostIp, hostPort: port(host, 'host'), containerPort: port(ctr, 'container'), proto: proto as 'tcp' | 'udp' };
}

/** -v HOST:CONTAINER[:ro|rw]. */
export function parseVolume(v: string): { host: string; container: string; ro: boolean } {
  const parts = v.split(':');
  if (parts.length < 2 || parts.length > 3 || (parts.length === 3 && !['ro', 'rw'].includes(parts[2]))) {
    const why = `volume ${JSON.stringify(v)} must be HOST:CONTAINER[:ro|rw]`;
    throw new ContainerError('EINVAL', `cannot run the container: ${why}`);
  }
  return { host: parts[0], container: parts[1], ro: parts[2] === 'ro' };
}

/** --userns host | remap (the value only; containers/userns.ts reads the ranges). */
export function parseUsernsMode(value: string): 'host' | 'remap' {
  if (value === '' || value === 'host') return 'host';
  if (value !== 'remap') {
    throw new ContainerError('EINVAL', `unknown --userns ${JSON.stringify(value)} (use: host, remap)`);
  }
  return 'remap';
}
