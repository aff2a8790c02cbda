// The sandboxing settings of systemd.exec(5) Keel implements for services with a mount namespace
// of their own: PrivateTmp=, PrivateDevices=, ProtectSystem=, ProtectHome=, ReadOnlyPaths=,
// ReadWritePaths=, InaccessiblePaths= (and their old *Directories= names), NoNewPrivileges=.
import type { SandboxConfig, SandboxPath } from './types.js';
import { boolHandler, expand, words, type Handler, type Interp } from './interpret-common.js';
import { parseBoolean } from './values.js';

/** Every setting off, as systemd's defaults. */
export function defaultSandbox(): SandboxConfig {
  return {
    privateTmp: false,
    privateDevices: false,
    protectSystem: 'no',
    protectHome: 'no',
    readOnlyPaths: [],
    readWritePaths: [],
    inaccessiblePaths: [],
    noNewPrivileges: false,
  };
}

/** The service's sandbox settings, created at the first of them. */
const sb = (it: Interp): SandboxConfig => (it.unit.service!.sandbox ??= defaultSandbox());

/** A boolean, or one of `words` (ProtectSystem=full, ProtectHome=tmpfs). */
const boolOr =
  <K extends 'protectSystem' | 'protectHome'>(field: K, extra: readonly string[]): Handler =>
  (a, it) => {
    if (a.value === '') {
      sb(it)[field] = 'no' as SandboxConfig[K];
      return;
    }
    if (extra.includes(a.value)) {
      sb(it)[field] = a.value as SandboxConfig[K];
      return;
    }
    let v: boolean;
    try {
      v = parseBoolean(a.value);
    } catch {
      it.report(a, 'error', `Failed to parse ${a.key}= value, ignoring: ${a.value}`);
      return;
    }
    sb(it)[field] = (v ? 'yes' : 'no') as SandboxConfig[K];
  };

/** A path list: "-" marks a path that may be missing; "+" (relative to RootDirectory=) is taken as given. */
const pathList =
  (field: 'readOnlyPaths' | 'readWritePaths' | 'inaccessiblePaths'): Handler =>
  (a, it) => {
    if (a.value === '') {
      sb(it)[field] = [];
      return;
    }
    for (const w of words(it, a) ?? []) {
      const m = /^([-+]*)(.*)$/.exec(w)!;
      const p = expand(it, a, m[2]);
      if (p === null) continue;
      if (!p.startsWith('/')) {
        it.report(a, 'error', `Not an absolute path, ignoring: ${p}`);
        continue;
      }
      const entry: SandboxPath = {
        path: p.replace(/\/+/g, '/').replace(/(.)\/$/, '$1'),
        optional: m[1].includes('-'),
      };
      const list = sb(it)[field];
      if (!list.some((x) => x.path === entry.path && x.optional === entry.optional)) list.push(entry);
    }
  };

/** The sandboxing directives of [Service]. */
export const SANDBOX_HANDLERS: Record<string, Handler> = {
  PrivateTmp: boolHandler((it, v) => {
    sb(it).privateTmp = v;
  }, false),
  PrivateDevices: boolHandler((it, v) => {
    sb(it).privateDevices = v;
  }, false),
  NoNewPrivileges: boolHandler((it, v) => {
    sb(it).noNewPrivileges = v;
  }, false),
  ProtectSystem: boolOr('protectSystem', ['full', 'strict']),
  ProtectHome: boolOr('protectHome', ['read-only', 'tmpfs']),
  ReadOnlyPaths: pathList('readOnlyPaths'),
  ReadWritePaths: pathList('readWritePaths'),
  InaccessiblePaths: pathList('inaccessiblePaths'),
  // The names before systemd 231, still read as the same settings.
  ReadOnlyDirectories: pathList('readOnlyPaths'),
  ReadWriteDirectories: pathList('readWritePaths'),
  InaccessibleDirectories: pathList('inaccessiblePaths'),
};
