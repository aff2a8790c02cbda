// Downloads an update image into the inactive USR partition, chunk by verified chunk, resumably:
// each chunk is checked against the signed manifest before it is written, and a checkpoint
// (written atomically after each fdatasync) records the chunks that are safely on the target.
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { open, readFile, type FileHandle } from 'node:fs/promises';
import { setTimeout as sleep } from 'node:timers/promises';
import { writeAtomic, type AtomicFs } from '../lib/atomic.js';
import { sha256Hex } from '../lib/hash.js';
import type { UpdateManifest } from '../slots/manifest.js';
import { errorText, KeelError } from '../lib/errors.js';
import { httpGet, isHttpError, type HttpResponse } from '../lib/http.js';
import { UpdateError } from './errors.js';

export interface Checkpoint {
  manifestSha256: string;
  target: string;
  /** Chunk indexes written, fdatasynced and hash-checked. */
  done: number[];
}

export interface DownloadProgress {
  doneBytes: number;
  totalBytes: number;
  resumedBytes: number;
  bytesPerSecond: number;
}

export interface DownloadOptions {
  /** The image URL. */
  url: string;
  manifest: UpdateManifest;
  /** Identifies the update; a checkpoint for another update is discarded. */
  manifestSha256: string;
  /** Path of the partition (or file) written from offset 0; never truncated. */
  target: string;
  /** Bytes available in the target; a larger image is refused before any byte is written. */
  targetSize: number;
  /** JSON Checkpoint, replaced atomically after each fdatasync. */
  checkpointFile: string;
  progress?: (p: DownloadProgress) => void;
  signal?: AbortSignal;
  /** Retries after network failures in a row without progress (default 5). */
  retries?: number;
  /** fdatasync + checkpoint every N chunks (default 4) and at the end. */
  syncEveryChunks?: number;
  /** Idle timeout of a request, in ms (default 30 s). */
  timeoutMs?: number;
  /** The file system calls of checkpoint writes (node:fs when absent); tests record them. */
  fs?: AtomicFs;
  /** A monotonic clock in ms for progress and the result's seconds (performance.now when absent). */
  now?: () => number;
}

const defaultNow = (): number => performance.now();

export interface DownloadResult {
  resumedChunks: number;
  downloadedBytes: number;
  seconds: number;
}

const BACKOFF_FIRST_MS = 200;
const BACKOFF_MAX_MS = 5000;
/** A chunk with a bad hash is fetched again at most this many times before the download fails. */
const MISMATCH_RETRIES = 2;
const PROGRESS_INTERVAL_MS = 250;

/** Downloads `o.url` into `o.target`, resuming from `o.checkpointFile` when it belongs to this update and target. */
export async function downloadToTarget(o: DownloadOptions): Promise<DownloadResult> {
  const started = (o.now ?? defaultNow)();
  checkManifestShape(o.manifest);
  if (o.manifest.size > o.targetSize) {
    throw new UpdateError(
      'ETOOBIG',
      `cannot write ${o.url} to ${o.target}: the image is ` +
        `${o.manifest.size} bytes, the target holds only ${o.targetSize}`,
    );
  }
  const fh = await openTarget(o.target);
  try {
    const d = new Download(o, fh, started);
    await d.resume();
    await d.fetchMissing();
    return d.result();
  } finally {
    await fh.close();
  }
}

function checkManifestShape(m: UpdateManifest): void {
  if (
    !Number.isSafeInteger(m.size) ||
    m.size < 0 ||
    !Number.isSafeInteger(m.chunkSize) ||
    m.chunkSize <= 0 ||
    m.chunks.length !== Math.ceil(m.size / m.chunkSize)
  ) {
    throw new UpdateError(
      'EMANIFEST',
      `cannot download the update: the manifest's size, chunk size and chunk count disagree`,
    );
  }
}

async function openTarget(target: string): Promise<FileHandle> {
  // 'r+': the target is a block device in production; it must be neither created nor truncated.
  try {
    return await open(target, 'r+');
  } catch (e) {
    throw new UpdateError('ETARGET', `cannot open the target ${target}: ${errorText(e)}`, { cause: e });
  }
}

