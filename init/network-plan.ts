// The common subset of systemd-networkd's .network files, planned as `ip` commands: [Match]
// Name (globs) and MACAddress; [Network] DHCP, Address, Gateway, DNS, Domains; [Route]
// Destination and Gateway. Pure: files and interfaces in, commands out.
import { parseUnitText } from '../units/parse.js';

/** One .network file, reduced to what Keel applies. */
export interface NetworkFile {
  name: string;
  match: { names: string[]; macs: string[] };
  dhcp: boolean;
  addresses: string[];
  gateways: string[];
  dns: string[];
  domains: string[];
  routes: { destination: string; gateway: string | null }[];
}

/** An interface of the machine. */
export interface Iface {
  name: string;
  mac: string;
}

/** Reads a .network file's text. */
export function parseNetworkFile(name: string, text: string): NetworkFile {
  const f: NetworkFile = {
    name,
    match: { names: [], macs: [] },
    dhcp: false,
    addresses: [],
    gateways: [],
    dns: [],
    domains: [],
    routes: [],
  };
  let route: { destination: string; gateway: string | null } | null = null;
  let lastSection = '';
  for (const a of parseUnitText(text, name).assignments) {
    const words = a.value.split(/\s+/).filter(Boolean);
    if (a.section !== lastSection && a.section === 'Route') {
      route = { destination: 'default', gateway: null };
      f.routes.push(route);
    }
    lastSection = a.section;
    if (a.section === 'Match' && a.key === 'Name') f.match.names.push(...words);
    else if (a.section === 'Match' && a.key === 'MACAddress') f.match.macs.push(...words.map((m) => m.toLowerCase()));
    else if (a.section === 'Network' && a.key === 'DHCP')
      f.dhcp = ['yes', 'true', 'ipv4', 'both', '1'].includes(a.value.toLowerCase());
    else if (a.section === 'Network' && a.key === 'Address') f.addresses.push(...words);
    else if (a.section === 'Address' && a.key === 'Address') f.addresses.push(...words);
    else if (a.section === 'Network' && a.key === 'Gateway') f.gateways.push(...words);
    else if (a.section === 'Network' && a.key === 'DNS') f.dns.push(...words);
    else if (a.section === 'Network' && a.key === 'Domains') f.domains.push(...words);
    else if (a.section === 'Route' && route && a.key === 'Destination') route.destination = a.value;
    else if (a.section === 'Route' && route && a.key === 'Gateway') route.gateway = a.value;
  }
  return f;
}

/** Shell-style glob (*, ?) match, as networkd matches Name=. */
export function globMatch(glob: string, s: string): boolean {
  const re = new RegExp(
    `^${glob
      .replace(/[.+^${}()|[\]\\]/g, '\\$&')
      .replace(/\*/g, '.*')
      .replace(/\?/g, '.')}$`,
  );
  return re.test(s);
}

function matches(f: NetworkFile, i: Iface): boolean {
  if (f.match.names.length && !f.match.names.some((g) => globMatch(g, i.name))) return false;
  if (f.match.macs.length && !f.match.macs.includes(i.mac.toLowerCase())) return false;
  return true;
}

/** The plan: `ip` argument lists to run, interfaces that want DHCP, and resolv.conf. */
export function planNetwork(
  files: NetworkFile[],
  ifaces: Iface[],
): { commands: string[][]; dhcp: string[]; resolv: string; unmatched: string[] } {
  const commands: string[][] = [];
  const dhcp: string[] = [];
  const dns: string[] = [];
  const domains: string[] = [];
  const unmatched: string[] = [];
  const sorted = [...files].sort((a, b) => (a.name < b.name ? -1 : 1));
  for (const i of ifaces) {
    // As networkd: the first file in lexical order that matches configures the interface.
    const f = sorted.find((x) => matches(x, i));
    if (!f) {
      unmatched.push(i.name);
      continue;
    }
    commands.push(['link', 'set', i.name, 'up']);
    for (const a of f.addresses) commands.push(['addr', 'replace', a, 'dev', i.name]);
    for (const g of f.gateways) commands.push(['route', 'replace', 'default', 'via', g, 'dev', i.name]);
    for (const r of f.routes)
      if (r.gateway) commands.push(['route', 'replace', r.destination, 'via', r.gateway, 'dev', i.name]);
    if (f.dhcp) dhcp.push(i.name);
    dns.push(...f.dns);
    domains.push(...f.domains);
  }
  const resolv = [
    domains.length ? `search ${[...new Set(domains)].join(' ')}` : '',
    ...[...new Set(dns)].map((d) => `nameserver ${d}`),
  ]
    .filter(Boolean)
    .join('\n');
  return { commands, dhcp, resolv: resolv ? resolv + '\n' : '', unmatched };
}
