// Layer blobs as tar streams: gzip and zstd (where this Node has it) decompressed, chosen by the
// media type or, for archives that do not say (docker save), by the blob's magic bytes.
import * as fs from 'node:fs';
import { pipeline, type Readable } from 'node:stream';
import * as zlib from 'node:zlib';
import { ContainerError } from './errors.js';

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
  return openDecompressed(
    file,
    `layer ${file}`,
    mediaType === undefined ? undefined : () => layerCompression(mediaType),
  );
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
    throw new ContainerError(
      'EUNSUPPORTED',
      `cannot open ${what}: zstd needs Node 22.15 or later (this is ${process.version})`,
    );
  }
  return create();
}
