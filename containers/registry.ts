// `keel pull`: fetches an image from a registry over the OCI distribution API (v2). Every byte is
// checked against a digest before it is trusted: manifests by their sha256, blobs against their
// descriptor's digest and size before they are renamed into the blob store.
import { createHash, randomBytes } from 'node:crypto';
import { mkdir, open, readFile, rename, rm, stat } from 'node:fs/promises';
import http, { type IncomingMessage, type OutgoingHttpHeaders } from 'node:http';
import https from 'node:https';
import { isIP } from 'node:net';
import { join } from 'node:path';
import { ContainerError } from './errors.js';
import { parseReference, registryApiHost, type ImageReference } from './reference.js';
import { hashFile, sha256 } from './store.js';

export interface Platform { os: string; architecture: string; variant?: string }

export interface PullProgress { digest: string; doneBytes: number; totalBytes: number }

export interface PullOptions {
  /** Plain HTTP instead of HTTPS; allowed only for registries on loopback (127.0.0.0/8, ::1, localhost). */
  insecure?: boolean;
  /** Which image of a multi-platform index to pull; default linux/amd64. */
  platform?: Platform;
  /** Blobs are stored as blobDir/sha256/<hex>, only once verified. */
  blobDir: string;
  progress?: (p: PullProgress) => void;
  /** Sent to the token server (Bearer) or to the registry itself (Basic). */
  auth?: { username: string; password: string };
  signal?: AbortSignal;
}

export interface PulledLayer { digest: string; mediaType: string; size: number }

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

export const MEDIA_TYPES = {
  ociIndex: 'application/vnd.oci.image.index.v1+json',
  ociManifest: 'application/vnd.oci.image.manifest.v1+json',
  dockerList: 'application/vnd.docker.distribution.manifest.list.v2+json',
  dockerManifest: 'application/vnd.docker.distribution.manifest.v2+json',
  dockerSchema1: 'application/vnd.docker.distribution.manifest.v1+json',
  dockerSchema1Signed: 'application/vnd.docker.distribution.manifest.v1+prettyjws',
  ociConfig: 'application/vnd.oci.image.config.v1+json',
  dockerConfig: 'application/vnd.docker.container.image.v1+json',
} as const;

const INDEX_TYPES: readonly string[] = [MEDIA_TYPES.ociIndex, MEDIA_TYPES.dockerList];
const IMAGE_TYPES: readonly string[] = [MEDIA_TYPES.ociManifest, MEDIA_TYPES.dockerManifest];
const SCHEMA1_TYPES: readonly string[] = [MEDIA_TYPES.dockerSchema1, MEDIA_TYPES.dockerSchema1Signed];
const CONFIG_TYPES: readonly string[] = [MEDIA_TYPES.ociConfig, MEDIA_TYPES.dockerConfig];
const MANIFEST_ACCEPT = [...INDEX_TYPES, ...IMAGE_TYPES].join(', ');

const DEFAULT_PLATFORM: Platform = { os: 'linux', architecture: 'amd64' };
/** The variant an index entry without one is taken to be (as containerd does). */
const DEFAULT_VARIANT: Record<string, string> = { arm64: 'v8', arm: 'v7' };
const SHA256_DIGEST = /^sha256:[a-f0-9]{64}$/;
/** distribution refuses manifests larger than this; so do we, before holding one in memory. */
const MAX_MANIFEST_BYTES = 4 * 1024 * 1024;
const MAX_CONFIG_BYTES = 32 * 1024 * 1024;
const MAX_ERROR_BODY_BYTES = 64 * 1024;
const MAX_REDIRECTS = 5;
const REDIRECT_STATUSES = new Set([301, 302, 303, 307, 308]);
const IDLE_TIMEOUT_MS = 30_000;
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
    if (o.signal?.aborted) throw new Failure('EABORTED', 'aborted');
    return await new Puller(parsed, o).pull();
  } catch (e) {
    throw pullError(parsed.normalized, e, o.signal);
  }
}

