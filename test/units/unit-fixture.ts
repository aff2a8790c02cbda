// A loaded unit for tests over unit maps (default dependencies, transactions).
import type { UnitConfig, UnitDeps, UnitType } from '../../units/types.js';

/** A loaded unit with DefaultDependencies=yes and systemd's other defaults; no dependencies unless given. */
export function unit(name: string, deps: Partial<UnitDeps> = {}, extra: Partial<UnitConfig> = {}): UnitConfig {
  return {
    name,
    type: name.slice(name.lastIndexOf('.') + 1) as UnitType,
    fragmentPath: `/usr/lib/systemd/system/${name}`,
    dropInPaths: [],
    masked: false,
    aliases: [],
    description: name,
    documentation: [],
    deps: {
      requires: [],
      requisite: [],
      wants: [],
      bindsTo: [],
      partOf: [],
      conflicts: [],
      after: [],
      before: [],
      onFailure: [],
      ...deps,
    },
    defaultDependencies: true,
    requiresMountsFor: [],
    startLimitIntervalMs: 10_000,
    startLimitBurst: 5,
    conditions: [],
    install: { wantedBy: [], requiredBy: [], alias: [], also: [], defaultInstance: null },
    diagnostics: [],
    ...extra,
  };
}
