// Registries an operator allows over plain HTTP: docker's "insecure-registries" of
// /etc/docker/daemon.json (host, host:port or an IPv4 CIDR), so a CoreOS cloud-config that wrote
// that file for docker works unchanged. Loopback needs no entry (keel pull --insecure).
import { readFileSync } from 'node:fs';
import { isIP } from 'node:net';
import { KeelError } from '../lib/errors.js';

/** Where docker, and so keel, reads its registry settings. */
export const DAEMON_JSON = '/etc/docker/daemon.json';

/** The insecure-registries list of `file`; none when the file is absent. Bad JSON or a bad entry is named. */
export function readInsecureRegistries(file = DAEMON_JSON): string[] {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return [];
    throw new KeelError('EREAD', `cannot read ${file}: ${(e as Error).message}`, { path: file, cause: e });
  }
  let doc: unknown;
  try {
    doc = JSON.parse(text);
  } catch (e) {
    throw new KeelError('EJSON', `cannot read ${file}: ${(e as Error).message}`, { path: file, cause: e });
  }
  const list = (doc as { 'insecure-registries'?: unknown })?.['insecure-registries'];
  if (list === undefined) return [];
  if (!Array.isArray(list) || !list.every((x) => typeof x === 'string' && x.length > 0)) {
    throw new KeelError(
      'EJSON',
      `cannot read ${file}: "insecure-registries" must be a list of registry names, received ${JSON.stringify(list)}`,
      { path: file },
    );
  }
  for (const entry of list)
    if (entry.includes('/') && !parseCidr(entry)) {
      throw new KeelError(
        'EJSON',
        `cannot read ${file}: "insecure-registries" entry ` +
          `${JSON.stringify(entry)} is not a host, host:port or IPv4 CIDR`,
        { path: file },
      );
    }
  return list;
}

function ipv4(text: string): number | null {
  if (isIP(text) !== 4) return null;
  return text.split('.').reduce((n, o) => n * 256 + Number(o), 0);
}

function parseCidr(entry: string): { net: number; bits: number } | null {
  const m = /^([0-9.]+)\/(\d{1,2})$/.exec(entry);
  const net = m ? ipv4(m[1]) : null;
  if (!m || net === null || Number(m[2]) > 32) return null;
  return { net, bits: Number(m[2]) };
}

/**
 * True when `host` ("HOST" or "HOST:PORT", as in an image reference) is listed: by name, by name and port, or in a
 * CIDR.
 */
export function isInsecureRegistry(host: string, list: readonly string[]): boolean {
  const name = host
    .replace(/:\d+$/, '')
    .replace(/^\[(.*)\]$/, '$1')
    .toLowerCase();
  for (const entry of list) {
    const e = entry.toLowerCase();
    if (e === host.toLowerCase() || e === name) return true;
    const cidr = parseCidr(e);
    const ip = ipv4(name);
    if (cidr && ip !== null) {
      const mask = cidr.bits === 0 ? 0 : (~0 << (32 - cidr.bits)) >>> 0;
      if ((ip & mask) >>> 0 === (cidr.net & mask) >>> 0) return true;
    }
  }
  return false;
}
