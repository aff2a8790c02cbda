// An in-memory UnitFs for loader tests: files, symlinks and the directories they imply.
import { posix } from 'node:path';
import type { UnitFs } from '../../units/load.js';

/** Paths to contents: a string is a file, `{ link }` a symlink, `{ dir: true }` an empty directory. */
export type Tree = Record<string, string | { link: string } | { dir: true }>;

/** A UnitFs over `tree`; directories exist wherever something lies below them. */
export function fakeFs(tree: Tree): UnitFs {
  const enoent = (p: string) => Object.assign(new Error(`ENOENT: no such file or directory, ${p}`), { code: 'ENOENT' });
  const dirs = new Set<string>();
  for (const [p, v] of Object.entries(tree)) {
    if (typeof v === 'object' && 'dir' in v) dirs.add(p);
    for (let d = posix.dirname(p); d !== '/'; d = posix.dirname(d)) dirs.add(d);
  }
  const follow = (p: string): string => {
    for (let i = 0; i < 32; i++) {
      const v = tree[p];
      if (typeof v !== 'object' || !('link' in v)) return p;
      p = posix.resolve(posix.dirname(p), v.link);
    }
    throw enoent(p);
  };
  return {
    readFile(p) {
      const v = tree[follow(p)];
      if (typeof v !== 'string') throw enoent(p);
      return v;
    },
    readdir(p) {
      const d = follow(p);
      if (!dirs.has(d)) throw enoent(p);
      const names = new Set<string>();
      for (const q of [...Object.keys(tree), ...dirs])
        if (posix.dirname(q) === d && q !== d) names.add(posix.basename(q));
      return [...names];
    },
    lstat(p) {
      const v = tree[p];
      if (v === undefined) return dirs.has(p) ? { isDirectory: true, isSymbolicLink: false, isFile: false } : null;
      if (typeof v === 'string') return { isDirectory: false, isSymbolicLink: false, isFile: true };
      return 'link' in v
        ? { isDirectory: false, isSymbolicLink: true, isFile: false }
        : { isDirectory: true, isSymbolicLink: false, isFile: false };
    },
    readlink(p) {
      const v = tree[p];
      if (typeof v !== 'object' || !('link' in v))
        throw Object.assign(new Error(`EINVAL: not a symlink, ${p}`), { code: 'EINVAL' });
      return v.link;
    },
  };
}
