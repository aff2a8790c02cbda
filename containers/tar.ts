// The tar format for container images, through tar-stream: `readTar` yields entries of ustar,
// GNU (long names and links, base-256 numbers) and PAX archives; `writeTar` writes ustar with PAX
// records for what does not fit. Unpacking is extract.ts, packing a directory pack-dir.ts,
// decompressing layers decompress.ts.
import { open } from 'node:fs/promises';
import { Readable } from 'node:stream';
import { extract, pack, type Extract, type Header, type Pack } from 'tar-stream';
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

const EMPTY_BODY: AsyncIterable<Buffer> = { async *[Symbol.asyncIterator]() {} };

// ---------------------------------------------------------------------------------------------
// Reading

type Pax = Record<string, string>;
/** What the reader learns about its input: bytes so far, and the input's own failure. */
interface Fed {
  bytes: number;
  error?: unknown;
}

/**
 * The entries of a tar stream, in order. Each entry's body must be read (or is skipped) before
 * the next one is produced. Reads the input to its very end, trailing zero blocks included. A
 * failure of the input itself is thrown as it is; a bad archive is EFORMAT or EUNSUPPORTED.
 */
export async function* readTar(input: AsyncIterable<Buffer | string>): AsyncGenerator<TarEntry> {
  // v7 headers (no "ustar" magic) are read too, as GNU tar does; the checksum still guards.
  const ex = extract({ allowUnknownFormat: true } as Parameters<typeof extract>[0]);
  const entries = ex[Symbol.asyncIterator]();
  const fed: Fed = { bytes: 0 };
  const feeding = feed(input, ex, fed);
  const fail = (e: unknown): unknown => readError(e, fed);
  let finished = false;
  try {
    for (;;) {
      const r = await entries.next().catch((e: unknown) => {
        throw fail(e);
      });
      if (r.done) break;
      const source = r.value;
      if (parser(ex)._longHeader) throw emptyExtendedHeader(source.header.name);
      const header = toHeader(source.header, parser(ex)._paxGlobal ?? null);
      // tar-stream's own iterator is left alone: ending it early would destroy the whole archive.
      const chunks = source[Symbol.asyncIterator]() as AsyncIterator<Buffer>;
      const state = { current: true };
      yield { ...header, body: header.type === 'file' ? bodyOf(chunks, state, header.name, fail) : EMPTY_BODY };
      state.current = false;
      // What the caller left unread (a skipped body, a link's data) must be read for the next entry.
      if (hasData(source.header))
        while (
          !(
            await chunks.next().catch((e: unknown) => {
              throw fail(e);
            })
          ).done
        );
    }
    finished = true;
  } finally {
    if (!finished) ex.destroy(null);
  }
  await feeding;
}

/** Writes the input into the parser, with backpressure; ends it, or destroys it with the input's error. */
async function feed(input: AsyncIterable<Buffer | string>, ex: Extract, fed: Fed): Promise<void> {
  try {
    for await (const chunk of input) {
      if (ex.destroyed) return;
      const b = typeof chunk === 'string' ? Buffer.from(chunk) : chunk;
      if (b.length === 0) continue;
      fed.bytes += b.length;
      if (!ex.write(b)) await drained(ex);
    }
    if (!ex.destroyed) ex.end(null);
  } catch (e) {
    fed.error = e;
    ex.destroy(e as Error);
  }
}

interface Emitter {
  on(event: 'drain' | 'close', fn: () => void): unknown;
  off(event: 'drain' | 'close', fn: () => void): unknown;
}

/** Resolves on 'drain', or on 'close' should the stream be destroyed meanwhile. */
function drained(stream: Extract | ReturnType<Pack['entry']>): Promise<void> {
  const s = stream as unknown as Emitter;
  return new Promise((resolve) => {
    const done = (): void => {
      s.off('drain', done);
      s.off('close', done);
      resolve();
    };
    s.on('drain', done);
    s.on('close', done);
  });
}

async function* bodyOf(
  chunks: AsyncIterator<Buffer>,
  state: { current: boolean },
  name: string,
  fail: (e: unknown) => unknown,
): AsyncGenerator<Buffer> {
  for (;;) {
    if (!state.current) throw new Error(`tar entry ${name} was read after the next entry was asked for`);
    const r = await chunks.next().catch((e: unknown) => {
      throw fail(e);
    });
    if (r.done) return;
    yield r.value;
  }
}

/** tar-stream attaches a data stream to these entries only (a directory's size is not data to it). */
function hasData(h: Header): boolean {
  return h.size > 0 && h.type !== 'directory';
}

