// Applying a validated cloud-config, in coreos-cloudinit's order: hostname, users, ssh keys,
// write_files, /etc/environment, units. Every file is written atomically; a failing step is
// reported and the rest still applies, as coreos-cloudinit does. Runs at every boot: idempotent.
import { chownSync, existsSync, mkdirSync, readFileSync, readlinkSync } from 'node:fs';
import { dirname, join, posix } from 'node:path';
import { writeAtomic } from '../lib/atomic.js';
import { isKeelError, KeelError } from '../lib/errors.js';
import { decodeContent, parsePermissions } from './decode.js';
import { upsertUser, type UserDb, type UserSpec } from './users-db.js';
import { parseGroup, parsePasswd } from '../init/users.js';
import { ETCD, ETCD2, FLANNEL, FLEET, LOCKSMITH, sectionEnvironment, type FieldSpec } from './schema-sections.js';

/** The keys the applier reads (names normalised to `_`), as the validator's typed config gives them. */
export interface ApplyConfig {
  hostname?: string;
  ssh_authorized_keys?: string[];
  users?: UserSpec[];
  write_files?: { path: string; content?: string; owner?: string; permissions?: string | number; encoding?: string }[];
  manage_etc_hosts?: string;
  coreos?: {
    units?: {
      name: string;
      content?: string;
      runtime?: boolean;
      enable?: boolean;
      mask?: boolean;
      command?: string;
      drop_ins?: { name: string; content: string }[];
    }[];
    etcd2?: Record<string, unknown>;
    etcd?: Record<string, unknown>;
    fleet?: Record<string, unknown>;
    flannel?: Record<string, unknown>;
    locksmith?: Record<string, unknown>;
    update?: { reboot_strategy?: string; group?: string; server?: string };
    oem?: Record<string, unknown>;
  };
}

/** What applying a config does to the running system besides writing files. */
export interface UnitOps {
  daemonReload(): void;
  enable(name: string): void;
  mask(name: string): void;
  unmask(name: string): void;
  command(name: string, command: string): Promise<string>;
}

/** Where and how to apply. `root` is '/' on a machine, a temp dir in tests. */
export interface ApplyEnv {
  root: string;
  setHostname(name: string): void;
  units: UnitOps;
  addresses: { private_ipv4?: string; public_ipv4?: string; private_ipv6?: string; public_ipv6?: string };
  log(message: string): void;
}

const KEYS_BEGIN = '# BEGIN keel cloud-config';
const KEYS_END = '# END keel cloud-config';
const read = (p: string) => {
  try {
    return readFileSync(p, 'utf8');
  } catch {
    return '';
  }
};

/** Directories whose files come from USR: write_files cannot touch them. */
export function underUsr(path: string): boolean {
  const p = posix.normalize(path);
  return ['/usr', '/bin', '/sbin', '/lib', '/lib64'].some((d) => p === d || p.startsWith(`${d}/`));
}

/** The authorized_keys text with our block replaced by `keys` (lines outside it are the user's own). */
export function mergeAuthorizedKeys(existing: string, keys: string[]): string {
  const kept: string[] = [];
  let inside = false;
  for (const l of existing.split('\n')) {
    if (l === KEYS_BEGIN) {
      inside = true;
      continue;
    }
    if (l === KEYS_END) {
      inside = false;
      continue;
    }
    if (!inside && l !== '') kept.push(l);
  }
  return [...kept, KEYS_BEGIN, ...keys.map((k) => k.trim()), KEYS_END, ''].join('\n');
}

/** The drop-in of environment variables coreos-cloudinit wrote for etcd, fleet, locksmith, flannel
 *  (variable names from each section's field table: LOCKSMITHD_REBOOT_WINDOW_START, FLANNELD_IFACE...). */
export function environmentDropIn(table: Record<string, FieldSpec>, values: Record<string, unknown>): string {
  const lines = sectionEnvironment(table, values).map(
    ([k, v]) => `Environment="${k}=${v.replace(/(["\\])/g, '\\$1')}"`,
  );
  return `[Service]\n${lines.join('\n')}\n`;
}