/** A failure inside a pull; pullImage turns it into "cannot pull REF: reason". */
class Failure extends Error {
  constructor(readonly code: string, reason: string) { super(reason); }
}

function pullError(ref: string, e: unknown, signal: AbortSignal | undefined): ContainerError {
  if (signal?.aborted) return new ContainerError('EABORTED', `cannot pull ${ref}: aborted`, { cause: e });
  if (e instanceof Failure) return new ContainerError(e.code, `cannot pull ${ref}: ${e.message}`, { cause: e });
  return new ContainerError('EPULL', `cannot pull ${ref}: ${(e as Error)?.message ?? String(e)}`, { cause: e });
}

export interface Descriptor { mediaType: string; digest: string; size: number; platform?: Platform }

interface FetchedManifest { bytes: Buffer; digest: string; mediaType: string; json: Record<string, unknown> }

class Puller {
  private readonly client: RegistryClient;
  private readonly repo: string;

  constructor(private readonly ref: ImageReference, private readonly o: PullOptions) {
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
        throw new Failure('EUNSUPPORTED', `the index entry ${chosen.digest} is a ${manifest.mediaType}, not an image manifest`);
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

  private async fetchManifest(reference: string, expectedDigest: string | null, expectedSize?: number): Promise<FetchedManifest> {
    const what = `manifest ${reference}`;
    const res = await this.client.get(`/v2/${this.repo}/manifests/${reference}`, what, { accept: MANIFEST_ACCEPT }, this.o.signal);
    const bytes = await readBody(res, MAX_MANIFEST_BYTES, what);
    const digest = sha256(bytes);
    if (expectedDigest !== null && digest !== expectedDigest) {
      throw new Failure('EDIGEST', `digest mismatch for ${what}: expected ${expectedDigest}, got ${digest}`);
    }
    const announced = headerValue(res, 'docker-content-digest');
    if (announced?.startsWith('sha256:') && announced !== digest) {
      throw new Failure('EDIGEST', `digest mismatch for ${what}: the registry announced ${announced} (Docker-Content-Digest), the bytes hash to ${digest}`);
    }
    if (expectedSize !== undefined && bytes.length !== expectedSize) {
      throw new Failure('ESIZE', `size mismatch for ${what}: the index says ${expectedSize} bytes, got ${bytes.length}`);
    }
    const json = parseJson(bytes, what);
    return { bytes, digest, json, mediaType: manifestMediaType(json, headerValue(res, 'content-type'), what) };
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
      const announced = headerValue(res, 'content-length');
      if (announced !== undefined && Number(announced) !== d.size) {
        res.destroy();
        throw new Failure('ESIZE', `size mismatch for ${what}: the manifest says ${d.size} bytes, the registry sends ${announced}`);
      }
      report(0, true);
      try {
        for await (const chunk of res as AsyncIterable<Buffer>) report(await sink(chunk), false);
      } catch (e) {
        if (e instanceof Failure || signal.aborted) throw e;
        throw new Failure('ENETWORK', `reading ${what} failed: ${(e as Error).message}`);
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

// --- Manifests -------------------------------------------------------------------------------

function manifestMediaType(json: Record<string, unknown>, contentType: string | undefined, what: string): string {
  const declared = typeof json.mediaType === 'string' ? json.mediaType : undefined;
  const header = contentType?.split(';')[0]?.trim().toLowerCase();
  if (json.schemaVersion === 1 || [declared, header].some((t) => t !== undefined && SCHEMA1_TYPES.includes(t))) {
    throw new Failure('EUNSUPPORTED', `${what} is a Docker schema 1 manifest, which is not supported (push the image again with a current client)`);
  }
  const known = [declared, header].find((t) => t !== undefined && (INDEX_TYPES.includes(t) || IMAGE_TYPES.includes(t)));
  if (known !== undefined) return known;
  // OCI allows manifests without a mediaType field; registries may then send application/json.
  if (declared === undefined && Array.isArray(json.manifests)) return MEDIA_TYPES.ociIndex;
  if (declared === undefined && json.config !== undefined && Array.isArray(json.layers)) return MEDIA_TYPES.ociManifest;
  throw new Failure('EUNSUPPORTED', `${what} has the unsupported media type ${declared ?? header ?? '(none)'}`);
}

function parseIndex(json: Record<string, unknown>): Descriptor[] {
  if (!Array.isArray(json.manifests)) throw new Failure('EMANIFEST', 'the index has no "manifests" list');
  return json.manifests.map((m, i) => descriptor(m, `manifests[${i}]`));
}

function parseImageManifest(json: Record<string, unknown>): { config: Descriptor; layers: Descriptor[] } {
  if (json.schemaVersion !== 2) throw new Failure('EMANIFEST', `the image manifest has schemaVersion ${String(json.schemaVersion)}, expected 2`);
  if (!Array.isArray(json.layers)) throw new Failure('EMANIFEST', 'the image manifest has no "layers" list');
  const config = descriptor(json.config, 'config');
  if (!CONFIG_TYPES.includes(config.mediaType)) {
    throw new Failure('EUNSUPPORTED', `not a container image: its config has the media type ${config.mediaType}`);
  }
  if (config.size > MAX_CONFIG_BYTES) throw new Failure('ETOOBIG', `the image config is ${config.size} bytes, more than ${MAX_CONFIG_BYTES}`);
  return { config, layers: json.layers.map((l, i) => descriptor(l, `layers[${i}]`)) };
}

function descriptor(v: unknown, where: string): Descriptor {
  const d = v as Partial<Descriptor> | null;
  if (typeof d !== 'object' || d === null || typeof d.mediaType !== 'string' || typeof d.digest !== 'string') {
    throw new Failure('EMANIFEST', `the manifest's ${where} is not a descriptor with a mediaType and a digest`);
  }
  // The digest becomes a file name in the blob store: only the one well-formed shape is let through.
  if (!SHA256_DIGEST.test(d.digest)) throw new Failure('EUNSUPPORTED', `the manifest's ${where} has the digest "${d.digest}"; only sha256 is supported`);
  if (!Number.isSafeInteger(d.size) || (d.size as number) < 0) throw new Failure('EMANIFEST', `the manifest's ${where} has no valid size`);
  return { mediaType: d.mediaType, digest: d.digest, size: d.size as number, ...(d.platform ? { platform: d.platform } : {}) };
}

/** The index entry for `want`; an entry without a variant counts as the architecture's default one. */
export function selectPlatform(entries: Descriptor[], want: Platform): Descriptor {
  const variant = (p: Platform): string | undefined => p.variant ?? DEFAULT_VARIANT[p.architecture];
  const sameArch = entries.filter((e) => e.platform?.os === want.os && e.platform.architecture === want.architecture);
  const chosen = sameArch.find((e) => variant(e.platform as Platform) === variant(want)) ??
    (want.variant === undefined ? sameArch[0] : undefined);
  if (chosen) return chosen;
  const available = entries.map((e) => e.platform).filter((p): p is Platform => p !== undefined && p.os !== 'unknown').map(platformName);
  throw new Failure('EPLATFORM', `no image for ${platformName(want)} in the index; it has ${available.length ? [...new Set(available)].join(', ') : 'no platform-specific images'}`);
}

function platformName(p: Platform): string {
  return [p.os, p.architecture, p.variant].filter(Boolean).join('/');
}

// --- Blob store -------------------------------------------------------------------------------

class BlobStore {
  private readonly dir: string;
  constructor(blobDir: string) { this.dir = join(blobDir, 'sha256'); }

  path(digest: string): string { return join(this.dir, digest.slice('sha256:'.length)); }

  /** True when the blob is stored and still matches; a damaged copy is removed so it is fetched again. */
  async has(d: Descriptor): Promise<boolean> {
    const file = this.path(d.digest);
    const st = await stat(file).catch(() => null);
    if (st === null) return false;
    if (st.isFile() && st.size === d.size && await hashFile(file) === d.digest) return true;
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
          if (size > d.size) throw new Failure('ESIZE', `size mismatch for blob ${d.digest}: the manifest says ${d.size} bytes, the registry sent more`);
          hash.update(chunk);
          await fh.write(chunk);
          return size;
        });
        await fh.sync();
      } finally {
        await fh.close();
      }
      if (size !== d.size) throw new Failure('ESIZE', `size mismatch for blob ${d.digest}: the manifest says ${d.size} bytes, got ${size}`);
      const got = `sha256:${hash.digest('hex')}`;
      if (got !== d.digest) throw new Failure('EDIGEST', `digest mismatch for blob ${d.digest}: expected ${d.digest}, got ${got}`);
      await rename(tmp, this.path(d.digest));
    } catch (e) {
      await rm(tmp, { force: true });
      throw e;
    }
  }
}

