// Loading units from a search path: the fragment (through aliases and templates), masks, drop-ins
// in systemd's order, and .wants/.requires links, interpreted into UnitConfig. File access only
// through the injected UnitFs.
import { KeelError } from '../lib/errors.js';
import { posix } from 'node:path';
import type { Assignment, Diagnostic, UnitConfig } from './types.js';
import { defaultUnitConfig, interpretUnit } from './interpret.js';
import { parseUnitFile } from './quadlet-load.js';
import type { QuadletOptions } from './quadlet.js';
import { isTemplate, isValidUnitName, unitType } from './names.js';
import type { SpecifierContext } from './specifiers.js';
import {
  aliasesOf,
  buildIndex,
  chaseLink,
  dropInEntries,
  listDir,
  resolveName,
  type UnitFs,
  type UnitIndex,
} from './load-index.js';

export type { UnitFs } from './load-index.js';

/** The system search path, highest priority first. */
export const DEFAULT_SEARCH_PATHS = ['/etc/systemd/system', '/run/systemd/system', '/usr/lib/systemd/system'];

/** Where to look and what the host is (for specifiers; defaults: hostname "localhost", runtimeDir "/run"). */
export interface LoadOptions {
  searchPaths?: string[];
  specifiers?: Partial<Omit<SpecifierContext, 'unitName' | 'fragmentPath'>>;
  /** How a .container's service calls the keel CLI (units/quadlet.ts; default /usr/bin/keel, its default store). */
  quadlet?: QuadletOptions;
}

/** Why a unit could not be loaded: 'not-found' (nothing provides it), 'bad-name', 'unsupported-type'. */
export class UnitLoadError extends KeelError {
  declare readonly code: 'not-found' | 'bad-name' | 'unsupported-type';
  constructor(
    code: 'not-found' | 'bad-name' | 'unsupported-type',
    readonly unit: string,
    message: string,
  ) {
    super(code, message);
    this.name = 'UnitLoadError';
  }
}

/** 'masked' for a symlink to /dev/null or an empty file (systemd's null_or_empty), 'missing' for a dangling link. */
function fileState(fs: UnitFs, p: string): 'masked' | 'missing' | 'ok' {
  const end = chaseLink(fs, p);
  if (end === '/dev/null') return 'masked';
  const st = fs.lstat(end);
  if (!st || st.isDirectory) return 'missing';
  return fs.readFile(end) === '' ? 'masked' : 'ok';
}

function specContext(opts: LoadOptions, unitName: string, fragmentPath: string | null): SpecifierContext {
  const s = opts.specifiers ?? {};
  return {
    hostname: 'localhost',
    machineId: '',
    bootId: '',
    runtimeDir: '/run',
    ...s,
    unitName,
    ...(fragmentPath ? { fragmentPath } : {}),
  };
}

/** Adds .wants/ and .requires/ entries to the unit's dependencies (entries must be symlinks, as in systemd). */
function addLinkedDeps(idx: UnitIndex, unit: UnitConfig, names: string[]): void {
  for (const [suffix, field] of [
    ['.wants', 'wants'],
    ['.requires', 'requires'],
  ] as const) {
    for (const p of dropInEntries(idx, names, suffix, null)) {
      const entry = posix.basename(p);
      const st = idx.fs.lstat(p);
      const warn = (message: string) => unit.diagnostics.push({ file: p, line: 0, severity: 'warning', message });
      if (!st?.isSymbolicLink) {
        warn(`${field === 'wants' ? 'Wants' : 'Requires'} dependency dropin ${p} is not a symlink, ignoring.`);
        continue;
      }
      if (chaseLink(idx.fs, p) === '/dev/null') continue;
      if (!isValidUnitName(entry)) {
        warn(`Dependency dropin ${p} is not a valid unit name, ignoring.`);
        continue;
      }
      if (!unit.deps[field].includes(entry)) unit.deps[field].push(entry);
      unit.deps.wantedByLinks ??= [];
      if (!unit.deps.wantedByLinks.includes(entry)) unit.deps.wantedByLinks.push(entry);
    }
  }
}

