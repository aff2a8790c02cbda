// Assignments → typed UnitConfig: dispatches each Key= to its section's interpreter, warns about
// unknown and unsupported keys, then applies systemd's per-type checks and defaults. Pure.
import type { Assignment, UnitConfig, UnitType } from './types.js';
import type { SpecifierContext } from './specifiers.js';
import { createInterp, type Handler, type Interp } from './interpret-common.js';
import { INSTALL_HANDLERS, UNIT_HANDLERS, interpretCondition } from './interpret-unit.js';
import { SERVICE_HANDLERS, defaultService, finishService } from './interpret-service.js';
import {
  MOUNT_HANDLERS,
  PATH_HANDLERS,
  SOCKET_HANDLERS,
  TIMER_HANDLERS,
  defaultMount,
  defaultPath,
  defaultSocket,
  defaultTimer,
  finishTriggers,
} from './interpret-triggers.js';
import { TYPE_SECTION, isKnownUnsupported } from './known-directives.js';
import { splitUnitName, unitType } from './names.js';

export type { SpecifierContext } from './specifiers.js';

const SECTION_HANDLERS: Record<string, Record<string, Handler>> = {
  Unit: UNIT_HANDLERS,
  Install: INSTALL_HANDLERS,
  Service: SERVICE_HANDLERS,
  Timer: TIMER_HANDLERS,
  Socket: SOCKET_HANDLERS,
  Mount: MOUNT_HANDLERS,
  Path: PATH_HANDLERS,
};

/** A unit with every setting at systemd's default and no diagnostics; throws a TypeError for names Keel cannot load. */
export function defaultUnitConfig(name: string): UnitConfig {
  const type = unitType(name);
  if (!type)
    throw new TypeError(`cannot configure unit ${JSON.stringify(name)}: not a valid unit name of a type keel loads`);
  const unit: UnitConfig = {
    name,
    type,
    fragmentPath: null,
    dropInPaths: [],
    masked: false,
    aliases: [],
    description: '',
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
    },
    defaultDependencies: true,
    requiresMountsFor: [],
    startLimitIntervalMs: 10_000,
    startLimitBurst: 5,
    conditions: [],
    install: { wantedBy: [], requiredBy: [], alias: [], also: [], defaultInstance: null },
    diagnostics: [],
  };
  const typed: Partial<Record<UnitType, () => void>> = {
    service: () => {
      unit.service = defaultService();
    },
    timer: () => {
      unit.timer = defaultTimer(name);
    },
    socket: () => {
      unit.socket = defaultSocket(name);
    },
    mount: () => {
      unit.mount = defaultMount(name);
    },
    path: () => {
      unit.path = defaultPath(name);
    },
  };
  typed[type]?.();
  return unit;
}

/** Interprets one assignment in the context of its section. */
function interpretOne(a: Assignment, it: Interp, sections: Set<string>, warnedSections: Set<string>): void {
  if (a.section.startsWith('X-') || a.key.startsWith('X-')) return; // extension fields are for other tools
  if (!sections.has(a.section)) {
    const where = `${a.file}\0${a.section}`;
    if (!warnedSections.has(where)) it.report(a, 'warning', `Unknown section '${a.section}'. Ignoring.`);
    warnedSections.add(where);
    return;
  }
  const handler = SECTION_HANDLERS[a.section]?.[a.key];
  if (handler) {
    handler(a, it);
    return;
  }
  if (a.section === 'Unit' && interpretCondition(a, it)) return;
  if (isKnownUnsupported(a.section, a.key)) {
    it.report(a, 'warning', `${a.key}= is unsupported by keel, ignoring.`);
    if (a.value !== '') it.seen.add(a.key);
    return;
  }
  it.report(a, 'warning', `Unknown key name '${a.key}' in section '${a.section}', ignoring.`);
}

/**
 * Interprets the assignments of a unit's fragment and drop-ins (in order) into a UnitConfig for
 * `ctx.unitName`. Never throws for bad input: unknown keys are warnings, bad values errors with the
 * default kept, and systemd's "Refusing." rules errors (the unit would not load under systemd).
 */
export function interpretUnit(assignments: Assignment[], ctx: SpecifierContext): UnitConfig {
  const unit = defaultUnitConfig(ctx.unitName);
  unit.fragmentPath = ctx.fragmentPath ?? null;
  const it = createInterp(unit, ctx);
  const typeSection = TYPE_SECTION[splitUnitName(ctx.unitName)!.suffix];
  const sections = new Set(['Unit', 'Install', ...(typeSection ? [typeSection] : [])]);
  const warned = new Set<string>();
  for (const a of assignments) interpretOne(a, it, sections, warned);
  if (unit.service) finishService(it);
  finishTriggers(it);
  return unit;
}
