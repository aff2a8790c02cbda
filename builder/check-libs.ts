// Before USR is sealed: every program and library in it finds the shared libraries it needs,
// so a missing package is a build error naming the file and the library, not a boot failure.
import { closeSync, existsSync, lstatSync, openSync, readdirSync, readSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { elfNeeded } from './elf.js';

/** The library directories of the image's dynamic loader (Debian multiarch, merged /usr). */
export const LIB_DIRS = ['usr/lib/x86_64-linux-gnu', 'usr/lib', 'usr/lib64'];

function readHead(path: string, max = 4 << 20): Buffer {
  const fd = openSync(path, 'r');
  try {
    const size = Math.min(statSync(path).size, max);
    const b = Buffer.alloc(size);
    readSync(fd, b, 0, size, 0);
    return b;
  } finally {
    closeSync(fd);
  }
}

/** ELF files under the directories that hold programs and libraries. */
function* elfCandidates(tree: string): Generator<string> {
  const walk = function* (rel: string): Generator<string> {
    let names: string[];
    try {
      names = readdirSync(join(tree, rel));
    } catch {
      return;
    }
    for (const n of names) {
      const r = join(rel, n);
      const st = lstatSync(join(tree, r));
      if (st.isDirectory()) {
        if (!r.startsWith('usr/lib/modules')) yield* walk(r);
      } else if (st.isFile() && (st.mode & 0o111 || /\.so(\.|$)/.test(n) || n.endsWith('.node'))) yield r;
    }
  };
  yield* walk('usr/bin');
  yield* walk('usr/sbin');
  yield* walk('usr/lib');
}

/** Lists "FILE needs LIB" for every unresolved dependency in the tree. */
export function missingLibraries(tree: string): { file: string; lib: string }[] {
  const out: { file: string; lib: string }[] = [];
  for (const rel of elfCandidates(tree)) {
    let info;
    try {
      info = elfNeeded(readHead(join(tree, rel)));
    } catch {
      continue;
    }
    if (!info) continue;
    const dirs = [...info.runpath.map((p) => p.replace(/^\/+/, '').replace('$ORIGIN', join(rel, '..'))), ...LIB_DIRS];
    for (const lib of info.needed) {
      if (!dirs.some((d) => existsSync(join(tree, d, lib)))) out.push({ file: `/${rel}`, lib });
    }
  }
  return out;
}
