// A client of one registry's distribution API (v2), on lib/http: answers its auth challenges
// (Bearer tokens from its token server, or Basic), keeps credentials to the origin they are for
// (a redirect to a CDN never carries them), and allows plain HTTP only to loopback. Failures are
// PullFailures; pullImage names the image in them.
import { DAEMON_JSON, isInsecureRegistry } from './insecure-registries.js';
import { isIP } from 'node:net';
import { isHttpError, request, type HttpResponse } from '../lib/http.js';
import { PullFailure } from './errors.js';
import { parseJson } from './manifest.js';
import { registryApiHost, type ImageReference } from './reference.js';

/** A user name and password, sent to the token server (Bearer) or to the registry itself (Basic). */
export interface RegistryAuth {
  username: string;
  password: string;
}

/** How to reach a registry. */
export interface RegistryClientOptions {
  /** Plain HTTP instead of HTTPS; allowed only for registries on loopback (127.0.0.0/8, ::1, localhost). */
  insecure?: boolean;
  /** docker's insecure-registries (containers/insecure-registries.ts): spoken to over plain HTTP, no flag needed. */
  insecureRegistries?: readonly string[];
  auth?: RegistryAuth;
}

/** One challenge of a WWW-Authenticate header. */
export interface Challenge {
  scheme: string;
  params: Record<string, string>;
}

/** What a request to the registry may carry besides its method and path. */
export interface RegistryRequest {
  headers?: Record<string, string>;
  body?: string | Uint8Array;
  signal?: AbortSignal | undefined;
}

const MAX_TOKEN_BYTES = 4 * 1024 * 1024;
const MAX_ERROR_BODY_BYTES = 64 * 1024;
const MAX_REDIRECTS = 5;
const IDLE_TIMEOUT_MS = 30_000;

/** Talks to the registry of one image reference; an authorization once obtained is reused for the next requests. */
export class RegistryClient {
  private readonly base: URL;
  private authorization: string | null = null;
  /** Bearer tokens by realm, service and scope, as promises so that concurrent 401s share one request. */
  private readonly tokens = new Map<string, Promise<string>>();

  constructor(
    private readonly ref: ImageReference,
    private readonly o: RegistryClientOptions,
  ) {
    const host = registryApiHost(ref.registry);
    const listed = isInsecureRegistry(host, o.insecureRegistries ?? []);
    this.base = new URL(`${o.insecure || listed ? 'http' : 'https'}://${host}`);
    // Refused before any connection is made, so that no request goes out in the clear.
    if (o.insecure && !this.plainAllowed(this.base)) {
      throw new PullFailure(
        'EINSECURE',
        'plain HTTP (insecure) is allowed only for registries on loopback (127.0.0.0/8, ::1, localhost) or listed in ' +
          `insecure-registries of ${DAEMON_JSON}, not for ${host}`,
      );
    }
  }

  /** GETs `path` (e.g. /v2/REPO/manifests/TAG); returns a 2xx response or throws a PullFailure naming `what`. */
  get(
    path: string,
    what: string,
    headers: Record<string, string>,
    signal: AbortSignal | undefined,
  ): Promise<HttpResponse> {
    return this.send('GET', path, what, { headers, signal });
  }

  /** Sends `method path`, authenticating on a 401; returns a 2xx response or throws a PullFailure naming `what`. */
  async send(method: string, path: string, what: string, r: RegistryRequest): Promise<HttpResponse> {
    const url = new URL(path, this.base);
    let res = await this.exchange(method, url, r, this.authorization);
    if (res.status === 401) {
      const sent = this.authorization;
      const challenge = res.header('www-authenticate');
      res.discard();
      this.authorization = await this.authorize(challenge, sent, r.signal);
      res = await this.exchange(method, url, r, this.authorization);
      if (res.status === 401) {
        const who = this.o.auth ? `as ${this.o.auth.username}` : 'without credentials';
        throw new PullFailure(
          'EAUTH',
          `${what}: the registry answered 401 Unauthorized after authenticating ${who}${await errorDetail(res)}`,
        );
      }
    }
    const status = res.status;
    if (status >= 200 && status < 300) return res;
    const detail = await errorDetail(res);
    if (status === 404)
      throw new PullFailure(
        'ENOTFOUND',
        `${what} not found in ${this.ref.registry}/${this.ref.repository} (404${detail.replace(/^: /, ' ')})`,
      );
    if (status === 403)
      throw new PullFailure(
        'EAUTH',
        `${what}: the registry denied access (403 Forbidden${detail.replace(/^: /, ' ')})`,
      );
    throw new PullFailure('EHTTP', `${what}: the registry answered ${status} ${res.statusText}${detail}`.trim());
  }

  /** The Authorization value answering `header`; a token that was just refused is not used again. */
  private async authorize(
    header: string | undefined,
    refused: string | null,
    signal: AbortSignal | undefined,
  ): Promise<string> {
    const challenges = parseChallenges(header ?? '');
    const bearer = challenges.find((c) => c.scheme === 'bearer' && c.params.realm);
    if (bearer) {
      const key = [bearer.params.realm, bearer.params.service ?? '', bearer.params.scope ?? ''].join('\n');
      let token = this.tokens.get(key);
      if (token === undefined || (await token.catch(() => null)) === refused) {
        token = this.fetchToken(bearer.params, signal);
        this.tokens.set(key, token);
        token.catch(() => this.tokens.delete(key));
      }
      return token;
    }
    if (challenges.some((c) => c.scheme === 'basic')) {
      if (!this.o.auth)
        throw new PullFailure(
          'EAUTH',
          'the registry asks for a user name and password (Basic auth) and none were given',
        );
      return basicAuth(this.o.auth);
    }
    throw new PullFailure(
      'EAUTH',
      `the registry answered 401 Unauthorized without a usable challenge (WWW-Authenticate: ${header ?? 'missing'})`,
    );
  }

