// `keel load` / `keel save`: image archives in the two common formats, plain or gzip-compressed.
//   docker: manifest.json ([{Config, RepoTags, Layers}]), optional `repositories`, blobs by path
//   oci:    oci-layout, index.json, blobs/sha256/<hex> (image layout spec, as a tar)
// Archives are unpacked into a temp dir under the store root with the layer unpacker's safety
// rules, then their blobs are checked and moved into the store.
import * as fs from 'node:fs';
import { join, sep } from 'node:path';
import { pipeline } from 'node:stream/promises';
import { ContainerError } from './errors.js';
import { IMAGE_TYPES, INDEX_TYPES as INDEX_TYPE_LIST, MEDIA_TYPES as MEDIA, ociLayerType } from './media-types.js';
import { digestHex, familiarRef, hashFile, normalizeRef, sha256, type ImageRecord, type ImageStore } from './store.js';
import { openSniffed, sniffCompression } from './decompress.js';
import { cleanEntryPath, extractTar } from './extract.js';
import { writeTar, type TarWriteEntry } from './tar.js';

const INDEX_TYPES = new Set<string>(INDEX_TYPE_LIST);
const MANIFEST_TYPES = new Set<string>(IMAGE_TYPES);
const REF_NAME = 'org.opencontainers.image.ref.name';
const CONTAINERD_NAME = 'io.containerd.image.name';
/** What an archive may unpack to; its blobs are checked against their digests anyway. */
const MAX_ARCHIVE_BYTES = 1024 ** 4;
const MAX_INDEX_DEPTH = 4;

type Layer = { digest: string; mediaType: string; size: number };

// -------------------------------------------------------------------------------------------------
// Loading

