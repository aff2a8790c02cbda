// `systemctl enable/disable/is-enabled` as pure computations over [Install] sections and a listing
// of the symlinks that exist; a thin shell creates and removes the links.
import { KeelError } from '../lib/errors.js';
import { posix } from 'node:path';
import { splitUnitName, templateOf } from './names.js';
import type { UnitConfig } from './types.js';

/** A symlink in a unit configuration directory: `path` -> `target`. */
export interface UnitLink {
  path: string;
  target: string;
}

/** What `systemctl is-enabled` reports for a unit file. */
export type EnablementState = 'enabled' | 'disabled' | 'static' | 'masked' | 'alias' | 'indirect';

/** Finds a unit by name (aliases resolved by the loader), or undefined. */
export type UnitLookup = (name: string) => UnitConfig | undefined;

/** Why a unit cannot be enabled or looked up; `code` is stable, `unit` names the unit at fault. */
export class InstallError extends KeelError {
  declare readonly code: 'not-found' | 'masked' | 'no-fragment' | 'no-instance';
  constructor(
    code: 'not-found' | 'masked' | 'no-fragment' | 'no-instance',
    readonly unit: string,
    message: string,
  ) {
    super(code, message);
    this.name = 'InstallError';
  }
}

/** The symlinks `systemctl enable` creates for `unit` (following Also=), each named once. */
export function enableLinks(
  unit: UnitConfig,
  opts: { configDir: string; instance?: string },
  lookup: UnitLookup,
): { links: UnitLink[] } {
  const links = new Map<string, string>();
  const seen = new Set<string>();
  const visit = (u: UnitConfig, instance: string | undefined) => {
    if (seen.has(u.name)) return;
    seen.add(u.name);
    if (u.masked) throw new InstallError('masked', u.name, `cannot enable ${u.name}: unit file is masked`);
    if (!u.fragmentPath) throw new InstallError('no-fragment', u.name, `cannot enable ${u.name}: it has no unit file`);
    const n = splitName(u.name);
    const inst = n.instance === '' ? (instance ?? u.install.defaultInstance) : n.instance;
    const { wantedBy, requiredBy, alias, also } = u.install;
    if (n.instance === '' && !inst && wantedBy.length + requiredBy.length > 0) {
      throw new InstallError(
        'no-instance',
        u.name,
        `cannot enable ${u.name}: template has no DefaultInstance= and no instance was given`,
      );
    }
    const linkName = inst ? `${n.prefix}@${inst}${n.suffix}` : u.name;
    const x = (s: string) => expandSpecifiers(s, linkName);
    const put = (path: string) => {
      if (!links.has(path)) links.set(path, u.fragmentPath!);
    };
    for (const t of wantedBy) put(posix.join(opts.configDir, `${x(t)}.wants`, linkName));
    for (const t of requiredBy) put(posix.join(opts.configDir, `${x(t)}.requires`, linkName));
    for (const a of alias) put(posix.join(opts.configDir, instanceAlias(x(a), inst)));
    for (const a of also) {
      const other = lookup(a);
      if (!other)
        throw new InstallError('not-found', a, `cannot enable ${a} (Also= of ${u.name}): unit file does not exist`);
      visit(other, undefined);
    }
  };
  visit(unit, opts.instance);
  return { links: [...links].map(([path, target]) => ({ path, target })) };
}

/**
 * The existing links `systemctl disable` removes for `unit` (following Also=): those in configDir
 * named after it, an instance of it or one of its aliases, or pointing at its file. Masks stay.
 */
