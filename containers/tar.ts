// Tar for container images: a streaming reader (ustar, GNU long names/links, PAX), a safe
// unpacker for image layers and archives, a writer (`writeTar`, `packDir`) and layer
// decompression (`openLayer`).
//
// Host tools needed by the unpacker (it runs as root): `mknod` (coreutils) for overlayfs
// whiteouts (character device 0:0) and `setfattr` (Debian package `attr`) for opaque directories
// (xattr trusted.overlay.opaque=y). `packDir` with `whiteouts` uses `getfattr` (same package).
import { execFileSync, spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import { join, posix, resolve } from 'node:path';
import { Readable, pipeline } from 'node:stream';
import * as zlib from 'node:zlib';
import { ContainerError } from './errors.js';

export type EntryType = 'file' | 'dir' | 'symlink' | 'hardlink' | 'char' | 'block' | 'fifo';

export interface TarHeader {
  /** The path as stored (PAX `path` or GNU long name applied), not normalised. */
  name: string;
  type: EntryType;
  mode: number;
  uid: number;
  gid: number;
  size: number;
  /** Seconds since the epoch; fractional when a PAX header says so. */
  mtime: number;
  linkname: string;
  uname: string;
  gname: string;
  devmajor: number;
  devminor: number;
}

export interface TarEntry extends TarHeader {
  /** The data of a `file` entry; readable only until the next entry is asked for. */
  body: AsyncIterable<Buffer>;
}

const BLOCK = 512;
/** Long names, link names and PAX headers larger than this are refused (they live in memory). */
const MAX_META_SIZE = 1 << 20;
const EMPTY_BODY: AsyncIterable<Buffer> = { async *[Symbol.asyncIterator]() {} };

// ---------------------------------------------------------------------------------------------
// Reading

/** Bytes of an async stream, read by exact counts or as they come. */
class ByteSource {
  private chunks: Buffer[] = [];
  private length = 0;
  private ended = false;
  private readonly it: AsyncIterator<Buffer | string>;
  offset = 0;

  constructor(input: AsyncIterable<Buffer | string>) {
    this.it = input[Symbol.asyncIterator]();
  }

  private async fill(): Promise<boolean> {
    if (this.ended) return false;
    const r = await this.it.next();
    if (r.done) {
      this.ended = true;
      return false;
    }
    const b = typeof r.value === 'string' ? Buffer.from(r.value) : r.value;
    if (b.length > 0) {
      this.chunks.push(b);
      this.length += b.length;
    }
    return true;
  }

  /** Exactly n bytes, or null when the stream ended before any of them. */
  async read(n: number): Promise<Buffer | null> {
    if (n === 0) return Buffer.alloc(0);
    while (this.length < n) {
      if (await this.fill()) continue;
      if (this.length === 0) return null;
      throw truncated(this.offset + this.length);
    }
    return this.take(n);
  }

  /** Between 1 and n bytes, as they arrive. */
  async readSome(n: number): Promise<Buffer> {
    while (this.length === 0) if (!(await this.fill())) throw truncated(this.offset);
    return this.take(Math.min(n, this.chunks[0].length));
  }

  async skip(n: number): Promise<void> {
    while (n > 0) n -= (await this.readSome(n)).length;
  }

  /** Reads the stream to its end, so that whoever watches it (a hash) sees every byte. */
  async drain(): Promise<void> {
    this.chunks = [];
    this.length = 0;
    while (await this.fill()) {
      this.chunks = [];
      this.length = 0;
    }
  }

  private take(n: number): Buffer {
    this.offset += n;
    this.length -= n;
    const first = this.chunks[0];
    if (first.length > n) {
      this.chunks[0] = first.subarray(n);
      return first.subarray(0, n);
    }
    if (first.length === n) return this.chunks.shift()!;
    const out = Buffer.allocUnsafe(n);
    let at = 0;
    while (at < n) {
      const c = this.chunks[0];
      const k = Math.min(c.length, n - at);
      c.copy(out, at, 0, k);
      at += k;
      if (k === c.length) this.chunks.shift();
      else this.chunks[0] = c.subarray(k);
    }
    return out;
  }
}

function truncated(offset: number): ContainerError {
  return new ContainerError('EFORMAT', `cannot read tar: unexpected end of archive at byte ${offset}`);
}

function badHeader(offset: number, reason: string): ContainerError {
  return new ContainerError('EFORMAT', `cannot read tar header at byte ${offset}: ${reason}`);
}

interface Pax {
  path?: string;
  linkpath?: string;
  size?: number;
  mtime?: number;
  uid?: number;
  gid?: number;
  uname?: string;
  gname?: string;
}

/**
 * The entries of a tar stream, in order. Each entry's body must be read (or is skipped) before
 * the next one is produced. Reads the input to its very end, trailing zero blocks included.
 */
export async function* readTar(input: AsyncIterable<Buffer | string>): AsyncGenerator<TarEntry> {
  const src = new ByteSource(input);
  let globalPax: Pax = {};
  let pax: Pax = {};
  let longName: string | undefined;
  let longLink: string | undefined;

  for (;;) {
    const at = src.offset;
    const block = await src.read(BLOCK);
    if (block === null) break; // no end-of-archive blocks: tolerated, as GNU tar does
    if (isZeroBlock(block)) {
      await src.drain();
      break;
    }
    const raw = parseHeader(block, at);
    const size = pax.size ?? globalPax.size ?? raw.size;
    const padding = (BLOCK - (size % BLOCK)) % BLOCK;

    if (raw.flag === 'L' || raw.flag === 'K' || raw.flag === 'x' || raw.flag === 'g') {
      if (raw.size > MAX_META_SIZE) throw badHeader(at, `extended header of ${raw.size} bytes is too large`);
      const data = (await src.read(raw.size)) ?? Buffer.alloc(0);
      if (data.length < raw.size) throw truncated(src.offset);
      await src.skip((BLOCK - (raw.size % BLOCK)) % BLOCK);
      if (raw.flag === 'L') longName = cString(data);
      else if (raw.flag === 'K') longLink = cString(data);
      else if (raw.flag === 'x') pax = { ...pax, ...parsePax(data, at) };
      else globalPax = { ...globalPax, ...parsePax(data, at) };
      continue;
    }

    const merged: Pax = { ...globalPax, ...pax };
    const name = merged.path ?? longName ?? raw.name;
    const type = entryType(raw.flag, name, at);
    const header: TarHeader = {
      name,
      type,
      mode: raw.mode,
      uid: merged.uid ?? raw.uid,
      gid: merged.gid ?? raw.gid,
      size: type === 'file' ? size : 0,
      mtime: merged.mtime ?? raw.mtime,
      linkname: merged.linkpath ?? longLink ?? raw.linkname,
      uname: merged.uname ?? raw.uname,
      gname: merged.gname ?? raw.gname,
      devmajor: raw.devmajor,
      devminor: raw.devminor,
    };
    pax = {};
    longName = undefined;
    longLink = undefined;

    if (raw.flag === 'V') {
      await src.skip(size + padding);
      continue;
    }
    // Only files carry data for the caller; any other entry's data (a GNU dumpdir) is skipped.
    const state = { remaining: size, current: true };
    const body: AsyncIterable<Buffer> =
      type === 'file' ? { [Symbol.asyncIterator]: () => bodyChunks(src, state, name) } : EMPTY_BODY;
    yield { ...header, body };
    state.current = false;
    await src.skip(state.remaining + padding);
  }
}

async function* bodyChunks(src: ByteSource, state: { remaining: number; current: boolean }, name: string): AsyncGenerator<Buffer> {
  while (state.remaining > 0) {
    if (!state.current) throw new Error(`tar entry ${name} was read after the next entry was asked for`);
    const chunk = await src.readSome(Math.min(state.remaining, 1 << 20));
    state.remaining -= chunk.length;
    yield chunk;
  }
}

function isZeroBlock(b: Buffer): boolean {
  for (let i = 0; i < b.length; i++) if (b[i] !== 0) return false;
  return true;
}

/** A header block's fields as stored: the raw typeflag, no PAX record or GNU long name applied. */
type RawHeader = Omit<TarHeader, 'type'> & { flag: string };

function parseHeader(b: Buffer, at: number): RawHeader {
  checkChecksum(b, at);
  const magic = b.toString('latin1', 257, 263);
  const posixUstar = magic === 'ustar\0';
  const name = cString(b.subarray(0, 100));
  const prefix = posixUstar ? cString(b.subarray(345, 500)) : '';
  const num = (start: number, len: number, what: string): number => parseNumber(b.subarray(start, start + len), at, what);
  return {
    name: prefix ? `${prefix}/${name}` : name,
    flag: b[156] === 0 ? '0' : String.fromCharCode(b[156]),
    mode: num(100, 8, 'mode') & 0o7777,
    uid: num(108, 8, 'uid'),
    gid: num(116, 8, 'gid'),
    size: num(124, 12, 'size'),
    mtime: num(136, 12, 'mtime'),
    linkname: cString(b.subarray(157, 257)),
    uname: cString(b.subarray(265, 297)),
    gname: cString(b.subarray(297, 329)),
    devmajor: num(329, 8, 'devmajor'),
    devminor: num(337, 8, 'devminor'),
  };
}

function checkChecksum(b: Buffer, at: number): void {
  const stored = parseNumber(b.subarray(148, 156), at, 'checksum');
  let unsigned = 0;
  let signed = 0;
  for (let i = 0; i < BLOCK; i++) {
    const v = i >= 148 && i < 156 ? 0x20 : b[i];
    unsigned += v;
    signed += v > 127 ? v - 256 : v;
  }
  if (stored !== unsigned && stored !== signed) throw badHeader(at, `checksum mismatch (not a tar archive?)`);
}

/** Octal, or GNU base-256 for values that do not fit (high bit of the first byte set). */
function parseNumber(field: Buffer, at: number, what: string): number {
  if (field.length > 0 && field[0] & 0x80) {
    if (field[0] === 0xff) throw badHeader(at, `negative ${what}`);
    let v = field[0] & 0x7f;
    for (let i = 1; i < field.length; i++) v = v * 256 + field[i];
    if (!Number.isSafeInteger(v)) throw badHeader(at, `${what} is too large`);
    return v;
  }
  const s = cString(field, 'latin1').trim();
  if (s === '') return 0;
  if (!/^[0-7]+$/.test(s)) throw badHeader(at, `${what} field "${s}" is not octal`);
  return parseInt(s, 8);
}

function cString(b: Buffer, encoding: BufferEncoding = 'utf8'): string {
  const nul = b.indexOf(0);
  return b.toString(encoding, 0, nul < 0 ? b.length : nul);
}

function entryType(flag: string, name: string, at: number): EntryType {
  switch (flag) {
    case '0':
    case '7':
      return name.endsWith('/') ? 'dir' : 'file'; // old archives mark directories by the slash only
    case '1':
      return 'hardlink';
    case '2':
      return 'symlink';
    case '3':
      return 'char';
    case '4':
      return 'block';
    case '5':
    case 'D':
    case 'V':
      return 'dir';
    case '6':
      return 'fifo';
    default:
      throw new ContainerError('EUNSUPPORTED', `cannot read tar entry ${name} at byte ${at}: unsupported entry type '${flag}'`);
  }
}

/** PAX records: "<len> <key>=<value>\n", where len counts the whole record. */
function parsePax(data: Buffer, at: number): Pax {
  const out: Pax = {};
  let pos = 0;
  while (pos < data.length) {
    if (data[pos] === 0) break;
    const space = data.indexOf(0x20, pos);
    const len = space < 0 ? NaN : Number(data.toString('latin1', pos, space));
    if (!Number.isInteger(len) || len <= 0 || pos + len > data.length) throw badHeader(at, 'malformed PAX record');
    const record = data.toString('utf8', space + 1, pos + len - 1); // without the trailing '\n'
    pos += len;
    const eq = record.indexOf('=');
    if (eq < 0) throw badHeader(at, 'malformed PAX record');
    applyPax(out, record.slice(0, eq), record.slice(eq + 1), at);
  }
  return out;
}

function applyPax(out: Pax, key: string, value: string, at: number): void {
  const int = (): number => {
    if (!/^\d+$/.test(value)) throw badHeader(at, `PAX ${key}="${value}" is not a number`);
    return Number(value);
  };
  switch (key) {
    case 'path':
    case 'linkpath':
    case 'uname':
    case 'gname':
      if (value !== '') out[key] = value;
      break;
    case 'size':
    case 'uid':
    case 'gid':
      if (value !== '') out[key] = int();
      break;
    case 'mtime':
      if (value !== '') {
        const t = Number(value);
        if (!Number.isFinite(t)) throw badHeader(at, `PAX mtime="${value}" is not a number`);
        out.mtime = t;
      }
      break;
    default:
      if (key.startsWith('GNU.sparse.')) throw new ContainerError('EUNSUPPORTED', `cannot read tar header at byte ${at}: sparse files are not supported`);
  }
}

// ---------------------------------------------------------------------------------------------
// Unpacking

export interface UnpackOptions {
  /** Total bytes of file data allowed; more is ETOOBIG. */
  maxBytes: number;
  /** Device and fifo nodes: refused when false; skipped (counted in `skipped`) when true. */
  allowDevices: boolean;
  /** chown entries to the archive's uid/gid (needs root); otherwise they belong to the caller. */
  ownership: boolean;
  /** Turn OCI whiteouts (`.wh.NAME`, `.wh..wh..opq`) into overlayfs ones; true for layers. */
  whiteouts?: boolean;
  /** With ownership: ids shifted for a user namespace (uid N becomes uid + N); ids outside size are ERANGE. */
  idShift?: { uid: number; gid: number; size: number };
}

export interface UnpackResult {
  /** Entries written (files, directories, links, whiteouts). */
  files: number;
  /** Bytes of file data written. */
  bytes: number;
  /** Device and fifo nodes left out (allowDevices), and aufs bookkeeping entries. */
  skipped: number;
  /** sha256 of the whole uncompressed stream: the layer's diffID. */
  diffId: string;
}

/**
 * Unpacks an (already decompressed) image layer into `dest`, refusing anything that would write
 * outside it: EUNSAFE for absolute or escaping paths, writes through symlinks, hard links out of
 * dest and (unless allowed) device nodes; ETOOBIG past maxBytes. Entries already written stay:
 * the caller removes dest on failure. `dest` should be new or empty: with whiteouts, whatever is
 * in it is taken as this layer's own content.
 */
export async function unpackLayer(stream: AsyncIterable<Buffer | string>, dest: string, opts: UnpackOptions): Promise<UnpackResult> {
  const hash = createHash('sha256');
  const extractor = new Extractor(dest, { ...opts, whiteouts: opts.whiteouts ?? true });
  try {
    for await (const entry of readTar(hashing(stream, hash))) await extractor.add(entry);
  } catch (e) {
    if (e instanceof ContainerError) throw e;
    // The stream itself failed: a read error, or corrupt compressed data.
    throw new ContainerError('EIO', `cannot unpack into ${dest}: ${(e as Error).message}`, { cause: e });
  }
  extractor.finish();
  return { files: extractor.files, bytes: extractor.bytes, skipped: extractor.skipped, diffId: `sha256:${hash.digest('hex')}` };
}

/** Unpacks a tar that is not a layer (an image archive): same safety, no whiteout handling. */
export function extractTar(stream: AsyncIterable<Buffer | string>, dest: string, opts: Omit<UnpackOptions, 'whiteouts'>): Promise<UnpackResult> {
  return unpackLayer(stream, dest, { ...opts, whiteouts: false });
}

async function* hashing(input: AsyncIterable<Buffer | string>, hash: ReturnType<typeof createHash>): AsyncGenerator<Buffer> {
  for await (const chunk of input) {
    const b = typeof chunk === 'string' ? Buffer.from(chunk) : chunk;
    hash.update(b);
    yield b;
  }
}

const WHITEOUT_PREFIX = '.wh.';
const OPAQUE_MARKER = '.wh..wh..opq';

function unsafe(entry: string, reason: string): ContainerError {
  return new ContainerError('EUNSAFE', `cannot unpack entry ${entry}: ${reason}`);
}

/**
 * `name` made relative to the destination root ('' for the root itself), or EUNSAFE when it is
 * absolute or climbs out with '..'.
 */
export function cleanEntryPath(name: string, entry: string, what = 'path'): string {
  if (name.includes('\0')) throw unsafe(entry, `${what} contains a NUL byte`);
  if (name.startsWith('/')) throw unsafe(entry, `${what} ${name} is absolute`);
  let p = posix.normalize(name === '' ? '.' : name);
  if (p.endsWith('/')) p = p.slice(0, -1);
  if (p === '..' || p.startsWith('../')) throw unsafe(entry, `${what} ${name} escapes the destination`);
  return p === '.' ? '' : p;
}

interface DirMeta {
  rel: string;
  mode: number;
  mtime: number;
}

class Extractor {
  files = 0;
  bytes = 0;
  skipped = 0;
  private readonly root: string;
  /** Directories (relative) known to be real directories reached without symlinks. */
  private readonly knownDirs = new Set<string>(['']);
  /** Modes and mtimes of directories, applied at the end (children would bump the mtimes). */
  private readonly dirMeta = new Map<string, DirMeta>();

  constructor(dest: string, private readonly opts: UnpackOptions) {
    this.root = resolve(dest);
    fs.mkdirSync(this.root, { recursive: true });
  }

  async add(e: TarEntry): Promise<void> {
    const rel = cleanEntryPath(e.name, e.name);
    try {
      if (this.opts.whiteouts && posix.basename(rel).startsWith(WHITEOUT_PREFIX)) this.whiteout(e, rel);
      else await this.entry(e, rel);
    } catch (err) {
      if (err instanceof ContainerError) throw err;
      throw new ContainerError('EEXTRACT', `cannot unpack entry ${e.name}: ${(err as Error).message}`, { cause: err });
    }
  }

  private async entry(e: TarEntry, rel: string): Promise<void> {
    if (rel === '' && e.type !== 'dir') throw unsafe(e.name, `a ${e.type} cannot replace the destination directory`);
    switch (e.type) {
      case 'dir':
        return this.dir(e, rel);
      case 'file':
        return this.file(e, rel);
      case 'symlink':
        return this.symlink(e, rel);
      case 'hardlink':
        return this.hardlink(e, rel);
      default:
        return this.device(e);
    }
  }

  private dir(e: TarEntry, rel: string): void {
    if (rel !== '') {
      const abs = this.parentChecked(rel, e.name, true);
      const replacesWhiteout = this.opts.whiteouts && isWhiteout(lstatOrNull(abs));
      if (!this.clear(abs, rel, true)) fs.mkdirSync(abs, { mode: 0o700 });
      // ".wh.NAME" then "NAME/" in one layer: a new directory that must not show the lower one's content.
      if (replacesWhiteout) setOpaque(abs);
      this.knownDirs.add(rel);
    }
    if (this.opts.ownership) fs.lchownSync(this.abs(rel), ...this.owner(e));
    this.dirMeta.set(rel, { rel, mode: e.mode, mtime: e.mtime });
    this.files++;
  }

  private async file(e: TarEntry, rel: string): Promise<void> {
    if (this.bytes + e.size > this.opts.maxBytes) throw this.tooBig(e.name);
    const abs = this.parentChecked(rel, e.name, true);
    this.clear(abs, rel, false);
    const { O_WRONLY, O_CREAT, O_EXCL, O_NOFOLLOW } = fs.constants;
    const fd = fs.openSync(abs, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW, 0o600);
    try {
      for await (const chunk of e.body) {
        this.bytes += chunk.length;
        if (this.bytes > this.opts.maxBytes) throw this.tooBig(e.name);
        writeAll(fd, chunk);
      }
      if (this.opts.ownership) fs.fchownSync(fd, ...this.owner(e));
      fs.fchmodSync(fd, e.mode); // after chown, which clears set-id bits
      fs.futimesSync(fd, e.mtime, e.mtime);
    } finally {
      fs.closeSync(fd);
    }
    this.files++;
  }

  private symlink(e: TarEntry, rel: string): void {
    if (e.linkname === '') throw new ContainerError('EFORMAT', `cannot unpack entry ${e.name}: symlink has no target`);
    const abs = this.parentChecked(rel, e.name, true);
    this.clear(abs, rel, false);
    // The target is not checked: a symlink is only followed inside the container, and the
    // unpacker itself never writes through one.
    fs.symlinkSync(e.linkname, abs);
    if (this.opts.ownership) fs.lchownSync(abs, ...this.owner(e));
    fs.lutimesSync(abs, e.mtime, e.mtime);
    this.files++;
  }

  private hardlink(e: TarEntry, rel: string): void {
    const targetRel = cleanEntryPath(e.linkname, e.name, 'hard link target');
    if (targetRel === '') throw unsafe(e.name, 'hard link to the destination directory');
    const target = this.parentChecked(targetRel, e.name, false);
    const st = lstatOrNull(target);
    if (!st) throw new ContainerError('EFORMAT', `cannot unpack entry ${e.name}: hard link target ${e.linkname} is not in the archive before it`);
    if (st.isDirectory()) throw unsafe(e.name, `hard link target ${e.linkname} is a directory`);
    const abs = this.parentChecked(rel, e.name, true);
    if (abs === target) return;
    this.clear(abs, rel, false);
    fs.linkSync(target, abs);
    this.files++;
  }

  private device(e: TarEntry): void {
    if (!this.opts.allowDevices) throw unsafe(e.name, `${e.type === 'fifo' ? 'fifo' : `${e.type} device`} nodes are not allowed`);
    this.skipped++;
  }

  private whiteout(e: TarEntry, rel: string): void {
    const base = posix.basename(rel);
    const dir = posix.dirname(rel) === '.' ? '' : posix.dirname(rel);
    if (base === OPAQUE_MARKER) {
      this.ensureDir(dir, e.name);
      setOpaque(this.abs(dir));
      this.files++;
      return;
    }
    if (base.startsWith(`${WHITEOUT_PREFIX}${WHITEOUT_PREFIX}`)) {
      this.skipped++; // aufs bookkeeping (.wh..wh.plnk, .wh..wh.aufs)
      return;
    }
    const name = base.slice(WHITEOUT_PREFIX.length);
    if (name === '' || name === '.' || name === '..') throw unsafe(e.name, `whiteout of "${name}"`);
    const targetRel = dir === '' ? name : `${dir}/${name}`;
    const abs = this.parentChecked(targetRel, e.name, true);
    const st = lstatOrNull(abs);
    // A whiteout hides only the lower layers: what this layer put at NAME stays (the layer
    // directory starts empty, so anything there is this layer's), a directory becoming opaque.
    if (!st) makeWhiteout(abs);
    else if (st.isDirectory()) setOpaque(abs);
    this.files++;
  }

  private ensureDir(rel: string, entry: string): void {
    if (rel === '' || this.knownDirs.has(rel)) return;
    const abs = this.parentChecked(rel, entry, true);
    const st = lstatOrNull(abs);
    if (st?.isSymbolicLink()) throw unsafe(entry, `${rel} is a symlink`);
    if (st && !st.isDirectory()) throw new ContainerError('EFORMAT', `cannot unpack entry ${entry}: ${rel} is not a directory`);
    if (!st) fs.mkdirSync(abs, { mode: 0o755 });
    this.knownDirs.add(rel);
  }

  /**
   * The absolute path of `rel`, after checking that every parent is a real directory inside the
   * destination (never a symlink); with `create`, missing parents are made (0755).
   */
  private parentChecked(rel: string, entry: string, create: boolean): string {
    const parts = rel.split('/');
    let cur = '';
    for (let i = 0; i < parts.length - 1; i++) {
      cur = cur === '' ? parts[i] : `${cur}/${parts[i]}`;
      if (this.knownDirs.has(cur)) continue;
      const abs = this.abs(cur);
      const st = lstatOrNull(abs);
      if (st?.isSymbolicLink()) throw unsafe(entry, `its parent ${cur} is a symlink`);
      if (st && !st.isDirectory()) throw new ContainerError('EFORMAT', `cannot unpack entry ${entry}: its parent ${cur} is not a directory`);
      if (!st) {
        if (!create) throw new ContainerError('EFORMAT', `cannot unpack entry ${entry}: ${cur} does not exist`);
        fs.mkdirSync(abs, { mode: 0o755 });
      }
      this.knownDirs.add(cur);
    }
    return this.abs(rel);
  }

  /** Removes what is at `abs` (a directory is kept when keepDir); true when a directory was kept. */
  private clear(abs: string, rel: string, keepDir: boolean): boolean {
    const st = lstatOrNull(abs);
    if (!st) return false;
    if (st.isDirectory()) {
      if (keepDir) return true;
      fs.rmSync(abs, { recursive: true, force: true });
      this.forget(rel);
      return false;
    }
    fs.unlinkSync(abs);
    return false;
  }

  private forget(rel: string): void {
    const under = `${rel}/`;
    for (const d of this.knownDirs) if (d === rel || d.startsWith(under)) this.knownDirs.delete(d);
    for (const d of this.dirMeta.keys()) if (d === rel || d.startsWith(under)) this.dirMeta.delete(d);
  }

  /** Applies directory modes and mtimes, deepest first, to directories still reached safely. */
  finish(): void {
    const dirs = [...this.dirMeta.values()].sort((a, b) => depth(b.rel) - depth(a.rel));
    for (const d of dirs) {
      if (!this.stillSafeDir(d.rel)) continue;
      const abs = this.abs(d.rel);
      fs.chmodSync(abs, d.mode);
      fs.lutimesSync(abs, d.mtime, d.mtime);
    }
  }

  private stillSafeDir(rel: string): boolean {
    let cur = this.root;
    for (const part of rel === '' ? [] : rel.split('/')) {
      cur = join(cur, part);
      const st = lstatOrNull(cur);
      if (!st || !st.isDirectory()) return false;
    }
    return true;
  }

  private abs(rel: string): string {
    return rel === '' ? this.root : join(this.root, rel);
  }

  /** The entry's owner on disk: as archived, or shifted into a user namespace's range. */
  private owner(e: TarEntry): [uid: number, gid: number] {
    const shift = this.opts.idShift;
    if (!shift) return [e.uid, e.gid];
    for (const [what, id] of [['uid', e.uid], ['gid', e.gid]] as const) {
      if (id >= shift.size) throw new ContainerError('ERANGE', `cannot unpack entry ${e.name} for a user namespace: its ${what} ${id} is outside the mapped range 0-${shift.size - 1}`);
    }
    return [shift.uid + e.uid, shift.gid + e.gid];
  }

  private tooBig(entry: string): ContainerError {
    return new ContainerError('ETOOBIG', `cannot unpack entry ${entry}: the layer holds more than ${this.opts.maxBytes} bytes`);
  }
}

/** Whiteouts are the only character devices the unpacker makes. */
function isWhiteout(st: fs.Stats | null): boolean {
  return st !== null && st.isCharacterDevice() && st.rdev === 0;
}

function depth(rel: string): number {
  return rel === '' ? 0 : rel.split('/').length;
}

function lstatOrNull(p: string): fs.Stats | null {
  try {
    return fs.lstatSync(p);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw e;
  }
}

function writeAll(fd: number, b: Buffer): void {
  let at = 0;
  while (at < b.length) at += fs.writeSync(fd, b, at, b.length - at);
}

/** An overlayfs whiteout: a character device 0:0. Node has no mknod, hence the tool. */
function makeWhiteout(abs: string): void {
  runTool('mknod', ['-m', '0', abs, 'c', '0', '0'], `cannot create whiteout ${abs}`, 'coreutils');
}

/** An overlayfs opaque directory hides everything below it in lower layers. */
function setOpaque(abs: string): void {
  runTool('setfattr', ['-h', '-n', 'trusted.overlay.opaque', '-v', 'y', abs], `cannot mark ${abs} opaque`, 'attr');
}

function runTool(tool: string, args: string[], what: string, pkg: string): void {
  try {
    execFileSync(tool, args, { stdio: ['ignore', 'ignore', 'pipe'] });
  } catch (e) {
    const err = e as NodeJS.ErrnoException & { stderr?: Buffer };
    if (err.code === 'ENOENT') throw new ContainerError('EUNSUPPORTED', `${what}: ${tool} is not installed (Debian package ${pkg})`);
    throw new ContainerError('EEXTRACT', `${what}: ${tool} failed: ${err.stderr?.toString().trim() || err.message}`);
  }
}

// ---------------------------------------------------------------------------------------------
// Layer decompression

export type Compression = 'gzip' | 'zstd' | 'none';

/** The compression a layer media type declares; EUNSUPPORTED for anything else. */
export function layerCompression(mediaType: string): Compression {
  if (/\.tar\.gzip$|\.tar\+gzip$/.test(mediaType)) return 'gzip';
  if (/\.tar\+zstd$/.test(mediaType)) return 'zstd';
  if (/(\.tar|\.v1\.tar)$/.test(mediaType)) return 'none';
  throw new ContainerError('EUNSUPPORTED', `cannot open layer: unsupported media type ${mediaType}`);
}

/** The compression of a file, from its magic bytes. */
export function sniffCompression(file: string): Compression {
  const head = Buffer.alloc(4);
  const fd = fs.openSync(file, 'r');
  try {
    const n = fs.readSync(fd, head, 0, 4, 0);
    if (n >= 2 && head[0] === 0x1f && head[1] === 0x8b) return 'gzip';
    if (n === 4 && head.readUInt32LE(0) === 0xfd2fb528) return 'zstd';
    return 'none';
  } finally {
    fs.closeSync(fd);
  }
}

/**
 * The uncompressed tar stream of a layer blob. The media type decides the compression; without
 * one (docker-save archives do not say) it is sniffed.
 */
export function openLayer(file: string, mediaType?: string): Readable {
  return openDecompressed(file, `layer ${file}`, mediaType === undefined ? undefined : () => layerCompression(mediaType));
}

/** A file's content, decompressed according to its magic bytes (gzip, zstd or none). */
export function openSniffed(file: string): Readable {
  return openDecompressed(file, file);
}

function openDecompressed(file: string, what: string, declared?: () => Compression): Readable {
  let compression: Compression;
  try {
    compression = declared ? declared() : sniffCompression(file);
  } catch (e) {
    const reason = e instanceof ContainerError ? e.message.replace(/^cannot open layer: /, '') : (e as Error).message;
    throw new ContainerError(e instanceof ContainerError ? e.code : 'EIO', `cannot open ${what}: ${reason}`);
  }
  const decompressor = compression === 'none' ? null : makeDecompressor(compression, what);
  const input = fs.createReadStream(file);
  if (!decompressor) return input;
  return pipeline(input, decompressor, () => {}) as unknown as Readable;
}

function makeDecompressor(compression: 'gzip' | 'zstd', what: string): NodeJS.ReadWriteStream {
  if (compression === 'gzip') return zlib.createGunzip();
  const create = (zlib as unknown as { createZstdDecompress?: () => NodeJS.ReadWriteStream }).createZstdDecompress;
  if (typeof create !== 'function') {
    throw new ContainerError('EUNSUPPORTED', `cannot open ${what}: zstd needs Node 22.15 or later (this is ${process.version})`);
  }
  return create();
}

// ---------------------------------------------------------------------------------------------
// Writing

export interface TarWriteEntry {
  header: Partial<TarHeader> & { name: string; type: EntryType };
  /** File data: from memory, or read from a path (exactly header.size bytes). */
  data?: Buffer;
  file?: string;
}

/** A tar stream (POSIX ustar, PAX records for what does not fit) of the given entries. */
export function writeTar(entries: Iterable<TarWriteEntry> | AsyncIterable<TarWriteEntry>): Readable {
  return Readable.from(tarChunks(entries), { objectMode: false });
}

async function* tarChunks(entries: Iterable<TarWriteEntry> | AsyncIterable<TarWriteEntry>): AsyncGenerator<Buffer> {
  for await (const e of entries) {
    const size = e.header.type !== 'file' ? 0 : (e.data?.length ?? e.header.size ?? 0);
    yield encodeHeader({ ...defaultHeader(e.header.name, e.header.type), ...e.header, size });
    if (size === 0) continue;
    if (e.data) yield e.data;
    else if (e.file) yield* fileChunks(e.file, size);
    else throw new Error(`tar entry ${e.header.name} has neither data nor file`);
    const pad = (BLOCK - (size % BLOCK)) % BLOCK;
    if (pad) yield Buffer.alloc(pad);
  }
  yield Buffer.alloc(BLOCK * 2);
}

function defaultHeader(name: string, type: EntryType): TarHeader {
  return { name, type, mode: type === 'dir' ? 0o755 : 0o644, uid: 0, gid: 0, size: 0, mtime: 0, linkname: '', uname: '', gname: '', devmajor: 0, devminor: 0 };
}

async function* fileChunks(file: string, size: number): AsyncGenerator<Buffer> {
  const fh = await fs.promises.open(file, 'r');
  try {
    let left = size;
    while (left > 0) {
      const buf = Buffer.allocUnsafe(Math.min(left, 1 << 20));
      const { bytesRead } = await fh.read(buf, 0, buf.length, null);
      if (bytesRead === 0) throw new ContainerError('EIO', `cannot archive ${file}: it shrank while being read`);
      left -= bytesRead;
      yield buf.subarray(0, bytesRead);
    }
  } finally {
    await fh.close();
  }
}

const TYPE_FLAGS: Record<EntryType, string> = { file: '0', hardlink: '1', symlink: '2', char: '3', block: '4', dir: '5', fifo: '6' };
const MAX_OCTAL_8 = 0o7777777;
const MAX_OCTAL_12 = 0o77777777777;

/** One header block, preceded by a PAX header when a name, link name or number does not fit. */
export function encodeHeader(h: TarHeader): Buffer {
  const pax: [string, string][] = [];
  const mtime = Math.max(0, Math.floor(h.mtime));
  if (Buffer.byteLength(h.name) > 100) pax.push(['path', h.name]);
  if (Buffer.byteLength(h.linkname) > 100) pax.push(['linkpath', h.linkname]);
  if (h.size > MAX_OCTAL_12) pax.push(['size', String(h.size)]);
  if (h.uid > MAX_OCTAL_8) pax.push(['uid', String(h.uid)]);
  if (h.gid > MAX_OCTAL_8) pax.push(['gid', String(h.gid)]);
  if (mtime > MAX_OCTAL_12) pax.push(['mtime', String(mtime)]);
  const main = headerBlock(h, TYPE_FLAGS[h.type], mtime);
  if (pax.length === 0) return main;
  const records = Buffer.from(pax.map(([k, v]) => paxRecord(k, v)).join(''));
  const paxName = `PaxHeaders/${posix.basename(h.name.replace(/\/+$/, '')) || 'root'}`;
  const paxHeader = headerBlock({ ...defaultHeader(truncateUtf8(paxName, 100), 'file'), size: records.length }, 'x', mtime);
  const pad = Buffer.alloc((BLOCK - (records.length % BLOCK)) % BLOCK);
  return Buffer.concat([paxHeader, records, pad, main]);
}

function paxRecord(key: string, value: string): string {
  const body = ` ${key}=${value}\n`;
  let len = Buffer.byteLength(body) + 1;
  while (String(len).length + Buffer.byteLength(body) !== len) len = String(len).length + Buffer.byteLength(body);
  return `${len}${body}`;
}

function headerBlock(h: TarHeader, flag: string, mtime: number): Buffer {
  const b = Buffer.alloc(BLOCK);
  b.write(truncateUtf8(h.name, 100), 0, 'utf8');
  writeOctal(b, 100, 8, h.mode & 0o7777);
  writeOctal(b, 108, 8, Math.min(h.uid, MAX_OCTAL_8));
  writeOctal(b, 116, 8, Math.min(h.gid, MAX_OCTAL_8));
  writeOctal(b, 124, 12, Math.min(h.size, MAX_OCTAL_12));
  writeOctal(b, 136, 12, Math.min(mtime, MAX_OCTAL_12));
  b.write(flag, 156, 'latin1');
  b.write(truncateUtf8(h.linkname, 100), 157, 'utf8');
  b.write('ustar\u000000', 257, 'latin1');
  b.write(truncateUtf8(h.uname, 32), 265, 'utf8');
  b.write(truncateUtf8(h.gname, 32), 297, 'utf8');
  writeOctal(b, 329, 8, h.devmajor);
  writeOctal(b, 337, 8, h.devminor);
  b.fill(0x20, 148, 156);
  let sum = 0;
  for (let i = 0; i < BLOCK; i++) sum += b[i];
  b.write(`${sum.toString(8).padStart(6, '0')}\0 `, 148, 'latin1');
  return b;
}

function writeOctal(b: Buffer, at: number, width: number, value: number): void {
  b.write(`${value.toString(8).padStart(width - 1, '0')}\0`, at, 'latin1');
}

function truncateUtf8(s: string, bytes: number): string {
  const b = Buffer.from(s);
  if (b.length <= bytes) return s;
  let end = bytes;
  while (end > 0 && (b[end] & 0xc0) === 0x80) end--; // do not cut a character in half
  return b.toString('utf8', 0, end);
}

export interface PackOptions {
  /**
   * Turn overlayfs whiteouts back into OCI ones: a character device 0:0 becomes `.wh.NAME`, an
   * opaque directory gets a `.wh..wh..opq` entry (needs `getfattr`). For packing an upper dir.
   */
  whiteouts?: boolean;
}

/**
 * A tar of the contents of `dir` (not the directory itself), in a deterministic order: names
 * sorted, each directory before its contents; hard links kept; sockets left out.
 */
export function packDir(dir: string, opts: PackOptions = {}): Readable {
  const root = resolve(dir);
  const whiteouts = opts.whiteouts ?? false;
  return writeTar(dirEntries(root, whiteouts, whiteouts ? opaqueDirs(root) : new Set()));
}

function* dirEntries(root: string, whiteouts: boolean, opaque: Set<string>): Generator<TarWriteEntry> {
  const seenInodes = new Map<string, string>();
  function* walk(rel: string): Generator<TarWriteEntry> {
    const abs = rel === '' ? root : join(root, rel);
    const names = fs.readdirSync(abs).sort();
    if (opaque.has(rel)) yield { header: { name: rel === '' ? OPAQUE_MARKER : `${rel}/${OPAQUE_MARKER}`, type: 'file' }, data: Buffer.alloc(0) };
    for (const name of names) {
      const childRel = rel === '' ? name : `${rel}/${name}`;
      const st = fs.lstatSync(join(root, childRel));
      const base = { mode: st.mode & 0o7777, uid: st.uid, gid: st.gid, mtime: Math.floor(st.mtimeMs / 1000) };
      if (st.isDirectory()) {
        yield { header: { ...base, name: `${childRel}/`, type: 'dir' } };
        yield* walk(childRel);
      } else if (st.isFile()) {
        const key = `${st.dev}:${st.ino}`;
        const first = st.nlink > 1 ? seenInodes.get(key) : undefined;
        if (first !== undefined) {
          yield { header: { ...base, name: childRel, type: 'hardlink', linkname: first } };
          continue;
        }
        if (st.nlink > 1) seenInodes.set(key, childRel);
        yield { header: { ...base, name: childRel, type: 'file', size: st.size }, file: join(root, childRel) };
      } else if (st.isSymbolicLink()) {
        yield { header: { ...base, name: childRel, type: 'symlink', linkname: fs.readlinkSync(join(root, childRel)) } };
      } else if (st.isCharacterDevice() && st.rdev === 0 && whiteouts) {
        yield { header: { ...base, mode: 0o644, name: rel === '' ? `${WHITEOUT_PREFIX}${name}` : `${rel}/${WHITEOUT_PREFIX}${name}`, type: 'file' }, data: Buffer.alloc(0) };
      } else if (st.isCharacterDevice() || st.isBlockDevice()) {
        const { major, minor } = splitDev(st.rdev);
        yield { header: { ...base, name: childRel, type: st.isCharacterDevice() ? 'char' : 'block', devmajor: major, devminor: minor } };
      } else if (st.isFIFO()) {
        yield { header: { ...base, name: childRel, type: 'fifo' } };
      }
    }
  }
  yield* walk('');
}

/** glibc's major()/minor() of a dev_t. */
function splitDev(rdev: number): { major: number; minor: number } {
  const dev = BigInt(rdev);
  const major = Number(((dev >> 8n) & 0xfffn) | ((dev >> 32n) & 0xfffff000n));
  const minor = Number((dev & 0xffn) | ((dev >> 12n) & 0xffffff00n));
  return { major, minor };
}

/** Directories (relative, '' for the root) carrying trusted.overlay.opaque=y, via one getfattr. */
function opaqueDirs(root: string): Set<string> {
  const r = spawnSync('getfattr', ['-R', '-P', '--absolute-names', '-n', 'trusted.overlay.opaque', root], { encoding: 'latin1', maxBuffer: 256 << 20 });
  if (r.error) {
    const code = (r.error as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') throw new ContainerError('EUNSUPPORTED', `cannot pack ${root}: getfattr is not installed (Debian package attr)`);
    throw new ContainerError('EIO', `cannot pack ${root}: getfattr failed: ${r.error.message}`);
  }
  const found = new Set<string>();
  let file: string | null = null;
  for (const line of r.stdout.split('\n')) {
    if (line.startsWith('# file: ')) file = unescapeGetfattr(line.slice(8));
    else if (file !== null && line === 'trusted.overlay.opaque="y"') {
      const rel = posix.relative(root, file);
      if (!rel.startsWith('..') && fs.lstatSync(file).isDirectory()) found.add(rel);
    }
  }
  return found;
}

/** getfattr prints unusual bytes as \ooo octal escapes. */
function unescapeGetfattr(s: string): string {
  const bytes = Buffer.from(s.replace(/\\([0-7]{3})/g, (_, o: string) => String.fromCharCode(parseInt(o, 8))), 'latin1');
  return bytes.toString('utf8');
}
