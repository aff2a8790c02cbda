// The initramfs: static busybox, the /init script, and the kernel modules boot needs, as a
// gzipped newc cpio.
import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { gzipSync, constants as zc } from 'node:zlib';
import { packCpio, type CpioEntry } from './cpio.js';
import { BuildError } from './errors.js';
import { run } from './host-tools.js';
import { earlyBootPlan, renderInitScript, WATCHDOG } from './initramfs-plan.js';
import { moduleClosure, modulesDepFor, parseModulesDep } from './modules.js';

/** Where the Node init lives in USR, and how the initramfs starts it. */
export const INIT_COMMAND = ['/usr/bin/node', '--disable-sigusr1', '/usr/lib/keel/init.mjs'];

/** The cpio entries of the initramfs, read from the base tree. */
export async function initramfsEntries(
  tree: string,
  release: string,
  modules: string[],
  verityHelper: Buffer,
): Promise<{ entries: CpioEntry[]; modules: string[]; missing: string[] }> {
  const busybox = readFileSync(join(tree, 'usr/bin/busybox'));
  const applets = (await run(join(tree, 'usr/bin/busybox'), ['--list']))
    .split('\n')
    .filter((a) => a && a !== 'busybox' && a !== 'init' && a !== 'linuxrc');
  const modRoot = join(tree, 'usr/lib/modules', release);
  const deps = parseModulesDep(readFileSync(join(modRoot, 'modules.dep'), 'utf8'));
  const { paths, missing } = moduleClosure(deps, [...modules, WATCHDOG.module]);
  const entries: CpioEntry[] = [
    { path: 'bin/busybox', type: 'file', mode: 0o755, data: busybox },
    { path: 'bin/keel-verity', type: 'file', mode: 0o755, data: verityHelper },
    ...applets.map((a): CpioEntry => ({ path: `bin/${a}`, type: 'symlink', mode: 0o777, linkname: 'busybox' })),
    { path: 'sbin', type: 'symlink', mode: 0o777, linkname: 'bin' },
    // The kernel opens /dev/console for /init's stdio before /init can mount devtmpfs.
    { path: 'dev/console', type: 'char', mode: 0o600, devmajor: 5, devminor: 1 },
    { path: 'dev/null', type: 'char', mode: 0o666, devmajor: 1, devminor: 3 },
    ...['proc', 'sys', 'sysroot', 'run', 'tmp'].map((d): CpioEntry => ({ path: d, type: 'directory', mode: 0o755 })),
    {
      path: 'init',
      type: 'file',
      mode: 0o755,
      data: Buffer.from(renderInitScript(earlyBootPlan({ modules, init: INIT_COMMAND }))),
    },
    {
      path: `lib/modules/${release}/modules.dep`,
      type: 'file',
      mode: 0o644,
      data: Buffer.from(modulesDepFor(deps, paths)),
    },
    ...paths.map((p): CpioEntry => ({
      path: `lib/modules/${release}/${p}`,
      type: 'file',
      mode: 0o644,
      data: readFileSync(join(modRoot, p)),
    })),
  ];
  return { entries, modules: paths, missing };
}

/** Builds the gzipped initramfs; every timestamp is `mtime`, so the bytes depend only on inputs. */
export async function buildInitramfs(
  tree: string,
  release: string,
  modules: string[],
  mtime: number,
  workDir: string,
): Promise<{ data: Buffer; modules: string[]; missing: string[] }> {
  const r = await initramfsEntries(tree, release, modules, await compileVerityHelper(workDir));
  if (r.modules.length === 0 && modules.length > 0)
    throw new BuildError('EKERNEL', `cannot find any of the initramfs modules ${modules.join(', ')} in ${release}`);
  const cpio = await packCpio(r.entries, { mtime });
  // gzip from zlib writes no name and a zero mtime: deterministic.
  return { data: gzipSync(cpio, { level: zc.Z_BEST_COMPRESSION }), modules: r.modules, missing: r.missing };
}

/** The C source of the initramfs's dm-verity opener. */
export const VERITY_HELPER_SOURCE = fileURLToPath(new URL('../../image/initramfs/keel-verity.c', import.meta.url));

/** Compiles keel-verity, static and stripped (the initramfs has no shared libraries). */
export async function compileVerityHelper(workDir: string): Promise<Buffer> {
  const out = join(workDir, 'keel-verity');
  await run('gcc', [
    '-static',
    '-Os',
    '-s',
    '-Wall',
    '-Werror',
    `-ffile-prefix-map=${dirname(VERITY_HELPER_SOURCE)}=.`,
    '-o',
    out,
    VERITY_HELPER_SOURCE,
  ]);
  return readFileSync(out);
}
