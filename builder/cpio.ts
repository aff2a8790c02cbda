// Deterministic newc cpio archives (the initramfs format) packed with cpio-stream, and a pure reader.
import { createRequire } from 'node:module';
import { BuildError } from './errors.js';

/** One archive member; `mode` holds permission bits, `type` the kind of file. */
export type CpioEntry = {
  path: string;
  type: 'file' | 'directory' | 'symlink' | 'char' | 'block';
  mode: number;
  uid?: number;
  gid?: number;
  data?: Buffer;
  linkname?: string;
  devmajor?: number;
  devminor?: number;
};

// The slice of cpio-stream 1.4.3 used here (the package ships no types).
interface CpioPack {
  entry(header: Record<string, unknown>, body?: Buffer | null, cb?: (err?: Error) => void): unknown;
  finalize(): void;
  on(event: 'data', listener: (chunk: Buffer) => void): this;
  on(event: 'end', listener: () => void): this;
  on(event: 'error', listener: (err: Error) => void): this;
}
const cpioStream = createRequire(import.meta.url)('cpio-stream') as { pack(opts: { format: 'newc' }): CpioPack };

const S_IFMT = 0o170000;
const TYPE_BITS: Record<CpioEntry['type'], number> = {
  file: 0o100000,
  directory: 0o040000,
  symlink: 0o120000,
  char: 0o020000,
  block: 0o060000,
};
const BLOCK = 512;

/** Packs entries into a newc archive whose bytes depend only on the entries and `mtime` (seconds). */
export async function packCpio(entries: CpioEntry[], opts: { mtime: number }): Promise<Buffer> {
  const mtime = opts?.mtime;
  if (!Number.isInteger(mtime) || mtime < 0 || mtime > 0xffffffff) {
    throw new TypeError(`cannot pack cpio: mtime must be whole seconds in 0..2^32-1, received ${String(mtime)}`);
  }
  if (!Array.isArray(entries))
    throw new TypeError(`cannot pack cpio: entries must be an array, received ${typeof entries}`);
  const sorted = withParents(entries.map(normalise));
  const pack = cpioStream.pack({ format: 'newc' });
  const chunks: Buffer[] = [];
  const done = new Promise<Buffer>((resolve, reject) => {
    pack.on('data', (c) => chunks.push(c));
    pack.on('error', reject);
    pack.on('end', () => resolve(Buffer.concat(chunks)));
  });
  sorted.forEach((e, i) => {
    // Fields are passed explicitly. Why: cpio-stream replaces falsy fields with defaults, so mtime 0
    // would become "now" (a Date object is truthy), mode 0 would become 0644 (the type bits keep it
    // non-zero), and inodes would count per pack() call. The containing-device fields keep its
    // constant 0:0o777777; the kernel reads them only to join hard links (nlink >= 2), never made here.
    pack.entry(
      {
        name: e.path,
        ino: i + 1,
        mode: TYPE_BITS[e.type] | e.mode,
        uid: e.uid,
        gid: e.gid,
        nlink: e.type === 'directory' ? 2 : 1,
        mtime: new Date(mtime * 1000),
        rdevmajor: e.devmajor ?? 0,
        rdevminor: e.devminor ?? 0,
      },
      e.type === 'symlink' ? Buffer.from(e.linkname!) : e.type === 'file' ? e.data! : null,
    );
  });
  pack.finalize();
  const raw = await done;
  // Why: cpio-stream sizes its final padding from a byte count it stops updating after the first
  // 512 bytes, so the tail is neither block-aligned nor predictable from the archive length; cut
  // after TRAILER!!! and pad with zeros to 512-byte blocks, as GNU cpio does.
  const end = archiveEnd(raw);
  const out = Buffer.alloc(Math.ceil(end / BLOCK) * BLOCK);
  raw.copy(out, 0, 0, end);
  return out;
}

/** Reads a newc (070701) or newc-crc (070702) archive into entries, stopping at TRAILER!!!. */
export function parseCpio(buf: Buffer): CpioEntry[] {
  const out: CpioEntry[] = [];
  for (const rec of records(buf)) {
    if (rec.name === 'TRAILER!!!') return out;
    const fmt = rec.mode & S_IFMT;
    const type = (Object.keys(TYPE_BITS) as CpioEntry['type'][]).find((t) => TYPE_BITS[t] === fmt);
    if (!type)
      throw new BuildError('ECPIO', `cannot parse cpio: ${rec.name} has unsupported file type 0${fmt.toString(8)}`);
    const e: CpioEntry = { path: rec.name, type, mode: rec.mode & 0o7777, uid: rec.uid, gid: rec.gid };
    if (type === 'file') e.data = rec.data;
    if (type === 'symlink') e.linkname = rec.data.toString('utf8');
    if (type === 'char' || type === 'block') Object.assign(e, { devmajor: rec.rdevmajor, devminor: rec.rdevminor });
    out.push(e);
  }
  throw new BuildError('ECPIO', 'cannot parse cpio: archive ends without TRAILER!!!');
}