/** Byte range [start, end) of chunk `i`. */
function chunkBounds(m: UpdateManifest, i: number): { start: number; end: number } {
  const start = i * m.chunkSize;
  return { start, end: Math.min(start + m.chunkSize, m.size) };
}

/** The state of one download: which chunks are on the target, which are synced, what to report. */
class Download {
  private readonly m: UpdateManifest;
  /** Chunks on the target (verified), synced or not. */
  private readonly written = new Set<number>();
  /** Chunks recorded in the checkpoint: written, verified and fdatasynced. */
  private readonly synced = new Set<number>();
  private unsynced: number[] = [];
  private readonly mismatches = new Map<number, number>();
  private resumedChunks = 0;
  private resumedBytes = 0;
  private doneBytes = 0;
  private downloadedBytes = 0;
  private lastProgress = -Infinity;

  constructor(
    private readonly o: DownloadOptions,
    private readonly fh: FileHandle,
    private readonly started: number,
  ) {
    this.m = o.manifest;
  }

  /** Takes over the chunks of a matching checkpoint that still hash right on the target; rewrites the checkpoint. */
  async resume(): Promise<void> {
    const cp = await loadCheckpoint(this.o.checkpointFile, this.o.manifestSha256, this.o.target, this.m.chunks.length);
    // The target may have been written since (another update, a manual dd): trust the bytes, not the list.
    for (const i of cp) {
      if (this.o.signal?.aborted) throw this.abortError();
      if (await this.chunkOnTarget(i)) this.markDone(i, true);
    }
    this.resumedChunks = this.written.size;
    this.resumedBytes = this.doneBytes;
    await this.saveCheckpoint();
  }

  private async chunkOnTarget(i: number): Promise<boolean> {
    const { start, end } = chunkBounds(this.m, i);
    const buf = Buffer.alloc(end - start);
    let got = 0;
    while (got < buf.length) {
      const { bytesRead } = await this.fh.read(buf, got, buf.length - got, start + got);
      if (bytesRead === 0) return false;
      got += bytesRead;
    }
    return sha256Hex(buf) === this.m.chunks[i];
  }

  private markDone(i: number, synced: boolean): void {
    this.written.add(i);
    if (synced) this.synced.add(i);
    else this.unsynced.push(i);
    const { start, end } = chunkBounds(this.m, i);
    this.doneBytes += end - start;
  }

  /** Fetches runs of missing chunks until none is left, retrying network failures with backoff. */
  async fetchMissing(): Promise<void> {
    let failures = 0;
    let delay = BACKOFF_FIRST_MS;
    try {
      for (let run = this.nextRun(); run; run = this.nextRun()) {
        const before = this.written.size;
        try {
          await this.fetchRun(run.first, run.last);
        } catch (e) {
          if (this.o.signal?.aborted) throw this.abortError();
          if (!this.retryable(e)) throw e;
          if (this.written.size > before) {
            failures = 0;
            delay = BACKOFF_FIRST_MS;
          }
          if (++failures > (this.o.retries ?? 5)) {
            throw new UpdateError(
              'EDOWNLOAD',
              `cannot download ${this.o.url}: ${failures} ` +
                `attempt${failures === 1 ? '' : 's'} in a row failed; last error: ` +
                `${(e as Error).message}`,
              { cause: e },
            );
          }
          await this.backoff(delay);
          delay = Math.min(delay * 2, BACKOFF_MAX_MS);
        }
      }
      await this.flush();
    } finally {
      // Whatever stopped us, what is on the target and verified goes into the checkpoint.
      if (this.unsynced.length) await this.flush().catch(() => undefined);
    }
    this.report(true);
  }

  private async backoff(ms: number): Promise<void> {
    try {
      await sleep(ms, undefined, { signal: this.o.signal });
    } catch {
      throw this.abortError();
    }
  }

  private abortError(): UpdateError {
    return new UpdateError('EABORT', `cannot download ${this.o.url}: aborted`, { cause: this.o.signal?.reason });
  }

