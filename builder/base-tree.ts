// The base root tree: Debian packages extracted without root and merged into /usr, the kernel
// and its chosen modules, Node, and busybox's applet links. Cached as one directory.
import { existsSync, lstatSync, mkdirSync, readdirSync, readFileSync, renameSync, rmSync, symlinkSync } from 'node:fs';
import { join } from 'node:path';
import { BuildError } from './errors.js';
import { run } from './host-tools.js';
import type { ImageDef } from './image-def.js';
import type { FetchedPackage } from './fetch.js';

const MERGED = ['bin', 'sbin', 'lib', 'lib64'];

/** Moves /bin, /sbin, /lib and /lib64 into /usr and leaves symlinks behind (merged /usr). */
export function mergeUsr(root: string): void {
  for (const d of MERGED) {
    const top = join(root, d);
    const usr = join(root, 'usr', d);
    if (existsSync(top) && !lstatSync(top).isSymbolicLink()) {
      mkdirSync(usr, { recursive: true });
      moveInto(top, usr);
      rmSync(top, { recursive: true, force: true });
    }
    mkdirSync(usr, { recursive: true });
    if (!existsSync(top)) symlinkSync(`usr/${d}`, top);
  }
}

function moveInto(from: string, to: string): void {
  for (const name of readdirSync(from)) {
    const src = join(from, name);
    const dst = join(to, name);
    if (existsSync(dst) && lstatSync(src).isDirectory() && lstatSync(dst).isDirectory()) moveInto(src, dst);
    else {
      rmSync(dst, { recursive: true, force: true });
      renameSync(src, dst);
    }
  }
}

/** Links every busybox applet that no package already provides, relative to the tree. */
export async function linkBusybox(root: string): Promise<number> {
  const list = await run(join(root, 'usr/bin/busybox'), ['--list-full']);
  let n = 0;
  for (const rel of list.split('\n').filter(Boolean)) {
    const path = join(root, 'usr', rel.replace(/^usr\//, ''));
    if (!rel.includes('/') || existsSync(path) || /\/(busybox|init|linuxrc)$/.test(rel)) continue;
    mkdirSync(join(path, '..'), { recursive: true });
    const depth = rel.replace(/^usr\//, '').split('/').length - 1;
    symlinkSync(`${'../'.repeat(depth)}bin/busybox`, path);
    n++;
  }
  return n;
}

/** Builds the base tree into `dir` from fetched packages, Node and the kernel. */
export async function buildBaseTree(
  dir: string,
  def: ImageDef,
  debs: FetchedPackage[],
  kernel: FetchedPackage,
  node: FetchedPackage,
): Promise<void> {
  for (const deb of debs) await run('dpkg-deb', ['-x', deb.file, dir]);
  // The kernel package: vmlinuz into /boot, only the chosen module trees into /usr/lib/modules.
  const kx = join(dir, '.kernel');
  await run('dpkg-deb', ['-x', kernel.file, kx]);
  const rel = def.kernel.release;
  const kmods = join(kx, 'lib/modules', rel);
  if (!existsSync(kmods))
    throw new BuildError(
      'EKERNEL',
      `cannot use kernel ${kernel.name}: it has no lib/modules/${rel} (check kernel.release)`,
    );
  mkdirSync(join(dir, 'boot'), { recursive: true });
  renameSync(join(kx, 'boot', `vmlinuz-${rel}`), join(dir, 'boot/vmlinuz'));
  const mods = join(dir, 'usr/lib/modules', rel);
  for (const sub of def.kernel.usrModules) {
    const from = join(kmods, 'kernel', sub);
    if (!existsSync(from))
      throw new BuildError('EKERNEL', `cannot copy kernel modules ${sub}: no such directory in ${kernel.name}`);
    mkdirSync(join(mods, 'kernel', sub, '..'), { recursive: true });
    renameSync(from, join(mods, 'kernel', sub));
  }
  for (const f of readdirSync(kmods).filter((f) => f.startsWith('modules.') && !f.endsWith('.bin')))
    renameSync(join(kmods, f), join(mods, f));
  rmSync(kx, { recursive: true, force: true });
  mergeUsr(dir);
  for (const ex of def.exclude) rmSync(join(dir, ex), { recursive: true, force: true });
  await run('depmod', ['-b', dir, rel]);
  // Node: only the binary from the npm package.
  const nx = join(dir, '.node');
  mkdirSync(nx);
  await run('tar', ['-xzf', node.file, '-C', nx, 'package/bin/node']);
  renameSync(join(nx, 'package/bin/node'), join(dir, 'usr/bin/node'));
  // The symbol table is a tenth of the binary and nothing on the machine reads it.
  await run('strip', ['--strip-all', join(dir, 'usr/bin/node')]);
  rmSync(nx, { recursive: true, force: true });
  await linkBusybox(dir);
  if (!readFileSync(join(dir, 'usr/lib/modules', rel, 'modules.dep'), 'utf8').length)
    throw new BuildError('EKERNEL', 'cannot index kernel modules: depmod wrote an empty modules.dep');
}
