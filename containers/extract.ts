// The safe unpacker of image layers and archives, as root: it refuses `..` and absolute paths,
// writes through symlinks, hard links out of the destination, device nodes (unless allowed, then
// skipped) and data past a size cap; for layers it turns OCI whiteouts into overlayfs ones
// (whiteouts.ts); with a user namespace it shifts owners into its range.
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import { join, posix, resolve } from 'node:path';
import { ContainerError } from './errors.js';
import { readTar, type TarEntry } from './tar.js';
import { isWhiteout, makeWhiteout, OPAQUE_MARKER, setOpaque, WHITEOUT_PREFIX } from './whiteouts.js';

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
export async function unpackLayer(
  stream: AsyncIterable<Buffer | string>,
  dest: string,
  opts: UnpackOptions,
): Promise<UnpackResult> {
  const hash = createHash('sha256');
  const input: Input = { hash };
  const extractor = new Extractor(dest, { ...opts, whiteouts: opts.whiteouts ?? true });
  try {
    for await (const entry of readTar(hashing(stream, input))) await extractor.add(entry);
  } catch (e) {
    // The stream itself failed (a read error, corrupt compressed data), maybe inside an entry's data.
    const failed = input.error ?? (e instanceof ContainerError ? undefined : e);
    if (failed !== undefined)
      throw new ContainerError('EIO', `cannot unpack into ${dest}: ${(failed as Error).message}`, { cause: failed });
    throw e;
  }
  extractor.finish();
  return {
    files: extractor.files,
    bytes: extractor.bytes,
    skipped: extractor.skipped,
    diffId: `sha256:${hash.digest('hex')}`,
  };
}

/** Unpacks a tar that is not a layer (an image archive): same safety, no whiteout handling. */
export function extractTar(
  stream: AsyncIterable<Buffer | string>,
  dest: string,
  opts: Omit<UnpackOptions, 'whiteouts'>,
): Promise<UnpackResult> {
  return unpackLayer(stream, dest, { ...opts, whiteouts: false });
}

/** The layer's stream as the unpacker reads it: hashed, and its own failure kept apart. */
interface Input {
  hash: ReturnType<typeof createHash>;
  error?: unknown;
}

async function* hashing(stream: AsyncIterable<Buffer | string>, input: Input): AsyncGenerator<Buffer> {
  try {
    for await (const chunk of stream) {
      const b = typeof chunk === 'string' ? Buffer.from(chunk) : chunk;
      input.hash.update(b);
      yield b;
    }
  } catch (e) {
    input.error = e;
    throw e;
  }
}

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

  constructor(
    dest: string,
    private readonly opts: UnpackOptions,
  ) {
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
    if (!st)
      throw new ContainerError(
        'EFORMAT',
        `cannot unpack entry ${e.name}: hard link target ${e.linkname} is not in the archive before it`,
      );
    if (st.isDirectory()) throw unsafe(e.name, `hard link target ${e.linkname} is a directory`);
    const abs = this.parentChecked(rel, e.name, true);
    if (abs === target) return;
    this.clear(abs, rel, false);
    fs.linkSync(target, abs);
    this.files++;
  }

  private device(e: TarEntry): void {
    if (!this.opts.allowDevices)
      throw unsafe(e.name, `${e.type === 'fifo' ? 'fifo' : `${e.type} device`} nodes are not allowed`);
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
    if (st && !st.isDirectory())
      throw new ContainerError('EFORMAT', `cannot unpack entry ${entry}: ${rel} is not a directory`);
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
      if (st && !st.isDirectory())
        throw new ContainerError('EFORMAT', `cannot unpack entry ${entry}: its parent ${cur} is not a directory`);
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
    for (const [what, id] of [
      ['uid', e.uid],
      ['gid', e.gid],
    ] as const) {
      if (id >= shift.size)
        throw new ContainerError(
          'ERANGE',
          `cannot unpack entry ${e.name} for a user namespace: its ${what} ${id} ` +
            `is outside the mapped range 0-${shift.size - 1}`,
        );
    }
    return [shift.uid + e.uid, shift.gid + e.gid];
  }

  private tooBig(entry: string): ContainerError {
    return new ContainerError(
      'ETOOBIG',
      `cannot unpack entry ${entry}: the layer holds more than ${this.opts.maxBytes} bytes`,
    );
  }
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
