// GUID partition tables as bytes: lay partitions out, build both tables, read them back, grow the disk.
import { crc32 } from 'node:zlib';
import { BuildError } from './errors.js';
import { bytesToGuid, guidToBytes, isGuid, GUID_ZERO } from './guid.js';

const MIB = 1024 * 1024;
const ENTRY_COUNT = 128;
const ENTRY_SIZE = 128;
const HEADER_SIZE = 92;
const NAME_UNITS = 36; // 72 bytes of UTF-16LE per entry
const U64_MAX = (1n << 64n) - 1n;

/** A partition to place on the disk; extra fields (such as `index`) pass through layout untouched. */
export interface PartitionSpec {
  name: string;
  typeGuid: string;
  guid: string;
  sizeBytes: number;
  attributes?: bigint;
  index?: number;
}
/** Where layoutPartitions put a partition, in sectors and in bytes. */
export interface Placement {
  firstLba: bigint;
  lastLba: bigint;
  offsetBytes: number;
  sizeBytes: number;
}
/** One table entry for buildGpt; `index` is the 1-based table slot, so numbering may have gaps. */
export interface GptPartition {
  index: number;
  name: string;
  typeGuid: string;
  guid: string;
  firstLba: bigint;
  lastLba: bigint;
  attributes?: bigint;
}
/** A GPT as parseGpt reads it from a disk's first sectors. */
export interface ParsedGpt {
  diskGuid: string;
  partitions: Required<GptPartition>[];
  backupLba: bigint;
  firstUsableLba: bigint;
  lastUsableLba: bigint;
}
/** The bytes to write: `primary` at offset 0, `backup` at `backupOffsetBytes`. */
export interface GptImage {
  primary: Buffer;
  backup: Buffer;
  backupOffsetBytes: number;
}

/** Places partitions in list order from 1 MiB, each start aligned, and sizes the disk to fit the backup GPT. */
export function layoutPartitions<T extends PartitionSpec>(
  specs: T[],
  { alignBytes = MIB, sectorSize = 512 }: { alignBytes?: number; sectorSize?: number } = {},
): { partitions: (T & Placement)[]; diskSizeBytes: number } {
  checkSectorSize(sectorSize);
  if (!Number.isSafeInteger(alignBytes) || alignBytes <= 0 || alignBytes % sectorSize !== 0) {
    throw new TypeError(
      `cannot lay out partitions: alignBytes must be a positive multiple of ${sectorSize}, received ${alignBytes}`,
    );
  }
  let offset = alignUp(MIB, alignBytes);
  const partitions = specs.map((spec) => {
    const { sizeBytes } = spec;
    if (!Number.isSafeInteger(sizeBytes) || sizeBytes <= 0 || sizeBytes % sectorSize !== 0) {
      throw new TypeError(
        `cannot lay out partition ${JSON.stringify(spec.name)}: sizeBytes must be a ` +
          `positive multiple of ${sectorSize}, received ${sizeBytes}`,
      );
    }
    const offsetBytes = alignUp(offset, alignBytes);
    offset = offsetBytes + sizeBytes;
    const firstLba = BigInt(offsetBytes / sectorSize);
    return { ...spec, firstLba, lastLba: firstLba + BigInt(sizeBytes / sectorSize) - 1n, offsetBytes, sizeBytes };
  });
  const diskSizeBytes = alignUp(offset + (entrySectors(sectorSize) + 1) * sectorSize, alignBytes);
  return { partitions, diskSizeBytes };
}