export function disableLinks(
  unit: UnitConfig,
  opts: { configDir: string },
  existing: UnitLink[],
  lookup: UnitLookup,
): string[] {
  const names = new Set<string>();
  const files = new Set<string>();
  const visit = (u: UnitConfig) => {
    if (names.has(u.name)) return;
    names.add(u.name);
    // An instance shares its template's file: marking the file would disable every instance.
    if (u.fragmentPath && !splitName(u.name).instance) files.add(u.fragmentPath);
    for (const a of u.install.alias) names.add(expandSpecifiers(a, u.name));
    for (const a of u.install.also) {
      const o = lookup(a);
      if (o) visit(o);
    }
  };
  visit(unit);
  const dir = opts.configDir.replace(/\/+$/, '');
  return existing
    .filter((l) => {
      if (!l.path.startsWith(`${dir}/`) || l.target === '/dev/null') return false;
      const base = posix.basename(l.path);
      return (
        names.has(base) ||
        names.has(templateOf(base) ?? '') ||
        files.has(l.target) ||
        names.has(posix.basename(l.target))
      );
    })
    .map((l) => l.path);
}

/** `systemctl is-enabled NAME` given the links in the configuration directories. */
export function isEnabled(name: string, existing: UnitLink[], lookup: UnitLookup): EnablementState {
  const base = (p: string) => posix.basename(p);
  const inDepDir = (l: UnitLink) => /\.(wants|requires)$/.test(posix.dirname(l.path));
  const top = existing.filter((l) => !inDepDir(l));
  const deps = existing.filter(inDepDir);
  const unit = lookup(name);
  if (unit?.masked || top.some((l) => base(l.path) === name && l.target === '/dev/null')) return 'masked';
  const sameFile = (target: string) => base(target) === name || base(target) === templateOf(name);
  if (top.some((l) => base(l.path) === name && !sameFile(l.target))) return 'alias';
  if (!unit) throw new InstallError('not-found', name, `cannot get the state of ${name}: unit file does not exist`);
  if (unit.name !== name) return 'alias';
  const n = splitName(name);
  const def = unit.install.defaultInstance;
  const enabledAs = n.instance === '' ? (def ? `${n.prefix}@${def}${n.suffix}` : null) : name;
  const aliases = unit.install.alias.map((a) =>
    instanceAlias(expandSpecifiers(a, enabledAs ?? name), n.instance || def || undefined),
  );
  if (deps.some((l) => base(l.path) === enabledAs) || top.some((l) => aliases.includes(base(l.path)))) return 'enabled';
  const otherInstance = n.instance === '' && deps.some((l) => templateOf(base(l.path)) === name);
  const strayAlias = !n.instance && top.some((l) => l.target === unit.fragmentPath && base(l.path) !== name);
  if (otherInstance || strayAlias) return 'indirect';
  const { wantedBy, requiredBy, alias, also } = unit.install;
  if (wantedBy.length + requiredBy.length + alias.length > 0) return 'disabled';
  return also.length > 0 ? 'indirect' : 'static';
}

/** `foo@bar.service` -> foo, bar, .service; a template has instance '', a plain (or invalid) name null. */
function splitName(name: string): { prefix: string; instance: string | null; suffix: string } {
  const p = splitUnitName(name);
  if (!p) return { prefix: name, instance: null, suffix: '' };
  return { prefix: p.prefix, instance: p.template ? '' : p.instance, suffix: `.${p.suffix}` };
}

/** A template alias (`bar@.service`) of an enabled instance gets that instance: `bar@x.service`. */
function instanceAlias(alias: string, instance: string | null | undefined): string {
  const a = splitName(alias);
  return a.instance === '' && instance ? `${a.prefix}@${instance}${a.suffix}` : alias;
}

/** The unit-name specifiers [Install] values may use: %n %N %p %i %I %P %%. */
function expandSpecifiers(value: string, unitName: string): string {
  const n = splitName(unitName);
  const map: Record<string, string> = {
    n: unitName,
    N: unitName.slice(0, unitName.length - n.suffix.length),
    p: n.prefix,
    P: n.prefix,
    i: n.instance ?? '',
    I: n.instance ?? '',
    '%': '%',
  };
  return value.replace(/%([nNpPiI%])/g, (_, c: string) => map[c]);
}
