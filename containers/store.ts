// The image store: content-addressed blobs, layers unpacked once each and shared between images,
// and an index of images and their refs.
//
// Layout under the root (default /var/lib/keel/containers):
//   blobs/sha256/<hex>       manifests, configs and layer blobs, named by their digest
//   layers/<diffID hex>/     a layer unpacked for overlayfs (whiteouts as 0:0 devices, opaque xattrs)
//   layers/<diffID hex>.json its marker: written last, so a directory without one is redone
//   layers/<diffID hex>.lock held while the layer is unpacked
//   index.json               the image records (refs in each), replaced atomically under index.lock
//   tmp/                     blobs being written, archives being read, directories being deleted
import { createHash, randomBytes } from 'node:crypto';
import * as fs from 'node:fs';
import { dirname, join } from 'node:path';
import type { Readable } from 'node:stream';
import { writeAtomic } from '../lib/atomic.js';
import { sha256File, sha256Hex } from '../lib/hash.js';
import { locks } from '../native/locks.js';
import { ContainerError } from './errors.js';
import { InvalidReferenceError, parseReference } from './reference.js';
import { openLayer } from './decompress.js';
import { unpackLayer } from './extract.js';

export { ContainerError } from './errors.js';

export const DEFAULT_ROOT = '/var/lib/keel/containers';

export interface LayerRecord {
  digest: string;
  mediaType: string;
  size: number;
  diffId: string;
}

/** A user namespace's ids: container ids 0 to size-1 are host ids uid.. and gid.. */
export interface IdMapping {
  uid: number;
  gid: number;
  size: number;
}

export interface ImageRecord {
  /** sha256:<hex of the config blob>. */
  id: string;
  manifestDigest: string;
  /** Normalised refs, e.g. docker.io/library/busybox:latest. */
  refs: string[];
  /** Lowest layer first. */
  layers: LayerRecord[];
  /** The parsed OCI image config. */
  config: any;
  created: string;
  /** Bytes of file data in the unpacked layers. */
  size: number;
}

export interface NewImage {
  manifest: Buffer;
  manifestDigest: string;
  config: Buffer;
  layers: { digest: string; mediaType: string; size: number }[];
  refs: string[];
}

export interface StoreOptions {
  /** Largest amount of file data one layer may unpack to (default 64 GiB). */
  maxLayerBytes?: number;
  /** chown unpacked files as in the layer (default: when running as root). */
  ownership?: boolean;
}

interface LayerMarker {
  diffId: string;
  /** Blobs known to decompress to this layer. */
  blobs: string[];
  files: number;
  bytes: number;
  skipped: number;
  unpacked: string;
}

interface IndexFile {
  version: 1;
  images: Record<string, ImageRecord>;
}

const SHA256 = /^sha256:([a-f0-9]{64})$/;
const ID_PREFIX = /^(?:sha256:)?([a-f0-9]{1,64})$/;
const DEFAULT_MAX_LAYER_BYTES = 64 * 1024 ** 3;
/** Another CLI unpacking the same layer is waited for while it lives, up to this long. */
const LAYER_LOCK_TIMEOUT_MS = 6 * 3600_000;
/** addImage re-checks its layers under the index lock; a concurrent GC can make it go again. */
const ADD_ATTEMPTS = 3;

export class ImageStore {
  readonly root: string;
  private readonly maxLayerBytes: number;
  private readonly ownership: boolean;

  constructor(root: string = DEFAULT_ROOT, opts: StoreOptions = {}) {
    this.root = root;
    this.maxLayerBytes = opts.maxLayerBytes ?? DEFAULT_MAX_LAYER_BYTES;
    this.ownership = opts.ownership ?? process.getuid?.() === 0;
    for (const d of ['blobs/sha256', 'layers', 'tmp']) fs.mkdirSync(join(root, d), { recursive: true, mode: 0o700 });
  }

  // -- blobs ------------------------------------------------------------------------------------

  blobPath(digest: string): string {
    return join(this.root, 'blobs', 'sha256', digestHex(digest));
  }

