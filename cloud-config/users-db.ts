// Editing /etc/passwd, /etc/shadow and /etc/group as text: pure functions, the applier writes.
import { KeelError } from '../lib/errors.js';
import { parseGroup, parsePasswd } from '../init/users.js';

/** A user as cloud-config's users[] describes it. */
export interface UserSpec {
  name: string;
  passwd?: string;
  gecos?: string;
  homedir?: string;
  no_create_home?: boolean;
  primary_group?: string;
  groups?: string[];
  no_user_group?: boolean;
  system?: boolean;
  shell?: string;
  ssh_authorized_keys?: string[];
}

/** The three databases. */
export interface UserDb {
  passwd: string;
  shadow: string;
  group: string;
}

const line = (fields: (string | number)[]) => fields.join(':') + '\n';
const withNl = (s: string) => (s && !s.endsWith('\n') ? s + '\n' : s);

function freeId(name: string, used: Set<number>, from: number, to: number): number {
  for (let i = from; i <= to; i++) if (!used.has(i)) return i;
  throw new KeelError('ENOID', `cannot create user ${name}: no free id between ${from} and ${to}`);
}

/**
 * Adds (or updates the password and fields of) a user; returns the new databases and the uid/gid.
 * Throws KeelError EUSERNAME, ENOID or ENOGROUP ("cannot create user NAME: ...").
 */
export function upsertUser(
  db: UserDb,
  u: UserSpec,
): { db: UserDb; uid: number; gid: number; home: string; created: boolean } {
  if (!/^[a-z_][a-z0-9_-]*\$?$/i.test(u.name))
    throw new KeelError('EUSERNAME', `cannot create user ${u.name}: invalid user name "${u.name}"`);
  const users = parsePasswd(db.passwd);
  let groups = parseGroup(db.group);
  let passwd = db.passwd;
  let shadow = db.shadow;
  let group = db.group;
  const existing = users.find((x) => x.name === u.name);
  const home = u.homedir ?? existing?.home ?? `/home/${u.name}`;
  if (existing) {
    // Existing user: coreos-cloudinit only sets the password (usermod --password).
    if (u.passwd)
      shadow = shadow
        .split('\n')
        .map((l) => (l.startsWith(`${u.name}:`) ? [u.name, u.passwd, ...l.split(':').slice(2)].join(':') : l))
        .join('\n');
    return { db: { passwd, shadow, group }, uid: existing.uid, gid: existing.gid, home, created: false };
  }
  const [lo, hi] = u.system ? [100, 999] : [1000, 59999];
  const uid = freeId(u.name, new Set(users.map((x) => x.uid)), lo, hi);
  let gid: number;
  if (u.primary_group) {
    const g = groups.find((x) => x.name === u.primary_group);
    if (!g)
      throw new KeelError(
        'ENOGROUP',
        `cannot create user ${u.name}: primary group "${u.primary_group}" does not exist`,
      );
    gid = g.gid;
  } else if (u.no_user_group) {
    gid = groups.find((x) => x.name === 'users')?.gid ?? 100;
  } else {
    const taken = new Set(groups.map((x) => x.gid));
    gid = taken.has(uid) ? freeId(u.name, taken, lo, hi) : uid;
    group = withNl(group) + line([u.name, 'x', gid, '']);
    groups = parseGroup(group);
  }
  passwd = withNl(passwd) + line([u.name, 'x', uid, gid, u.gecos ?? '', home, u.shell ?? '/bin/sh']);
  // No password given: the account is locked for password logins ("*"), keys still work.
  shadow =
    withNl(shadow) + line([u.name, u.passwd ?? '*', Math.floor(Date.now() / 86_400_000), 0, 99999, 7, '', '', '']);
  for (const g of u.groups ?? []) {
    if (!groups.some((x) => x.name === g))
      throw new KeelError('ENOGROUP', `cannot create user ${u.name}: group "${g}" does not exist`);
    group = group
      .split('\n')
      .map((l) => {
        const f = l.split(':');
        if (f[0] !== g) return l;
        const members = f[3] ? f[3].split(',') : [];
        if (!members.includes(u.name)) members.push(u.name);
        f[3] = members.join(',');
        return f.join(':');
      })
      .join('\n');
  }
  return { db: { passwd, shadow, group }, uid, gid, home, created: true };
}