/** Builds the protective MBR, primary and backup GPT headers and entry arrays for a disk. */
export function buildGpt({
  diskSizeBytes,
  diskGuid,
  partitions,
  sectorSize = 512,
}: {
  diskSizeBytes: number;
  diskGuid: string;
  partitions: GptPartition[];
  sectorSize?: number;
}): GptImage {
  if (!isGuid(diskGuid))
    throw new TypeError(`cannot build GPT: diskGuid must be a GUID, received ${JSON.stringify(diskGuid)}`);
  const { total, firstUsable, lastUsable, es } = geometry('build GPT', diskSizeBytes, sectorSize);
  const entries = encodeEntries(partitions, firstUsable, lastUsable, es * sectorSize);
  const header = Buffer.alloc(sectorSize);
  header.write('EFI PART', 0, 'latin1');
  header.writeUInt32LE(0x00010000, 8); // revision 1.0
  header.writeUInt32LE(HEADER_SIZE, 12); // HeaderSize; HeaderCRC32 at 16 is set by sealHeader
  header.writeBigUInt64LE(1n, 24); // MyLBA
  header.writeBigUInt64LE(total - 1n, 32); // AlternateLBA: the backup header
  header.writeBigUInt64LE(firstUsable, 40); // FirstUsableLBA
  header.writeBigUInt64LE(lastUsable, 48); // LastUsableLBA
  guidToBytes(diskGuid).copy(header, 56); // DiskGUID
  header.writeBigUInt64LE(2n, 72); // PartitionEntryLBA
  header.writeUInt32LE(ENTRY_COUNT, 80);
  header.writeUInt32LE(ENTRY_SIZE, 84);
  header.writeUInt32LE(crc32(entries.subarray(0, ENTRY_COUNT * ENTRY_SIZE)), 88); // PartitionEntryArrayCRC32
  sealHeader(header);
  const mbr = Buffer.alloc(sectorSize);
  writeProtectiveMbr(mbr, total);
  return withBackup(Buffer.concat([mbr, header, entries]), total, sectorSize);
}

/** Reads and verifies the primary GPT (signature, header CRC32, entry-array CRC32) from a disk's first sectors. */
export function parseGpt(disk: Buffer, sectorSize = 512): ParsedGpt {
  checkSectorSize(sectorSize);
  if (!Buffer.isBuffer(disk)) throw new TypeError(`cannot parse GPT: expected a Buffer, received ${typeof disk}`);
  if (disk.length < 2 * sectorSize) fail(`need at least ${2 * sectorSize} bytes, received ${disk.length}`);
  const h = disk.subarray(sectorSize, 2 * sectorSize);
  if (h.toString('latin1', 0, 8) !== 'EFI PART') fail(`no "EFI PART" signature at LBA 1`);
  const headerSize = h.readUInt32LE(12);
  if (headerSize < HEADER_SIZE || headerSize > sectorSize)
    fail(`header size ${headerSize} is outside ${HEADER_SIZE}..${sectorSize}`);
  const stored = h.readUInt32LE(16);
  const copy = Buffer.from(h.subarray(0, headerSize));
  copy.writeUInt32LE(0, 16);
  if (crc32(copy) !== stored) fail(`header CRC32 mismatch (stored ${hex32(stored)}, computed ${hex32(crc32(copy))})`);
  if (h.readBigUInt64LE(24) !== 1n) fail(`primary header claims to be at LBA ${h.readBigUInt64LE(24)}, not 1`);
  const entryLba = h.readBigUInt64LE(72);
  const count = h.readUInt32LE(80);
  const size = h.readUInt32LE(84);
  if (size < ENTRY_SIZE || size % 8 !== 0 || count * size > 4 * MIB)
    fail(`unsupported entry array (${count} entries of ${size} bytes)`);
  const start = Number(entryLba) * sectorSize;
  if (disk.length < start + count * size)
    fail(`need ${start + count * size} bytes to read the entry array, received ${disk.length}`);
  const array = disk.subarray(start, start + count * size);
  if (crc32(array) !== h.readUInt32LE(88))
    fail(`entry array CRC32 mismatch (stored ${hex32(h.readUInt32LE(88))}, computed ${hex32(crc32(array))})`);
  const partitions: Required<GptPartition>[] = [];
  for (let i = 0; i < count; i++) {
    const e = array.subarray(i * size, (i + 1) * size);
    const typeGuid = bytesToGuid(e.subarray(0, 16));
    if (typeGuid === GUID_ZERO) continue;
    const raw = e.toString('utf16le', 56, 128);
    const nul = raw.indexOf('\0');
    partitions.push({
      index: i + 1,
      name: nul < 0 ? raw : raw.slice(0, nul),
      typeGuid,
      guid: bytesToGuid(e.subarray(16, 32)),
      firstLba: e.readBigUInt64LE(32),
      lastLba: e.readBigUInt64LE(40),
      attributes: e.readBigUInt64LE(48),
    });
  }
  return {
    diskGuid: bytesToGuid(h.subarray(56, 72)),
    partitions,
    backupLba: h.readBigUInt64LE(32),
    firstUsableLba: h.readBigUInt64LE(40),
    lastUsableLba: h.readBigUInt64LE(48),
  };
}

