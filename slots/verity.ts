// dm-verity hash trees in pure TypeScript, byte-compatible with `veritysetup format` (cryptsetup 2.6):
// format version 1 (salt hashed first), sha256, 4096-byte data and hash blocks, with a superblock.
//
// On-disk hash area at `hashOffset` (cryptsetup lib/verity/verity.c, verity_hash.c; kernel dm-verity-target.c):
//   block 0          the 512-byte struct verity_sb, rest of the 4096-byte block zero
//   blocks 1..       the tree, the level nearest the root FIRST, level 0 (digests of data blocks) last.
// Each level packs 128 digests per 4096-byte block (32 bytes each, so no per-digest padding) and is
// zero-padded to a whole block. Levels are added until one block remains; the root hash is the digest
// of that block. One data block therefore has no tree at all: the root is the digest of the data block.
import { createHash, type Hash } from 'node:crypto';
import { closeSync, fstatSync, ftruncateSync, openSync, readSync, writeSync } from 'node:fs';
import { KeelError } from '../lib/errors.js';

/** Data and hash block size in bytes (the only size supported). */
export const VERITY_BLOCK = 4096;

/** What a dm-verity mapping needs besides the root hash. */
export interface VerityParams {
  /** Number of 4096-byte data blocks covered. */
  dataBlocks: number;
  /** Salt, hashed before every block (format version 1). */
  salt: Buffer;
  /** UUID stored in the superblock, 8-4-4-4-12 lowercase hex. */
  uuid: string;
  /** Byte offset of the hash area (the superblock) on the device; = dataBlocks * 4096. */
  hashOffset: number;
}

/** A built hash area and its root hash. */
export interface VerityResult extends VerityParams {
  /** Root hash, lowercase hex. */
  rootHash: string;
  /** The bytes to write at `hashOffset`: superblock block, then the tree. */
  hashArea: Buffer;
}

const DIGEST = 32; // sha256
const PER_BLOCK = VERITY_BLOCK / DIGEST; // 128 digests per hash block
const SB_SIZE = 512;
const SIGNATURE = Buffer.from('verity\0\0', 'latin1');
const ALGORITHM = 'sha256';
const MAX_SALT = 256;
const READ_CHUNK = 1024 * 1024; // multiple of VERITY_BLOCK
const UUID_RE = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;
const ROOT_RE = /^[0-9a-f]{64}$/;

/** Builds the hash area for `data` (length multiple of 4096). */
export function buildVerity(data: Buffer, opts: { salt: Buffer; uuid: string }): VerityResult {
  checkOpts('build verity hash tree', opts);
  if (data.length === 0 || data.length % VERITY_BLOCK !== 0) {
    throw new KeelError(
      'EVERITY',
      `cannot build verity hash tree: data size ${data.length} is not a positive multiple of ${VERITY_BLOCK}`,
    );
  }
  const hasher = new BlockHasher(opts.salt);
  const digests = Buffer.alloc((data.length / VERITY_BLOCK) * DIGEST);
  hasher.hashBlocks(data, digests, 0);
  return assemble(digests, opts, hasher);
}

/**
 * Appends the hash area to an image file whose current size is a multiple of 4096 (pads the file with
 * zeros to 4096 first if it is not, and says so in the result via dataBlocks). Returns the result; the
 * file then holds data + hash area. The data is read in 1 MiB pieces, never whole.
 */
export function appendVerity(file: string, opts: { salt: Buffer; uuid: string }): VerityResult {
  checkOpts(`append verity hash tree to ${file}`, opts);
  const fd = openFile(file, 'r+', 'append verity hash tree to');
  try {
    const size = fstatSync(fd).size;
    if (size === 0)
      throw new KeelError('EVERITY', `cannot append verity hash tree to ${file}: the file is empty`, { path: file });
    const aligned = Math.ceil(size / VERITY_BLOCK) * VERITY_BLOCK;
    if (aligned !== size) ftruncateSync(fd, aligned); // zero padding up to the next block
    const hasher = new BlockHasher(opts.salt);
    const result = assemble(hashFile(fd, aligned / VERITY_BLOCK, hasher), opts, hasher);
    writeAll(fd, result.hashArea, aligned);
    return result;
  } finally {
    closeSync(fd);
  }
}