  hasBlob(digest: string): boolean {
    return fs.existsSync(this.blobPath(digest));
  }

  readBlob(digest: string): Buffer {
    try {
      return fs.readFileSync(this.blobPath(digest));
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT')
        throw new ContainerError('ENOBLOB', `cannot read blob ${digest}: it is not in the store`);
      throw e;
    }
  }

  /** Stores data under its sha256 digest (checked against `expected`), via a temp file and rename. */
  async putBlob(data: Buffer | Readable, expected?: string): Promise<string> {
    if (expected !== undefined && this.hasBlob(expected)) {
      if (!Buffer.isBuffer(data)) data.destroy();
      return expected;
    }
    const tmp = this.tempPath('blob');
    try {
      const digest = await writeHashed(tmp, data);
      checkExpected(digest, expected, 'blob');
      fs.renameSync(tmp, this.blobPath(digest));
      return digest;
    } catch (e) {
      fs.rmSync(tmp, { force: true });
      throw e;
    }
  }

  /**
   * Moves `file` (on the store's file system) into the store after checking its digest; `added`
   * is false when the store had the blob already (the file is then left where it is).
   */
  async adoptBlob(file: string, expected?: string): Promise<{ digest: string; added: boolean }> {
    const digest = await hashFile(file);
    checkExpected(digest, expected, `blob ${file}`);
    if (this.hasBlob(digest)) return { digest, added: false };
    fs.chmodSync(file, 0o644);
    fs.renameSync(file, this.blobPath(digest));
    return { digest, added: true };
  }

  // -- images -----------------------------------------------------------------------------------

  async addImage(i: NewImage): Promise<ImageRecord> {
    const id = sha256(i.config);
    checkExpected(sha256(i.manifest), i.manifestDigest, 'manifest');
    const config = parseJson(i.config, `config ${id}`);
    const diffIds = diffIdsOf(config, id, i.layers.length);
    for (const l of i.layers)
      if (!this.hasBlob(l.digest))
        throw new ContainerError('ENOBLOB', `cannot add image ${id}: layer blob ${l.digest} is not in the store`);
    const refs = i.refs.map(normalizeRef);

    const unpacked: string[] = [];
    try {
      return await this.addUnpacked(i, id, config, diffIds, refs, unpacked);
    } catch (e) {
      this.dropUnreferenced([], unpacked); // layers this call unpacked for nothing
      throw e;
    }
  }

  private async addUnpacked(
    i: NewImage,
    id: string,
    config: any,
    diffIds: string[],
    refs: string[],
    unpacked: string[],
  ): Promise<ImageRecord> {
    for (let attempt = 1; ; attempt++) {
      let size = 0;
      for (const [n, l] of i.layers.entries()) {
        const { marker, fresh } = await this.ensureLayer(l.digest, l.mediaType, diffIds[n]);
        if (fresh) unpacked.push(diffIds[n]);
        size += marker.bytes;
      }
      await this.putBlob(i.config, id);
      await this.putBlob(i.manifest, i.manifestDigest);
      const record: ImageRecord = {
        id,
        manifestDigest: i.manifestDigest,
        refs: [],
        layers: i.layers.map((l, n) => ({
          digest: l.digest,
          mediaType: l.mediaType,
          size: l.size,
          diffId: diffIds[n],
        })),
        config,
        created: typeof config.created === 'string' ? config.created : new Date().toISOString(),
        size,
      };
      const added = this.withIndex((index) => {
        if (!this.isComplete(record)) return null; // a concurrent GC removed a layer: unpack again
        const previous = index.images[id];
        record.refs = previous ? [...previous.refs] : [];
        index.images[id] = record;
        for (const ref of refs) moveRef(index, ref, id);
        return { record: index.images[id], previous };
      });
      if (added) {
        if (added.previous) this.collect([added.previous]);
        return added.record;
      }
      if (attempt >= ADD_ATTEMPTS)
        throw new ContainerError(
          'EAGAIN',
          `cannot add image ${id}: its layers keep being removed by a concurrent image removal`,
        );
    }
  }

