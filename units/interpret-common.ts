// The state the per-section interpreters share: the unit being built, its diagnostics, and helpers
// for specifiers, lists and bad values. Used by interpret*.ts only.
import type { Assignment, Diagnostic, UnitConfig } from './types.js';
import { expandSpecifiers, type SpecifierContext } from './specifiers.js';
import { isValidUnitName, isTemplate } from './names.js';
import { splitWords } from './words.js';
import { parseBoolean } from './values.js';

/** The unit under construction plus helpers; one per interpretUnit call. */
export interface Interp {
  unit: UnitConfig;
  spec: SpecifierContext;
  /** Flags such as 'Service.Type' for "was set explicitly", and counters the verifiers read. */
  seen: Set<string>;
  /** The assignments behind each Exec*= list entry, for pointing verify errors at a line. */
  execLines: Map<string, Assignment[]>;
  report(a: Assignment | null, severity: Diagnostic['severity'], message: string): void;
}

/** A directive's interpreter. */
export type Handler = (a: Assignment, it: Interp) => void;

/** Creates the shared state for one unit. */
export function createInterp(unit: UnitConfig, spec: SpecifierContext): Interp {
  return {
    unit,
    spec,
    seen: new Set(),
    execLines: new Map(),
    report(a, severity, message) {
      unit.diagnostics.push({ file: a?.file ?? spec.fragmentPath ?? unit.name, line: a?.line ?? 0, severity, message });
    },
  };
}

/** Expands specifiers, reporting an error and returning null when that fails. */
export function expand(it: Interp, a: Assignment, value: string): string | null {
  try {
    return expandSpecifiers(value, it.spec);
  } catch (e) {
    it.report(a, 'error', `Failed to resolve unit specifiers in ${value}, ignoring: ${(e as Error).message}`);
    return null;
  }
}

/** Runs a value parser; a thrown error becomes "Failed to parse KEY= value" and undefined. */
export function parseOr<T>(it: Interp, a: Assignment, parse: () => T, what = `${a.key}= value`): T | undefined {
  try {
    return parse();
  } catch {
    it.report(a, 'error', `Failed to parse ${what}, ignoring: ${a.value}`);
    return undefined;
  }
}

/** Splits a value into words (quotes removed, C escapes decoded), reporting bad syntax. */
export function words(
  it: Interp,
  a: Assignment,
  opts: { unquote?: boolean; cunescape?: boolean } = { unquote: true },
): string[] | null {
  try {
    return splitWords(a.value, opts);
  } catch (e) {
    it.report(
      a,
      'error',
      `Invalid syntax, ignoring: ${a.value} (${(e as { reason?: string }).reason ?? 'bad quoting'})`,
    );
    return null;
  }
}

/** Adds the unit names in a space-separated value (specifiers expanded) to `list`, once each. */
export function addUnitNames(it: Interp, a: Assignment, list: string[], opts: { allowTemplate?: boolean } = {}): void {
  for (const raw of a.value.split(/[ \t\n\r]+/).filter(Boolean)) {
    const name = expand(it, a, raw);
    if (name === null) continue;
    if (!isValidUnitName(name) || (isTemplate(name) && !opts.allowTemplate)) {
      it.report(a, 'error', `Failed to add dependency on ${name}, ignoring: Invalid argument`);
      continue;
    }
    if (!list.includes(name)) list.push(name);
  }
}

/** Adds absolute paths from a value (specifiers expanded) to `list`; relative ones are errors. */
export function addPaths(it: Interp, a: Assignment, list: string[]): void {
  for (const raw of words(it, a) ?? []) {
    const p = expand(it, a, raw);
    if (p === null) continue;
    if (!p.startsWith('/')) {
      it.report(a, 'error', `Path '${p}' is not absolute, ignoring.`);
      continue;
    }
    if (!list.includes(p)) list.push(p);
  }
}

/** Handler for a boolean directive setting `set(value)`. */
export function boolHandler(set: (it: Interp, v: boolean) => void, dflt: boolean): Handler {
  return (a, it) => {
    if (a.value === '') {
      set(it, dflt);
      return;
    }
    const v = parseOr(it, a, () => parseBoolean(a.value), `boolean value ${a.key}=`);
    if (v !== undefined) set(it, v);
  };
}