// --- HTTP with registry auth ------------------------------------------------------------------

interface Challenge { scheme: string; params: Record<string, string> }

/** GETs from one registry, answering its auth challenges; credentials never leave its origin. */
class RegistryClient {
  private readonly base: URL;
  private authorization: string | null = null;
  /** Bearer tokens by realm, service and scope, as promises so that concurrent 401s share one request. */
  private readonly tokens = new Map<string, Promise<string>>();

  constructor(private readonly ref: ImageReference, private readonly o: PullOptions) {
    const host = registryApiHost(ref.registry);
    this.base = new URL(`${o.insecure ? 'http' : 'https'}://${host}`);
    // Refused before any connection is made, so that no request goes out in the clear.
    if (o.insecure && !isLoopback(this.base.hostname)) {
      throw new Failure('EINSECURE', `plain HTTP (insecure) is allowed only for registries on loopback (127.0.0.0/8, ::1, localhost), not for ${host}`);
    }
  }

  /** GETs `path`; returns a 2xx response or throws a Failure naming `what`. */
  async get(path: string, what: string, headers: OutgoingHttpHeaders, signal: AbortSignal | undefined): Promise<IncomingMessage> {
    const url = new URL(path, this.base);
    let res = await this.follow(url, headers, signal);
    if (res.statusCode === 401) {
      const sent = this.authorization;
      const challenge = headerValue(res, 'www-authenticate');
      res.resume();
      this.authorization = await this.authorize(challenge, sent, signal);
      res = await this.follow(url, headers, signal);
      if (res.statusCode === 401) {
        const who = this.o.auth ? `as ${this.o.auth.username}` : 'without credentials';
        throw new Failure('EAUTH', `${what}: the registry answered 401 Unauthorized after authenticating ${who}${await errorDetail(res)}`);
      }
    }
    const status = res.statusCode ?? 0;
    if (status >= 200 && status < 300) return res;
    const detail = await errorDetail(res);
    if (status === 404) throw new Failure('ENOTFOUND', `${what} not found in ${this.ref.registry}/${this.ref.repository} (404${detail.replace(/^: /, ' ')})`);
    if (status === 403) throw new Failure('EAUTH', `${what}: the registry denied access (403 Forbidden${detail.replace(/^: /, ' ')})`);
    throw new Failure('EHTTP', `${what}: the registry answered ${status} ${res.statusMessage ?? ''}${detail}`.trim());
  }

