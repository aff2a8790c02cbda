// A file-system layout as a list of values (mkdir, symlink, write, copy), each able to print its
// shell equivalent, run by one small executor. Used for the root tree the builder lays out.
import { chmodSync, copyFileSync, lstatSync, mkdirSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';

/** One step of a layout. Paths are relative to the tree's root. */
export type FsOp =
  | { op: 'mkdir'; path: string; mode?: number }
  | { op: 'symlink'; path: string; target: string }
  | { op: 'write'; path: string; content: string | Buffer; mode?: number }
  | { op: 'copy'; path: string; from: string; mode?: number }
  | { op: 'remove'; path: string };

const q = (s: string) => `'${s.replace(/'/g, `'\\''`)}'`;
const oct = (m: number | undefined, d: number) => (m ?? d).toString(8).padStart(4, '0');

/** The shell equivalent of one op, for logs and review. */
export function opToShell(o: FsOp): string {
  switch (o.op) {
    case 'mkdir':
      return `mkdir -p -m ${oct(o.mode, 0o755)} ${q(o.path)}`;
    case 'symlink':
      return `mkdir -p ${q(dirname(o.path))} && rm -rf ${q(o.path)} && ln -s ${q(o.target)} ${q(o.path)}`;
    case 'write':
      return (
        `mkdir -p ${q(dirname(o.path))} && rm -f ${q(o.path)} && printf %s ` +
        `${q(String(o.content).slice(0, 40))}... > ${q(o.path)} && chmod ${oct(o.mode, 0o644)} ` +
        `${q(o.path)}`
      );
    case 'copy':
      return (
        `mkdir -p ${q(dirname(o.path))} && rm -f ${q(o.path)} && cp ${q(o.from)} ` +
        `${q(o.path)}${o.mode !== undefined ? ` && chmod ${oct(o.mode, 0)} ${q(o.path)}` : ''}`
      );
    case 'remove':
      return `rm -rf ${q(o.path)}`;
  }
}

function exists(p: string): boolean {
  try {
    lstatSync(p);
    return true;
  } catch {
    return false;
  }
}

/**
 * Applies ops under root. Files are always unlinked before they are written, so a tree made of
 * hard links into the cache (cp -al) never writes through to the cache.
 */
export function applyFsPlan(root: string, ops: FsOp[]): void {
  for (const o of ops) {
    const p = join(root, o.path);
    switch (o.op) {
      case 'mkdir':
        mkdirSync(p, { recursive: true });
        chmodSync(p, o.mode ?? 0o755);
        break;
      case 'symlink':
        mkdirSync(dirname(p), { recursive: true });
        if (exists(p)) rmSync(p, { recursive: true, force: true });
        symlinkSync(o.target, p);
        break;
      case 'write':
        mkdirSync(dirname(p), { recursive: true });
        rmSync(p, { force: true });
        writeFileSync(p, o.content);
        chmodSync(p, o.mode ?? 0o644);
        break;
      case 'copy':
        mkdirSync(dirname(p), { recursive: true });
        rmSync(p, { force: true });
        copyFileSync(o.from, p);
        if (o.mode !== undefined) chmodSync(p, o.mode);
        break;
      case 'remove':
        rmSync(p, { recursive: true, force: true });
        break;
    }
  }
}