/** Loads one unit from a prepared index. */
function loadFromIndex(idx: UnitIndex, name: string, opts: LoadOptions): UnitConfig {
  if (!isValidUnitName(name))
    throw new UnitLoadError('bad-name', name, `cannot load unit ${JSON.stringify(name)}: not a valid unit name`);
  let r = resolveName(idx, name);
  // slices exist without files
  if (!r && unitType(name) === 'slice') r = { name, fragment: null, masked: false, aliases: [] };
  if (!r)
    throw new UnitLoadError(
      'not-found',
      name,
      `cannot load unit ${name}: no unit file in ${idx.searchPaths.join(':')}`,
    );
  if (!unitType(r.name))
    throw new UnitLoadError('unsupported-type', name, `cannot load unit ${name}: keel does not load this unit type`);
  const aliases = [...new Set([...r.aliases, ...aliasesOf(idx, r.name)])].filter((a) => a !== r!.name).sort();
  const state = r.fragment === null || r.masked ? null : fileState(idx.fs, r.fragment);
  if (state === 'missing')
    throw new UnitLoadError('not-found', name, `cannot load unit ${name}: ${r.fragment} is a dangling link`);
  if (r.masked || state === 'masked') {
    const unit = defaultUnitConfig(r.name);
    return { ...unit, masked: true, fragmentPath: r.fragment, aliases };
  }
  const assignments: Assignment[] = [];
  const diagnostics: Diagnostic[] = [];
  const read = (p: string) => {
    // parseUnitText, or a .container read as its service
    const parsed = parseUnitFile(idx.fs.readFile(p), p, opts.quadlet);
    assignments.push(...parsed.assignments);
    diagnostics.push(...parsed.diagnostics);
  };
  if (r.fragment) read(r.fragment);
  const names = [r.name, ...aliases];
  const dropIns = dropInEntries(idx, names, '.d', '.conf').filter((p) => {
    const st = idx.fs.lstat(p);
    return (st?.isFile || st?.isSymbolicLink) && fileState(idx.fs, p) === 'ok';
  });
  dropIns.forEach(read);
  const unit = interpretUnit(assignments, specContext(opts, r.name, r.fragment));
  unit.diagnostics = [...diagnostics, ...unit.diagnostics];
  unit.dropInPaths = dropIns;
  unit.aliases = aliases;
  addLinkedDeps(idx, unit, names);
  return unit;
}

/**
 * Loads unit `name` from the search path (default DEFAULT_SEARCH_PATHS): an alias loads the unit
 * it points to (UnitConfig.name is then the real name), an instance falls back to its template,
 * a mask gives `masked: true`. Throws UnitLoadError when nothing provides the unit.
 */
export function loadUnit(name: string, fs: UnitFs, opts: LoadOptions = {}): UnitConfig {
  return loadFromIndex(buildIndex(fs, opts.searchPaths ?? DEFAULT_SEARCH_PATHS), name, opts);
}

/** A predicate: does a name resolve to a unit file (or mask) in the search path? Reads the path once. */
export function unitExistence(fs: UnitFs, opts: LoadOptions = {}): (name: string) => boolean {
  const idx = buildIndex(fs, opts.searchPaths ?? DEFAULT_SEARCH_PATHS);
  return (name) => isValidUnitName(name) && resolveName(idx, name) !== null;
}

/**
 * Loads every unit in the search path and every unit named only in a .wants/.requires directory,
 * keyed by real name (aliases are in UnitConfig.aliases). Templates themselves, automounts and
 * types Keel does not load are left out; a link to a unit nothing provides is skipped.
 */
export function loadAll(fs: UnitFs, opts: LoadOptions = {}): Map<string, UnitConfig> {
  const idx = buildIndex(fs, opts.searchPaths ?? DEFAULT_SEARCH_PATHS);
  const names = new Set([...idx.ids.keys()]);
  for (const dir of idx.searchPaths) {
    for (const d of listDir(idx, dir) ?? []) {
      if (!/\.(wants|requires)$/.test(d)) continue;
      for (const entry of listDir(idx, posix.join(dir, d)) ?? []) names.add(entry);
    }
  }
  const units = new Map<string, UnitConfig>();
  for (const n of [...names].sort()) {
    const type = unitType(n);
    if (!type || type === 'automount' || isTemplate(n)) continue;
    let unit: UnitConfig;
    try {
      unit = loadFromIndex(idx, n, opts);
    } catch (e) {
      if (e instanceof UnitLoadError) continue;
      throw e;
    }
    if (!units.has(unit.name)) units.set(unit.name, unit);
  }
  return units;
}