  /** The Authorization value answering `header`; a token that was just refused is not used again. */
  private async authorize(header: string | undefined, refused: string | null, signal: AbortSignal | undefined): Promise<string> {
    const challenges = parseChallenges(header ?? '');
    const bearer = challenges.find((c) => c.scheme === 'bearer' && c.params.realm);
    if (bearer) {
      const key = [bearer.params.realm, bearer.params.service ?? '', bearer.params.scope ?? ''].join('\n');
      let token = this.tokens.get(key);
      if (token === undefined || await token.catch(() => null) === refused) {
        token = this.fetchToken(bearer.params, signal);
        this.tokens.set(key, token);
        token.catch(() => this.tokens.delete(key));
      }
      return token;
    }
    if (challenges.some((c) => c.scheme === 'basic')) {
      if (!this.o.auth) throw new Failure('EAUTH', 'the registry asks for a user name and password (Basic auth) and none were given');
      return basicAuth(this.o.auth);
    }
    throw new Failure('EAUTH', `the registry answered 401 Unauthorized without a usable challenge (WWW-Authenticate: ${header ?? 'missing'})`);
  }

  private async fetchToken(p: Record<string, string>, signal: AbortSignal | undefined): Promise<string> {
    let realm: URL;
    try { realm = new URL(p.realm as string); } catch {
      throw new Failure('EAUTH', `the registry names an invalid token server "${p.realm}"`);
    }
    if (p.service) realm.searchParams.set('service', p.service);
    for (const scope of (p.scope ?? '').split(' ').filter(Boolean)) realm.searchParams.append('scope', scope);
    if (this.o.auth) realm.searchParams.set('account', this.o.auth.username);
    const credentials = this.o.auth ? { origin: realm.origin, value: basicAuth(this.o.auth) } : null;
    const res = await this.followWith(realm, {}, credentials, signal);
    const status = res.statusCode ?? 0;
    if (status === 401 || status === 403) {
      const who = this.o.auth ? `the credentials of ${this.o.auth.username}` : 'anonymous access';
      throw new Failure('EAUTH', `the token server ${realm.origin} refused ${who} (${status}${(await errorDetail(res)).replace(/^: /, ' ')})`);
    }
    if (status !== 200) throw new Failure('EAUTH', `the token server ${realm.origin} answered ${status}${await errorDetail(res)}`);
    const body = parseJson(await readBody(res, MAX_MANIFEST_BYTES, 'the token'), `the token server's answer`);
    const token = typeof body.token === 'string' && body.token ? body.token : body.access_token;
    if (typeof token !== 'string' || token === '') throw new Failure('EAUTH', `the token server ${realm.origin} answered without a token`);
    return `Bearer ${token}`;
  }