  private retryable(e: unknown): boolean {
    if (!(e instanceof KeelError)) return false;
    switch (e.code) {
      case 'ENETWORK':
      case 'ETIMEOUT':
        return true;
      case 'EHTTP': {
        const status = isHttpError(e) ? e.status : undefined;
        return status === undefined || status >= 500 || status === 408 || status === 429;
      }
      case 'ECHUNK':
        return true; // accept() throws ECHUNKFATAL once a chunk has failed too often
      default:
        return false;
    }
  }

  /** The first run of consecutive chunks not on the target. */
  private nextRun(): { first: number; last: number } | null {
    const n = this.m.chunks.length;
    let first = 0;
    while (first < n && this.written.has(first)) first++;
    if (first === n) return null;
    let last = first;
    while (last + 1 < n && !this.written.has(last + 1)) last++;
    return { first, last };
  }

  private async fetchRun(first: number, last: number): Promise<void> {
    const start = chunkBounds(this.m, first).start;
    const end = chunkBounds(this.m, last).end - 1;
    const res = await httpGet(this.o.url, {
      headers: { range: `bytes=${start}-${end}` },
      ...(this.o.signal ? { signal: this.o.signal } : {}),
      ...(this.o.timeoutMs !== undefined ? { idleTimeoutMs: this.o.timeoutMs } : {}),
    });
    try {
      const bodyStart = this.checkResponse(res, start, end);
      await this.consume(res, bodyStart, res.status === 206 ? end + 1 : this.m.size);
    } finally {
      res.discard(); // a no-op once the body is read
    }
  }

  /** Checks the response against the manifest and the range asked for; returns the image offset its body starts at. */
  private checkResponse(res: HttpResponse, start: number, end: number): number {
    const says = (n: number) =>
      new UpdateError(
        'ESIZE',
        `cannot download ${this.o.url}: server says ${n} bytes, the signed manifest says ${this.m.size}`,
      );
    const contentRange = res.header('content-range') ?? '';
    if (res.status === 200) {
      // The server ignored Range: the body is the whole image, and consume() skips what is already on the target.
      const length = res.header('content-length');
      if (length !== undefined && Number(length) !== this.m.size) throw says(Number(length));
      return 0;
    }
    const range = /^bytes (\d+)-(\d+)\/(\d+|\*)$/.exec(contentRange);
    if (res.status !== 206 || !range) {
      throw new UpdateError(
        'EPROTOCOL',
        `cannot download ${this.o.url}: asked for bytes ${start}-${end}, the server ` +
          `answered ${res.status} with content-range "${contentRange}"`,
      );
    }
    if (range[3] !== '*' && Number(range[3]) !== this.m.size) throw says(Number(range[3]));
    if (Number(range[1]) !== start) {
      throw new UpdateError(
        'EPROTOCOL',
        `cannot download ${this.o.url}: asked for bytes ${start}-${end}, the server sent ${range[1]}-${range[2]}`,
      );
    }
    return start;
  }

  /** Streams a body starting at image offset `bodyStart` (chunk-aligned), accepting each chunk as it completes. */
  private async consume(res: HttpResponse, bodyStart: number, expectedEnd: number): Promise<void> {
    const cutter = new ChunkCutter(this.m, bodyStart / this.m.chunkSize);
    try {
      for await (const part of res.chunks()) {
        this.downloadedBytes += part.length;
        for (const c of cutter.push(part)) await this.accept(c.index, c.data);
        if (cutter.overflow)
          throw new UpdateError(
            'ESIZE',
            `cannot download ${this.o.url}: server sent more bytes than the ${this.m.size} the signed manifest says`,
          );
        if (this.written.size === this.m.chunks.length) return;
      }
    } catch (e) {
      if (e instanceof KeelError) throw e; // ours, or the HTTP client's (ENETWORK, ETIMEOUT, EABORT)
      throw new UpdateError('ENETWORK', `cannot download ${this.o.url}: ${errorText(e)}`, { cause: e });
    }
    if (cutter.offset < expectedEnd) {
      throw new UpdateError(
        'ENETWORK',
        `cannot download ${this.o.url}: the connection closed after ` +
          `${cutter.offset - bodyStart} of ${expectedEnd - bodyStart} bytes`,
      );
    }
  }