/** Imports every image of a docker-save or OCI-layout archive (plain, gzip or zstd tar). */
export async function loadArchive(store: ImageStore, file: string): Promise<ImageRecord[]> {
  const dir = store.makeTempDir('load');
  try {
    try {
      await extractTar(openSniffed(file), dir, { maxBytes: MAX_ARCHIVE_BYTES, allowDevices: false, ownership: false });
    } catch (e) {
      if (e instanceof ContainerError)
        throw new ContainerError(e.code, `cannot load archive ${file}: ${e.message}`, { cause: e });
      throw e;
    }
    const archive = new ArchiveDir(dir, file);
    try {
      if (archive.has('manifest.json')) return await loadDocker(store, archive);
      if (archive.has('index.json')) return await loadOci(store, archive);
    } catch (e) {
      store.discardBlobs(archive.adopted);
      throw e;
    }
    throw archive.error('EFORMAT', 'it has neither manifest.json (docker save) nor index.json (OCI layout)');
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

/** The unpacked archive: files looked up by their path inside it, never leaving it. */
class ArchiveDir {
  private readonly real: string;
  /** Blobs moved into the store, to be dropped again if the load fails. */
  readonly adopted: string[] = [];
  constructor(
    readonly dir: string,
    readonly file: string,
  ) {
    this.real = fs.realpathSync(dir);
  }

  has(rel: string): boolean {
    return fs.existsSync(join(this.dir, rel));
  }

  /** The real path of a regular file of the archive; symlinks (old docker save) may lead only inside. */
  path(rel: string): string {
    if (typeof rel !== 'string') throw this.error('EFORMAT', `a file name is not a string (${JSON.stringify(rel)})`);
    const clean = cleanEntryPath(rel, rel, 'path');
    let real: string;
    try {
      real = fs.realpathSync(join(this.dir, clean));
    } catch {
      throw this.error('EFORMAT', `it has no file ${rel}`);
    }
    if (!real.startsWith(this.real + sep)) throw this.error('EUNSAFE', `${rel} leads outside the archive`);
    if (!fs.statSync(real).isFile()) throw this.error('EFORMAT', `${rel} is not a file`);
    return real;
  }

  read(rel: string): Buffer {
    return fs.readFileSync(this.path(rel));
  }

  json(rel: string): any {
    try {
      return JSON.parse(this.read(rel).toString('utf8'));
    } catch (e) {
      if (e instanceof ContainerError) throw e;
      throw this.error('EFORMAT', `${rel} is not valid JSON: ${(e as Error).message}`);
    }
  }

  blobPath(digest: string): string {
    return this.path(`blobs/sha256/${digestHex(digest)}`);
  }

  error(code: string, reason: string): ContainerError {
    return new ContainerError(code, `cannot load archive ${this.file}: ${reason}`);
  }
}

// -- docker save ----------------------------------------------------------------------------------

interface DockerManifestEntry {
  Config: string;
  RepoTags?: string[] | null;
  Layers: string[];
}

async function loadDocker(store: ImageStore, archive: ArchiveDir): Promise<ImageRecord[]> {
  const entries: unknown = archive.json('manifest.json');
  if (!Array.isArray(entries)) throw archive.error('EFORMAT', 'manifest.json is not a list');
  const repositories = archive.has('repositories') ? archive.json('repositories') : {};
  const imported = new Map<string, Layer>(); // by real path: old archives link shared layers
  const records: ImageRecord[] = [];
  for (const entry of entries as DockerManifestEntry[]) {
    if (typeof entry?.Config !== 'string' || !Array.isArray(entry.Layers))
      throw archive.error('EFORMAT', 'a manifest.json entry lacks Config or Layers');
    const config = archive.read(entry.Config);
    const layers: Layer[] = [];
    for (const rel of entry.Layers)
      layers.push(await importDockerLayer(store, archive.path(rel), imported, archive.adopted));
    const manifest = Buffer.from(JSON.stringify(ociManifest(config, layers)));
    const refs = entry.RepoTags?.length ? entry.RepoTags : refsFromRepositories(repositories, entry.Layers);
    records.push(
      await store.addImage({ manifest, manifestDigest: sha256(manifest), config, layers, refs: validRefs(refs) }),
    );
  }
  return records;
}

/** docker save does not record media types: the compression is read from the layer itself. */
async function importDockerLayer(
  store: ImageStore,
  path: string,
  imported: Map<string, Layer>,
  adopted: string[],
): Promise<Layer> {
  const known = imported.get(path);
  if (known) return known;
  const compression = sniffCompression(path);
  const mediaType =
    compression === 'gzip' ? MEDIA.ociLayerGzip : compression === 'zstd' ? MEDIA.ociLayerZstd : MEDIA.ociLayer;
  const size = fs.statSync(path).size;
  const { digest, added } = await store.adoptBlob(path);
  if (added) adopted.push(digest);
  const layer = { digest, mediaType, size };
  imported.set(path, layer);
  return layer;
}

/** The legacy `repositories` file: {"repo": {"tag": "<id of the top layer dir>"}}. */
function refsFromRepositories(repositories: any, layers: string[]): string[] {
  const top = layers.at(-1)?.split('/')[0];
  const refs: string[] = [];
  if (!top || typeof repositories !== 'object' || repositories === null) return refs;
  for (const [repo, tags] of Object.entries(repositories)) {
    for (const [tag, id] of Object.entries((tags ?? {}) as Record<string, unknown>))
      if (id === top) refs.push(`${repo}:${tag}`);
  }
  return refs;
}

function ociManifest(config: Buffer, layers: Layer[]): object {
  return {
    schemaVersion: 2,
    mediaType: MEDIA.ociManifest,
    config: { mediaType: MEDIA.ociConfig, digest: sha256(config), size: config.length },
    layers: layers.map((l) => ({ mediaType: l.mediaType, digest: l.digest, size: l.size })),
  };
}

// -- OCI image layout -----------------------------------------------------------------------------

interface Descriptor {
  mediaType?: string;
  digest: string;
  size?: number;
  annotations?: Record<string, string>;
  platform?: { os?: string; architecture?: string; variant?: string };
}

async function loadOci(store: ImageStore, archive: ArchiveDir): Promise<ImageRecord[]> {
  if (archive.has('oci-layout') && typeof archive.json('oci-layout')?.imageLayoutVersion !== 'string') {
    throw archive.error('EFORMAT', 'oci-layout has no imageLayoutVersion');
  }
  const index = archive.json('index.json');
  if (!Array.isArray(index?.manifests)) throw archive.error('EFORMAT', 'index.json has no manifests list');
  const found = new Map<string, { desc: Descriptor; refs: string[] }>();
  collectManifests(archive, index.manifests, null, found, 0);
  const records: ImageRecord[] = [];
  for (const { desc, refs } of found.values()) records.push(await importOciImage(store, archive, desc, refs));
  return records;
}

/** Image manifests reachable from `descs` (nested indexes followed for this host's platform). */
function collectManifests(
  archive: ArchiveDir,
  descs: Descriptor[],
  inherited: string | null,
  found: Map<string, { desc: Descriptor; refs: string[] }>,
  depth: number,
): void {
  if (depth > MAX_INDEX_DEPTH) throw archive.error('EFORMAT', 'image indexes are nested too deeply');
  for (const desc of forThisPlatform(descs)) {
    const ref = refFromAnnotations(desc.annotations) ?? inherited;
    if (desc.mediaType && INDEX_TYPES.has(desc.mediaType)) {
      const nested = parseChecked(archive, desc.digest);
      if (!Array.isArray(nested?.manifests))
        throw archive.error('EFORMAT', `index ${desc.digest} has no manifests list`);
      collectManifests(archive, nested.manifests, ref, found, depth + 1);
    } else if (!desc.mediaType || MANIFEST_TYPES.has(desc.mediaType)) {
      const entry = found.get(desc.digest) ?? { desc, refs: [] };
      if (ref !== null && !entry.refs.includes(ref)) entry.refs.push(ref);
      found.set(desc.digest, entry);
    }
  }
}

function forThisPlatform(descs: Descriptor[]): Descriptor[] {
  const arch = hostArchitecture();
  return descs.filter((d) => !d.platform || (d.platform.os === 'linux' && d.platform.architecture === arch));
}

function hostArchitecture(): string {
  const map: Record<string, string> = {
    x64: 'amd64',
    ia32: '386',
    arm64: 'arm64',
    arm: 'arm',
    ppc64: 'ppc64le',
    s390x: 's390x',
    riscv64: 'riscv64',
  };
  return map[process.arch] ?? process.arch;
}

/**
 * containerd and docker name the image in io.containerd.image.name and put only the tag in
 * ref.name; skopeo (oci-archive:f.tar:name:tag) puts the whole "name:tag" in ref.name. A bare
 * ref.name ("t", as umoci writes) is taken as an image name, so it loads as docker.io/library/t:latest.
 */
function refFromAnnotations(annotations: Record<string, string> | undefined): string | null {
  for (const key of [CONTAINERD_NAME, REF_NAME]) {
    const value = annotations?.[key];
    if (typeof value === 'string' && validRefs([value]).length === 1) return value;
  }
  return null;
}

async function importOciImage(
  store: ImageStore,
  archive: ArchiveDir,
  desc: Descriptor,
  refs: string[],
): Promise<ImageRecord> {
  const manifestBytes = readChecked(archive, desc.digest);
  const manifest = parseJson(archive, manifestBytes, `manifest ${desc.digest}`);
  if (!manifest?.config?.digest || !Array.isArray(manifest.layers))
    throw archive.error('EFORMAT', `manifest ${desc.digest} lacks config or layers`);
  const config = readChecked(archive, manifest.config.digest);
  const layers: Layer[] = (manifest.layers as Descriptor[]).map((l) => ({
    digest: l.digest,
    mediaType: l.mediaType ?? MEDIA.ociLayerGzip,
    size: l.size ?? 0,
  }));
  // Every blob is checked before any is moved into the store, so a bad archive leaves nothing.
  const toAdopt = new Map<string, string>();
  for (const l of layers) {
    if (toAdopt.has(l.digest) || store.hasBlob(l.digest)) continue; // some tools leave out blobs the target has
    const path = archive.blobPath(l.digest);
    if ((await hashFile(path)) !== l.digest)
      throw archive.error('EDIGEST', `blob ${l.digest} does not match its digest`);
    toAdopt.set(l.digest, path);
  }
  for (const [digest, path] of toAdopt) if ((await store.adoptBlob(path, digest)).added) archive.adopted.push(digest);
  return store.addImage({
    manifest: manifestBytes,
    manifestDigest: desc.digest,
    config,
    layers,
    refs: validRefs(refs),
  });
}

function readChecked(archive: ArchiveDir, digest: string): Buffer {
  const data = archive.read(`blobs/sha256/${digestHex(digest)}`);
  if (sha256(data) !== digest) throw archive.error('EDIGEST', `blob ${digest} does not match its digest`);
  return data;
}

function parseChecked(archive: ArchiveDir, digest: string): any {
  return parseJson(archive, readChecked(archive, digest), `blob ${digest}`);
}

function parseJson(archive: ArchiveDir, data: Buffer, what: string): any {
  try {
    return JSON.parse(data.toString('utf8'));
  } catch (e) {
    throw archive.error('EFORMAT', `${what} is not valid JSON: ${(e as Error).message}`);
  }
}

function validRefs(refs: unknown[]): string[] {
  return refs.filter((r): r is string => {
    if (typeof r !== 'string') return false;
    try {
      normalizeRef(r);
      return true;
    } catch {
      return false;
    }
  });
}

// -------------------------------------------------------------------------------------------------
// Saving

export type ArchiveFormat = 'docker' | 'oci';

interface SavedImage {
  image: ImageRecord;
  /** Normalised tag refs to record for it (none when it was named by id). */
  refs: string[];
}

/**
 * Writes the images named by `refs` (refs or ids) to `file` as a plain tar: `docker` is loadable
 * by `docker load`, skopeo's docker-archive: and loadArchive; `oci` is an OCI image layout.
 */
export async function saveArchive(
  store: ImageStore,
  refs: string[],
  file: string,
  format: ArchiveFormat,
): Promise<void> {
  if (refs.length === 0) throw new ContainerError('EINVAL', `cannot save ${file}: no image given`);
  const images = pickImages(store, refs);
  const entries = format === 'docker' ? dockerEntries(store, images) : ociEntries(store, images);
  const tmp = `${file}.tmp-${process.pid}`;
  try {
    await pipeline(writeTar(entries), fs.createWriteStream(tmp, { mode: 0o644 }));
    const fd = fs.openSync(tmp, 'r');
    try {
      fs.fsyncSync(fd);
    } finally {
      fs.closeSync(fd);
    }
    fs.renameSync(tmp, file);
  } catch (e) {
    fs.rmSync(tmp, { force: true });
    if (e instanceof ContainerError) throw e;
    throw new ContainerError('EIO', `cannot save ${file}: ${(e as Error).message}`, { cause: e });
  }
}

function pickImages(store: ImageStore, refs: string[]): SavedImage[] {
  const byId = new Map<string, SavedImage>();
  for (const r of refs) {
    const image = store.resolve(r);
    const saved = byId.get(image.id) ?? { image, refs: [] };
    let normalized: string | null = null;
    try {
      normalized = normalizeRef(r);
    } catch {
      // an id
    }
    if (normalized && image.refs.includes(normalized) && !normalized.includes('@') && !saved.refs.includes(normalized))
      saved.refs.push(normalized);
    byId.set(image.id, saved);
  }
  return [...byId.values()];
}

function blobEntry(store: ImageStore, digest: string): TarWriteEntry {
  const file = store.blobPath(digest);
  let size: number;
  try {
    size = fs.statSync(file).size;
  } catch {
    throw new ContainerError('ENOBLOB', `cannot save blob ${digest}: it is not in the store`);
  }
  return { header: { name: `blobs/sha256/${digestHex(digest)}`, type: 'file', mode: 0o644, size }, file };
}

function dataEntry(name: string, data: Buffer): TarWriteEntry {
  return { header: { name, type: 'file', mode: 0o644 }, data };
}

const BLOB_DIRS: TarWriteEntry[] = [
  { header: { name: 'blobs/', type: 'dir', mode: 0o755 } },
  { header: { name: 'blobs/sha256/', type: 'dir', mode: 0o755 } },
];

function dockerEntries(store: ImageStore, images: SavedImage[]): TarWriteEntry[] {
  const blobs = new Set<string>();
  const manifest = images.map(({ image, refs }) => {
    blobs.add(image.id);
    for (const l of image.layers) blobs.add(l.digest);
    return {
      Config: `blobs/sha256/${digestHex(image.id)}`,
      RepoTags: refs.length ? refs.map(familiarRef) : null,
      Layers: image.layers.map((l) => `blobs/sha256/${digestHex(l.digest)}`),
    };
  });
  return [
    ...BLOB_DIRS,
    ...[...blobs].sort().map((d) => blobEntry(store, d)),
    dataEntry('manifest.json', Buffer.from(JSON.stringify(manifest))),
  ];
}

function ociEntries(store: ImageStore, images: SavedImage[]): TarWriteEntry[] {
  const blobs = new Set<string>();
  const extra = new Map<string, Buffer>(); // converted manifests, not in the store
  const manifests: Descriptor[] = [];
  for (const { image, refs } of images) {
    const m = ociManifestOf(store, image);
    if (m.converted) extra.set(m.digest, m.bytes);
    else blobs.add(m.digest);
    blobs.add(image.id);
    for (const l of image.layers) blobs.add(l.digest);
    const desc = { mediaType: MEDIA.ociManifest, digest: m.digest, size: m.bytes.length };
    if (refs.length === 0) manifests.push(desc);
    for (const ref of refs)
      manifests.push({
        ...desc,
        annotations: { [CONTAINERD_NAME]: ref, [REF_NAME]: ref.slice(ref.lastIndexOf(':') + 1) },
      });
  }
  const index = { schemaVersion: 2, mediaType: MEDIA.ociIndex, manifests };
  const blobEntries = [...new Set([...blobs, ...extra.keys()])].sort().map((d) => {
    const data = extra.get(d);
    return data ? dataEntry(`blobs/sha256/${digestHex(d)}`, data) : blobEntry(store, d);
  });
  return [
    dataEntry('oci-layout', Buffer.from(JSON.stringify({ imageLayoutVersion: '1.0.0' }))),
    ...BLOB_DIRS,
    ...blobEntries,
    dataEntry('index.json', Buffer.from(JSON.stringify(index))),
  ];
}

/** The image's manifest as an OCI one: Docker schema 2 manifests get OCI media types (and so a new digest). */
function ociManifestOf(store: ImageStore, image: ImageRecord): { digest: string; bytes: Buffer; converted: boolean } {
  const bytes = store.readBlob(image.manifestDigest);
  const manifest = JSON.parse(bytes.toString('utf8'));
  if (manifest.mediaType !== MEDIA.dockerManifest) return { digest: image.manifestDigest, bytes, converted: false };
  const oci = {
    schemaVersion: 2,
    mediaType: MEDIA.ociManifest,
    config: { ...manifest.config, mediaType: MEDIA.ociConfig },
    layers: manifest.layers.map((l: Descriptor) => ({ ...l, mediaType: ociLayerType(l.mediaType ?? '') })),
    ...(manifest.annotations ? { annotations: manifest.annotations } : {}),
  };
  const out = Buffer.from(JSON.stringify(oci));
  return { digest: sha256(out), bytes: out, converted: true };
}