  private follow(url: URL, headers: OutgoingHttpHeaders, signal: AbortSignal | undefined): Promise<IncomingMessage> {
    const credentials = this.authorization !== null ? { origin: this.base.origin, value: this.authorization } : null;
    return this.followWith(url, headers, credentials, signal);
  }

  /** GETs `start`, following redirects; the Authorization header goes only to `credentials.origin`. */
  private async followWith(start: URL, headers: OutgoingHttpHeaders, credentials: { origin: string; value: string } | null,
    signal: AbortSignal | undefined): Promise<IncomingMessage> {
    let url = start;
    for (let hop = 0; ; hop++) {
      this.checkTransport(url);
      const h: OutgoingHttpHeaders = { ...headers };
      if (credentials !== null && url.origin === credentials.origin) h.authorization = credentials.value;
      const res = await request(url, h, signal);
      const location = headerValue(res, 'location');
      if (!REDIRECT_STATUSES.has(res.statusCode ?? 0) || location === undefined) return res;
      res.resume();
      if (hop === MAX_REDIRECTS) throw new Failure('EHTTP', `more than ${MAX_REDIRECTS} redirects from ${start.href}`);
      url = new URL(location, url);
    }
  }

  private checkTransport(url: URL): void {
    if (url.protocol === 'https:') return;
    if (url.protocol === 'http:' && this.o.insecure && isLoopback(url.hostname)) return;
    throw new Failure('EINSECURE', `refusing to fetch ${url.href}: only HTTPS is allowed${this.o.insecure ? ' (plain HTTP only on loopback)' : ''}`);
  }
}