/** Applies `cfg`; returns what was applied and every error (the boot goes on either way). */
export async function applyCloudConfig(
  cfg: ApplyConfig,
  env: ApplyEnv,
): Promise<{ applied: string[]; errors: string[] }> {
  const applied: string[] = [];
  const errors: string[] = [];
  const at = (p: string) => join(env.root, p);
  const step = async (what: string, fn: () => void | Promise<void>) => {
    try {
      await fn();
      applied.push(what);
    } catch (e) {
      const message = stepError(what, e).message;
      errors.push(message);
      env.log(message);
    }
  };
  if (cfg.hostname) {
    await step(`set hostname ${cfg.hostname}`, () => {
      writeAtomic(at('/etc/hostname'), `${cfg.hostname}\n`);
      env.setHostname(cfg.hostname!);
    });
  }
  const db = (): UserDb => ({
    passwd: read(at('/etc/passwd')),
    shadow: read(at('/etc/shadow')),
    group: read(at('/etc/group')),
  });
  const installKeys = (user: string, keys: string[]) => {
    const pw = parsePasswd(read(at('/etc/passwd'))).find((p) => p.name === user);
    if (!pw) throw new KeelError('ENOUSER', `cannot authorize ssh keys for ${user}: user ${user} does not exist`);
    const ssh = at(posix.join(pw.home, '.ssh'));
    mkdirSync(ssh, { recursive: true, mode: 0o700 });
    chownSync(ssh, pw.uid, pw.gid);
    chownSync(dirname(ssh), pw.uid, pw.gid);
    const file = join(ssh, 'authorized_keys');
    writeAtomic(file, mergeAuthorizedKeys(read(file), keys), { mode: 0o600, uid: pw.uid, gid: pw.gid });
  };
  for (const u of cfg.users ?? []) {
    await step(`create user ${u.name}`, () => {
      const r = upsertUser(db(), u);
      writeAtomic(at('/etc/group'), r.db.group);
      writeAtomic(at('/etc/shadow'), r.db.shadow, { mode: 0o640 });
      writeAtomic(at('/etc/passwd'), r.db.passwd);
      if (!u.no_create_home && !existsSync(at(r.home))) {
        mkdirSync(at(r.home), { recursive: true, mode: 0o755 });
        chownSync(at(r.home), r.uid, r.gid);
      }
      if (u.ssh_authorized_keys?.length) installKeys(u.name, u.ssh_authorized_keys);
    });
  }
  if (cfg.ssh_authorized_keys?.length)
    await step('authorize ssh keys for core', () => installKeys('core', cfg.ssh_authorized_keys!));
  for (const f of cfg.write_files ?? []) {
    await step(`write ${f.path}`, () => {
      const fail = (code: string, why: string) =>
        new KeelError(code, `cannot write ${f.path}: ${why}`, { path: f.path });
      if (!posix.isAbsolute(f.path)) throw fail('ERELATIVE', 'the path must be absolute');
      if (underUsr(f.path)) throw fail('EREADONLY', 'write_files cannot be used with /usr (it is read-only)');
      const data = decodeContent(f.content ?? '', f.encoding ?? '');
      const mode = parsePermissions(f.permissions);
      const [user, group] = (f.owner ?? 'root').split(/[:.]/);
      const pw = parsePasswd(read(at('/etc/passwd'))).find((p) => p.name === user || String(p.uid) === user);
      if (!pw) throw fail('ENOUSER', `owner "${user}" does not exist`);
      let gid = pw.gid;
      if (group) {
        const g = parseGroup(read(at('/etc/group'))).find((x) => x.name === group || String(x.gid) === group);
        if (!g) throw fail('ENOGROUP', `group "${group}" does not exist`);
        gid = g.gid;
      }
      writeAtomic(at(f.path), data, { mode, uid: pw.uid, gid });
    });
  }
  if (cfg.manage_etc_hosts === 'localhost') {
    await step('write /etc/hosts', () =>
      writeAtomic(
        at('/etc/hosts'),
        '127.0.0.1 localhost\n::1 localhost\n' +
          `127.0.0.1 ${cfg.hostname ?? read(at('/etc/hostname')).trim() ?? 'localhost'}\n`,
      ),
    );
  }
  const addrs = Object.entries(env.addresses).filter(([, v]) => v);
  if (addrs.length) {
    await step('write /etc/environment', () =>
      writeAtomic(at('/etc/environment'), addrs.map(([k, v]) => `COREOS_${k.toUpperCase()}=${v}\n`).join('')),
    );
  }
  await applyUnits(cfg, env, step);
  return { applied, errors };
}