/**
 * Parses the superblock at `buf` (4096 bytes or at least 512); throws a clear error if the signature,
 * version, algorithm or sizes are wrong.
 */
export function parseVeritySuperblock(buf: Buffer): {
  dataBlocks: number;
  salt: Buffer;
  uuid: string;
  dataBlockSize: number;
  hashBlockSize: number;
  algorithm: string;
} {
  const fail = (reason: string): never => {
    throw new KeelError('EVERITY', `cannot parse verity superblock: ${reason}`);
  };
  if (buf.length < SB_SIZE) fail(`need ${SB_SIZE} bytes, got ${buf.length}`);
  if (!buf.subarray(0, 8).equals(SIGNATURE))
    fail('no "verity" signature (not a verity hash area, or wrong hash offset)');
  const version = buf.readUInt32LE(8);
  if (version !== 1) fail(`unsupported superblock version ${version}`);
  const hashType = buf.readUInt32LE(12);
  if (hashType !== 1) fail(`unsupported hash type ${hashType} (only format 1 is supported)`);
  const algorithm = cString(buf.subarray(32, 64));
  if (algorithm !== ALGORITHM) fail(`unsupported algorithm ${JSON.stringify(algorithm)} (only ${ALGORITHM})`);
  const dataBlockSize = buf.readUInt32LE(64);
  const hashBlockSize = buf.readUInt32LE(68);
  if (dataBlockSize !== VERITY_BLOCK || hashBlockSize !== VERITY_BLOCK) {
    fail(`unsupported block sizes ${dataBlockSize}/${hashBlockSize} (only ${VERITY_BLOCK})`);
  }
  const blocks = buf.readBigUInt64LE(72);
  if (blocks === 0n || blocks > BigInt(Number.MAX_SAFE_INTEGER) / BigInt(VERITY_BLOCK))
    fail(`bad data block count ${blocks}`);
  const saltSize = buf.readUInt16LE(80);
  if (saltSize > MAX_SALT) fail(`salt size ${saltSize} exceeds ${MAX_SALT}`);
  return {
    dataBlocks: Number(blocks),
    salt: Buffer.from(buf.subarray(88, 88 + saltSize)),
    uuid: bytesToUuid(buf.subarray(16, 32)),
    dataBlockSize,
    hashBlockSize,
    algorithm,
  };
}

/**
 * Reads a file (or block device) holding data + hash area at `hashOffset`, recomputes the whole tree
 * from the data and compares it with both the stored tree and `rootHash`. Returns {ok: true} or
 * {ok:false, reason} naming the first bad data block (by index) or the bad hash area. Reads in a
 * streaming way (1 MiB pieces); only the tree (1/128 of the data) is held in memory.
 */
export function verifyVerity(
  file: string,
  hashOffset: number,
  rootHash: string,
): { ok: true } | { ok: false; reason: string } {
  const what = `verify ${file}`;
  if (!Number.isSafeInteger(hashOffset) || hashOffset <= 0 || hashOffset % VERITY_BLOCK !== 0) {
    throw new KeelError(
      'EVERITY',
      `cannot ${what}: hash offset ${hashOffset} is not a positive multiple of ${VERITY_BLOCK}`,
      { path: file },
    );
  }
  if (!ROOT_RE.test(rootHash))
    throw new KeelError('EVERITY', `cannot ${what}: root hash must be 64 lowercase hex digits`, { path: file });
  const fd = openFile(file, 'r', 'verify');
  try {
    return verifyOpen(fd, hashOffset, Buffer.from(rootHash, 'hex'));
  } finally {
    closeSync(fd);
  }
}