/** Rewrites a primary GPT for a disk grown (or shrunk) to newDiskSizeBytes and builds the backup for its new end. */
export function relocateBackup(primary: Buffer, newDiskSizeBytes: number, sectorSize = 512): GptImage {
  const parsed = parseGpt(primary, sectorSize);
  const { total, lastUsable, es } = geometry('relocate backup GPT', newDiskSizeBytes, sectorSize);
  for (const p of parsed.partitions) {
    if (p.lastLba > lastUsable)
      throw new BuildError(
        'EGPT',
        `cannot relocate backup GPT: partition ${p.index} ends at LBA ` +
          `${p.lastLba}, past the last usable LBA ${lastUsable}`,
      );
  }
  const h = primary.subarray(sectorSize, 2 * sectorSize);
  if (h.readBigUInt64LE(72) !== 2n || h.readUInt32LE(80) !== ENTRY_COUNT || h.readUInt32LE(84) !== ENTRY_SIZE) {
    throw new BuildError(
      'EGPT',
      `cannot relocate backup GPT: only ${ENTRY_COUNT} entries of ${ENTRY_SIZE} bytes at LBA 2 are supported`,
    );
  }
  const out = Buffer.from(primary.subarray(0, (2 + es) * sectorSize));
  const header = out.subarray(sectorSize, 2 * sectorSize);
  header.writeBigUInt64LE(total - 1n, 32);
  header.writeBigUInt64LE(lastUsable, 48);
  sealHeader(header);
  // Why: libfdisk reports "GPT PMBR size mismatch" when the protective partition no longer covers
  // the disk (sfdisk --relocate rewrites it too); boot code before offset 440 is kept as is.
  if (out[450] === 0xee && out.readUInt32LE(454) === 1) out.writeUInt32LE(pmbrSectors(total), 458);
  return withBackup(out, total, sectorSize);
}

// Number of sectors holding the 128 x 128-byte entry array.
function entrySectors(sectorSize: number): number {
  return Math.ceil((ENTRY_COUNT * ENTRY_SIZE) / sectorSize);
}

// Sector count and usable range of a disk of `bytes`, checked to hold both tables.
function geometry(verb: string, bytes: number, sectorSize: number) {
  checkSectorSize(sectorSize);
  const es = entrySectors(sectorSize);
  if (!Number.isSafeInteger(bytes) || bytes % sectorSize !== 0 || bytes / sectorSize < 2 * es + 4) {
    throw new TypeError(
      `cannot ${verb}: disk size must be a multiple of ${sectorSize} holding both tables, received ${bytes}`,
    );
  }
  const total = BigInt(bytes / sectorSize);
  return { total, es, firstUsable: BigInt(2 + es), lastUsable: total - 2n - BigInt(es) };
}