/**
 * Two things of tar-stream's parser state that its API does not show (pinned by tar.test.ts):
 * the global PAX records (`g` headers) so far, which it merges only into entries with a local PAX
 * header of their own; and whether an extended header is still pending when an entry comes, which
 * happens only after one of size 0: tar-stream then misreads what follows by a few bytes.
 */
function parser(ex: Extract): { _paxGlobal?: Pax | null; _longHeader?: boolean } {
  return ex as unknown as { _paxGlobal?: Pax | null; _longHeader?: boolean };
}

function emptyExtendedHeader(name: string): ContainerError {
  return new ContainerError(
    'EFORMAT',
    `cannot read tar entry ${name}: it follows an empty extended header (PAX ` +
      'or GNU long name of 0 bytes), which is not supported',
  );
}

/** tar-stream's errors as ours; the input's own failure stays what it is. */
function readError(e: unknown, fed: Fed): unknown {
  if (fed.error !== undefined) return fed.error;
  if (e instanceof ContainerError) return e;
  const message = e instanceof Error ? e.message : String(e);
  const reason =
    message === 'Unexpected end of data'
      ? `unexpected end of archive after ${fed.bytes} bytes`
      : message.startsWith('Invalid tar header. Maybe')
        ? 'header checksum mismatch (not a tar archive, or still compressed?)'
        : message === 'Header exceeds max size'
          ? 'an extended header (PAX or GNU long name) is larger than 4 MiB'
          : message === 'Invalid header'
            ? 'an entry has an unreadable size'
            : message;
  return new ContainerError('EFORMAT', `cannot read tar: ${reason}`, { cause: e });
}

const TYPES: Partial<Record<string, EntryType>> = {
  file: 'file',
  'contiguous-file': 'file',
  link: 'hardlink',
  symlink: 'symlink',
  'character-device': 'char',
  'block-device': 'block',
  directory: 'dir',
  fifo: 'fifo',
};

/** Our header from tar-stream's, with the PAX records it leaves to us (times, ids, names, devices). */
function toHeader(h: Header, global: Pax | null): TarHeader {
  const name = h.name;
  const pax: Pax = { ...global, ...(h.pax as Pax | null) };
  const bad = (reason: string): ContainerError =>
    new ContainerError('EFORMAT', `cannot read tar entry ${name}: ${reason}`);
  if (Object.keys(pax).some((k) => k.startsWith('GNU.sparse.'))) {
    throw new ContainerError('EUNSUPPORTED', `cannot read tar entry ${name}: sparse files are not supported`);
  }
  const type = h.type ? TYPES[h.type] : undefined;
  if (!type) {
    throw new ContainerError(
      'EUNSUPPORTED',
      `cannot read tar entry ${name}: unsupported entry type (a GNU sparse file, dumpdir or volume label?)`,
    );
  }
  const num = (what: string, field: number | undefined, key?: string): number => {
    const v = key !== undefined && pax[key] ? (/^\d+$/.test(pax[key]) ? Number(pax[key]) : NaN) : (field ?? 0);
    if (!Number.isSafeInteger(v)) throw bad(`its ${what} is not a number`);
    if (v < 0) throw bad(`its ${what} is negative`);
    return v;
  };
  let mtime = h.mtime ? h.mtime.getTime() / 1000 : 0;
  if (pax.mtime) {
    mtime = Number(pax.mtime);
    if (!Number.isFinite(mtime)) throw bad(`PAX mtime="${pax.mtime}" is not a number`);
  }
  return {
    name,
    type,
    mode: num('mode', h.mode) & 0o7777,
    uid: num('uid', h.uid, 'uid'),
    gid: num('gid', h.gid, 'gid'),
    size: type === 'file' ? num('size', h.size) : 0,
    mtime,
    linkname: h.linkname ?? '',
    uname: pax.uname || h.uname || '',
    gname: pax.gname || h.gname || '',
    devmajor: num('devmajor', h.devmajor, 'SCHILY.devmajor'),
    devminor: num('devminor', h.devminor, 'SCHILY.devminor'),
  };
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
  const p = pack();
  void fill(p, entries);
  return Readable.from(p, { objectMode: false });
}

async function fill(p: Pack, entries: Iterable<TarWriteEntry> | AsyncIterable<TarWriteEntry>): Promise<void> {
  try {
    for await (const e of entries) await addEntry(p, e);
    p.finalize();
  } catch (err) {
    p.destroy(err as Error);
  }
}

