// What a piece of user-data is, decided as coreos-cloudinit decided it: by its first line (after
// unpacking gzip), plus the $private_ipv4-style substitutions it made before parsing.
import { gunzipSync } from 'node:zlib';

/** The kinds of user-data. */
export type UserDataKind = 'cloud-config' | 'script' | 'ignition' | 'empty' | 'unknown';

/** The report line coreos-cloudinit gave anything that is neither cloud-config nor a script. */
export const NOT_CLOUD_CONFIG = 'must be "#cloud-config" or begin with "#!"';
/** What Keel says about an Ignition config. */
export const IGNITION_NOT_SUPPORTED = 'Ignition configs are not supported by Keel, use cloud-config';

/** The first line, without trailing white space (CRLF files and stray blanks still match). */
const firstLine = (text: string) => text.split('\n', 1)[0].replace(/\s+$/u, '');

/** `#cloud-config` alone on the first line. */
export const isCloudConfig = (text: string): boolean => firstLine(text) === '#cloud-config';

/** A first line starting with `#!`. */
export const isScript = (text: string): boolean => text.split('\n', 1)[0].startsWith('#!');

/**
 * JSON with an Ignition version (`ignitionVersion`, the v1 spelling, or `ignition.version`) or an
 * `ignition` object; keys match case-insensitively, as Go's encoding/json matched them.
 */
export function isIgnition(text: string): boolean {
  let doc: unknown;
  try {
    doc = JSON.parse(text);
  } catch {
    return false;
  }
  if (doc === null || typeof doc !== 'object' || Array.isArray(doc)) return false;
  return Object.entries(doc).some(([k, v]) => {
    const key = k.toLowerCase();
    if (key === 'ignitionversion') return Number.isInteger(v);
    return key === 'ignition' && v !== null && typeof v === 'object' && !Array.isArray(v);
  });
}

/** Whether `bytes` start with the gzip magic. */
export const isGzip = (bytes: Buffer): boolean => bytes.length >= 2 && bytes[0] === 0x1f && bytes[1] === 0x8b;

/** Classifies user-data (gunzipped first); `message` says why it cannot be used. */
export function detectUserData(bytes: Buffer | Uint8Array | string): {
  kind: UserDataKind;
  text: string;
  message?: string;
} {
  if (typeof bytes !== 'string' && !(bytes instanceof Uint8Array))
    throw new TypeError(`user-data must be a Buffer or a string, not ${typeof bytes}`);
  let raw =
    typeof bytes === 'string' ? Buffer.from(bytes) : Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  if (isGzip(raw)) {
    try {
      raw = gunzipSync(raw);
    } catch (e) {
      return { kind: 'unknown', text: '', message: `cannot unpack gzipped user-data: ${(e as Error).message}` };
    }
  }
  const text = raw.toString('utf8');
  if (text.length === 0) return { kind: 'empty', text };
  if (isScript(text)) return { kind: 'script', text };
  if (isCloudConfig(text)) return { kind: 'cloud-config', text };
  if (isIgnition(text)) return { kind: 'ignition', text, message: IGNITION_NOT_SUPPORTED };
  return { kind: 'unknown', text, message: NOT_CLOUD_CONFIG };
}

/** The machine's addresses; a missing one substitutes as the empty string, as in coreos-cloudinit. */
export interface Addresses {
  privateIpv4?: string;
  publicIpv4?: string;
  privateIpv6?: string;
  publicIpv6?: string;
}

/**
 * Replaces $public_ipv4, $private_ipv4, $public_ipv6 and $private_ipv6; `\$private_ipv4` keeps
 * the text (without the backslash). Exactly coreos-cloudinit's two regular expressions per name,
 * including their quirk: of two names written back to back, only the first is replaced.
 */
export function substituteVariables(text: string, env: Addresses): string {
  const vars: [string, string | undefined][] = [
    ['public_ipv4', env.publicIpv4],
    ['private_ipv4', env.privateIpv4],
    ['public_ipv6', env.publicIpv6],
    ['private_ipv6', env.privateIpv6],
  ];
  for (const [name, value] of vars) {
    text = text.replace(new RegExp(`([^\\\\]|^)\\$${name}`, 'g'), (_m, before: string) => before + (value ?? ''));
    text = text.replace(new RegExp(`\\\\\\$${name}`, 'g'), () => `$${name}`);
  }
  return text;
}
