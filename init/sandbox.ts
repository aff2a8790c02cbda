// A service's mount namespace as data: which trees to clone, make read-only, hide or replace, from
// its PrivateTmp=, PrivateDevices=, ProtectSystem=, ProtectHome= and *Paths= settings, in the order
// systemd's namespace.c applies them (parents before children). Pure; native/src/sandbox.c runs it.
import type { SandboxOp, SpawnOptions } from '../native/native.js';
import type { SandboxConfig } from '../units/types.js';

/** Host paths the plan needs: the unit's private /tmp and /var/tmp (PrivateTmp=), an empty file of mode 000. */
export interface SandboxDirs {
  tmp: string | null;
  varTmp: string | null;
  inaccessibleFile: string;
}

type Kind = 'readonly' | 'writable' | 'mask' | 'tmpfs' | 'private-tmp' | 'private-dev';
interface Entry {
  path: string;
  kind: Kind;
  optional: boolean;
  rank: number;
  source?: string;
}

const MS = { RDONLY: 1, NOSUID: 2, NODEV: 4, NOEXEC: 8 } as const;
/** The device nodes of a private /dev (systemd's mount_private_dev), and its other mounts. */
const DEV_NODES = ['null', 'zero', 'full', 'random', 'urandom'];
const DEV_OPTIONAL_NODES = ['tty', 'ptmx'];
const DEV_DIRS = ['pts', 'shm', 'mqueue', 'hugepages'];
const DEV_LINKS: [string, string][] = [
  ['fd', '/proc/self/fd'],
  ['stdin', '/proc/self/fd/0'],
  ['stdout', '/proc/self/fd/1'],
  ['stderr', '/proc/self/fd/2'],
];
/** CAP_SYS_RAWIO and CAP_MKNOD, which PrivateDevices= takes from the bounding set. */
const DEVICE_CAPS = [17, 27];

const normal = (p: string) => p.replace(/\/+/g, '/').replace(/(.)\/$/, '$1');

/** Whether the settings need a mount namespace at all. */
export function needsMountNamespace(s: SandboxConfig | undefined): boolean {
  return (
    !!s &&
    (s.privateTmp ||
      s.privateDevices ||
      s.protectSystem !== 'no' ||
      s.protectHome !== 'no' ||
      s.readOnlyPaths.length > 0 ||
      s.readWritePaths.length > 0 ||
      s.inaccessiblePaths.length > 0)
  );
}

/** The entries, one per path: for the same path an explicit setting beats ProtectSystem=/ProtectHome=. */
function entries(s: SandboxConfig, dirs: SandboxDirs): Entry[] {
  const out: Entry[] = [];
  const add = (path: string, kind: Kind, optional: boolean, rank: number, source?: string) =>
    out.push({ path: normal(path), kind, optional, rank, source });
  const system: Record<SandboxConfig['protectSystem'], string[]> = {
    no: [],
    yes: ['/usr', '-/boot', '-/efi'],
    full: ['/usr', '-/boot', '-/efi', '/etc'],
    strict: ['/'],
  };
  for (const p of system[s.protectSystem]) add(p.replace(/^-/, ''), 'readonly', p.startsWith('-'), 0);
  // strict leaves the API file systems writable; /dev then comes from PrivateDevices= if set.
  if (s.protectSystem === 'strict') for (const p of ['/dev', '/proc', '/sys']) add(p, 'writable', true, 0);
  const home: Record<SandboxConfig['protectHome'], Kind | null> = {
    no: null,
    yes: 'mask',
    'read-only': 'readonly',
    tmpfs: 'tmpfs',
  };
  for (const p of home[s.protectHome] ? ['/home', '/root', '/run/user'] : []) add(p, home[s.protectHome]!, true, 0);
  for (const x of s.readWritePaths) add(x.path, 'writable', x.optional, 1);
  for (const x of s.readOnlyPaths) add(x.path, 'readonly', x.optional, 2);
  for (const x of s.inaccessiblePaths) add(x.path, 'mask', x.optional, 3);
  if (s.privateTmp) {
    if (!dirs.tmp || !dirs.varTmp)
      throw new TypeError('cannot plan PrivateTmp=: no private /tmp and /var/tmp directories given');
    add('/tmp', 'private-tmp', false, 4, dirs.tmp);
    add('/var/tmp', 'private-tmp', false, 4, dirs.varTmp);
  }
  if (s.privateDevices) add('/dev', 'private-dev', false, 4);
  const best = new Map<string, Entry>();
  for (const e of out) {
    const b = best.get(e.path);
    if (!b || e.rank >= b.rank) best.set(e.path, e);
  }
  // A plain sort puts every path before the paths below it, as systemd's path ordering does.
  return [...best.values()].sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0));
}