  list(): ImageRecord[] {
    return Object.values(this.readIndex().images).sort(
      (a, b) => b.created.localeCompare(a.created) || a.id.localeCompare(b.id),
    );
  }

  resolve(refOrId: string): ImageRecord {
    return resolveIn(this.readIndex(), refOrId).image;
  }

  tag(refOrId: string, ref: string): void {
    const normalized = normalizeRef(ref);
    if (parseReference(normalized).digest !== null)
      throw new ContainerError('EREFERENCE', `cannot tag ${refOrId} as ${ref}: a tag cannot contain a digest`);
    this.withIndex((index) => moveRef(index, normalized, resolveIn(index, refOrId).image.id));
  }

  remove(
    refOrId: string,
    o: { force?: boolean; inUse?: (id: string) => boolean } = {},
  ): { untagged: string[]; deleted: string[] } {
    const { untagged, removed } = this.withIndex((index) => {
      const { image, ref } = resolveIn(index, refOrId);
      if (ref !== null && image.refs.length > 1) {
        image.refs = image.refs.filter((r) => r !== ref);
        return { untagged: [ref], removed: null };
      }
      if (ref === null && image.refs.length > 1 && !o.force) {
        throw new ContainerError(
          'ECONFLICT',
          `cannot remove image ${refOrId}: it has several refs ` +
            `(${image.refs.join(', ')}); remove them one by one or force`,
        );
      }
      if (!o.force && o.inUse?.(image.id))
        throw new ContainerError(
          'EINUSE',
          `cannot remove image ${refOrId}: a container uses it (force to remove anyway)`,
        );
      delete index.images[image.id];
      return { untagged: image.refs, removed: image };
    });
    if (!removed) return { untagged, deleted: [] };
    return { untagged, deleted: [removed.id, ...this.collect([removed])] };
  }

  /**
   * The unpacked layer directories of an image, lowest first (overlayfs lowerdir wants them
   * reversed); with `userns`, the copies owned by its ids (made by prepareUserns).
   */
  layerDirs(image: ImageRecord, userns?: IdMapping): string[] {
    return image.layers.map((l) => this.layerDir(l.diffId, userns));
  }

  layerDir(diffId: string, userns?: IdMapping): string {
    const shift = userns ? `-u${userns.uid}-g${userns.gid}-n${userns.size}` : '';
    return join(this.root, 'layers', digestHex(diffId) + shift);
  }

  /**
   * Unpacks the image's layers once more, owned by `userns`'s ids (as docker's userns-remap keeps
   * a layer store per range): a container's root then owns its files inside its user namespace.
   * Kept until the layer itself is removed. ERANGE names a file owned by an id outside the range.
   */
  async prepareUserns(image: ImageRecord, userns: IdMapping): Promise<void> {
    for (const l of image.layers) await this.ensureLayer(l.digest, l.mediaType, l.diffId, userns);
  }

  /** A fresh directory under root/tmp (same file system as the blobs), for the caller to remove. */
  makeTempDir(purpose: string): string {
    return fs.mkdtempSync(join(this.root, 'tmp', `${purpose}-`));
  }

  // -- layers -----------------------------------------------------------------------------------