  /** Verifies chunk `i` and writes it at its offset; a chunk that does not match is never written. */
  private async accept(i: number, data: Buffer): Promise<void> {
    if (this.written.has(i)) return;
    const actual = sha256Hex(data);
    if (actual !== this.m.chunks[i]) {
      const times = (this.mismatches.get(i) ?? 0) + 1;
      this.mismatches.set(i, times);
      const fatal = times > MISMATCH_RETRIES;
      throw new UpdateError(
        fatal ? 'ECHUNKFATAL' : 'ECHUNK',
        `cannot accept chunk ${i} of ${this.o.url}: its sha256 is ${actual}, the signed ` +
          `manifest says ${this.m.chunks[i]}${fatal ? ` (${times} times)` : ''}`,
      );
    }
    await this.writeAt(data, chunkBounds(this.m, i).start, i);
    this.markDone(i, false);
    if (this.unsynced.length >= (this.o.syncEveryChunks ?? 4)) await this.flush();
    this.report(false);
  }

  private async writeAt(data: Buffer, position: number, i: number): Promise<void> {
    try {
      for (let off = 0; off < data.length;) {
        const { bytesWritten } = await this.fh.write(data, off, data.length - off, position + off);
        off += bytesWritten;
      }
    } catch (e) {
      throw new UpdateError('EWRITE', `cannot write chunk ${i} to ${this.o.target}: ${errorText(e)}`, { cause: e });
    }
  }

  /** fdatasyncs the target, then records the chunks written since the last flush in the checkpoint. */
  private async flush(): Promise<void> {
    if (!this.unsynced.length) return;
    try {
      await this.fh.datasync();
    } catch (e) {
      throw new UpdateError('EWRITE', `cannot sync ${this.o.target}: ${errorText(e)}`, { cause: e });
    }
    for (const i of this.unsynced) this.synced.add(i);
    this.unsynced = [];
    await this.saveCheckpoint();
  }

  private async saveCheckpoint(): Promise<void> {
    const cp: Checkpoint = {
      manifestSha256: this.o.manifestSha256,
      target: this.o.target,
      done: [...this.synced].sort((a, b) => a - b),
    };
    writeCheckpoint(this.o.checkpointFile, cp, this.o.fs);
  }

  private report(final: boolean): void {
    if (!this.o.progress) return;
    const now = (this.o.now ?? defaultNow)();
    if (!final && now - this.lastProgress < PROGRESS_INTERVAL_MS) return;
    this.lastProgress = now;
    const seconds = (now - this.started) / 1000;
    this.o.progress({
      doneBytes: this.doneBytes,
      totalBytes: this.m.size,
      resumedBytes: this.resumedBytes,
      bytesPerSecond: seconds > 0 ? this.downloadedBytes / seconds : 0,
    });
  }

  result(): DownloadResult {
    return {
      resumedChunks: this.resumedChunks,
      downloadedBytes: this.downloadedBytes,
      seconds: ((this.o.now ?? defaultNow)() - this.started) / 1000,
    };
  }
}

/** Cuts a byte stream that starts at chunk `first` into whole chunks. */
class ChunkCutter {
  /** Image offset of the next byte. */
  offset: number;
  /** Bytes received past the end of the image. */
  overflow = 0;
  private index: number;
  private buf: Buffer | null = null;
  private fill = 0;

  constructor(
    private readonly m: UpdateManifest,
    first: number,
  ) {
    this.index = first;
    this.offset = first * m.chunkSize;
  }