/**
 * The dm table line for the kernel:
 * `0 SECTORS verity 1 DEV DEV 4096 4096 DATA_BLOCKS HASH_START_BLOCK sha256 ROOT SALT`, where
 * HASH_START_BLOCK skips the superblock (hashOffset/4096 + 1) and an empty salt is written "-".
 */
export function verityTable(dev: string, p: VerityParams & { rootHash: string }): string {
  if (!ROOT_RE.test(p.rootHash))
    throw new KeelError('EVERITY', 'cannot make verity table: root hash must be 64 lowercase hex digits');
  if (!Number.isSafeInteger(p.dataBlocks) || p.dataBlocks <= 0 || p.hashOffset % VERITY_BLOCK !== 0) {
    throw new KeelError(
      'EVERITY',
      `cannot make verity table: bad data blocks ${p.dataBlocks} or hash offset ${p.hashOffset}`,
    );
  }
  const sectors = p.dataBlocks * (VERITY_BLOCK / 512);
  const hashStart = p.hashOffset / VERITY_BLOCK + 1;
  const salt = p.salt.length ? p.salt.toString('hex') : '-';
  return (
    `0 ${sectors} verity 1 ${dev} ${dev} ${VERITY_BLOCK} ${VERITY_BLOCK} ` +
    `${p.dataBlocks} ${hashStart} ${ALGORITHM} ${p.rootHash} ${salt}`
  );
}

/** Deterministic salt from a seed string (sha256 based) so builds are reproducible: 32 bytes. */
export function veritySaltFor(seed: string): Buffer {
  return createHash('sha256').update(`keel-verity-salt\0${seed}`).digest();
}

/**
 * Deterministic UUID from a seed string (sha256 based), marked as an RFC 9562 version 8 ("custom")
 * UUID; distinct from the salt of the same seed.
 */
export function verityUuidFor(seed: string): string {
  const b = createHash('sha256').update(`keel-verity-uuid\0${seed}`).digest().subarray(0, 16);
  b[6] = (b[6]! & 0x0f) | 0x80; // version 8
  b[8] = (b[8]! & 0x3f) | 0x80; // RFC variant
  return bytesToUuid(b);
}

// ---- internals ----

/** sha256(salt || block), with the salt absorbed once and the hash state copied per block. */
class BlockHasher {
  private readonly seeded: Hash;
  constructor(salt: Buffer) {
    this.seeded = createHash('sha256').update(salt);
  }
  hash(block: Buffer): Buffer {
    return this.seeded.copy().update(block).digest();
  }
  /** Hashes each 4096-byte block of `buf` into `out` from digest index `first`. */
  hashBlocks(buf: Buffer, out: Buffer, first: number): void {
    for (let off = 0, i = first; off < buf.length; off += VERITY_BLOCK, i++) {
      this.hash(buf.subarray(off, off + VERITY_BLOCK)).copy(out, i * DIGEST);
    }
  }
}

/** The tree above a run of digests: levels (level 0 first), each zero-padded to whole blocks, and the root. */
function buildTree(leafDigests: Buffer, hasher: BlockHasher): { levels: Buffer[]; root: Buffer } {
  const levels: Buffer[] = [];
  let digests = leafDigests;
  // Stop when one digest remains: it is the root (for one data block, that of the data itself).
  while (digests.length > DIGEST) {
    const level = Buffer.alloc(Math.ceil(digests.length / VERITY_BLOCK) * VERITY_BLOCK);
    digests.copy(level); // 128 digests fill a block exactly, so they lie back to back across blocks
    levels.push(level);
    digests = Buffer.alloc((level.length / VERITY_BLOCK) * DIGEST);
    hasher.hashBlocks(level, digests, 0);
  }
  return { levels, root: digests };
}

/** Sizes in blocks of each tree level (level 0 first) for `dataBlocks`, without hashing anything. */
function levelBlocks(dataBlocks: number): number[] {
  const sizes: number[] = [];
  for (let n = dataBlocks; n > 1;) {
    n = Math.ceil(n / PER_BLOCK);
    sizes.push(n);
  }
  return sizes;
}