  /** Unpacks a layer blob into layers/<diffID hex>/ unless a complete one is there already. */
  private async ensureLayer(
    digest: string,
    mediaType: string,
    diffId: string,
    userns?: IdMapping,
  ): Promise<{ marker: LayerMarker; fresh: boolean }> {
    const dir = this.layerDir(diffId, userns);
    const markerPath = `${dir}.json`;
    return locks.withLock(
      `${dir}.lock`,
      async () => {
        const marker = readMarker(markerPath);
        if (marker && fs.existsSync(dir)) {
          if (!marker.blobs.includes(digest)) {
            await this.checkDiffId(digest, mediaType, diffId);
            marker.blobs.push(digest);
            writeAtomic(markerPath, JSON.stringify(marker));
          }
          return { marker, fresh: false };
        }
        fs.rmSync(markerPath, { force: true });
        fs.rmSync(dir, { recursive: true, force: true });
        try {
          const r = await unpackLayer(openLayer(this.blobPath(digest), mediaType), dir, {
            maxBytes: this.maxLayerBytes,
            allowDevices: true,
            ownership: this.ownership,
            ...(userns ? { idShift: userns } : {}),
          });
          if (r.diffId !== diffId) throw diffIdMismatch(digest, r.diffId, diffId);
          const fresh: LayerMarker = {
            diffId,
            blobs: [digest],
            files: r.files,
            bytes: r.bytes,
            skipped: r.skipped,
            unpacked: new Date().toISOString(),
          };
          writeAtomic(markerPath, JSON.stringify(fresh));
          return { marker: fresh, fresh: true };
        } catch (e) {
          fs.rmSync(dir, { recursive: true, force: true });
          throw e;
        }
      },
      LAYER_LOCK_TIMEOUT_MS,
    );
  }

  /** A second blob for an unpacked layer (another compression): it must hold the same tar. */
  private async checkDiffId(digest: string, mediaType: string, diffId: string): Promise<void> {
    const hash = createHash('sha256');
    for await (const chunk of openLayer(this.blobPath(digest), mediaType)) hash.update(chunk as Buffer);
    const actual = `sha256:${hash.digest('hex')}`;
    if (actual !== diffId) throw diffIdMismatch(digest, actual, diffId);
  }

  private isComplete(image: ImageRecord): boolean {
    const blobs = [image.id, image.manifestDigest, ...image.layers.map((l) => l.digest)];
    return (
      blobs.every((d) => this.hasBlob(d)) && image.layers.every((l) => fs.existsSync(`${this.layerDir(l.diffId)}.json`))
    );
  }

  // -- garbage collection -------------------------------------------------------------------------

  /**
   * Removes those of `digests` that no image refers to (blobs a failed import left behind);
   * returns the ones removed.
   */
  discardBlobs(digests: string[]): string[] {
    return this.dropUnreferenced(digests, []);
  }

  /** Removes the blobs and layer directories of `images` that no image in the index refers to. */
  private collect(images: ImageRecord[]): string[] {
    const blobs = images.flatMap((img) => [img.manifestDigest, img.id, ...img.layers.map((l) => l.digest)]);
    return this.dropUnreferenced(
      blobs,
      images.flatMap((img) => img.layers.map((l) => l.diffId)),
    );
  }

  /**
   * Only these candidates are looked at, never the whole store, so blobs that a concurrent pull
   * has just written are not taken. Returns the digests of the blobs removed.
   */
  private dropUnreferenced(blobs: string[], diffIds: string[]): string[] {
    const trash: string[] = [];
    const removed = this.withIndex((index) => {
      const usedBlobs = new Set<string>();
      const usedLayers = new Set<string>();
      for (const img of Object.values(index.images)) {
        usedBlobs.add(img.id).add(img.manifestDigest);
        for (const l of img.layers) {
          usedBlobs.add(l.digest);
          usedLayers.add(l.diffId);
        }
      }
      for (const d of new Set(diffIds)) if (!usedLayers.has(d)) this.retireLayer(d, trash);
      return [...new Set(blobs)].filter((d) => !usedBlobs.has(d) && removeFile(this.blobPath(d)));
    });
    for (const t of trash) fs.rmSync(t, { recursive: true, force: true });
    return removed;
  }

  /** Unmarks a layer and moves its directory to tmp/, to be deleted outside the index lock. */
  private retireLayer(diffId: string, trash: string[]): void {
    const dir = this.layerDir(diffId);
    if (locks.isLocked(`${dir}.lock`)) return; // being unpacked for an image not yet in the index
    // Its copies for user namespaces too: LAYER-uUID-gGID-nSIZE.
    const copies = fs
      .readdirSync(dirname(dir))
      .filter((n) => /^[0-9a-f]{64}-u\d+-g\d+-n\d+$/.test(n) && n.startsWith(`${digestHex(diffId)}-`));
    for (const d of [dir, ...copies.map((n) => join(dirname(dir), n))]) {
      if (d !== dir && locks.isLocked(`${d}.lock`)) continue;
      fs.rmSync(`${d}.json`, { force: true });
      if (!fs.existsSync(d)) continue;
      const to = this.tempPath('gc');
      fs.renameSync(d, to);
      trash.push(to);
    }
  }

