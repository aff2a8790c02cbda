// --userns: docker's userns-remap, per container. 'host' (the default, as docker's) shares the
// host's user namespace; 'remap' gives the container one of its own in which ids 0-65535 are an
// unprivileged range of the host's: root inside is nobody special outside (a process that escapes
// its mounts owns nothing of the host's, and a file it writes to a volume is owned by 100000+).
// The range is the "keel" entry of /etc/subuid and /etc/subgid (as docker's "dockremap" entry),
// else 100000:65536.
import { readFileSync } from 'node:fs';
import { ContainerError } from './errors.js';
import { parseUsernsMode } from './options.js';
import type { IdMapping } from './store.js';

export const REMAP_USER = 'keel';
export const DEFAULT_RANGE = { start: 100000, count: 65536 } as const;

/** The first "NAME:START:COUNT" entry for `user` in a subuid/subgid file; null when none (or no file). */
export function subordinateRange(file: string, user = REMAP_USER): { start: number; count: number } | null {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw e;
  }
  for (const [i, line] of text.split('\n').entries()) {
    const f = line.trim().split(':');
    if (f[0] !== user) continue;
    const [start, count] = [Number(f[1]), Number(f[2])];
    if (
      f.length !== 3 ||
      !/^\d+$/.test(f[1]) ||
      !/^\d+$/.test(f[2]) ||
      start < 1 ||
      count < 1 ||
      start + count > 0xffffffff
    ) {
      throw new ContainerError(
        'EINVAL',
        `${file}:${i + 1}: ${JSON.stringify(line)} is not NAME:START:COUNT with START >= 1 and COUNT >= 1`,
      );
    }
    return { start, count };
  }
  return null;
}

/** --userns=host|remap: null for the host's user namespace, else the mapping of 'remap'. */
export function parseUserns(value: string, files = { subuid: '/etc/subuid', subgid: '/etc/subgid' }): IdMapping | null {
  if (parseUsernsMode(value) === 'host') return null;
  const u = subordinateRange(files.subuid) ?? DEFAULT_RANGE;
  const g = subordinateRange(files.subgid) ?? DEFAULT_RANGE;
  return { uid: u.start, gid: g.start, size: Math.min(u.count, g.count) };
}
