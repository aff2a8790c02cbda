// USR as a squashfs: xz, because GRUB 2.06's squash4 reads gzip, xz and lzo but not zstd or lz4.
import { readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { BuildError } from './errors.js';
import { run } from './host-tools.js';

/** Makes a reproducible squashfs of `tree`: owners root, all times `epoch`, sorted entries. */
export async function makeSquashfs(
  tree: string,
  image: string,
  opts: { epoch: number; maxBytes: number },
): Promise<number> {
  await run('mksquashfs', [
    tree,
    image,
    '-noappend',
    '-all-root',
    '-comp',
    'xz',
    '-no-xattrs',
    '-quiet',
    '-no-progress',
    '-mkfs-time',
    String(opts.epoch),
    '-all-time',
    String(opts.epoch),
  ]);
  const size = statSync(image).size;
  if (size > opts.maxBytes) {
    throw new BuildError(
      'ETOOBIG',
      `cannot fit USR into its slot: the squashfs is ${(size / 2 ** 20).toFixed(1)} MiB, the ` +
        `slot ${(opts.maxBytes / 2 ** 20).toFixed(0)} MiB (raise partitions.usr)`,
    );
  }
  return size;
}

/** Makes an ext4 image of `sizeBytes` (optionally filled from `dir`) without root. */
export async function makeExt4(
  image: string,
  sizeBytes: number,
  opts: { label: string; uuid: string; epoch: number; dir?: string },
): Promise<void> {
  const env = { ...process.env, E2FSPROGS_FAKE_TIME: String(opts.epoch), SOURCE_DATE_EPOCH: String(opts.epoch) };
  await run(
    'mkfs.ext4',
    [
      '-q',
      '-F',
      '-L',
      opts.label,
      '-U',
      opts.uuid,
      '-E',
      `hash_seed=${opts.uuid},root_owner=0:0`,
      '-m',
      '0',
      ...(opts.dir ? ['-d', opts.dir] : []),
      image,
      `${Math.floor(sizeBytes / 1024)}k`,
    ],
    { env },
  );
  if (!opts.dir) return;
  // mke2fs -d copies each source file's ctime, which no one can set: pin every inode's times
  // with debugfs afterwards so the image depends only on the inputs.
  const paths = ['/', '/lost+found', ...walk(opts.dir, '')];
  const script = join(dirname(image), `${basename(image)}.debugfs`);
  writeFileSync(
    script,
    paths
      .flatMap((p) => ['ctime', 'atime', 'mtime', 'crtime'].map((f) => `set_inode_field "${p}" ${f} ${opts.epoch}\n`))
      .join(''),
  );
  try {
    await run('debugfs', ['-w', '-f', script, image], { env });
  } finally {
    rmSync(script, { force: true });
  }
}

function walk(root: string, rel: string): string[] {
  return readdirSync(join(root, rel), { withFileTypes: true })
    .sort((a, b) => (a.name < b.name ? -1 : 1))
    .flatMap((e) => [`${rel}/${e.name}`, ...(e.isDirectory() ? walk(root, `${rel}/${e.name}`) : [])]);
}
