// Host tools the builder runs, each with the Debian package that provides it.
import { execa, type Options } from 'execa';
import { accessSync, constants } from 'node:fs';
import { delimiter, join } from 'node:path';
import { BuildError } from './errors.js';

/** Tool name -> Debian package that ships it. */
export const TOOL_PACKAGES: Record<string, string> = {
  'apt-get': 'apt',
  'apt-cache': 'apt',
  'dpkg-deb': 'dpkg',
  npm: 'npm',
  mksquashfs: 'squashfs-tools',
  unsquashfs: 'squashfs-tools',
  'mkfs.vfat': 'dosfstools',
  'fsck.vfat': 'dosfstools',
  mcopy: 'mtools',
  mmd: 'mtools',
  'mkfs.ext4': 'e2fsprogs',
  debugfs: 'e2fsprogs',
  'grub-mkimage': 'grub-common',
  'qemu-img': 'qemu-utils',
  'qemu-system-x86_64': 'qemu-system-x86',
  depmod: 'kmod',
  strip: 'binutils',
  sfdisk: 'fdisk',
  veritysetup: 'cryptsetup-bin',
  gcc: 'gcc',
};

/** Files from Debian packages the builder reads, with their package. */
export const HOST_FILES: Record<string, string> = {
  '/usr/lib/grub/i386-pc/boot.img': 'grub-pc-bin',
  '/usr/lib/grub/x86_64-efi/linux.mod': 'grub-efi-amd64-bin',
  '/usr/share/OVMF/OVMF_CODE_4M.fd': 'ovmf',
};

const SEARCH = ['/usr/local/sbin', '/usr/local/bin', '/usr/sbin', '/usr/bin', '/sbin', '/bin'];

/** Finds a tool on PATH (and the sbin directories a non-root PATH lacks); throws naming its package. */
export function which(tool: string): string {
  if (tool.includes('/')) return tool;
  const dirs = [...(process.env.PATH ?? '').split(delimiter).filter(Boolean), ...SEARCH];
  for (const dir of dirs) {
    const p = join(dir, tool);
    try {
      accessSync(p, constants.X_OK);
      return p;
    } catch {
      /* next */
    }
  }
  const pkg = TOOL_PACKAGES[tool];
  throw new BuildError(
    'ENOTOOL',
    `cannot find host tool ${tool}: install the Debian package ` +
      `${pkg ?? '(unknown)'}${pkg ? ` (apt-get install ${pkg}, or make deps)` : ''}`,
  );
}

/** Checks that a host file exists; throws naming the package that provides it. */
export function requireHostFile(path: string): string {
  try {
    accessSync(path, constants.R_OK);
    return path;
  } catch {
    const pkg = HOST_FILES[path];
    throw new BuildError('ENOTOOL', `cannot find ${path}: install the Debian package ${pkg ?? '(unknown)'}`);
  }
}

/** Runs a host tool with execa; a failure becomes a BuildError with the tool's stderr. */
export async function run(tool: string, args: string[], opts: Options = {}): Promise<string> {
  const file = which(tool);
  const result = await execa(file, args, { reject: false, stripFinalNewline: true, ...opts });
  if (result.exitCode !== 0 || result.failed) {
    const err = String(result.stderr ?? '')
      .trim()
      .split('\n')
      .slice(-8)
      .join('\n');
    throw new BuildError(
      'ETOOL',
      `cannot run ${tool} ${args.join(' ')}: ` +
        `${result.exitCode !== undefined ? `exit ${result.exitCode}` : result.shortMessage}` +
        `${err ? `\n${err}` : ''}`,
    );
  }
  return String(result.stdout ?? '');
}
