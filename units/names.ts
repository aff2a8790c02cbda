// Unit name rules as systemd has them (src/basic/unit-name.c): types, templates and instances,
// and the byte-wise escaping that `systemd-escape` and `systemd-escape --path` do. Pure.
import type { UnitType } from './types.js';

/** Every unit type systemd knows, plus Keel's own; only KEEL_UNIT_TYPES are loaded. */
export const SYSTEMD_UNIT_TYPES = [
  'service',
  'mount',
  'swap',
  'socket',
  'target',
  'device',
  'automount',
  'timer',
  'path',
  'slice',
  'scope',
  'container',
] as const;

/** The unit types Keel loads (units/types.ts UnitType). */
export const KEEL_UNIT_TYPES: readonly UnitType[] = [
  'service',
  'target',
  'timer',
  'socket',
  'mount',
  'path',
  'slice',
  'container',
  'automount',
];

const UNIT_NAME_MAX = 255;
const VALID_CHARS = /^[A-Za-z0-9:_.\\-]$/;
const VALID_CHARS_WITH_AT = /^[A-Za-z0-9:_.\\@-]+$/;

/** The parts of a unit name: `foo@bar.service` is prefix foo, instance bar, suffix service. */
export interface UnitNameParts {
  prefix: string;
  instance: string | null;
  suffix: string;
  template: boolean;
}

/** Splits a unit name into its parts; null when it is not a valid unit name. */
export function splitUnitName(name: string): UnitNameParts | null {
  if (name.length === 0 || name.length > UNIT_NAME_MAX) return null;
  const dot = name.lastIndexOf('.');
  if (dot <= 0) return null;
  const suffix = name.slice(dot + 1);
  if (!(SYSTEMD_UNIT_TYPES as readonly string[]).includes(suffix)) return null;
  const stem = name.slice(0, dot);
  if (!VALID_CHARS_WITH_AT.test(stem)) return null;
  const at = stem.indexOf('@');
  if (at === 0) return null;
  if (at < 0) return { prefix: stem, instance: null, suffix, template: false };
  const instance = stem.slice(at + 1);
  return { prefix: stem.slice(0, at), instance: instance === '' ? null : instance, suffix, template: instance === '' };
}

/** Whether `name` is a valid unit name: plain (`a.service`), template (`a@.service`) or instance (`a@b.service`). */
export function isValidUnitName(name: string): boolean {
  return splitUnitName(name) !== null;
}

/** The Keel unit type of a name (`foo.timer` → 'timer'), or null for invalid names and types Keel does not load. */
export function unitType(name: string): UnitType | null {
  const parts = splitUnitName(name);
  return parts && (KEEL_UNIT_TYPES as readonly string[]).includes(parts.suffix) ? (parts.suffix as UnitType) : null;
}

/** Whether `name` is a template (`foo@.service`). */
export function isTemplate(name: string): boolean {
  return splitUnitName(name)?.template === true;
}

/** Whether `name` is an instance of a template (`foo@bar.service`). */
export function isInstance(name: string): boolean {
  return splitUnitName(name)?.instance != null;
}

/** The instance of `foo@bar.service` ('bar'); null for other names. */
export function instanceOf(name: string): string | null {
  return splitUnitName(name)?.instance ?? null;
}

/** The template of an instance (`foo@bar.service` → `foo@.service`); null when `name` is no instance. */
export function templateOf(name: string): string | null {
  const p = splitUnitName(name);
  return p?.instance != null ? `${p.prefix}@.${p.suffix}` : null;
}

/** Instantiates a template (`foo@.service`, 'bar' → `foo@bar.service`); throws a TypeError for non-templates. */
export function instantiate(template: string, instance: string): string {
  const p = splitUnitName(template);
  if (!p?.template) throw new TypeError(`cannot instantiate ${JSON.stringify(template)}: not a template unit name`);
  const name = `${p.prefix}@${instance}.${p.suffix}`;
  if (!isValidUnitName(name))
    throw new TypeError(`cannot instantiate ${template}: ${JSON.stringify(instance)} is not a valid instance`);
  return name;
}

