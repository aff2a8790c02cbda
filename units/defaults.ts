// Implicit and default dependencies systemd adds at load time (systemd.unit(5) "Implicit
// Dependencies"/"Default Dependencies" and each type's man page), as a pure function over units.
import { changeSuffix, escapePath, nameWithoutSuffix, unescapePath } from './names.js';
import type { UnitConfig, UnitDeps } from './types.js';

type ListKey = 'requires' | 'wants' | 'after' | 'before' | 'conflicts';
const SHUTDOWN = 'shutdown.target';
const SYSINIT = 'sysinit.target';
// systemd's fstype_is_network(): these file systems need the network before they can mount.
const NETWORK_FS = new Set([
  'afs',
  'ceph',
  'cifs',
  'smb3',
  'smbfs',
  'sshfs',
  'ncpfs',
  'ncp',
  'nfs',
  'nfs4',
  'gfs',
  'gfs2',
  'glusterfs',
  'pvfs2',
  'ocfs2',
  'lustre',
  'davfs',
]);

/**
 * Returns a copy of `units` (same keys; aliases keep sharing one object) where every unit's deps
 * also hold the implicit dependencies (always) and the default ones (DefaultDependencies=yes).
 */
export function withDefaultDependencies(units: ReadonlyMap<string, UnitConfig>): Map<string, UnitConfig> {
  const copies = new Map<UnitConfig, UnitConfig>();
  for (const u of units.values()) {
    if (!copies.has(u)) copies.set(u, { ...u, deps: ownDeps(u, units) });
  }
  const out = new Map<string, UnitConfig>();
  for (const [key, u] of units) out.set(key, copies.get(u)!);
  // Second pass, once every unit's own deps are final: the loop check below must see them.
  for (const t of copies.values()) if (t.type === 'target' && t.defaultDependencies) addTargetOrdering(t, out);
  return out;
}

/** The unit's deps plus its implicit and default ones (a fresh object; `u` is not touched). */
function ownDeps(u: UnitConfig, units: ReadonlyMap<string, UnitConfig>): UnitDeps {
  const deps: UnitDeps = { ...u.deps };
  for (const k of [
    'requires',
    'requisite',
    'wants',
    'bindsTo',
    'partOf',
    'conflicts',
    'after',
    'before',
    'onFailure',
  ] as const) {
    deps[k] = [...u.deps[k]];
  }
  const add = (kind: ListKey, ...names: string[]) => {
    for (const n of names) if (n !== u.name && !deps[kind].includes(n)) deps[kind].push(n);
  };
  const mountsFor = (paths: string[], self = false) => {
    for (const p of paths) {
      for (const prefix of pathPrefixes(p, self)) {
        const m = `${escapePath(prefix)}.mount`;
        if (units.has(m)) {
          add('requires', m);
          add('after', m);
        }
      }
    }
  };
  const shutdownOrder = () => {
    add('conflicts', SHUTDOWN);
    add('before', SHUTDOWN);
  };
  const sysinit = () => {
    add('requires', SYSINIT);
    add('after', SYSINIT);
  };
  const dd = u.defaultDependencies;

  // Implicit: always added, whatever DefaultDependencies= says.
  mountsFor(u.requiresMountsFor, true);
  const wd = u.service?.workingDirectory?.replace(/^-/, '');
  if (wd?.startsWith('/')) mountsFor([wd], true);
  switch (u.type) {
    case 'service':
    case 'container': // Keel's container units run as services do.
      if (dd) {
        sysinit();
        add('after', 'basic.target');
        shutdownOrder();
      }
      break;
    case 'target':
      if (dd && u.name !== SHUTDOWN) shutdownOrder();
      break;
    case 'timer':
      add('before', triggered(u, u.timer?.unit));
      if (dd) {
        sysinit();
        add('before', 'timers.target');
        shutdownOrder();
        if (u.timer?.onCalendar.length) add('after', 'time-set.target', 'time-sync.target');
      }
      break;
    case 'socket':
      add('before', triggered(u, u.socket?.service));
      mountsFor(
        [...(u.socket?.listenStream ?? []), ...(u.socket?.listenDatagram ?? [])].filter((p) => p.startsWith('/')),
        true,
      );
      if (dd) {
        sysinit();
        add('before', 'sockets.target');
        shutdownOrder();
      }
      break;
    case 'path': {
      add('before', triggered(u, u.path?.unit));
      const p = u.path;
      if (p) mountsFor([...p.pathExists, ...p.pathChanged, ...p.directoryNotEmpty], true);
      if (dd) {
        sysinit();
        add('before', 'paths.target');
        shutdownOrder();
      }
      break;
    }
    case 'mount': {
      const m = u.mount;
      if (!m) throw new Error(`BUG: mount unit ${u.name} has no [Mount] settings`);
      mountsFor([m.where], false);
      const opts = (m.options ?? '').split(',');
      if (opts.includes('bind') && m.what.startsWith('/')) mountsFor([m.what], true);
      if (dd && !extrinsic(m.where)) {
        const network = NETWORK_FS.has(m.type ?? '') || opts.includes('_netdev');
        if (!opts.includes('nofail')) add('before', network ? 'remote-fs.target' : 'local-fs.target');
        add('after', network ? 'remote-fs-pre.target' : 'local-fs-pre.target');
        if (network) {
          add('after', 'network.target', 'network-online.target');
          add('wants', 'network-online.target');
        }
        add('conflicts', 'umount.target');
        add('before', 'umount.target');
      }
      break;
    }
    case 'slice': {
      const parent = parentSlice(u.name);
      if (parent && units.has(parent)) {
        add('requires', parent);
        add('after', parent);
      }
      if (dd) shutdownOrder();
      break;
    }
    case 'automount': {
      // The mount it triggers has the same name; its Where= is the name unescaped.
      add('before', changeSuffix(u.name, 'mount'));
      const where = whereOf(u.name);
      if (where) mountsFor([where], false);
      if (dd) {
        add('before', 'local-fs.target');
        add('after', 'local-fs-pre.target');
        add('conflicts', 'umount.target');
        add('before', 'umount.target');
      }
      break;
    }
    default: {
      const type: never = u.type;
      throw new Error(`BUG: unknown unit type ${String(type)} for ${u.name}`);
    }
  }
  return deps;
}