  *push(data: Buffer): Generator<{ index: number; data: Buffer }> {
    let pos = 0;
    while (pos < data.length) {
      if (this.index >= this.m.chunks.length) {
        this.overflow += data.length - pos;
        return;
      }
      const { start, end } = chunkBounds(this.m, this.index);
      this.buf ??= Buffer.allocUnsafe(end - start);
      const n = Math.min(data.length - pos, this.buf.length - this.fill);
      data.copy(this.buf, this.fill, pos, pos + n);
      this.fill += n;
      pos += n;
      this.offset += n;
      if (this.fill === this.buf.length) {
        const chunk = { index: this.index, data: this.buf };
        this.index++;
        this.buf = null;
        this.fill = 0;
        yield chunk;
      }
    }
  }
}

/** The done chunks of the checkpoint in `file` if it is for this update and target, else none. */
async function loadCheckpoint(
  file: string,
  manifestSha256: string,
  target: string,
  chunkCount: number,
): Promise<number[]> {
  let cp: Partial<Checkpoint>;
  try {
    cp = JSON.parse(await readFile(file, 'utf8'));
  } catch {
    return [];
  }
  if (!cp || cp.manifestSha256 !== manifestSha256 || cp.target !== target || !Array.isArray(cp.done)) return [];
  const done = cp.done.filter((i) => Number.isSafeInteger(i) && i >= 0 && i < chunkCount);
  return [...new Set(done)].sort((a, b) => a - b);
}

/** Replaces `file` so that a power cut at any point leaves either the old or the new checkpoint. */
function writeCheckpoint(file: string, cp: Checkpoint, fs: AtomicFs | undefined): void {
  // Synchronous: a few hundred bytes once per syncEveryChunks chunks, right after the target's fdatasync.
  try {
    writeAtomic(file, JSON.stringify(cp) + '\n', { mode: 0o600, ...(fs ? { fs } : {}) });
  } catch (e) {
    throw new UpdateError('ECHECKPOINT', `cannot write the checkpoint ${file}: ${errorText(e)}`, { cause: e });
  }
}

/**
 * Reads the target back and checks the whole-image sha256 against the manifest; streams. Only
 * when that differs is it read again, chunk by chunk, to name the first bad chunk (one hashing
 * pass in the usual case: under emulation hashing, not the disk, is what takes the time).
 */
export async function readBack(
  target: string,
  manifest: UpdateManifest,
): Promise<{ ok: true } | { ok: false; reason: string }> {
  const whole = createHash('sha256');
  let read = 0;
  try {
    if (manifest.size > 0) {
      for await (const part of createReadStream(target, {
        start: 0,
        end: manifest.size - 1,
        highWaterMark: 1 << 20,
      }) as AsyncIterable<Buffer>) {
        whole.update(part);
        read += part.length;
      }
    }
  } catch (e) {
    return { ok: false, reason: `cannot read ${target}: ${errorText(e)}` };
  }
  if (read < manifest.size)
    return { ok: false, reason: `${target} ends after ${read} bytes, the image has ${manifest.size}` };
  const actual = whole.digest('hex');
  if (actual === manifest.sha256) return { ok: true };
  return (
    (await badChunk(target, manifest)) ?? {
      ok: false,
      reason: `${target} has sha256 ${actual}, the signed manifest says ${manifest.sha256}`,
    }
  );
}

/** The first chunk of the target whose hash is not the manifest's, as readBack's reason; null if all match. */
async function badChunk(target: string, manifest: UpdateManifest): Promise<{ ok: false; reason: string } | null> {
  const cutter = new ChunkCutter(manifest, 0);
  try {
    for await (const part of createReadStream(target, {
      start: 0,
      end: manifest.size - 1,
      highWaterMark: 1 << 20,
    }) as AsyncIterable<Buffer>) {
      for (const c of cutter.push(part)) {
        const actual = sha256Hex(c.data);
        if (actual !== manifest.chunks[c.index]) {
          const { start, end } = chunkBounds(manifest, c.index);
          return {
            ok: false,
            reason:
              `chunk ${c.index} (bytes ${start}-${end - 1}) of ${target} has sha256 ` +
              `${actual}, the signed manifest says ${manifest.chunks[c.index]}`,
          };
        }
      }
    }
  } catch (e) {
    return { ok: false, reason: `cannot read ${target}: ${errorText(e)}` };
  }
  return null;
}