/** Parses a WWW-Authenticate value: `Bearer realm="…",service="…",scope="…"`, possibly several challenges. */
export function parseChallenges(header: string): Challenge[] {
  const challenges: Challenge[] = [];
  const item = /([A-Za-z0-9!#$%&'*+.^_`|~-]+)(?:\s*=\s*("(?:[^"\\]|\\.)*"|[^\s,]*))?/g;
  for (const [, name, value] of header.matchAll(item)) {
    if (value === undefined) {
      challenges.push({ scheme: (name as string).toLowerCase(), params: {} });
      continue;
    }
    const current = challenges.at(-1);
    if (current) current.params[(name as string).toLowerCase()] = value.startsWith('"') ? value.slice(1, -1).replace(/\\(.)/g, '$1') : value;
  }
  return challenges;
}

function basicAuth(a: { username: string; password: string }): string {
  return `Basic ${Buffer.from(`${a.username}:${a.password}`).toString('base64')}`;
}

export function isLoopback(hostname: string): boolean {
  const h = hostname.replace(/^\[(.*)\]$/, '$1').toLowerCase();
  if (h === 'localhost') return true;
  if (isIP(h) === 4) return h.startsWith('127.');
  return h === '::1'; // URL.hostname is already in the compressed form
}

function request(url: URL, headers: OutgoingHttpHeaders, signal: AbortSignal | undefined): Promise<IncomingMessage> {
  return new Promise((resolve, reject) => {
    const client = url.protocol === 'https:' ? https : http;
    const req = client.request(url, { method: 'GET', headers: { 'user-agent': 'keel', ...headers }, ...(signal ? { signal } : {}) }, resolve);
    req.setTimeout(IDLE_TIMEOUT_MS, () => req.destroy(new Error(`no answer for ${IDLE_TIMEOUT_MS / 1000} s`)));
    req.on('error', (e) => reject(signal?.aborted ? e : new Failure('ENETWORK', `cannot reach ${url.origin}: ${e.message}`)));
    req.end();
  });
}

// --- Small helpers ----------------------------------------------------------------------------

function headerValue(res: IncomingMessage, name: string): string | undefined {
  const v = res.headers[name];
  return Array.isArray(v) ? v.join(', ') : v;
}

async function readBody(res: IncomingMessage, limit: number, what: string): Promise<Buffer> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of res as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size > limit) {
      res.destroy();
      throw new Failure('ETOOBIG', `${what} is larger than ${limit} bytes`);
    }
    chunks.push(chunk);
  }
  return Buffer.concat(chunks);
}

/** ": CODE: message" from a registry's error body (or its first line of text), "" when there is none. */
async function errorDetail(res: IncomingMessage): Promise<string> {
  const body = await readBody(res, MAX_ERROR_BODY_BYTES, 'the error').catch(() => Buffer.alloc(0));
  const text = body.toString('utf8').trim();
  if (text === '') return '';
  try {
    const errors = (JSON.parse(text) as { errors?: { code?: string; message?: string }[] }).errors;
    if (Array.isArray(errors) && errors.length > 0) {
      return `: ${errors.map((e) => [e.code, e.message].filter(Boolean).join(': ')).join('; ')}`;
    }
  } catch { /* not JSON: fall through to the text */ }
  return `: ${text.split('\n')[0]?.slice(0, 200)}`;
}

function parseJson(bytes: Buffer, what: string): Record<string, unknown> {
  let v: unknown;
  try { v = JSON.parse(bytes.toString('utf8')); } catch (e) {
    throw new Failure('EMANIFEST', `${what} is not valid JSON: ${(e as Error).message}`);
  }
  if (typeof v !== 'object' || v === null || Array.isArray(v)) throw new Failure('EMANIFEST', `${what} is not a JSON object`);
  return v as Record<string, unknown>;
}

/** Runs `fn` on every item, `limit` at a time; the first failure aborts the rest, which are awaited before it is thrown. */
async function runLimited<T>(items: T[], limit: number, fn: (item: T, signal: AbortSignal) => Promise<void>, outer?: AbortSignal): Promise<void> {
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