/** systemd's unit_add_default_target_dependency: a target is ordered after what it pulls in. */
function addTargetOrdering(t: UnitConfig, units: ReadonlyMap<string, UnitConfig>): void {
  const d = t.deps;
  for (const name of [
    ...d.requires,
    ...d.requisite,
    ...d.wants,
    ...d.bindsTo,
    ...d.partOf,
    ...(d.wantedByLinks ?? []),
  ]) {
    const u = units.get(name);
    if (!u || u.masked || !u.defaultDependencies || u.name === t.name) continue;
    // Don't create loops: the user ordered the target before this unit (either side may say so).
    if (d.before.includes(u.name) || u.deps.after.includes(t.name)) continue;
    if (!d.after.includes(u.name)) d.after.push(u.name);
  }
}

/** The unit a timer/socket/path activates, defaulting to the same name with `.service`. */
function triggered(u: UnitConfig, configured: string | undefined): string {
  return configured || changeSuffix(u.name, 'service');
}

/** The path an automount unit's name stands for, or null when the name does not unescape. */
function whereOf(name: string): string | null {
  try {
    return unescapePath(nameWithoutSuffix(name));
  } catch {
    return null; // best-effort: the loader reports the bad name; no parent mounts then
  }
}

/** Mounts managed outside the unit graph (systemd's fstab_is_extrinsic): no default deps. */
function extrinsic(where: string): boolean {
  return where === '/' || where === '/usr' || /^\/(proc|sys|dev|run\/initramfs)(\/|$)/.test(where);
}

/** `a-b.slice` -> `a.slice`, `a.slice` -> `-.slice`, `-.slice` -> null. */
function parentSlice(name: string): string | null {
  if (name === '-.slice') return null;
  const stem = name.slice(0, -'.slice'.length);
  const dash = stem.lastIndexOf('-');
  return dash > 0 ? `${stem.slice(0, dash)}.slice` : '-.slice';
}

/** `/var/lib/x` -> `/`, `/var`, `/var/lib` and (with `self`) `/var/lib/x`; none for a path with `..`. */
function pathPrefixes(path: string, self: boolean): string[] {
  const parts = path.split('/').filter((p) => p !== '' && p !== '.');
  if (parts.includes('..')) return []; // not normalized: the parser reports it, nothing to mount
  const out = ['/'];
  for (let i = 1; i <= parts.length; i++) out.push(`/${parts.slice(0, i).join('/')}`);
  if (!self) out.pop();
  return out;
}
