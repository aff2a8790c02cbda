// BIOS boot without grub-install: patch GRUB's i386-pc boot.img into the MBR and point core.img at itself.
//
// Offsets come from GRUB 2.06 include/grub/i386/pc/boot.h and grub-core/boot/i386/pc/boot.S, diskboot.S:
//   boot.S   GRUB_BOOT_MACHINE_KERNEL_SECTOR = 0x5c: u64 LBA of core.img's first sector (diskboot)
//   boot.S   GRUB_BOOT_MACHINE_WINDOWS_NT_MAGIC = 0x1b8 (440): the MBR's own data starts here
//   diskboot.S the first blocklist sits at the end of core.img's first sector,
//            at 0x200 - GRUB_BOOT_MACHINE_LIST_SIZE (12) = 0x1f4 (500):
//            u64 start sector, u16 sector count, u16 load segment (GRUB_BOOT_MACHINE_KERNEL_SEG + 0x20)
import { BuildError } from './errors.js';

const SECTOR = 512;
/** Where boot.S reads the LBA of core.img's first sector (u64 LE). */
export const KERNEL_SECTOR_OFFSET = 0x5c;
/** boot.S's GRUB_BOOT_MACHINE_DRIVE_CHECK: a 2-byte jmp grub-setup replaces with NOPs on hard disks. */
export const BOOT_DRIVE_CHECK = 0x66;
/** End of boot code in the MBR: disk signature, partition table and 0x55AA follow. */
export const MBR_CODE_END = 440;
/** Where diskboot.S keeps its first blocklist entry: start (u64 LE), then length (u16 LE) at 508. */
export const BLOCKLIST_OFFSET = 0x1f4;
/** The load segment diskboot.S ships in its first blocklist entry (0x800 + 0x20). */
export const DISKBOOT_LOAD_SEGMENT = 0x0820;

/** Copies boot.img's code into an MBR sector (keeping its partition table) and points it at core.img. */
export function installBootCode(mbrSector: Buffer, bootImg: Buffer, coreLba: bigint): Buffer {
  if (!Buffer.isBuffer(mbrSector) || mbrSector.length !== SECTOR) {
    throw new TypeError(
      `cannot install boot code: mbrSector must be a ${SECTOR}-byte Buffer, received ${sizeOf(mbrSector)}`,
    );
  }
  if (!Buffer.isBuffer(bootImg) || bootImg.length !== SECTOR) {
    throw new TypeError(
      `cannot install boot code: bootImg must be GRUB's ${SECTOR}-byte boot.img, received ${sizeOf(bootImg)}`,
    );
  }
  if (bootImg[510] !== 0x55 || bootImg[511] !== 0xaa) {
    throw new BuildError('EBIOSBOOT', 'cannot install boot code: boot.img does not end in the 0x55AA boot signature');
  }
  checkLba('install boot code', coreLba);
  const out = Buffer.from(mbrSector);
  // Why only 0..439: boot.img's tail overlaps the MBR's disk signature and partition table (its
  // floppy-probe code lives there), and the protective 0xEE entry must survive for GPT.
  bootImg.copy(out, 0, 0, MBR_CODE_END);
  out.writeBigUInt64LE(coreLba, KERNEL_SECTOR_OFFSET);
  // Why: some BIOSes pass 0x00/0x01 instead of 0x80 as the boot drive; grub-install (grub-setup)
  // turns boot.S's drive-check jump at 0x66 into two NOPs for hard disks, so the code falls
  // through to forcing 0x80. Do the same.
  if (out[BOOT_DRIVE_CHECK] === 0xeb) {
    out[BOOT_DRIVE_CHECK] = 0x90;
    out[BOOT_DRIVE_CHECK + 1] = 0x90;
  }
  // Why: the BIOS only boots a sector that ends in 0x55AA; a fresh sector would not have it yet.
  out[510] = 0x55;
  out[511] = 0xaa;
  return out;
}

/** Sets core.img's first blocklist entry so diskboot loads the rest of core.img from coreLba + 1. */
export function patchCoreImg(coreImg: Buffer, coreLba: bigint): Buffer {
  if (!Buffer.isBuffer(coreImg))
    throw new TypeError(`cannot patch core.img: expected a Buffer, received ${sizeOf(coreImg)}`);
  checkLba('patch core.img', coreLba);
  if (coreImg.length <= SECTOR) {
    throw new BuildError(
      'EBIOSBOOT',
      `cannot patch core.img: ${coreImg.length} bytes is too small for GRUB's diskboot plus a kernel`,
    );
  }
  const segment = coreImg.readUInt16LE(BLOCKLIST_OFFSET + 10);
  if (segment !== DISKBOOT_LOAD_SEGMENT) {
    throw new BuildError(
      'EBIOSBOOT',
      `cannot patch core.img: no diskboot blocklist at offset ${BLOCKLIST_OFFSET} ` +
        `(load segment 0x${segment.toString(16)}, expected 0x820)`,
    );
  }
  // Why: diskboot.S walks blocklists downwards from 0x1f4 until one has length 0; the single entry
  // we write must be followed by that terminator or diskboot reads garbage sectors.
  if (coreImg.readUInt16LE(BLOCKLIST_OFFSET - 12 + 8) !== 0) {
    throw new BuildError(
      'EBIOSBOOT',
      `cannot patch core.img: the blocklist entry below offset ${BLOCKLIST_OFFSET} is not the empty terminator`,
    );
  }
  const rest = Math.ceil(coreImg.length / SECTOR) - 1;
  // Why: diskboot.S reads the length as a u16, and real-mode loading below 640 KiB caps it anyway.
  if (rest > 0xffff)
    throw new BuildError('EBIOSBOOT', `cannot patch core.img: ${rest} sectors do not fit the u16 blocklist length`);
  const out = Buffer.from(coreImg);
  out.writeBigUInt64LE(coreLba + 1n, BLOCKLIST_OFFSET);
  out.writeUInt16LE(rest, BLOCKLIST_OFFSET + 8);
  return out;
}

function checkLba(verb: string, lba: bigint): void {
  if (typeof lba !== 'bigint' || lba < 1n || lba >= (1n << 64n) - 1n) {
    throw new TypeError(`cannot ${verb}: coreLba must be a bigint LBA >= 1, received ${String(lba)}`);
  }
}

function sizeOf(value: unknown): string {
  return Buffer.isBuffer(value) ? `${value.length} bytes` : typeof value;
}
