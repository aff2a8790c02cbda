// [Unit] and [Install]: description, dependencies, start limits, Condition*=/Assert*=, and the
// enablement lists. Specifiers are expanded where systemd expands them (all of these).
import type { Assignment, UnitDeps } from './types.js';
import {
  addPaths,
  addUnitNames,
  boolHandler,
  expand,
  parseOr,
  words,
  type Handler,
  type Interp,
} from './interpret-common.js';
import { parseTimespan } from './timespan.js';
import { parseInteger } from './values.js';
import { isValidUnitName } from './names.js';

const DEPS: Record<string, keyof Omit<UnitDeps, 'wantedByLinks'>> = {
  Requires: 'requires',
  Requisite: 'requisite',
  Wants: 'wants',
  BindsTo: 'bindsTo',
  PartOf: 'partOf',
  Conflicts: 'conflicts',
  After: 'after',
  Before: 'before',
  OnFailure: 'onFailure',
};

/** The Condition*=/Assert*= kinds of systemd 252, all evaluated by init/conditions.ts; others warn and are kept. */
export const SUPPORTED_CONDITIONS = [
  'PathExists',
  'PathIsDirectory',
  'FileNotEmpty',
  'DirectoryNotEmpty',
  'KernelCommandLine',
  'Virtualization',
  'Capability',
  'Host',
  'FileIsExecutable',
  'Architecture',
  'Firmware',
  'KernelVersion',
  'Credential',
  'Environment',
  'Security',
  'ACPower',
  'NeedsUpdate',
  'FirstBoot',
  'PathExistsGlob',
  'PathIsSymbolicLink',
  'PathIsMountPoint',
  'PathIsReadWrite',
  'PathIsEncrypted',
  'User',
  'Group',
  'ControlGroupController',
  'Memory',
  'CPUs',
  'CPUFeature',
  'OSRelease',
  'MemoryPressure',
  'CPUPressure',
  'IOPressure',
  'Null',
];
const PATH_CONDITIONS = [
  'PathExists',
  'PathExistsGlob',
  'PathIsDirectory',
  'PathIsSymbolicLink',
  'PathIsMountPoint',
  'PathIsReadWrite',
  'PathIsEncrypted',
  'DirectoryNotEmpty',
  'FileNotEmpty',
  'FileIsExecutable',
  'NeedsUpdate',
];
const URL = /^(https?:\/\/[^\s]+|file:[^\s]+|info:[^\s]+|man:[^\s]+)$/;

const startLimitInterval: Handler = (a, it) => {
  const v = a.value === '' ? 10_000 : parseOr(it, a, () => parseTimespan(a.value));
  if (v !== undefined) it.unit.startLimitIntervalMs = v;
};
const startLimitBurst: Handler = (a, it) => {
  const v = a.value === '' ? 5 : parseOr(it, a, () => parseInteger(a.value, 0, 2 ** 32 - 1));
  if (v !== undefined) it.unit.startLimitBurst = v;
};

/** [Unit] directives. */
export const UNIT_HANDLERS: Record<string, Handler> = {
  Description: (a, it) => {
    const v = expand(it, a, a.value);
    if (v !== null) it.unit.description = v;
  },
  Documentation: (a, it) => {
    if (a.value === '') {
      it.unit.documentation = [];
      return;
    }
    for (const w of words(it, a) ?? []) {
      const url = expand(it, a, w);
      if (url === null) continue;
      if (!URL.test(url)) it.report(a, 'error', `Invalid URL, ignoring: ${url}`);
      else if (!it.unit.documentation.includes(url)) it.unit.documentation.push(url);
    }
  },
  ...Object.fromEntries(
    Object.entries(DEPS).map(([key, field]): [string, Handler] => [
      key,
      (a, it) => addUnitNames(it, a, it.unit.deps[field]),
    ]),
  ),
  DefaultDependencies: boolHandler((it, v) => {
    it.unit.defaultDependencies = v;
  }, true),
  RequiresMountsFor: (a, it) => {
    if (a.value === '') it.unit.requiresMountsFor = [];
    else addPaths(it, a, it.unit.requiresMountsFor);
  },
  StartLimitIntervalSec: startLimitInterval,
  StartLimitInterval: startLimitInterval,
  StartLimitBurst: startLimitBurst,
};

/** Interprets any Condition*=/Assert*= key; returns false when `key` is not one. */
export function interpretCondition(a: Assignment, it: Interp): boolean {
  const m = /^(Condition|Assert)(.+)$/.exec(a.key);
  if (!m) return false;
  const [, cls, kind] = m;
  const assert = cls === 'Assert';
  if (a.value === '') {
    // an empty assignment resets every condition (or assert) so far
    it.unit.conditions = it.unit.conditions.filter((c) => c.assert !== assert);
    return true;
  }
  if (!SUPPORTED_CONDITIONS.includes(kind)) it.report(a, 'warning', `Unknown condition ${a.key}=, kept unevaluated.`);
  let v = a.value;
  const trigger = v.startsWith('|');
  if (trigger) v = v.slice(1).trimStart();
  const negate = v.startsWith('!');
  if (negate) v = v.slice(1).trimStart();
  const value = expand(it, a, v);
  if (value === null) return true;
  if (PATH_CONDITIONS.includes(kind) && !value.startsWith('/')) {
    it.report(a, 'error', `Path in condition not absolute, ignoring: ${value}`);
    return true;
  }
  it.unit.conditions.push({ kind, assert, trigger, negate, value, file: a.file, line: a.line });
  return true;
}

const installList =
  (field: 'wantedBy' | 'requiredBy' | 'alias' | 'also'): Handler =>
  (a, it) => {
    if (a.value === '') {
      it.unit.install[field] = [];
      return;
    }
    addUnitNames(it, a, it.unit.install[field]);
  };

/** [Install] directives. */
export const INSTALL_HANDLERS: Record<string, Handler> = {
  WantedBy: installList('wantedBy'),
  RequiredBy: installList('requiredBy'),
  Alias: installList('alias'),
  Also: installList('also'),
  DefaultInstance: (a, it) => {
    if (a.value === '') {
      it.unit.install.defaultInstance = null;
      return;
    }
    const v = expand(it, a, a.value);
    if (v === null) return;
    if (!isValidUnitName(`x@${v}.service`)) {
      it.report(a, 'error', `Invalid DefaultInstance= value, ignoring: ${v}`);
      return;
    }
    it.unit.install.defaultInstance = v;
  },
};