  private async fetchToken(p: Record<string, string>, signal: AbortSignal | undefined): Promise<string> {
    let realm: URL;
    try {
      realm = new URL(p.realm as string);
    } catch {
      throw new PullFailure('EAUTH', `the registry names an invalid token server "${p.realm}"`);
    }
    if (p.service) realm.searchParams.set('service', p.service);
    for (const scope of (p.scope ?? '').split(' ').filter(Boolean)) realm.searchParams.append('scope', scope);
    if (this.o.auth) realm.searchParams.set('account', this.o.auth.username);
    // The credentials go to the token server's origin only (lib/http drops them on a redirect elsewhere).
    const res = await this.exchange('GET', realm, { signal }, this.o.auth ? basicAuth(this.o.auth) : null);
    const status = res.status;
    if (status === 401 || status === 403) {
      const who = this.o.auth ? `the credentials of ${this.o.auth.username}` : 'anonymous access';
      throw new PullFailure(
        'EAUTH',
        `the token server ${realm.origin} refused ${who} (${status}${(await errorDetail(res)).replace(/^: /, ' ')})`,
      );
    }
    if (status !== 200)
      throw new PullFailure('EAUTH', `the token server ${realm.origin} answered ${status}${await errorDetail(res)}`);
    const body = parseJson(await readBody(res, MAX_TOKEN_BYTES, 'the token'), `the token server's answer`);
    const token = typeof body.token === 'string' && body.token ? body.token : body.access_token;
    if (typeof token !== 'string' || token === '')
      throw new PullFailure('EAUTH', `the token server ${realm.origin} answered without a token`);
    return `Bearer ${token}`;
  }

  /** One request and its redirects; Authorization goes only to `url`'s origin, every hop must pass checkTransport. */
  private async exchange(
    method: string,
    url: URL,
    r: RegistryRequest,
    authorization: string | null,
  ): Promise<HttpResponse> {
    let hop = url;
    try {
      return await request(url, {
        method,
        headers: { ...r.headers, ...(authorization !== null ? { authorization } : {}) },
        ...(r.body !== undefined ? { body: r.body } : {}),
        ...(r.signal ? { signal: r.signal } : {}),
        idleTimeoutMs: IDLE_TIMEOUT_MS,
        maxRedirects: MAX_REDIRECTS,
        checkUrl: (u) => {
          this.checkTransport(u);
          hop = u;
        },
      });
    } catch (e) {
      if (!isHttpError(e) || e.code === 'EABORT') throw e;
      if (e.code === 'EREDIRECT') throw new PullFailure('EHTTP', `${e.reason} from ${url.href}`);
      throw new PullFailure('ENETWORK', `cannot reach ${hop.origin}: ${e.reason}`);
    }
  }

  /** Plain HTTP to `url`: loopback, or a registry the operator listed as insecure. */
  private plainAllowed(url: URL): boolean {
    return isLoopback(url.hostname) || isInsecureRegistry(url.host, this.o.insecureRegistries ?? []);
  }

  private checkTransport(url: URL): void {
    if (url.protocol === 'https:') return;
    if (url.protocol === 'http:' && this.base.protocol === 'http:' && this.plainAllowed(url)) return;
    throw new PullFailure(
      'EINSECURE',
      `refusing to fetch ${url.href}: only HTTPS is allowed` +
        `${this.base.protocol === 'http:' ? ' (plain HTTP only on loopback or to an insecure registry)' : ''}`,
    );
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
    if (current)
      current.params[(name as string).toLowerCase()] = value.startsWith('"')
        ? value.slice(1, -1).replace(/\\(.)/g, '$1')
        : value;
  }
  return challenges;
}

function basicAuth(a: RegistryAuth): string {
  return `Basic ${Buffer.from(`${a.username}:${a.password}`).toString('base64')}`;
}

/** True for 127.0.0.0/8, ::1 and localhost: the hosts plain HTTP may go to. */
export function isLoopback(hostname: string): boolean {
  const h = hostname.replace(/^\[(.*)\]$/, '$1').toLowerCase();
  if (h === 'localhost') return true;
  if (isIP(h) === 4) return h.startsWith('127.');
  return h === '::1'; // URL.hostname is already in the compressed form
}

/** A whole (small) body: ETOOBIG past `limit`, ENETWORK when the connection breaks. */
export async function readBody(res: HttpResponse, limit: number, what: string): Promise<Buffer> {
  try {
    return await res.buffer(limit);
  } catch (e) {
    if (isHttpError(e, 'ETOOLARGE')) throw new PullFailure('ETOOBIG', `${what} is larger than ${limit} bytes`);
    if (isHttpError(e) && e.code !== 'EABORT') throw new PullFailure('ENETWORK', `reading ${what} failed: ${e.reason}`);
    throw e;
  }
}

/** ": CODE: message" from a registry's error body (or its first line of text), "" when there is none. */
async function errorDetail(res: HttpResponse): Promise<string> {
  const body = await readBody(res, MAX_ERROR_BODY_BYTES, 'the error').catch(() => Buffer.alloc(0));
  const text = body.toString('utf8').trim();
  if (text === '') return '';
  try {
    const errors = (JSON.parse(text) as { errors?: { code?: string; message?: string }[] }).errors;
    if (Array.isArray(errors) && errors.length > 0) {
      return `: ${errors.map((e) => [e.code, e.message].filter(Boolean).join(': ')).join('; ')}`;
    }
  } catch {
    /* not JSON: fall through to the text */
  }
  return `: ${text.split('\n')[0]?.slice(0, 200)}`;
}
