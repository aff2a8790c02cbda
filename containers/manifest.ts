// Image manifests and indexes as a registry serves them, parsed and checked without I/O: the
// media type of a manifest, its descriptors, and the platform chosen from an index. Failures are
// PullFailures (a code and a reason) for the caller to name the image in.
import { PullFailure } from './errors.js';
import { CONFIG_TYPES, IMAGE_TYPES, INDEX_TYPES, MEDIA_TYPES, SCHEMA1_TYPES } from './media-types.js';

/** An OS and CPU, as in an index entry or an image config. */
export interface Platform {
  os: string;
  architecture: string;
  variant?: string;
}

/** A content descriptor: what a manifest says about a blob or another manifest. */
export interface Descriptor {
  mediaType: string;
  digest: string;
  size: number;
  platform?: Platform;
}

/** What `keel pull` takes when not told otherwise. */
export const DEFAULT_PLATFORM: Platform = { os: 'linux', architecture: 'amd64' };
/** The variant an index entry without one is taken to be (as containerd does). */
const DEFAULT_VARIANT: Record<string, string> = { arm64: 'v8', arm: 'v7' };
const SHA256_DIGEST = /^sha256:[a-f0-9]{64}$/;
/** An image config larger than this is refused before it is fetched. */
export const MAX_CONFIG_BYTES = 32 * 1024 * 1024;

/** Parses a JSON object (a manifest, a token answer); EMANIFEST when it is none. */
export function parseJson(bytes: Buffer, what: string): Record<string, unknown> {
  let v: unknown;
  try {
    v = JSON.parse(bytes.toString('utf8'));
  } catch (e) {
    throw new PullFailure('EMANIFEST', `${what} is not valid JSON: ${(e as Error).message}`);
  }
  if (typeof v !== 'object' || v === null || Array.isArray(v))
    throw new PullFailure('EMANIFEST', `${what} is not a JSON object`);
  return v as Record<string, unknown>;
}

/** The media type of a manifest, from its mediaType field, the Content-Type, or (OCI allows neither) its shape. */
export function manifestMediaType(
  json: Record<string, unknown>,
  contentType: string | undefined,
  what: string,
): string {
  const declared = typeof json.mediaType === 'string' ? json.mediaType : undefined;
  const header = contentType?.split(';')[0]?.trim().toLowerCase();
  if (json.schemaVersion === 1 || [declared, header].some((t) => t !== undefined && SCHEMA1_TYPES.includes(t))) {
    throw new PullFailure(
      'EUNSUPPORTED',
      `${what} is a Docker schema 1 manifest, which is not supported (push the image again with a current client)`,
    );
  }
  const known = [declared, header].find((t) => t !== undefined && (INDEX_TYPES.includes(t) || IMAGE_TYPES.includes(t)));
  if (known !== undefined) return known;
  // OCI allows manifests without a mediaType field; registries may then send application/json.
  if (declared === undefined && Array.isArray(json.manifests)) return MEDIA_TYPES.ociIndex;
  if (declared === undefined && json.config !== undefined && Array.isArray(json.layers)) return MEDIA_TYPES.ociManifest;
  throw new PullFailure('EUNSUPPORTED', `${what} has the unsupported media type ${declared ?? header ?? '(none)'}`);
}

/** The entries of an index (or manifest list). */
export function parseIndex(json: Record<string, unknown>): Descriptor[] {
  if (!Array.isArray(json.manifests)) throw new PullFailure('EMANIFEST', 'the index has no "manifests" list');
  return json.manifests.map((m, i) => descriptor(m, `manifests[${i}]`));
}

/** The config and layers of an image manifest; the config must be a container image's, and not huge. */
export function parseImageManifest(json: Record<string, unknown>): { config: Descriptor; layers: Descriptor[] } {
  if (json.schemaVersion !== 2)
    throw new PullFailure(
      'EMANIFEST',
      `the image manifest has schemaVersion ${String(json.schemaVersion)}, expected 2`,
    );
  if (!Array.isArray(json.layers)) throw new PullFailure('EMANIFEST', 'the image manifest has no "layers" list');
  const config = descriptor(json.config, 'config');
  if (!CONFIG_TYPES.includes(config.mediaType)) {
    throw new PullFailure('EUNSUPPORTED', `not a container image: its config has the media type ${config.mediaType}`);
  }
  if (config.size > MAX_CONFIG_BYTES)
    throw new PullFailure('ETOOBIG', `the image config is ${config.size} bytes, more than ${MAX_CONFIG_BYTES}`);
  return { config, layers: json.layers.map((l, i) => descriptor(l, `layers[${i}]`)) };
}

function descriptor(v: unknown, where: string): Descriptor {
  const d = v as Partial<Descriptor> | null;
  if (typeof d !== 'object' || d === null || typeof d.mediaType !== 'string' || typeof d.digest !== 'string') {
    throw new PullFailure('EMANIFEST', `the manifest's ${where} is not a descriptor with a mediaType and a digest`);
  }
  // The digest becomes a file name in the blob store: only the one well-formed shape is let through.
  if (!SHA256_DIGEST.test(d.digest))
    throw new PullFailure(
      'EUNSUPPORTED',
      `the manifest's ${where} has the digest "${d.digest}"; only sha256 is supported`,
    );
  if (!Number.isSafeInteger(d.size) || (d.size as number) < 0)
    throw new PullFailure('EMANIFEST', `the manifest's ${where} has no valid size`);
  return {
    mediaType: d.mediaType,
    digest: d.digest,
    size: d.size as number,
    ...(d.platform ? { platform: d.platform } : {}),
  };
}

/** The index entry for `want`; an entry without a variant counts as the architecture's default one. */
export function selectPlatform(entries: Descriptor[], want: Platform): Descriptor {
  const variant = (p: Platform): string | undefined => p.variant ?? DEFAULT_VARIANT[p.architecture];
  const sameArch = entries.filter((e) => e.platform?.os === want.os && e.platform.architecture === want.architecture);
  const chosen =
    sameArch.find((e) => variant(e.platform as Platform) === variant(want)) ??
    (want.variant === undefined ? sameArch[0] : undefined);
  if (chosen) return chosen;
  const available = entries
    .map((e) => e.platform)
    .filter((p): p is Platform => p !== undefined && p.os !== 'unknown')
    .map(platformName);
  throw new PullFailure(
    'EPLATFORM',
    `no image for ${platformName(want)} in the index; it has ` +
      `${available.length ? [...new Set(available)].join(', ') : 'no platform-specific images'}`,
  );
}

/** "os/architecture[/variant]". */
export function platformName(p: Platform): string {
  return [p.os, p.architecture, p.variant].filter(Boolean).join('/');
}