/** Replaces the type suffix (`foo@bar.timer`, 'service' → `foo@bar.service`). */
export function changeSuffix(name: string, suffix: string): string {
  return `${name.slice(0, name.lastIndexOf('.'))}.${suffix}`;
}

/** The name without its type suffix (`foo@bar.service` → `foo@bar`), systemd's %N. */
export function nameWithoutSuffix(name: string): string {
  const dot = name.lastIndexOf('.');
  return dot < 0 ? name : name.slice(0, dot);
}

const hex = (b: number) => `\\x${b.toString(16).padStart(2, '0')}`;

/**
 * Escapes a string for use in a unit name, as `systemd-escape` does: `/`→`-`, `-`→`\x2d`, a leading `.` and unsafe
 * bytes → `\xNN`.
 */
export function escapeUnitName(s: string): string {
  const bytes = Buffer.from(s, 'utf8');
  let out = '';
  bytes.forEach((b, i) => {
    const c = String.fromCharCode(b);
    if (i === 0 && c === '.') out += hex(b);
    else if (c === '/') out += '-';
    else if (c === '-' || c === '\\' || b >= 0x80 || !VALID_CHARS.test(c)) out += hex(b);
    else out += c;
  });
  return out;
}

/** Reverses escapeUnitName (`-`→`/`, `\xNN`→byte); throws a TypeError on a malformed escape. */
export function unescapeUnitName(s: string): string {
  const bytes: number[] = [];
  for (let i = 0; i < s.length; i++) {
    if (s[i] === '-') bytes.push(0x2f);
    else if (s[i] === '\\') {
      if (s[i + 1] !== 'x' || !/^[0-9a-fA-F]{2}$/.test(s.slice(i + 2, i + 4))) {
        throw new TypeError(`cannot unescape ${JSON.stringify(s)}: bad escape at offset ${i}`);
      }
      bytes.push(parseInt(s.slice(i + 2, i + 4), 16));
      i += 3;
    } else bytes.push(...Buffer.from(s[i], 'utf8'));
  }
  return Buffer.from(bytes).toString('utf8');
}

/** systemd's path_simplify: collapses `//`, drops `.` components and trailing slashes (keeps `..`). */
export function simplifyPath(p: string): string {
  const abs = p.startsWith('/');
  const parts = p.split('/').filter((c) => c !== '' && c !== '.');
  const joined = parts.join('/');
  return abs ? `/${joined}` : joined || (p === '' ? '' : '.');
}

function isNormalized(p: string): boolean {
  return !p.split('/').some((c) => c === '..' || c === '.');
}

/**
 * Escapes a path as `systemd-escape --path` does (`/` → `-`, `/foo-bar/baz/` → `foo\x2dbar-baz`); throws a TypeError
 * for `..`.
 */
export function escapePath(p: string): string {
  const s = simplifyPath(p);
  if (s === '' || s === '/') return '-';
  if (!isNormalized(s)) throw new TypeError(`cannot escape path ${JSON.stringify(p)}: it is not normalized`);
  return escapeUnitName(s.replace(/^\/+/, ''));
}

/**
 * Reverses escapePath (`-` → `/`, `foo\x2dbar-baz` → `/foo-bar/baz`); throws a TypeError when the result is no
 * normalized path.
 */
export function unescapePath(s: string): string {
  if (s === '') throw new TypeError('cannot unescape path "": empty');
  if (s === '-') return '/';
  const w = unescapeUnitName(s);
  if (w.startsWith('/') || w.endsWith('/'))
    throw new TypeError(`cannot unescape path ${JSON.stringify(s)}: leading or trailing slash`);
  const path = `/${w}`;
  if (!isNormalized(path) || path.includes('//'))
    throw new TypeError(`cannot unescape path ${JSON.stringify(s)}: ${JSON.stringify(path)} is not normalized`);
  return path;
}
