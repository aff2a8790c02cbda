// Loading every unit from the search path into one map, with aliases, on-demand template
// instances and systemd's default dependencies.
import { loadAll, loadUnit, UnitLoadError, type LoadOptions, type UnitFs } from '../units/load.js';
import { withDefaultDependencies } from '../units/defaults.js';
import type { Diagnostic, UnitConfig } from '../units/types.js';

/** The loaded units: by real name, plus alias -> real name. */
export interface Registry {
  units: Map<string, UnitConfig>;
  aliases: Map<string, string>;
  diagnostics: Diagnostic[];
}

const DEP_KEYS = ['requires', 'requisite', 'wants', 'bindsTo', 'partOf', 'conflicts', 'onFailure'] as const;

/** Loads all units; names referenced by dependencies but not listed (template instances) are loaded too. */
export function loadRegistry(
  fs: UnitFs,
  searchPaths: string[],
  specifiers: { hostname: string; machineId: string; bootId: string; runtimeDir: string },
  quadlet?: LoadOptions['quadlet'],
): Registry {
  const opts = { searchPaths, specifiers, quadlet };
  const units = loadAll(fs, opts);
  const tried = new Set<string>();
  for (let added = true; added;) {
    added = false;
    for (const u of [...units.values()]) {
      for (const key of DEP_KEYS) {
        for (const name of u.deps[key]) {
          if (units.has(name) || tried.has(name)) continue;
          tried.add(name);
          try {
            const extra = loadUnit(name, fs, opts);
            if (!units.has(extra.name)) {
              units.set(extra.name, extra);
              added = true;
            }
          } catch (e) {
            if (!(e instanceof UnitLoadError)) throw e;
          }
        }
      }
    }
  }
  const withDefaults = withDefaultDependencies(units);
  const aliases = new Map<string, string>();
  const diagnostics: Diagnostic[] = [];
  for (const u of withDefaults.values()) {
    for (const a of u.aliases) if (a !== u.name) aliases.set(a, u.name);
    diagnostics.push(...u.diagnostics);
  }
  return { units: withDefaults, aliases, diagnostics };
}
