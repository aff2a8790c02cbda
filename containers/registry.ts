// `keel pull`: fetches an image from a registry over the OCI distribution API (v2). Every byte is
// checked against a digest before it is trusted: manifests by their sha256, blobs against their
// descriptor's digest and size before they are renamed into the blob store. Manifest parsing is
// in manifest.ts (pure), the registry's HTTP and auth in registry-client.ts.
import { createHash, randomBytes } from 'node:crypto';
import { mkdir, open, readFile, rename, rm, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { isHttpError } from '../lib/http.js';
import { ContainerError, PullFailure } from './errors.js';
import {
  DEFAULT_PLATFORM,
  manifestMediaType,
  parseImageManifest,
  parseIndex,
  parseJson,
  selectPlatform,
  type Descriptor,
  type Platform,
} from './manifest.js';
import { IMAGE_TYPES, INDEX_TYPES, MANIFEST_ACCEPT } from './media-types.js';
import { parseReference, type ImageReference } from './reference.js';
import { readBody, RegistryClient, type RegistryAuth } from './registry-client.js';
import { hashFile, sha256 } from './store.js';

export interface PullProgress {
  digest: string;
  doneBytes: number;
  totalBytes: number;
}

export interface PullOptions {
  /** Plain HTTP instead of HTTPS; allowed only for registries on loopback (127.0.0.0/8, ::1, localhost). */
  insecure?: boolean;
  /** docker's insecure-registries (read from /etc/docker/daemon.json by the CLI). */
  insecureRegistries?: readonly string[];
  /** Which image of a multi-platform index to pull; default linux/amd64. */
  platform?: Platform;
  /** Blobs are stored as blobDir/sha256/<hex>, only once verified. */
  blobDir: string;
  progress?: (p: PullProgress) => void;
  /** Sent to the token server (Bearer) or to the registry itself (Basic). */
  auth?: RegistryAuth;
  signal?: AbortSignal;
}

export interface PulledLayer {
  digest: string;
  mediaType: string;
  size: number;
}

export interface PulledImage {
  /** The normalized reference, e.g. docker.io/library/busybox:latest. */
  ref: string;
  /** sha256 of `manifest`, the platform's image manifest. */
  manifestDigest: string;
  /** sha256 of the index (manifest list) the manifest was chosen from, when there was one. */
  indexDigest?: string;
  manifest: Buffer;
  /** The config blob, also stored in blobDir. */
  config: Buffer;
  configDigest: string;
  layers: PulledLayer[];
}

/** distribution refuses manifests larger than this; so do we, before holding one in memory. */
const MAX_MANIFEST_BYTES = 4 * 1024 * 1024;
const PARALLEL_DOWNLOADS = 3;
const PROGRESS_INTERVAL_MS = 100;

/** Pulls `ref` into `o.blobDir` and returns its manifest, config and layer descriptors. */
export async function pullImage(ref: string, o: PullOptions): Promise<PulledImage> {
  let parsed: ImageReference;
  try {
    parsed = parseReference(ref);
  } catch (e) {
    throw new ContainerError('EREFERENCE', `cannot pull ${ref}: ${(e as Error).message}`, { cause: e });
  }
  try {
    if (o.signal?.aborted) throw new PullFailure('EABORTED', 'aborted');
    return await new Puller(parsed, o).pull();
  } catch (e) {
    throw pullError(parsed.normalized, e, o.signal);
  }
}

function pullError(ref: string, e: unknown, signal: AbortSignal | undefined): ContainerError {
  if (signal?.aborted) return new ContainerError('EABORTED', `cannot pull ${ref}: aborted`, { cause: e });
  if (e instanceof PullFailure) return new ContainerError(e.code, `cannot pull ${ref}: ${e.message}`, { cause: e });
  return new ContainerError('EPULL', `cannot pull ${ref}: ${(e as Error)?.message ?? String(e)}`, { cause: e });
}

interface FetchedManifest {
  bytes: Buffer;
  digest: string;
  mediaType: string;
  json: Record<string, unknown>;
}

class Puller {
  private readonly client: RegistryClient;
  private readonly repo: string;

  constructor(
    private readonly ref: ImageReference,
    private readonly o: PullOptions,
  ) {
    this.client = new RegistryClient(ref, o);
    this.repo = ref.repository;
  }

  async pull(): Promise<PulledImage> {
    const top = await this.fetchManifest(this.ref.digest ?? this.ref.tag ?? 'latest', this.ref.digest);
    let manifest = top;
    let indexDigest: string | undefined;
    if (INDEX_TYPES.includes(top.mediaType)) {
      const chosen = selectPlatform(parseIndex(top.json), this.o.platform ?? DEFAULT_PLATFORM);
      manifest = await this.fetchManifest(chosen.digest, chosen.digest, chosen.size);
      indexDigest = top.digest;
      if (!IMAGE_TYPES.includes(manifest.mediaType)) {
        throw new PullFailure(
          'EUNSUPPORTED',
          `the index entry ${chosen.digest} is a ${manifest.mediaType}, not an image manifest`,
        );
      }
    }
    const image = parseImageManifest(manifest.json);
    const store = new BlobStore(this.o.blobDir);
    await this.fetchBlobs(store, [image.config, ...image.layers]);
    return {
      ref: this.ref.normalized,
      manifestDigest: manifest.digest,
      ...(indexDigest !== undefined ? { indexDigest } : {}),
      manifest: manifest.bytes,
      config: await readFile(store.path(image.config.digest)),
      configDigest: image.config.digest,
      layers: image.layers.map(({ digest, mediaType, size }) => ({ digest, mediaType, size })),
    };
  }

  private async fetchManifest(
    reference: string,
    expectedDigest: string | null,
    expectedSize?: number,
  ): Promise<FetchedManifest> {
    const what = `manifest ${reference}`;
    const res = await this.client.get(
      `/v2/${this.repo}/manifests/${reference}`,
      what,
      { accept: MANIFEST_ACCEPT },
      this.o.signal,
    );
    const bytes = await readBody(res, MAX_MANIFEST_BYTES, what);
    const digest = sha256(bytes);
    if (expectedDigest !== null && digest !== expectedDigest) {
      throw new PullFailure('EDIGEST', `digest mismatch for ${what}: expected ${expectedDigest}, got ${digest}`);
    }
    const announced = res.header('docker-content-digest');
    if (announced?.startsWith('sha256:') && announced !== digest) {
      throw new PullFailure(
        'EDIGEST',
        `digest mismatch for ${what}: the registry announced ${announced} ` +
          `(Docker-Content-Digest), the bytes hash to ${digest}`,
      );
    }
    if (expectedSize !== undefined && bytes.length !== expectedSize) {
      throw new PullFailure(
        'ESIZE',
        `size mismatch for ${what}: the index says ${expectedSize} bytes, got ${bytes.length}`,
      );
    }
    const json = parseJson(bytes, what);
    return { bytes, digest, json, mediaType: manifestMediaType(json, res.header('content-type'), what) };
  }

  /** Fetches the missing blobs a few at a time; on the first failure the others are stopped. */
  private async fetchBlobs(store: BlobStore, descriptors: Descriptor[]): Promise<void> {
    const unique = [...new Map(descriptors.map((d) => [d.digest, d])).values()];
    await runLimited(unique, PARALLEL_DOWNLOADS, (d, signal) => this.fetchBlob(store, d, signal), this.o.signal);
  }

  private async fetchBlob(store: BlobStore, d: Descriptor, signal: AbortSignal): Promise<void> {
    const report = this.progressReporter(d);
    if (await store.has(d)) {
      report(d.size, true);
      return;
    }
    const what = `blob ${d.digest}`;
    await store.write(d, async (sink) => {
      const res = await this.client.get(`/v2/${this.repo}/blobs/${d.digest}`, what, {}, signal);
      const announced = res.header('content-length');
      if (announced !== undefined && Number(announced) !== d.size) {
        res.discard();
        throw new PullFailure(
          'ESIZE',
          `size mismatch for ${what}: the manifest says ${d.size} bytes, the registry sends ${announced}`,
        );
      }
      report(0, true);
      try {
        for await (const chunk of res.chunks()) report(await sink(chunk), false);
      } catch (e) {
        if (e instanceof PullFailure || signal.aborted) throw e;
        throw new PullFailure(
          'ENETWORK',
          `reading ${what} failed: ${isHttpError(e) ? e.reason : (e as Error).message}`,
        );
      }
    });
    report(d.size, true);
  }

  private progressReporter(d: Descriptor): (done: number, force: boolean) => void {
    let last = 0;
    return (doneBytes, force) => {
      const now = Date.now();
      if (!this.o.progress || (!force && now - last < PROGRESS_INTERVAL_MS)) return;
      last = now;
      this.o.progress({ digest: d.digest, doneBytes, totalBytes: d.size });
    };
  }
}

// --- Blob store -------------------------------------------------------------------------------

class BlobStore {
  private readonly dir: string;
  constructor(blobDir: string) {
    this.dir = join(blobDir, 'sha256');
  }

  path(digest: string): string {
    return join(this.dir, digest.slice('sha256:'.length));
  }

  /** True when the blob is stored and still matches; a damaged copy is removed so it is fetched again. */
  async has(d: Descriptor): Promise<boolean> {
    const file = this.path(d.digest);
    const st = await stat(file).catch(() => null);
    if (st === null) return false;
    if (st.isFile() && st.size === d.size && (await hashFile(file)) === d.digest) return true;
    await rm(file, { force: true, recursive: true });
    return false;
  }

  /** Runs `fill` with a sink into a temporary file; renames it into place only if digest and size match. */
  async write(d: Descriptor, fill: (sink: (chunk: Buffer) => Promise<number>) => Promise<void>): Promise<void> {
    await mkdir(this.dir, { recursive: true });
    const tmp = join(this.dir, `.${d.digest.slice(7)}.${randomBytes(6).toString('hex')}.tmp`);
    const fh = await open(tmp, 'wx', 0o644);
    const hash = createHash('sha256');
    let size = 0;
    try {
      try {
        await fill(async (chunk) => {
          size += chunk.length;
          if (size > d.size)
            throw new PullFailure(
              'ESIZE',
              `size mismatch for blob ${d.digest}: the manifest says ${d.size} bytes, the registry sent more`,
            );
          hash.update(chunk);
          await fh.write(chunk);
          return size;
        });
        await fh.sync();
      } finally {
        await fh.close();
      }
      if (size !== d.size)
        throw new PullFailure(
          'ESIZE',
          `size mismatch for blob ${d.digest}: the manifest says ${d.size} bytes, got ${size}`,
        );
      const got = `sha256:${hash.digest('hex')}`;
      if (got !== d.digest)
        throw new PullFailure('EDIGEST', `digest mismatch for blob ${d.digest}: expected ${d.digest}, got ${got}`);
      await rename(tmp, this.path(d.digest));
    } catch (e) {
      await rm(tmp, { force: true });
      throw e;
    }
  }
}

/**
 * Runs `fn` on every item, `limit` at a time; the first failure aborts the rest, which are awaited before it is
 * thrown.
 */
async function runLimited<T>(
  items: T[],
  limit: number,
  fn: (item: T, signal: AbortSignal) => Promise<void>,
  outer?: AbortSignal,
): Promise<void> {
  const stop = new AbortController();
  const signal = outer ? AbortSignal.any([outer, stop.signal]) : stop.signal;
  let next = 0;
  let failure: { error: unknown } | null = null;
  const worker = async (): Promise<void> => {
    while (failure === null && next < items.length) {
      const item = items[next++] as T;
      try {
        await fn(item, signal);
      } catch (e) {
        failure ??= { error: e };
        stop.abort();
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
  if (failure !== null) throw (failure as { error: unknown }).error;
}
