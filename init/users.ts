// Users and groups from /etc/passwd and /etc/group, for User=, Group= and %u/%h. Pure parsing.
import { KeelError } from '../lib/errors.js';
import { readFileSync } from 'node:fs';

/** One /etc/passwd entry. */
export interface PasswdEntry {
  name: string;
  uid: number;
  gid: number;
  gecos: string;
  home: string;
  shell: string;
}

/** Parses /etc/passwd text. */
export function parsePasswd(text: string): PasswdEntry[] {
  return text
    .split('\n')
    .filter((l) => l && !l.startsWith('#'))
    .map((l) => l.split(':'))
    .filter((f) => f.length >= 7)
    .map(([name, , uid, gid, gecos, home, shell]) => ({
      name,
      uid: Number(uid),
      gid: Number(gid),
      gecos,
      home,
      shell,
    }));
}

/** Parses /etc/group text into name, gid and members. */
export function parseGroup(text: string): { name: string; gid: number; members: string[] }[] {
  return text
    .split('\n')
    .filter((l) => l && !l.startsWith('#'))
    .map((l) => l.split(':'))
    .filter((f) => f.length >= 4)
    .map(([name, , gid, members]) => ({ name, gid: Number(gid), members: members ? members.split(',') : [] }));
}

const read = (p: string) => {
  try {
    return readFileSync(p, 'utf8');
  } catch {
    return '';
  }
};

/** Resolves User=/Group= (names or numbers) to ids, supplementary groups and home; throws naming the unknown one. */
export function resolveCredentials(
  user: string | null,
  group: string | null,
  etc = '/etc',
): { uid: number; gid: number; groups: number[]; home: string; name: string } | null {
  if (user === null && group === null) return null;
  const passwd = parsePasswd(read(`${etc}/passwd`));
  const groups = parseGroup(read(`${etc}/group`));
  let pw: PasswdEntry | undefined;
  if (user !== null) {
    pw = /^\d+$/.test(user)
      ? (passwd.find((p) => p.uid === Number(user)) ?? {
          name: user,
          uid: Number(user),
          gid: Number(user),
          gecos: '',
          home: '/',
          shell: '',
        })
      : passwd.find((p) => p.name === user);
    if (!pw) throw new KeelError('ENOUSER', `cannot find user ${user} in ${etc}/passwd`, { path: `${etc}/passwd` });
  }
  let gid = pw?.gid ?? 0;
  if (group !== null) {
    const g = /^\d+$/.test(group) ? { gid: Number(group) } : groups.find((x) => x.name === group);
    if (!g) throw new KeelError('ENOGROUP', `cannot find group ${group} in ${etc}/group`, { path: `${etc}/group` });
    gid = g.gid;
  }
  const name = pw?.name ?? 'root';
  const supplementary = groups.filter((g) => g.members.includes(name)).map((g) => g.gid);
  return { uid: pw?.uid ?? 0, gid, groups: [...new Set([gid, ...supplementary])], home: pw?.home ?? '/root', name };
}