/**
 * The mount operations for a service's sandbox. Every tree that must keep its state (writable
 * paths, the private /tmp directories, the host's device nodes) is cloned first, before anything
 * is made read-only, and attached at its place in path order.
 */
export function sandboxPlan(s: SandboxConfig, dirs: SandboxDirs): SandboxOp[] {
  const clones: SandboxOp[] = [];
  const body: SandboxOp[] = [];
  const clone = (path: string, optional: boolean): number => {
    clones.push({ op: 'clone', path, slot: clones.length, ...(optional ? { optional } : {}) });
    return clones.length - 1;
  };
  for (const e of entries(s, dirs)) {
    const opt = e.optional ? { optional: true } : {};
    switch (e.kind) {
      case 'readonly':
        body.push({ op: 'readonly', target: e.path, ...opt });
        break;
      case 'writable':
        body.push({ op: 'attach', slot: clone(e.path, e.optional), target: e.path, ...opt });
        break;
      case 'mask':
        body.push({ op: 'mask', target: e.path, source: dirs.inaccessibleFile, ...opt });
        break;
      case 'tmpfs':
        body.push({
          op: 'mount',
          source: 'tmpfs',
          target: e.path,
          fstype: 'tmpfs',
          flags: MS.RDONLY | MS.NOSUID | MS.NODEV,
          data: 'mode=0755',
          ...opt,
        });
        break;
      case 'private-tmp':
        body.push({ op: 'attach', slot: clone(e.source!, false), target: e.path, mkdir: 'dir' });
        break;
      case 'private-dev': {
        body.push({
          op: 'mount',
          source: 'tmpfs',
          target: '/dev',
          fstype: 'tmpfs',
          flags: MS.NOSUID | MS.NOEXEC,
          data: 'mode=0755,size=4m,nr_inodes=64k',
        });
        for (const n of [...DEV_NODES, ...DEV_OPTIONAL_NODES]) {
          const optional = DEV_OPTIONAL_NODES.includes(n);
          body.push({
            op: 'attach',
            slot: clone(`/dev/${n}`, optional),
            target: `/dev/${n}`,
            mkdir: 'file',
            ...(optional ? { optional } : {}),
          });
        }
        for (const d of DEV_DIRS)
          body.push({
            op: 'attach',
            slot: clone(`/dev/${d}`, true),
            target: `/dev/${d}`,
            mkdir: 'dir',
            optional: true,
          });
        for (const [name, to] of DEV_LINKS) body.push({ op: 'symlink', target: `/dev/${name}`, source: to });
        break;
      }
    }
  }
  return [...clones, ...body];
}

/** The spawn() options of a sandbox: the mount operations, no_new_privs, and the capabilities PrivateDevices= drops. */
export function sandboxSpawnOptions(
  s: SandboxConfig | undefined,
  dirs: SandboxDirs,
): Pick<SpawnOptions, 'sandbox' | 'noNewPrivs' | 'capabilities'> {
  if (!s) return {};
  const out: Pick<SpawnOptions, 'sandbox' | 'noNewPrivs' | 'capabilities'> = {};
  if (needsMountNamespace(s)) out.sandbox = sandboxPlan(s, dirs);
  if (s.noNewPrivileges) out.noNewPrivs = true;
  if (s.privateDevices) out.capabilities = DEVICE_CAPS.reduce((m, c) => m & ~(1n << BigInt(c)), (1n << 64n) - 1n);
  return out;
}
