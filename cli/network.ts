// keel network apply: configure interfaces from .network files (/etc, /run, /usr/lib
// systemd/network) as networkd would for the common subset; prints the interfaces that want DHCP.
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Verb } from './main.js';
import { parseNetworkFile, planNetwork, type Iface } from '../init/network-plan.js';

const DIRS = ['/etc/systemd/network', '/run/systemd/network', '/usr/lib/systemd/network'];

/** .network files by name, higher-priority directories first (same name: the first wins). */
function networkFiles(dirs: string[]): { name: string; text: string }[] {
  const seen = new Map<string, string>();
  for (const d of dirs) {
    let names: string[] = [];
    try {
      names = readdirSync(d);
    } catch {
      continue;
    }
    for (const n of names) if (n.endsWith('.network') && !seen.has(n)) seen.set(n, readFileSync(join(d, n), 'utf8'));
  }
  return [...seen].map(([name, text]) => ({ name, text }));
}

function interfaces(sys = '/sys/class/net'): Iface[] {
  return readdirSync(sys)
    .filter((n) => n !== 'lo' && existsSync(join(sys, n, 'device')))
    .map((name) => ({ name, mac: readFileSync(join(sys, name, 'address'), 'utf8').trim() }));
}

export const verb: Verb = {
  summary: 'Apply .network files (static addresses, routes, DNS); print interfaces that want DHCP.',
  usage: 'keel network apply [--dry-run]',
  options: { 'dry-run': { type: 'boolean', default: false } },
  async run(v, [sub]) {
    if (sub !== 'apply')
      throw new TypeError(`keel network: unknown subcommand ${JSON.stringify(sub ?? '')} (use: apply)`);
    const files = networkFiles(DIRS).map((f) => parseNetworkFile(f.name, f.text));
    const plan = planNetwork(files, interfaces());
    for (const c of plan.commands) {
      if (v['dry-run']) process.stderr.write(`ip ${c.join(' ')}\n`);
      else execFileSync('ip', c, { stdio: ['ignore', 'ignore', 'inherit'] });
    }
    if (plan.resolv && !v['dry-run']) {
      mkdirSync('/run/keel', { recursive: true });
      writeFileSync('/run/keel/resolv.conf.tmp', plan.resolv);
      renameSync('/run/keel/resolv.conf.tmp', '/run/keel/resolv.conf');
    }
    if (plan.dhcp.length) process.stdout.write(plan.dhcp.join('\n') + '\n');
    return 0;
  },
};
