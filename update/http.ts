// HTTP helpers of the update agent: GET with redirects, timeouts and abort, and small bounded bodies.
// Only node:http/node:https: the agent runs in the OS image, with no dependencies.
import { get as httpGetRaw, type IncomingMessage, type ClientRequest, type RequestOptions } from 'node:http';
import { get as httpsGetRaw } from 'node:https';

/** An error of the update agent; messages are shaped "cannot VERB OBJECT: reason". */
export class UpdateError extends Error {
  readonly code: string;
  /** The HTTP status, when the server answered with a non-2xx one. */
  readonly status?: number;
  constructor(code: string, message: string, opts: { cause?: unknown; status?: number } = {}) {
    super(message, opts.cause !== undefined ? { cause: opts.cause } : undefined);
    this.name = 'UpdateError';
    this.code = code;
    if (opts.status !== undefined) this.status = opts.status;
  }
}

export interface GetOptions {
  headers?: Record<string, string>;
  signal?: AbortSignal;
  /** Idle time (no bytes in either direction) after which the request fails; also applies while the body streams. */
  timeoutMs?: number;
  maxRedirects?: number;
}

const DEFAULT_TIMEOUT_MS = 30_000;
const REDIRECTS = new Set([301, 302, 303, 307, 308]);

/** GETs `url`, following redirects; resolves with a 2xx response whose body is not yet read. */
export async function httpGet(url: string, o: GetOptions = {}): Promise<IncomingMessage> {
  let current = url;
  for (let hops = 0; ; hops++) {
    const res = await getOnce(current, o);
    const status = res.statusCode ?? 0;
    if (REDIRECTS.has(status) && res.headers.location) {
      res.resume();
      if (hops >= (o.maxRedirects ?? 5)) throw new UpdateError('EREDIRECT', `cannot fetch ${url}: more than ${o.maxRedirects ?? 5} redirects`);
      current = resolveLocation(url, current, res.headers.location);
      continue;
    }
    if (status < 200 || status > 299) {
      res.resume();
      const via = current === url ? '' : ` (redirected to ${current})`;
      throw new UpdateError('EHTTP', `cannot fetch ${url}${via}: the server answered ${status} ${res.statusMessage ?? ''}`.trimEnd(), { status });
    }
    return res;
  }
}

function resolveLocation(url: string, current: string, location: string): string {
  const next = new URL(location, current);
  if (next.protocol !== 'http:' && next.protocol !== 'https:') {
    throw new UpdateError('EREDIRECT', `cannot fetch ${url}: redirected to unsupported ${next.protocol} URL`);
  }
  return next.toString();
}

/** One request, no redirects; network errors, timeouts and aborts become UpdateErrors naming the URL. */
function getOnce(url: string, o: GetOptions): Promise<IncomingMessage> {
  let parsed: URL;
  try { parsed = new URL(url); } catch { return Promise.reject(new UpdateError('EURL', `cannot fetch ${url}: not a URL`)); }
  if (parsed.protocol !== 'http:' && parsed.protocol !== 'https:') {
    return Promise.reject(new UpdateError('EURL', `cannot fetch ${url}: only http and https are supported`));
  }
  if (o.signal?.aborted) return Promise.reject(abortError(url, o.signal));
  const get = parsed.protocol === 'https:' ? httpsGetRaw : httpGetRaw;
  const opts: RequestOptions = { headers: o.headers ?? {}, signal: o.signal };
  return new Promise((resolve, reject) => {
    let res: IncomingMessage | undefined;
    const req: ClientRequest = get(parsed, opts, (r) => { res = r; resolve(r); });
    const timeoutMs = o.timeoutMs ?? DEFAULT_TIMEOUT_MS;
    req.setTimeout(timeoutMs, () => {
      const e = new UpdateError('ETIMEOUT', `cannot fetch ${url}: no data for ${timeoutMs} ms`);
      // Destroying the response first makes its readers see this error rather than a bare "aborted".
      res?.destroy(e);
      req.destroy(e);
    });
    req.on('error', (e) => {
      if (o.signal?.aborted) reject(abortError(url, o.signal));
      else reject(e instanceof UpdateError ? e : new UpdateError('ENETWORK', `cannot fetch ${url}: ${errorText(e)}`, { cause: e }));
    });
  });
}

function abortError(url: string, signal: AbortSignal): UpdateError {
  return new UpdateError('EABORT', `cannot fetch ${url}: aborted`, { cause: signal.reason });
}

/** A short description of a network error: its message, plus its code when the message lacks it. */
export function errorText(e: unknown): string {
  if (!(e instanceof Error)) return String(e);
  const code = (e as NodeJS.ErrnoException).code;
  return code && !e.message.includes(code) ? `${e.message} (${code})` : e.message;
}

/** GETs a small body (manifest.json, its .sig), refusing one larger than `maxBytes`. */
export async function fetchBuffer(url: string, o: { maxBytes: number; signal?: AbortSignal; timeoutMs?: number }): Promise<Buffer> {
  const res = await httpGet(url, { signal: o.signal, timeoutMs: o.timeoutMs });
  const tooLarge = () => new UpdateError('ETOOLARGE', `cannot fetch ${url}: the body is larger than ${o.maxBytes} bytes`);
  const declared = Number(res.headers['content-length']);
  if (Number.isFinite(declared) && declared > o.maxBytes) { res.destroy(); throw tooLarge(); }
  const parts: Buffer[] = [];
  let total = 0;
  try {
    for await (const part of res as AsyncIterable<Buffer>) {
      total += part.length;
      if (total > o.maxBytes) { res.destroy(); throw tooLarge(); }
      parts.push(part);
    }
  } catch (e) {
    if (e instanceof UpdateError) throw e;
    if (o.signal?.aborted) throw abortError(url, o.signal);
    throw new UpdateError('ENETWORK', `cannot fetch ${url}: ${errorText(e)}`, { cause: e });
  }
  return Buffer.concat(parts, total);
}