/** Superblock block + tree (top level first) and the result record. */
function assemble(digests: Buffer, opts: { salt: Buffer; uuid: string }, hasher: BlockHasher): VerityResult {
  const dataBlocks = digests.length / DIGEST;
  const { levels, root } = buildTree(digests, hasher);
  const hashArea = Buffer.concat([superblock(dataBlocks, opts), ...levels.reverse()]);
  return {
    dataBlocks,
    salt: Buffer.from(opts.salt),
    uuid: opts.uuid,
    hashOffset: dataBlocks * VERITY_BLOCK,
    rootHash: root.toString('hex'),
    hashArea,
  };
}

/** struct verity_sb in a zeroed 4096-byte block. */
function superblock(dataBlocks: number, opts: { salt: Buffer; uuid: string }): Buffer {
  const sb = Buffer.alloc(VERITY_BLOCK);
  SIGNATURE.copy(sb, 0);
  sb.writeUInt32LE(1, 8); // superblock version
  sb.writeUInt32LE(1, 12); // hash type: 1 = normal (salt first)
  Buffer.from(opts.uuid.replace(/-/g, ''), 'hex').copy(sb, 16);
  sb.write(ALGORITHM, 32, 'latin1');
  sb.writeUInt32LE(VERITY_BLOCK, 64);
  sb.writeUInt32LE(VERITY_BLOCK, 68);
  sb.writeBigUInt64LE(BigInt(dataBlocks), 72);
  sb.writeUInt16LE(opts.salt.length, 80);
  opts.salt.copy(sb, 88);
  return sb;
}

/** Digests of the first `blocks` data blocks of an open file, read in 1 MiB pieces. */
function hashFile(fd: number, blocks: number, hasher: BlockHasher): Buffer {
  const digests = Buffer.alloc(blocks * DIGEST);
  const chunk = Buffer.alloc(READ_CHUNK);
  for (let block = 0; block < blocks;) {
    const want = Math.min(READ_CHUNK, (blocks - block) * VERITY_BLOCK);
    const piece = chunk.subarray(0, want);
    readExact(fd, piece, block * VERITY_BLOCK);
    hasher.hashBlocks(piece, digests, block);
    block += want / VERITY_BLOCK;
  }
  return digests;
}

/** The checks of verifyVerity on an open file: superblock, stored tree against the root, then data. */
function verifyOpen(fd: number, hashOffset: number, root: Buffer): { ok: true } | { ok: false; reason: string } {
  const st = fstatSync(fd);
  const size = st.isFile() ? st.size : Infinity; // block devices report size 0: let reads find the end
  if (hashOffset + VERITY_BLOCK > size)
    return { ok: false, reason: `hash area missing: nothing at offset ${hashOffset}` };
  const sbBlock = Buffer.alloc(VERITY_BLOCK);
  readExact(fd, sbBlock, hashOffset);
  let sb: ReturnType<typeof parseVeritySuperblock>;
  try {
    sb = parseVeritySuperblock(sbBlock);
  } catch (e) {
    return { ok: false, reason: `bad hash area superblock: ${(e as Error).message}` };
  }
  if (sb.dataBlocks * VERITY_BLOCK > hashOffset) {
    return {
      ok: false,
      reason: `bad hash area superblock: ${sb.dataBlocks} data blocks overlap the hash area at ${hashOffset}`,
    };
  }
  const sizes = levelBlocks(sb.dataBlocks);
  const treeBytes = sizes.reduce((a, n) => a + n, 0) * VERITY_BLOCK;
  if (hashOffset + VERITY_BLOCK + treeBytes > size)
    return { ok: false, reason: 'hash area truncated: the file ends inside the tree' };
  const stored = Buffer.alloc(treeBytes);
  readExact(fd, stored, hashOffset + VERITY_BLOCK);
  const hasher = new BlockHasher(sb.salt);
  // First the stored tree on its own, so that a bad hash block is not blamed on the data below it.
  const treeFault = checkStoredTree(stored, sizes, root, hasher);
  if (treeFault) return { ok: false, reason: treeFault };
  const digests = hashFile(fd, sb.dataBlocks, hasher);
  const level0 = sizes.length ? stored.subarray(treeBytes - sizes[0]! * VERITY_BLOCK) : root;
  for (let i = 0; i < sb.dataBlocks; i++) {
    const at = i * DIGEST;
    if (!digests.subarray(at, at + DIGEST).equals(level0.subarray(at, at + DIGEST))) {
      return { ok: false, reason: `data block ${i} (byte offset ${i * VERITY_BLOCK}) does not match its hash` };
    }
  }
  // Both agree with the root; finally the tree rebuilt from the data must equal the stored bytes exactly.
  const rebuilt = Buffer.concat(buildTree(digests, hasher).levels.reverse());
  return rebuilt.equals(stored)
    ? { ok: true }
    : { ok: false, reason: 'hash area differs from the tree rebuilt from the data (non-zero padding)' };
}