// Checks one entry and returns it with a relative, clean path and explicit owner.
function normalise(e: CpioEntry): Required<Pick<CpioEntry, 'path' | 'type' | 'mode' | 'uid' | 'gid'>> & CpioEntry {
  const path =
    typeof e?.path === 'string'
      ? e.path
          .split('/')
          .filter((s) => s !== '' && s !== '.')
          .join('/')
      : '';
  const bad = (what: string, got: unknown): never => {
    throw new TypeError(
      `cannot pack cpio entry ${JSON.stringify(e?.path)}: ${what}, received ` +
        `${typeof got === 'bigint' ? got : JSON.stringify(got)}`,
    );
  };
  if (path === '' || path.split('/').includes('..'))
    bad('path must name something below the root without ".."', e?.path);
  // Why: cpio-stream sizes the name field by string length, not bytes, so non-ASCII names corrupt the header.
  if (!/^[\x21-\x7e][\x20-\x7e]*$/.test(path)) bad('path must be printable ASCII', e.path);
  if (!(e.type in TYPE_BITS)) bad('type must be file, directory, symlink, char or block', e.type);
  if (!Number.isInteger(e.mode) || e.mode < 0 || e.mode > 0o7777) bad('mode must be permission bits 0..0o7777', e.mode);
  for (const k of ['uid', 'gid', 'devmajor', 'devminor'] as const) {
    if (e[k] !== undefined && (!Number.isInteger(e[k]) || e[k]! < 0 || e[k]! > 0xffffffff))
      bad(`${k} must be a u32`, e[k]);
  }
  if (e.type === 'file' && !Buffer.isBuffer(e.data)) bad('a file needs data as a Buffer', e.data);
  if (e.type !== 'file' && e.data !== undefined) bad(`a ${e.type} carries no data`, typeof e.data);
  if (e.type === 'symlink' && (typeof e.linkname !== 'string' || e.linkname === ''))
    bad('a symlink needs a linkname', e.linkname);
  if ((e.type === 'char' || e.type === 'block') && (e.devmajor === undefined || e.devminor === undefined))
    bad('a device needs devmajor and devminor', e.devmajor);
  return { ...e, path, uid: e.uid ?? 0, gid: e.gid ?? 0 };
}

// Adds missing parent directories (0755, root) and sorts so each directory precedes its contents.
function withParents(entries: CpioEntry[]): CpioEntry[] {
  const byPath = new Map<string, CpioEntry>();
  for (const e of entries) {
    if (byPath.has(e.path)) throw new TypeError(`cannot pack cpio: path ${JSON.stringify(e.path)} appears twice`);
    byPath.set(e.path, e);
  }
  for (const e of entries) {
    const parts = e.path.split('/');
    for (let i = 1; i < parts.length; i++) {
      const dir = parts.slice(0, i).join('/');
      const have = byPath.get(dir);
      if (have && have.type !== 'directory')
        throw new TypeError(
          `cannot pack cpio: ${JSON.stringify(e.path)} is below ${JSON.stringify(dir)}, which is a ${have.type}`,
        );
      if (!have) byPath.set(dir, { path: dir, type: 'directory', mode: 0o755, uid: 0, gid: 0 });
    }
  }
  // Component-wise order: a directory sorts right before its contents, and siblings by byte order.
  const key = (p: string) => p.split('/');
  return [...byPath.values()].sort((a, b) => {
    const x = key(a.path);
    const y = key(b.path);
    for (let i = 0; i < Math.min(x.length, y.length); i++) if (x[i] !== y[i]) return x[i]! < y[i]! ? -1 : 1;
    return x.length - y.length;
  });
}

type Rec = {
  name: string;
  mode: number;
  uid: number;
  gid: number;
  rdevmajor: number;
  rdevminor: number;
  data: Buffer;
  end: number;
};

// Walks newc headers: 6-byte magic, 13 eight-digit hex fields, name, pad to 4, data, pad to 4.
function* records(buf: Buffer): Generator<Rec> {
  if (!Buffer.isBuffer(buf)) throw new TypeError(`cannot parse cpio: expected a Buffer, received ${typeof buf}`);
  let p = 0;
  while (p < buf.length) {
    const magic = buf.toString('latin1', p, p + 6);
    if (magic !== '070701' && magic !== '070702')
      throw new BuildError('ECPIO', `cannot parse cpio: bad magic ${JSON.stringify(magic)} at offset ${p}`);
    if (p + 110 > buf.length) throw new BuildError('ECPIO', `cannot parse cpio: truncated header at offset ${p}`);
    const f = (i: number) => parseInt(buf.toString('latin1', p + 6 + i * 8, p + 14 + i * 8), 16);
    const [nameSize, dataSize] = [f(11), f(6)];
    const nameAt = p + 110;
    const dataAt = align4(nameAt + nameSize);
    const end = align4(dataAt + dataSize);
    if (!(nameSize > 0) || !(dataSize >= 0) || dataAt + dataSize > buf.length) {
      throw new BuildError('ECPIO', `cannot parse cpio: truncated record at offset ${p}`);
    }
    yield {
      name: buf.toString('utf8', nameAt, nameAt + nameSize - 1),
      mode: f(1),
      uid: f(2),
      gid: f(3),
      rdevmajor: f(9),
      rdevminor: f(10),
      data: Buffer.from(buf.subarray(dataAt, dataAt + dataSize)),
      end,
    };
    p = end;
  }
}

// Byte offset just past the TRAILER!!! record.
function archiveEnd(buf: Buffer): number {
  for (const rec of records(buf)) if (rec.name === 'TRAILER!!!') return rec.end;
  throw new BuildError('ECPIO', 'cannot pack cpio: cpio-stream wrote no TRAILER!!!');
}

function align4(n: number): number {
  return (n + 3) & ~3;
}