// Encodes entries into table slots, checking slots, GUIDs, names and bounds.
function encodeEntries(partitions: GptPartition[], firstUsable: bigint, lastUsable: bigint, bytes: number): Buffer {
  const out = Buffer.alloc(bytes);
  const used = [...partitions].sort((a, b) => (a.firstLba < b.firstLba ? -1 : a.firstLba > b.firstLba ? 1 : 0));
  const slots = new Set<number>();
  for (const [i, p] of used.entries()) {
    const what = `partition ${JSON.stringify(p.name)}`;
    if (!Number.isInteger(p.index) || p.index < 1 || p.index > ENTRY_COUNT)
      throw new TypeError(`cannot build GPT: ${what} needs index 1..${ENTRY_COUNT}, received ${p.index}`);
    if (slots.has(p.index)) throw new TypeError(`cannot build GPT: index ${p.index} is used twice`);
    slots.add(p.index);
    if (!isGuid(p.typeGuid) || p.typeGuid === GUID_ZERO)
      throw new TypeError(
        `cannot build GPT: ${what} needs a non-zero typeGuid, received ${JSON.stringify(p.typeGuid)}`,
      );
    if (!isGuid(p.guid))
      throw new TypeError(`cannot build GPT: ${what} needs a GUID, received ${JSON.stringify(p.guid)}`);
    if (typeof p.name !== 'string' || p.name.length > NAME_UNITS || p.name.includes('\0'))
      throw new TypeError(
        `cannot build GPT: name must be at most ${NAME_UNITS} UTF-16 units ` +
          `without NUL, received ${JSON.stringify(p.name)}`,
      );
    if (
      typeof p.firstLba !== 'bigint' ||
      typeof p.lastLba !== 'bigint' ||
      p.firstLba < firstUsable ||
      p.lastLba > lastUsable ||
      p.firstLba > p.lastLba
    ) {
      throw new TypeError(
        `cannot build GPT: ${what} spans LBA ${p.firstLba}..${p.lastLba}, ` +
          `outside the usable ${firstUsable}..${lastUsable}`,
      );
    }
    const prev = used[i - 1];
    if (prev && prev.lastLba >= p.firstLba)
      throw new TypeError(`cannot build GPT: ${what} overlaps ${JSON.stringify(prev.name)}`);
    const attributes = p.attributes ?? 0n;
    if (typeof attributes !== 'bigint' || attributes < 0n || attributes > U64_MAX)
      throw new TypeError(`cannot build GPT: ${what} attributes must be a u64 bigint, received ${String(attributes)}`);
    const e = out.subarray((p.index - 1) * ENTRY_SIZE, p.index * ENTRY_SIZE);
    guidToBytes(p.typeGuid).copy(e, 0);
    guidToBytes(p.guid).copy(e, 16);
    e.writeBigUInt64LE(p.firstLba, 32);
    e.writeBigUInt64LE(p.lastLba, 40);
    e.writeBigUInt64LE(attributes, 48);
    e.write(p.name, 56, 'utf16le');
  }
  return out;
}

// Makes the backup (entries, then a header pointing back at LBA 1) from a finished primary.
function withBackup(primary: Buffer, total: bigint, sectorSize: number): GptImage {
  const es = entrySectors(sectorSize);
  const header = Buffer.from(primary.subarray(sectorSize, 2 * sectorSize));
  header.writeBigUInt64LE(total - 1n, 24);
  header.writeBigUInt64LE(1n, 32);
  header.writeBigUInt64LE(total - 1n - BigInt(es), 72);
  sealHeader(header);
  const backup = Buffer.concat([primary.subarray(2 * sectorSize, (2 + es) * sectorSize), header]);
  return { primary, backup, backupOffsetBytes: Number(total - 1n - BigInt(es)) * sectorSize };
}

// Recomputes the header CRC32 over the header size it declares, with the CRC field zeroed.
function sealHeader(header: Buffer): void {
  header.writeUInt32LE(0, 16);
  header.writeUInt32LE(crc32(header.subarray(0, header.readUInt32LE(12))), 16);
}

// One 0xEE partition from LBA 1 over the disk, as UEFI 2.x section 5.2.3 asks, so MBR-only tools keep off.
function writeProtectiveMbr(mbr: Buffer, total: bigint): void {
  Buffer.from([0x00, 0x00, 0x02, 0x00, 0xee, 0xff, 0xff, 0xff]).copy(mbr, 446); // status, CHS 0/0/2, type, CHS max
  mbr.writeUInt32LE(1, 454);
  mbr.writeUInt32LE(pmbrSectors(total), 458);
  mbr[510] = 0x55;
  mbr[511] = 0xaa;
}

function checkSectorSize(sectorSize: number): void {
  if (![512, 1024, 2048, 4096].includes(sectorSize))
    throw new TypeError(`cannot use sector size: expected 512, 1024, 2048 or 4096, received ${sectorSize}`);
}

function alignUp(n: number, align: number): number {
  return Math.ceil(n / align) * align;
}

// Why: the MBR's 32-bit size field saturates at 0xFFFFFFFF for disks past 2 TiB (UEFI 2.x 5.2.3).
function pmbrSectors(total: bigint): number {
  return Number(total - 1n < 0xffffffffn ? total - 1n : 0xffffffffn);
}

function hex32(n: number): string {
  return `0x${n.toString(16).padStart(8, '0')}`;
}

function fail(reason: string): never {
  throw new BuildError('EGPT', `cannot parse GPT: ${reason}`);
}