async function applyUnits(
  cfg: ApplyConfig,
  env: ApplyEnv,
  step: (what: string, fn: () => void | Promise<void>) => Promise<void>,
): Promise<void> {
  const at = (p: string) => join(env.root, p);
  const c = cfg.coreos ?? {};
  const dropIns: [string, Record<string, FieldSpec>, Record<string, unknown> | undefined][] = [
    ['etcd2.service', ETCD2, c.etcd2],
    ['etcd.service', ETCD, c.etcd],
    ['fleet.service', FLEET, c.fleet],
    ['flanneld.service', FLANNEL, c.flannel],
    ['locksmithd.service', LOCKSMITH, c.locksmith],
  ];
  for (const [unit, table, values] of dropIns) {
    if (values && Object.keys(values).length)
      await step(`configure ${unit}`, () =>
        writeAtomic(at(`/run/systemd/system/${unit}.d/20-cloudinit.conf`), environmentDropIn(table, values)),
      );
  }
  if (c.oem && Object.keys(c.oem).length) {
    // coreos.oem: /etc/oem-release, as coreos-cloudinit wrote it (ID, VERSION_ID, NAME, HOME_URL, BUG_REPORT_URL).
    const o = c.oem as Record<string, unknown>;
    const fields: [string, string][] = [
      ['ID', 'id'],
      ['VERSION_ID', 'version_id'],
      ['NAME', 'name'],
      ['HOME_URL', 'home_url'],
      ['BUG_REPORT_URL', 'bug_report_url'],
    ];
    await step('write /etc/oem-release', () =>
      writeAtomic(
        at('/etc/oem-release'),
        fields
          .filter(([, k]) => o[k] !== undefined && o[k] !== '')
          .map(([n, k]) => `${n}=${JSON.stringify(String(o[k]))}\n`)
          .join(''),
      ),
    );
  }
  if ((c.update && Object.keys(c.update).length) || (c.locksmith && Object.keys(c.locksmith).length)) {
    // One file for the update agent, as Flatcar's update.conf: coreos.update's keys, and
    // coreos.locksmith's as the LOCKSMITHD_* variables locksmithd reads.
    const u = c.update ?? {};
    const lock = c.locksmith
      ? sectionEnvironment(LOCKSMITH, c.locksmith).map(([k, v]) => `${k}=${JSON.stringify(v)}`)
      : [];
    await step('configure updates', () =>
      writeAtomic(
        at('/etc/keel/update.conf'),
        [
          u.group && `GROUP=${u.group}`,
          u.server && `SERVER=${u.server}`,
          u.reboot_strategy && `REBOOT_STRATEGY=${u.reboot_strategy}`,
          ...lock,
        ]
          .filter(Boolean)
          .join('\n') + '\n',
      ),
    );
  }
  const units = c.units ?? [];
  if (!units.length) return;
  for (const u of units) {
    const network = u.name.endsWith('.network') || u.name.endsWith('.netdev') || u.name.endsWith('.link');
    const dir = network
      ? u.runtime
        ? '/run/systemd/network'
        : '/etc/systemd/network'
      : u.runtime
        ? '/run/systemd/system'
        : '/etc/systemd/system';
    if (u.content !== undefined)
      await step(`write unit ${u.name}`, () => writeAtomic(at(`${dir}/${u.name}`), u.content!));
    for (const d of u.drop_ins ?? [])
      await step(`write drop-in ${u.name}.d/${d.name}`, () =>
        writeAtomic(at(`${dir}/${u.name}.d/${d.name}`), d.content),
      );
    if (network) continue;
    if (u.mask) await step(`mask ${u.name}`, () => env.units.mask(serviceOf(u.name)));
    else if (isMasked(at(`/etc/systemd/system/${serviceOf(u.name)}`)))
      await step(`unmask ${u.name}`, () => env.units.unmask(serviceOf(u.name)));
  }
  await step('reload units', () => env.units.daemonReload());
  for (const u of units)
    if (u.enable && !u.mask) await step(`enable ${u.name}`, () => env.units.enable(serviceOf(u.name)));
  if (units.some((u) => u.enable)) await step('reload units', () => env.units.daemonReload());
  for (const u of units) {
    if (u.command)
      await step(`${u.command} ${u.name}`, async () => {
        const r = await env.units.command(serviceOf(u.name), u.command!);
        if (r !== 'done') throw new KeelError('EJOB', `cannot ${u.command} ${u.name}: job ${r}`);
      });
  }
}

/**
 * The error of a failed step: a KeelError already saying "cannot WHAT: ..." as it is, anything else
 * as "cannot WHAT: its message" (keeping a KeelError's code, EAPPLY otherwise).
 */
export function stepError(what: string, e: unknown): KeelError {
  if (isKeelError(e) && e.message.startsWith(`cannot ${what}: `)) return e;
  const reason = e instanceof Error ? e.message : String(e);
  const code = isKeelError(e) ? e.code : ((e as NodeJS.ErrnoException)?.code ?? 'EAPPLY');
  const path = isKeelError(e) ? e.path : (e as NodeJS.ErrnoException)?.path;
  return new KeelError(code, `cannot ${what}: ${reason}`, { cause: e, path });
}

/** A Quadlet-style NAME.container file is the unit NAME.service: enable, mask and commands act on that. */
function serviceOf(name: string): string {
  return name.endsWith('.container') ? `${name.slice(0, -'.container'.length)}.service` : name;
}

function isMasked(p: string): boolean {
  try {
    return readlinkSync(p) === '/dev/null';
  } catch {
    return false;
  }
}