  // -- index --------------------------------------------------------------------------------------

  private get indexPath(): string {
    return join(this.root, 'index.json');
  }

  private readIndex(): IndexFile {
    let text: string;
    try {
      text = fs.readFileSync(this.indexPath, 'utf8');
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') return { version: 1, images: {} };
      throw e;
    }
    const index = parseJson(Buffer.from(text), this.indexPath) as IndexFile;
    if (index?.version !== 1 || typeof index.images !== 'object')
      throw new ContainerError('EFORMAT', `cannot read ${this.indexPath}: unknown format`);
    return index;
  }

  /** Read-modify-write of the index under its lock; written only when `fn` returns normally. */
  private withIndex<T>(fn: (index: IndexFile) => T): T {
    return locks.withLockSync(join(this.root, 'index.lock'), () => {
      const index = this.readIndex();
      const result = fn(index);
      writeAtomic(this.indexPath, `${JSON.stringify(index, null, 1)}\n`);
      return result;
    });
  }

  private tempPath(purpose: string): string {
    return join(this.root, 'tmp', `${purpose}-${process.pid}-${randomBytes(6).toString('hex')}`);
  }
}

// -- refs -----------------------------------------------------------------------------------------

/**
 * Docker's rules: "busybox" → docker.io/library/busybox:latest, "user/app" → docker.io/user/app:latest,
 * "localhost:5000/app" → localhost:5000/app:latest; "name@sha256:…" keeps the digest and gets no tag.
 */
export function normalizeRef(ref: string): string {
  try {
    return parseReference(ref).normalized;
  } catch (e) {
    if (e instanceof InvalidReferenceError) throw new ContainerError('EREFERENCE', e.message);
    throw e;
  }
}

/** The short form Docker shows: docker.io/library/busybox:latest → busybox:latest. */
export function familiarRef(ref: string): string {
  const LIBRARY = 'docker.io/library/';
  if (ref.startsWith(LIBRARY) && !ref.slice(LIBRARY.length).includes('/')) return ref.slice(LIBRARY.length);
  if (ref.startsWith('docker.io/')) return ref.slice('docker.io/'.length);
  return ref;
}

function moveRef(index: IndexFile, ref: string, id: string): void {
  for (const img of Object.values(index.images)) img.refs = img.refs.filter((r) => r !== ref);
  const target = index.images[id];
  target.refs = [...target.refs, ref].sort();
}

/** By ref first (a ref with a digest also matches the manifest digest), then by id prefix. */
function resolveIn(index: IndexFile, refOrId: string): { image: ImageRecord; ref: string | null } {
  const images = Object.values(index.images);
  let parsed: ReturnType<typeof parseReference> | null = null;
  try {
    parsed = parseReference(refOrId);
  } catch {
    // not a ref: maybe an id
  }
  if (parsed) {
    const byRef = images.find((img) => img.refs.includes(parsed.normalized));
    if (byRef) return { image: byRef, ref: parsed.normalized };
    if (parsed.digest !== null) {
      const repo = `${parsed.registry}/${parsed.repository}`;
      const byDigest = images.find(
        (img) =>
          img.manifestDigest === parsed.digest &&
          img.refs.some((r) => r.startsWith(`${repo}:`) || r.startsWith(`${repo}@`)),
      );
      if (byDigest) return { image: byDigest, ref: null };
    }
  }
  const m = ID_PREFIX.exec(refOrId);
  if (m) {
    const matches = images.filter((img) => digestHex(img.id).startsWith(m[1]));
    if (matches.length === 1) return { image: matches[0], ref: null };
    if (matches.length > 1) {
      throw new ContainerError(
        'EAMBIGUOUS',
        `cannot resolve image ${refOrId}: the id prefix matches ${matches.length} images ` +
          `(${matches.map((i) => digestHex(i.id).slice(0, 12)).join(', ')})`,
      );
    }
  }
  throw new ContainerError('ENOIMAGE', `cannot find image ${refOrId}: no such image in the store`);
}

