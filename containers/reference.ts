// Image references as Docker reads them: [registry/]repository[:tag][@digest], with Docker Hub's
// defaults (docker.io, library/, latest). Grammar: distribution's reference package.
import { ContainerError } from './errors.js';

export interface ImageReference {
  /** The registry as written, or `docker.io`; `index.docker.io` is folded into `docker.io`. */
  registry: string;
  /** The path inside the registry, e.g. `library/busybox`. */
  repository: string;
  /** `latest` when neither a tag nor a digest is given; null when only a digest is. */
  tag: string | null;
  digest: string | null;
  /** `docker.io/library/busybox:latest`, with `@sha256:…` when a digest is given. */
  normalized: string;
}

export const DOCKER_HUB = 'docker.io';
/** Docker Hub's v2 API is not served at docker.io itself. */
const DOCKER_HUB_API_HOST = 'registry-1.docker.io';
const DEFAULT_TAG = 'latest';
const MAX_NAME_LENGTH = 255;

const PATH_COMPONENT = /^[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*$/;
const TAG = /^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$/;
const SHA256_DIGEST = /^sha256:[a-f0-9]{64}$/;
const DIGEST_SHAPE = /^[a-z0-9]+(?:[.+_-][a-z0-9]+)*:[a-zA-Z0-9=_-]+$/;
const DOMAIN_LABEL = /^(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])$/;
const IPV6_BRACKETED = /^\[[0-9a-fA-F:.]+\]$/;
const PORT = /^[0-9]+$/;

/** A reference that is not valid: a ContainerError with code EREFERENCE, naming the reference and the fault. */
export class InvalidReferenceError extends ContainerError {
  constructor(ref: string, reason: string) {
    super('EREFERENCE', `invalid image reference "${ref}": ${reason}`);
    this.name = 'InvalidReferenceError';
  }
}

/** Parses `ref` with Docker's rules, e.g. `busybox` → docker.io/library/busybox:latest. */
export function parseReference(ref: string): ImageReference {
  if (ref === '') throw new InvalidReferenceError(ref, 'it is empty');
  if (/\s/.test(ref)) throw new InvalidReferenceError(ref, 'it contains white space');

  const { rest: withTag, digest } = splitDigest(ref);
  const { name, tag: givenTag } = splitTag(ref, withTag);
  const { registry, repository } = splitName(ref, name);

  const tag = givenTag ?? (digest === null ? DEFAULT_TAG : null);
  return { registry, repository, tag, digest, normalized: formatReference(registry, repository, tag, digest) };
}

/** The host[:port] that serves the registry's v2 API. */
export function registryApiHost(registry: string): string {
  return registry === DOCKER_HUB ? DOCKER_HUB_API_HOST : registry;
}

export function formatReference(
  registry: string,
  repository: string,
  tag: string | null,
  digest: string | null,
): string {
  return `${registry}/${repository}${tag !== null ? `:${tag}` : ''}${digest !== null ? `@${digest}` : ''}`;
}

function splitDigest(ref: string): { rest: string; digest: string | null } {
  const at = ref.indexOf('@');
  if (at < 0) return { rest: ref, digest: null };
  const digest = ref.slice(at + 1);
  if (!DIGEST_SHAPE.test(digest))
    throw new InvalidReferenceError(ref, `"${digest}" is not a digest (expected sha256:<64 hex digits>)`);
  if (!digest.startsWith('sha256:'))
    throw new InvalidReferenceError(ref, `only sha256 digests are supported, not "${digest.split(':')[0]}"`);
  if (!SHA256_DIGEST.test(digest))
    throw new InvalidReferenceError(ref, `"${digest}" is not a sha256 digest (expected 64 lowercase hex digits)`);
  return { rest: ref.slice(0, at), digest };
}

function splitTag(ref: string, s: string): { name: string; tag: string | null } {
  // A ':' after the last '/' starts the tag; one before it belongs to registry host:port.
  const colon = s.lastIndexOf(':');
  if (colon < 0 || colon < s.lastIndexOf('/')) return { name: s, tag: null };
  const tag = s.slice(colon + 1);
  if (!TAG.test(tag)) {
    throw new InvalidReferenceError(
      ref,
      `"${tag}" is not a valid tag (letters, digits, '_', '.', '-'; not ` +
        `starting with '.' or '-'; at most 128 characters)`,
    );
  }
  return { name: s.slice(0, colon), tag };
}

function splitName(ref: string, name: string): { registry: string; repository: string } {
  const slash = name.indexOf('/');
  const first = slash < 0 ? name : name.slice(0, slash);
  let registry = DOCKER_HUB;
  let path = name;
  if (slash >= 0 && (first.includes('.') || first.includes(':') || first === 'localhost')) {
    checkRegistry(ref, first);
    registry = first === 'index.docker.io' ? DOCKER_HUB : first;
    path = name.slice(slash + 1);
  }
  checkPath(ref, path);
  const repository = registry === DOCKER_HUB && !path.includes('/') ? `library/${path}` : path;
  if (`${registry}/${repository}`.length > MAX_NAME_LENGTH) {
    throw new InvalidReferenceError(ref, `the repository name is longer than ${MAX_NAME_LENGTH} characters`);
  }
  return { registry, repository };
}

function checkRegistry(ref: string, registry: string): void {
  const m = /^(\[[^\]]*\]|[^:]*)(?::(.*))?$/.exec(registry);
  const host = m?.[1] ?? '';
  const port = m?.[2];
  const hostOk = IPV6_BRACKETED.test(host) || (host !== '' && host.split('.').every((l) => DOMAIN_LABEL.test(l)));
  if (!hostOk) throw new InvalidReferenceError(ref, `"${registry}" is not a valid registry host`);
  if (port !== undefined && (!PORT.test(port) || Number(port) < 1 || Number(port) > 65535)) {
    throw new InvalidReferenceError(ref, `"${port}" is not a valid port for registry "${host}"`);
  }
}

function checkPath(ref: string, path: string): void {
  if (path === '') throw new InvalidReferenceError(ref, 'the repository name is empty');
  for (const component of path.split('/')) {
    if (PATH_COMPONENT.test(component)) continue;
    if (/[A-Z]/.test(component)) throw new InvalidReferenceError(ref, `repository names must be lowercase ("${path}")`);
    throw new InvalidReferenceError(
      ref,
      `"${component}" is not a valid repository path component (lowercase ` +
        `letters and digits, separated by '.', '_', '__' or '-')`,
    );
  }
}
