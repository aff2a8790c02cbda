// %-specifiers in unit files (systemd.unit(5) "Specifiers", src/core/unit-printf.c) for the
// system manager. Pure: everything host-specific comes in through the context.
import { nameWithoutSuffix, splitUnitName, unescapePath, unescapeUnitName } from './names.js';

/** What specifier expansion needs to know about the unit and the host. */
export interface SpecifierContext {
  unitName: string;
  hostname: string;
  machineId: string;
  bootId: string;
  /** %t: /run for the system manager. */
  runtimeDir: string;
  /** %u %U %h %s: the user running the manager; root when absent. */
  user?: { name: string; uid: number; home: string; shell?: string };
  /** %g %G: the manager's group; root when absent. */
  group?: { name: string; gid: number };
  /** %y %Y: the unit's fragment path. */
  fragmentPath?: string;
  /** %v (uname -r) and %a (architecture, systemd's names: x86-64, arm64, ...). */
  kernelRelease?: string;
  architecture?: string;
  /** %o %w %B %W %M %A: ID, VERSION_ID, BUILD_ID, VARIANT_ID, IMAGE_ID, IMAGE_VERSION of os-release. */
  osRelease?: Record<string, string>;
}

type Lookup = (ctx: SpecifierContext) => string | undefined;

const parts = (ctx: SpecifierContext) => {
  const p = splitUnitName(ctx.unitName);
  if (!p) throw new TypeError(`cannot expand specifiers for ${JSON.stringify(ctx.unitName)}: not a valid unit name`);
  return p;
};
/** %j: the last dash-separated component of the prefix. */
const lastComponent = (prefix: string) => prefix.slice(prefix.lastIndexOf('-') + 1);
const osField =
  (key: string): Lookup =>
  (ctx) =>
    ctx.osRelease?.[key] ?? '';

const TABLE: Record<string, Lookup> = {
  n: (ctx) => ctx.unitName,
  N: (ctx) => nameWithoutSuffix(ctx.unitName),
  p: (ctx) => parts(ctx).prefix,
  P: (ctx) => unescapeUnitName(parts(ctx).prefix),
  i: (ctx) => parts(ctx).instance ?? '',
  I: (ctx) => unescapeUnitName(parts(ctx).instance ?? ''),
  j: (ctx) => lastComponent(parts(ctx).prefix),
  J: (ctx) => unescapeUnitName(lastComponent(parts(ctx).prefix)),
  f: (ctx) => unescapePath(parts(ctx).instance ?? parts(ctx).prefix),
  y: (ctx) => ctx.fragmentPath,
  Y: (ctx) => ctx.fragmentPath?.replace(/\/[^/]*$/, '') || (ctx.fragmentPath ? '/' : undefined),
  H: (ctx) => ctx.hostname,
  l: (ctx) => ctx.hostname.split('.')[0],
  q: (ctx) => ctx.hostname,
  m: (ctx) => ctx.machineId,
  b: (ctx) => ctx.bootId,
  v: (ctx) => ctx.kernelRelease,
  a: (ctx) => ctx.architecture,
  o: osField('ID'),
  w: osField('VERSION_ID'),
  B: osField('BUILD_ID'),
  W: osField('VARIANT_ID'),
  M: osField('IMAGE_ID'),
  A: osField('IMAGE_VERSION'),
  t: (ctx) => ctx.runtimeDir,
  d: (ctx) => `${ctx.runtimeDir}/credentials/${ctx.unitName}`,
  E: () => '/etc',
  S: () => '/var/lib',
  C: () => '/var/cache',
  L: () => '/var/log',
  T: () => '/tmp',
  V: () => '/var/tmp',
  u: (ctx) => ctx.user?.name ?? 'root',
  U: (ctx) => String(ctx.user?.uid ?? 0),
  h: (ctx) => ctx.user?.home ?? '/root',
  s: (ctx) => ctx.user?.shell ?? '/bin/sh',
  g: (ctx) => ctx.group?.name ?? 'root',
  G: (ctx) => String(ctx.group?.gid ?? 0),
};

/**
 * Replaces %-specifiers in `value` (systemd semantics: %p prefix, %P unescaped, %i instance, %I
 * unescaped, %f unescaped instance or prefix as a path, %N name without type, %% a literal %; a
 * stray % at the end stays). Throws a TypeError naming an unknown specifier or one the context lacks.
 */
export function expandSpecifiers(value: string, ctx: SpecifierContext): string {
  if (!value.includes('%')) return value;
  let out = '';
  for (let i = 0; i < value.length; i++) {
    if (value[i] !== '%') {
      out += value[i];
      continue;
    }
    if (i + 1 >= value.length) {
      out += '%';
      break;
    }
    const c = value[++i];
    if (c === '%') {
      out += '%';
      continue;
    }
    const lookup = TABLE[c];
    if (!lookup) throw new TypeError(`cannot expand specifiers in ${JSON.stringify(value)}: unknown specifier %${c}`);
    const v = lookup(ctx);
    if (v === undefined)
      throw new TypeError(`cannot expand specifiers in ${JSON.stringify(value)}: %${c} is not known here`);
    out += v;
  }
  return out;
}
