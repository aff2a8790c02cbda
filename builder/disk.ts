// The GPT disk: partitions laid out as Container Linux numbers them, images written sparsely.
import { closeSync, ftruncateSync, openSync, readSync, writeSync } from 'node:fs';
import { installBootCode, patchCoreImg } from './bios-boot.js';
import { buildGpt, layoutPartitions, type PartitionSpec, type Placement } from './gpt.js';
import {
  GPT_TYPE_BIOS_BOOT,
  GPT_TYPE_COREOS_RESIZE,
  GPT_TYPE_COREOS_USR,
  GPT_TYPE_EFI_SYSTEM,
  GPT_TYPE_LINUX_FILESYSTEM,
  deterministicGuid,
} from './guid.js';
import { BuildError } from './errors.js';

/** A partition of the Keel disk: table slot, label, and the image written into it (if any). */
export interface DiskPartition extends PartitionSpec {
  index: number;
  image?: string;
}

/** Keel's partitions in disk order (DESIGN.md), GUIDs derived from the seed. */
export function keelPartitions(
  sizes: { esp: number; biosBoot: number; usr: number; oem: number; root: number },
  seed: string,
): DiskPartition[] {
  const p = (index: number, name: string, typeGuid: string, sizeBytes: number): DiskPartition => ({
    index,
    name,
    typeGuid,
    sizeBytes,
    guid: deterministicGuid(seed, `partition:${name}`),
  });
  return [
    p(1, 'EFI-SYSTEM', GPT_TYPE_EFI_SYSTEM, sizes.esp),
    p(2, 'BIOS-BOOT', GPT_TYPE_BIOS_BOOT, sizes.biosBoot),
    p(3, 'USR-A', GPT_TYPE_COREOS_USR, sizes.usr),
    p(4, 'USR-B', GPT_TYPE_COREOS_USR, sizes.usr),
    p(6, 'OEM', GPT_TYPE_LINUX_FILESYSTEM, sizes.oem),
    p(9, 'ROOT', GPT_TYPE_COREOS_RESIZE, sizes.root),
  ];
}

const CHUNK = 1 << 20;

/** Copies `src` into `fd` at `offset`, skipping all-zero chunks so the output stays sparse. */
function copySparse(fd: number, src: string, offset: number, limit: number): number {
  const inFd = openSync(src, 'r');
  const buf = Buffer.alloc(CHUNK);
  let pos = 0;
  try {
    for (;;) {
      const n = readSync(inFd, buf, 0, CHUNK, pos);
      if (n === 0) break;
      if (pos + n > limit)
        throw new BuildError('ETOOBIG', `cannot write ${src}: ${pos + n} bytes do not fit the ${limit}-byte partition`);
      const chunk = buf.subarray(0, n);
      if (chunk.some((b) => b !== 0)) writeSync(fd, chunk, 0, n, offset + pos);
      pos += n;
    }
  } finally {
    closeSync(inFd);
  }
  return pos;
}

/** Writes the whole disk image: GPT (both copies), BIOS boot code, and every partition image. */
export function assembleDisk(
  out: string,
  parts: DiskPartition[],
  opts: { seed: string; bootImg: Buffer; coreImg: Buffer },
): (DiskPartition & Placement)[] {
  const { partitions, diskSizeBytes } = layoutPartitions(parts);
  const gpt = buildGpt({ diskSizeBytes, diskGuid: deterministicGuid(opts.seed, 'disk'), partitions });
  const bios = partitions.find((p) => p.name === 'BIOS-BOOT');
  if (!bios) throw new BuildError('BUG', 'BUG: no BIOS-BOOT partition in the layout');
  if (opts.coreImg.length > bios.sizeBytes)
    throw new BuildError(
      'ETOOBIG',
      `cannot fit GRUB core.img (${opts.coreImg.length} bytes) into BIOS-BOOT (${bios.sizeBytes} bytes)`,
    );
  const coreLba = bios.firstLba;
  const primary = Buffer.from(gpt.primary);
  installBootCode(primary.subarray(0, 512), opts.bootImg, coreLba).copy(primary, 0);
  const fd = openSync(out, 'w');
  try {
    ftruncateSync(fd, diskSizeBytes);
    writeSync(fd, primary, 0, primary.length, 0);
    writeSync(fd, gpt.backup, 0, gpt.backup.length, gpt.backupOffsetBytes);
    const core = patchCoreImg(opts.coreImg, coreLba);
    writeSync(fd, core, 0, core.length, bios.offsetBytes);
    for (const p of partitions) if (p.image) copySparse(fd, p.image, p.offsetBytes, p.sizeBytes);
  } finally {
    closeSync(fd);
  }
  return partitions;
}