/** Checks each stored level hashes to the one above it and the top to `root`; returns a reason or ''. */
function checkStoredTree(stored: Buffer, sizes: number[], root: Buffer, hasher: BlockHasher): string {
  if (!sizes.length) return ''; // one data block: no tree, the root covers the data directly
  // Levels lie top first: offsets from the end of `stored` for level 0 upwards.
  let end = stored.length;
  const levels = sizes.map((n) => {
    const l = stored.subarray(end - n * VERITY_BLOCK, end);
    end -= n * VERITY_BLOCK;
    return l;
  });
  for (let lv = 0; lv < levels.length; lv++) {
    const level = levels[lv]!;
    const above = lv + 1 < levels.length ? levels[lv + 1]! : root;
    for (let b = 0; b < level.length / VERITY_BLOCK; b++) {
      const got = hasher.hash(level.subarray(b * VERITY_BLOCK, (b + 1) * VERITY_BLOCK));
      if (!got.equals(above.subarray(b * DIGEST, (b + 1) * DIGEST))) {
        return lv + 1 < levels.length
          ? `bad hash area: level ${lv} block ${b} does not match level ${lv + 1}`
          : 'root hash mismatch: the hash area does not hash to the given root hash ' +
              '(wrong root hash, or its top block is corrupt)';
      }
    }
  }
  return '';
}

function checkOpts(what: string, opts: { salt: Buffer; uuid: string }): void {
  if (!Buffer.isBuffer(opts.salt) || opts.salt.length > MAX_SALT) {
    throw new KeelError('EVERITY', `cannot ${what}: salt must be a Buffer of at most ${MAX_SALT} bytes`);
  }
  if (!UUID_RE.test(opts.uuid)) {
    throw new KeelError(
      'EVERITY',
      `cannot ${what}: uuid must be 8-4-4-4-12 lowercase hex, received ${JSON.stringify(opts.uuid)}`,
    );
  }
}

function openFile(file: string, flags: string, verb: string): number {
  try {
    return openSync(file, flags);
  } catch (e) {
    throw new KeelError('EVERITY', `cannot ${verb} ${file}: ${(e as Error).message}`, { path: file, cause: e });
  }
}

/** Fills `buf` from `pos`; a short read (file too small) is an error. */
function readExact(fd: number, buf: Buffer, pos: number): void {
  for (let got = 0; got < buf.length;) {
    const n = readSync(fd, buf, got, buf.length - got, pos + got);
    if (n === 0) throw new KeelError('EVERITY', `cannot read verity data: unexpected end of file at byte ${pos + got}`);
    got += n;
  }
}

function writeAll(fd: number, buf: Buffer, pos: number): void {
  for (let done = 0; done < buf.length;) done += writeSync(fd, buf, done, buf.length - done, pos + done);
}

function cString(b: Buffer): string {
  const nul = b.indexOf(0);
  return b.subarray(0, nul < 0 ? b.length : nul).toString('latin1');
}

function bytesToUuid(b: Buffer): string {
  const h = b.toString('hex');
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20, 32)}`;
}
