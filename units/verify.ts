// `keel analyze verify` as a function: load a unit file with its directory first in the search
// path, report its diagnostics as systemd-analyze does, check its programs and referenced units.
// A Quadlet NAME.container is verified as the NAME.service it translates to (units/quadlet.ts).
import { posix } from 'node:path';
import type { Diagnostic, UnitConfig } from './types.js';
import { UnitLoadError, loadUnit, unitExistence, type LoadOptions, type UnitFs } from './load.js';
import { instantiate, isTemplate, splitUnitName } from './names.js';
import { containerServiceName } from './quadlet-load.js';

/** What verification needs from the host; `access` returns null when a program is executable, else the reason. */
export interface VerifyHost {
  fs: UnitFs;
  /** Search directories after the file's own directory. */
  searchPaths: string[];
  access(path: string): string | null;
  specifiers?: LoadOptions['specifiers'];
  quadlet?: LoadOptions['quadlet'];
}

/** The outcome for one file: report lines ("FILE:LINE: message") and whether any was an error. */
export interface VerifyResult {
  lines: string[];
  errors: number;
  warnings: number;
}

const EXEC_LISTS = [
  'execCondition',
  'execStartPre',
  'execStart',
  'execStartPost',
  'execReload',
  'execStop',
  'execStopPost',
] as const;
const REQUIRED_DEPS = [
  ['requires', 'Requires'],
  ['requisite', 'Requisite'],
  ['wants', 'Wants'],
  ['bindsTo', 'BindsTo'],
  ['partOf', 'PartOf'],
  ['onFailure', 'OnFailure'],
] as const;
/** Units that exist without a file: devices, scopes and slices are made by the manager. */
const SYNTHESISED = new Set(['device', 'scope', 'slice']);

/** Formats a diagnostic as systemd-analyze does: "FILE:LINE: message", or "FILE: message" for the whole unit. */
export function formatDiagnostic(d: Diagnostic): string {
  return d.line > 0 ? `${d.file}:${d.line}: ${d.message}` : `${d.file}: ${d.message}`;
}

/** The units a unit refers to and needs, with the directive naming each. */
function referencedUnits(u: UnitConfig): [string, string][] {
  const refs: [string, string][] = [];
  for (const [field, key] of REQUIRED_DEPS) for (const n of u.deps[field]) refs.push([n, key]);
  if (u.timer) refs.push([u.timer.unit, 'Unit']);
  if (u.socket && !u.socket.accept) refs.push([u.socket.service, 'Service']);
  if (u.path) refs.push([u.path.unit, 'Unit']);
  return refs;
}

/**
 * Verifies one unit file; a template is checked as its instance "i", as systemd-analyze does, and
 * a NAME.container as the service NAME.service it generates.
 */
export function verifyUnitFile(file: string, host: VerifyHost): VerifyResult {
  const res: VerifyResult = { lines: [], errors: 0, warnings: 0 };
  const add = (severity: Diagnostic['severity'], line: string) => {
    res.lines.push(line);
    if (severity === 'error') res.errors++;
    else res.warnings++;
  };
  const base = posix.basename(file);
  const unitName = containerServiceName(base) ?? base;
  const name = isTemplate(unitName) ? instantiate(unitName, 'i') : unitName;
  const opts: LoadOptions = {
    searchPaths: [posix.dirname(posix.resolve(file)), ...host.searchPaths],
    specifiers: host.specifiers,
    quadlet: host.quadlet,
  };
  let unit: UnitConfig;
  try {
    unit = loadUnit(name, host.fs, opts);
  } catch (e) {
    add(
      'error',
      `${file}: ${e instanceof UnitLoadError ? e.message : `cannot load unit ${name}: ${(e as Error).message}`}`,
    );
    return res;
  }
  if (unit.masked) {
    add('error', `Unit ${unit.name} is masked.`);
    return res;
  }
  // The loader prefers NAME.service to a NAME.container beside it: that file, not this one, is the unit.
  if (unitName !== base && unit.fragmentPath !== posix.resolve(file)) {
    add('error', `${file}: not used: ${unit.fragmentPath} takes the place of ${unitName}.`);
    return res;
  }
  for (const d of unit.diagnostics) add(d.severity, formatDiagnostic(d));
  for (const list of EXEC_LISTS) {
    for (const cmd of unit.service?.[list] ?? []) {
      if (cmd.ignoreFailure || !cmd.path.startsWith('/')) continue;
      const why = host.access(cmd.path);
      if (why) add('error', `${unit.name}: Command ${cmd.path} is not executable: ${why}`);
    }
  }
  const exists = unitExistence(host.fs, opts);
  for (const [ref, key] of referencedUnits(unit)) {
    const type = splitUnitName(ref)?.suffix ?? '';
    if (SYNTHESISED.has(type) || exists(ref)) continue;
    add('warning', `${unit.name}: Unit ${ref} (${key}=) not found.`);
  }
  return res;
}