function defaultHeader(name: string, type: EntryType): TarHeader {
  return {
    name,
    type,
    mode: type === 'dir' ? 0o755 : 0o644,
    uid: 0,
    gid: 0,
    size: 0,
    mtime: 0,
    linkname: '',
    uname: '',
    gname: '',
    devmajor: 0,
    devminor: 0,
  };
}

async function addEntry(p: Pack, e: TarWriteEntry): Promise<void> {
  const h: TarHeader = { ...defaultHeader(e.header.name, e.header.type), ...e.header };
  if ((h.type === 'symlink' || h.type === 'hardlink') && h.linkname === '') {
    throw new ContainerError('EINVAL', `cannot archive ${h.name}: a ${h.type} needs a target`);
  }
  const size = h.type !== 'file' ? 0 : (e.data?.length ?? h.size ?? 0);
  const header = packHeader(h, size);
  if (size > 0 && !e.data && !e.file) throw new Error(`tar entry ${h.name} has neither data nor file`);
  let sink: ReturnType<Pack['entry']> | undefined;
  const written = new Promise<void>((resolve, reject) => {
    const done = (err?: Error | null): void => (err ? reject(err) : resolve());
    if (h.type !== 'file') p.entry(header, done);
    else if (e.data || size === 0) p.entry(header, e.data ?? Buffer.alloc(0), done);
    else sink = p.entry(header, done);
  });
  written.catch(() => {}); // a failure below destroys the pack, which fails this entry too
  if (sink) {
    for await (const chunk of fileChunks(e.file!, size)) if (!sink.write(chunk)) await drained(sink);
    sink.end(null);
  }
  await written;
}

const TS_TYPES: Record<EntryType, Header['type']> = {
  file: 'file',
  dir: 'directory',
  symlink: 'symlink',
  hardlink: 'link',
  char: 'character-device',
  block: 'block-device',
  fifo: 'fifo',
};
// tar-stream gives a mode of 0 its default (0644/0755): the type bits keep a 0000 file 0000.
const S_IFMT: Record<EntryType, number> = {
  file: 0o100000,
  dir: 0o040000,
  symlink: 0o120000,
  hardlink: 0o100000,
  char: 0o020000,
  block: 0o060000,
  fifo: 0o010000,
};
// tar-stream writes ids and device numbers in 6 octal digits, sizes and times in 11.
const MAX_OCTAL_6 = 0o777777;
const MAX_OCTAL_11 = 0o77777777777;

/** tar-stream's header for ours, with PAX records for the numbers its ustar fields cannot hold. */
function packHeader(h: TarHeader, size: number): Partial<Header> & { name: string } {
  const mtime = Math.max(0, Math.floor(h.mtime));
  const pax: Pax = {};
  const big = (key: string, v: number, max: number): void => {
    if (v > max) pax[key] = String(v);
  };
  big('uid', h.uid, MAX_OCTAL_6);
  big('gid', h.gid, MAX_OCTAL_6);
  big('size', size, MAX_OCTAL_11);
  big('mtime', mtime, MAX_OCTAL_11);
  big('SCHILY.devmajor', h.devmajor, MAX_OCTAL_6); // star's and libarchive's keywords
  big('SCHILY.devminor', h.devminor, MAX_OCTAL_6);
  return {
    name: h.name,
    type: TS_TYPES[h.type],
    mode: (h.mode & 0o7777) | S_IFMT[h.type],
    uid: Math.min(h.uid, MAX_OCTAL_6),
    gid: Math.min(h.gid, MAX_OCTAL_6),
    size,
    mtime: new Date(mtime * 1000),
    linkname: h.linkname,
    uname: truncateUtf8(h.uname, 32),
    gname: truncateUtf8(h.gname, 32),
    devmajor: Math.min(h.devmajor, MAX_OCTAL_6),
    devminor: Math.min(h.devminor, MAX_OCTAL_6),
    ...(Object.keys(pax).length > 0 ? { pax } : {}),
  };
}

async function* fileChunks(file: string, size: number): AsyncGenerator<Buffer> {
  const fh = await open(file, 'r');
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

/** The longest prefix of `s` that fits in `bytes` bytes of UTF-8 (tar-stream would overflow the field). */
function truncateUtf8(s: string, bytes: number): string {
  const b = Buffer.from(s);
  if (b.length <= bytes) return s;
  let end = bytes;
  while (end > 0 && (b[end] & 0xc0) === 0x80) end--; // do not cut a character in half
  return b.toString('utf8', 0, end);
}