// -- helpers --------------------------------------------------------------------------------------

export function digestHex(digest: string): string {
  const m = SHA256.exec(digest);
  if (!m) {
    const alg = digest.includes(':') ? digest.split(':')[0] : '';
    if (alg && alg !== 'sha256')
      throw new ContainerError('EUNSUPPORTED', `cannot use digest ${digest}: only sha256 is supported`);
    throw new ContainerError('EDIGEST', `cannot use digest ${digest}: not sha256:<64 hex digits>`);
  }
  return m[1];
}

/** The OCI digest (`sha256:<hex>`) of bytes. */
export function sha256(data: Buffer | string): string {
  return `sha256:${sha256Hex(data)}`;
}

/** The OCI digest (`sha256:<hex>`) of a file, streamed. */
export async function hashFile(file: string): Promise<string> {
  return `sha256:${await sha256File(file)}`;
}

function checkExpected(actual: string, expected: string | undefined, what: string): void {
  if (expected === undefined) return;
  digestHex(expected);
  if (actual !== expected)
    throw new ContainerError('EDIGEST', `cannot store ${what}: its digest is ${actual}, expected ${expected}`);
}

async function writeHashed(path: string, data: Buffer | Readable): Promise<string> {
  const hash = createHash('sha256');
  const fd = fs.openSync(path, 'wx', 0o644);
  try {
    if (Buffer.isBuffer(data)) {
      hash.update(data);
      writeAll(fd, data);
    } else {
      for await (const chunk of data) {
        const b = typeof chunk === 'string' ? Buffer.from(chunk) : (chunk as Buffer);
        hash.update(b);
        writeAll(fd, b);
      }
    }
    fs.fsyncSync(fd);
  } finally {
    fs.closeSync(fd);
  }
  return `sha256:${hash.digest('hex')}`;
}

function writeAll(fd: number, b: Buffer): void {
  let at = 0;
  while (at < b.length) at += fs.writeSync(fd, b, at, b.length - at);
}

function removeFile(path: string): boolean {
  try {
    fs.unlinkSync(path);
    return true;
  } catch {
    return false;
  }
}

function readMarker(path: string): LayerMarker | null {
  try {
    return JSON.parse(fs.readFileSync(path, 'utf8')) as LayerMarker;
  } catch {
    return null; // missing or torn: the layer is unpacked again
  }
}

function parseJson(data: Buffer, what: string): any {
  try {
    return JSON.parse(data.toString('utf8'));
  } catch (e) {
    throw new ContainerError('EFORMAT', `cannot parse ${what}: ${(e as Error).message}`);
  }
}

function diffIdsOf(config: any, id: string, layerCount: number): string[] {
  const diffIds: unknown = config?.rootfs?.diff_ids;
  if (!Array.isArray(diffIds) || !diffIds.every((d) => typeof d === 'string')) {
    throw new ContainerError('EFORMAT', `cannot add image ${id}: its config has no rootfs.diff_ids`);
  }
  if (diffIds.length !== layerCount) {
    throw new ContainerError(
      'EDIFFID',
      `cannot add image ${id}: the manifest has ${layerCount} layers but the config lists ${diffIds.length} diff_ids`,
    );
  }
  for (const d of diffIds) digestHex(d);
  return diffIds as string[];
}

function diffIdMismatch(digest: string, actual: string, expected: string): ContainerError {
  return new ContainerError(
    'EDIFFID',
    `cannot add layer ${digest}: it unpacks to diffID ${actual} but the config says ${expected}`,
  );
}
