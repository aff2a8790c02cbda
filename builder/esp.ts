// The EFI system partition: a vfat image made rootless with mkfs.vfat and mtools.
import { utimesSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { run } from './host-tools.js';
import { ESP_LABEL } from './grub.js';

/** Files to place on the ESP: path on the ESP -> host file. */
export type EspFiles = Record<string, string>;

/** Makes `image` (sizeBytes) holding `files`; timestamps and volume id are fixed for reproducibility. */
export async function makeEsp(
  image: string,
  sizeBytes: number,
  files: EspFiles,
  opts: { epoch: number; volumeId: string },
): Promise<void> {
  const env = { ...process.env, SOURCE_DATE_EPOCH: String(opts.epoch), MTOOLS_SKIP_CHECK: '1' };
  await run(
    'mkfs.vfat',
    [
      '-C',
      '-F',
      '16',
      '-n',
      ESP_LABEL,
      '-i',
      opts.volumeId,
      '--invariant',
      image,
      String(Math.floor(sizeBytes / 1024)),
    ],
    { env },
  );
  const dirs = new Set<string>();
  for (const p of Object.keys(files).sort()) {
    const parts = p.split('/').slice(0, -1);
    for (let i = 1; i <= parts.length; i++) dirs.add(parts.slice(0, i).join('/'));
  }
  for (const d of [...dirs].sort()) await run('mmd', ['-i', image, `::/${d}`], { env });
  for (const [p, from] of Object.entries(files).sort()) {
    utimesSync(from, opts.epoch, opts.epoch);
    await run('mcopy', ['-m', '-i', image, from, `::/${p}`], { env });
  }
}

/** Writes a file into a scratch dir and returns its path (for ESP content made in memory). */
export function scratchFile(dir: string, name: string, content: string | Buffer): string {
  const p = join(dir, name);
  writeFileSync(p, content);
  return p;
}
