// Keel's one HTTP client, on Node's fetch (undici): redirects followed by hand so that each hop can
// be checked and Authorization never reaches another origin, an idle timeout that also covers the
// body as it streams, an overall deadline, caller aborts, bounded bodies, and every failure a
// KeelError "cannot METHOD URL: reason" with a stable code:
//   EURL (not an http/https URL), ENETWORK, ETIMEOUT, EABORT, EHTTP (non-2xx, `status`),
//   EREDIRECT (too many, or to another scheme), ETOOLARGE (a body over its bound).
// Bodies are never decoded: Accept-Encoding is "identity" unless the caller asks otherwise, since
// Range requests and digests are about the bytes as stored. (fetch would still gunzip a body a
// server sends with Content-Encoding against that request; a digest or length check catches it.)
import { errorText, KeelError } from './errors.js';

/** An HTTP failure: the request, why (`reason`, without "cannot METHOD URL: "), and an EHTTP's status. */
export class HttpError extends KeelError {
  readonly method: string;
  readonly url: string;
  readonly reason: string;
  readonly status?: number;
  constructor(code: string, method: string, url: string, reason: string, o: { cause?: unknown; status?: number } = {}) {
    super(code, `cannot ${method} ${url}: ${reason}`, o.cause !== undefined ? { cause: o.cause } : {});
    this.name = 'HttpError';
    this.method = method;
    this.url = url;
    this.reason = reason;
    if (o.status !== undefined) this.status = o.status;
  }
}

/** True when `e` is an HttpError, optionally with a given code. */
export function isHttpError(e: unknown, code?: string): e is HttpError {
  return e instanceof HttpError && (code === undefined || e.code === code);
}

/** What a request may say besides its URL. */
export interface RequestOptions {
  /** GET unless given. */
  method?: string;
  /** Header names in any case. Authorization goes only to the first URL's origin, never where a redirect leads. */
  headers?: Record<string, string>;
  body?: string | Uint8Array;
  signal?: AbortSignal;
  /** Deadline for the whole exchange, body included ("no answer within N ms"); none unless given. */
  timeoutMs?: number;
  /** Fails when no byte arrives this long while waiting for the answer or more body (default 30 s). */
  idleTimeoutMs?: number;
  /** Redirects followed before EREDIRECT (default 5). */
  maxRedirects?: number;
  /** Called with each URL before it is requested, the first one and every redirect's; throws to refuse it. */
  checkUrl?: (url: URL) => void;
}

/** A response whose body is not read yet: read it once (chunks, buffer or text), or discard it. */
export interface HttpResponse {
  /** The URL that answered, after redirects. */
  readonly url: string;
  readonly status: number;
  readonly statusText: string;
  /** A header's value, several joined by ", "; undefined when absent. */
  header(name: string): string | undefined;
  /** The body as it arrives; network failures, timeouts and aborts throw HttpErrors. */
  chunks(): AsyncIterable<Buffer>;
  /** The whole body; ETOOLARGE past `maxBytes`, declared or not. */
  buffer(maxBytes: number): Promise<Buffer>;
  /** The whole body as UTF-8. */
  text(maxBytes: number): Promise<string>;
  /** Drops the body unread and frees the connection. */
  discard(): void;
}

const DEFAULT_IDLE_TIMEOUT_MS = 30_000;
const DEFAULT_MAX_REDIRECTS = 5;
const REDIRECTS = new Set([301, 302, 303, 307, 308]);

/** Sends one request, following redirects; resolves with the final response whatever its status. */
export async function request(url: string | URL, o: RequestOptions = {}): Promise<HttpResponse> {
  const method = (o.method ?? 'GET').toUpperCase();
  const first = String(url);
  let current: URL;
  try {
    current = new URL(first);
  } catch {
    throw new HttpError('EURL', method, first, 'not a URL');
  }
  if (current.protocol !== 'http:' && current.protocol !== 'https:') {
    throw new HttpError('EURL', method, first, 'only http and https are supported');
  }
  const ex = new Exchange(method, first, o);
  const headers = lowerCased(o.headers ?? {});
  let hopMethod = method;
  let body = o.body;
  try {
    for (let hops = 0; ; hops++) {
      o.checkUrl?.(current);
      // fetch itself adds "Accept-Encoding: identity" to a Range request, and "gzip, deflate" to the others.
      const h: Record<string, string> = {
        'user-agent': 'keel',
        ...(headers.range ? {} : { 'accept-encoding': 'identity' }),
        ...headers,
      };
      if (current.origin !== new URL(first).origin) delete h.authorization;
      const res = await ex.fetch(current, {
        method: hopMethod,
        headers: h,
        ...(body !== undefined ? { body: body as BodyInit } : {}),
      });
      const location = res.headers.get('location');
      if (!REDIRECTS.has(res.status) || location === null) return ex.response(res, current.href);
      void res.body?.cancel().catch(() => undefined);
      const max = o.maxRedirects ?? DEFAULT_MAX_REDIRECTS;
      if (hops >= max) throw ex.fail('EREDIRECT', `more than ${max} redirects`);
      let next: URL;
      try {
        next = new URL(location, current);
      } catch {
        throw ex.fail('EREDIRECT', `redirected to an invalid Location "${location.slice(0, 200)}"`);
      }
      if (next.protocol !== 'http:' && next.protocol !== 'https:')
        throw ex.fail('EREDIRECT', `redirected to unsupported ${next.protocol} URL`);
      // As fetch does: 303 (and 301/302 after a POST) continue as a GET without the body.
      if (
        (res.status === 303 && hopMethod !== 'HEAD') ||
        ((res.status === 301 || res.status === 302) && hopMethod === 'POST')
      ) {
        hopMethod = 'GET';
        body = undefined;
        delete headers['content-type'];
      }
      current = next;
    }
  } catch (e) {
    ex.end();
    throw e;
  }
}

/** GETs `url` (following redirects); resolves with a 2xx response, any other status is an EHTTP error. */
export async function httpGet(
  url: string | URL,
  o: Omit<RequestOptions, 'method' | 'body'> = {},
): Promise<HttpResponse> {
  const res = await request(url, o);
  if (res.status >= 200 && res.status <= 299) return res;
  res.discard();
  const via = res.url === String(url) ? '' : ` (redirected to ${res.url})`;
  throw new HttpError(
    'EHTTP',
    'GET',
    `${String(url)}${via}`,
    `the server answered ${res.status} ${res.statusText}`.trimEnd(),
    { status: res.status },
  );
}

/** GETs a small body (a manifest, a signature, user-data), refusing one larger than `maxBytes`. */
export async function fetchBuffer(
  url: string | URL,
  o: Omit<RequestOptions, 'method' | 'body'> & { maxBytes: number },
): Promise<Buffer> {
  return (await httpGet(url, o)).buffer(o.maxBytes);
}

function lowerCased(headers: Record<string, string>): Record<string, string> {
  return Object.fromEntries(Object.entries(headers).map(([k, v]) => [k.toLowerCase(), v]));
}

/** The socket's error behind fetch's "fetch failed" / "terminated" TypeErrors, described. */
function networkReason(e: unknown): string {
  let inner = e;
  while (inner instanceof Error && inner.cause instanceof Error && (inner instanceof TypeError || inner.message === ''))
    inner = inner.cause;
  if (inner instanceof AggregateError && inner.errors[0] instanceof Error) inner = inner.errors[0];
  return errorText(inner);
}

/**
 * One request's timers and abort wiring. A single AbortController stops fetch and the body; what
 * stopped it (the caller's signal, the deadline, the idle timer) is kept, so the error says so.
 */
class Exchange {
  private readonly ctl = new AbortController();
  private stopped: HttpError | null = null;
  private idle: NodeJS.Timeout | null = null;
  private deadline: NodeJS.Timeout | null = null;
  private readonly onAbort = () =>
    this.stop(new HttpError('EABORT', this.method, this.url, 'aborted', { cause: this.o.signal?.reason }));

  constructor(
    private readonly method: string,
    private readonly url: string,
    private readonly o: RequestOptions,
  ) {
    if (o.signal?.aborted) throw new HttpError('EABORT', method, url, 'aborted', { cause: o.signal.reason });
    o.signal?.addEventListener('abort', this.onAbort, { once: true });
    if (o.timeoutMs !== undefined) {
      const ms = o.timeoutMs;
      this.deadline = setTimeout(
        () => this.stop(new HttpError('ETIMEOUT', method, url, `no answer within ${ms} ms`)),
        ms,
      );
      this.deadline.unref();
    }
  }

  fail(code: string, reason: string): HttpError {
    return new HttpError(code, this.method, this.url, reason);
  }

  async fetch(url: URL, init: RequestInit): Promise<Response> {
    this.armIdle();
    try {
      return await fetch(url, { ...init, redirect: 'manual', signal: this.ctl.signal });
    } catch (e) {
      if (this.stopped) throw this.stopped;
      const reason = networkReason(e);
      // The Fetch standard's "bad ports" (1, 6000, 10080, ...; undici's lib/fetch/constants.js) are refused.
      if (reason === 'bad port')
        throw new HttpError('EURL', this.method, this.url, `fetch refuses port ${url.port}`, { cause: e });
      throw new HttpError('ENETWORK', this.method, this.url, reason, { cause: e });
    } finally {
      this.disarmIdle();
    }
  }

  response(res: Response, finalUrl: string): HttpResponse {
    let used = false;
    const take = (): ReadableStream<Uint8Array> | null => {
      if (used) throw new Error(`BUG: the body of ${this.method} ${this.url} is read twice`);
      used = true;
      return res.body;
    };
    // eslint-disable-next-line @typescript-eslint/no-this-alias -- an async generator cannot be an arrow function
    const ex = this;
    const chunks = async function* (): AsyncGenerator<Buffer> {
      const body = take();
      if (body === null) {
        ex.end();
        return;
      }
      const reader = body.getReader();
      let got = 0;
      let done = false;
      try {
        for (;;) {
          ex.armIdle();
          let r: ReadableStreamReadResult<Uint8Array>;
          try {
            r = await reader.read();
          } catch (e) {
            throw (
              ex.stopped ??
              new HttpError(
                'ENETWORK',
                ex.method,
                ex.url,
                `the connection closed after ${got} bytes of the body (${networkReason(e)})`,
                { cause: e },
              )
            );
          } finally {
            ex.disarmIdle();
          }
          if (r.done) {
            done = true;
            return;
          }
          got += r.value.byteLength;
          yield Buffer.from(r.value.buffer, r.value.byteOffset, r.value.byteLength);
        }
      } finally {
        if (!done) void reader.cancel().catch(() => undefined);
        ex.end();
      }
    };
    const buffer = async (maxBytes: number): Promise<Buffer> => {
      const tooLarge = () =>
        new HttpError('ETOOLARGE', this.method, this.url, `the body is larger than ${maxBytes} bytes`);
      const declared = Number(res.headers.get('content-length') ?? NaN);
      if (Number.isFinite(declared) && declared > maxBytes) {
        discard();
        throw tooLarge();
      }
      const parts: Buffer[] = [];
      let total = 0;
      for await (const part of chunks()) {
        total += part.length;
        if (total > maxBytes) throw tooLarge(); // leaving the loop cancels the body
        parts.push(part);
      }
      return Buffer.concat(parts, total);
    };
    const discard = (): void => {
      if (!used) {
        used = true;
        void res.body?.cancel().catch(() => undefined);
      }
      this.end();
    };
    return {
      url: finalUrl,
      status: res.status,
      statusText: res.statusText,
      header: (name) => res.headers.get(name) ?? undefined,
      chunks,
      buffer,
      text: async (maxBytes) => (await buffer(maxBytes)).toString('utf8'),
      discard,
    };
  }

  /** Clears the timers and the caller's abort listener: the exchange is over. */
  end(): void {
    this.disarmIdle();
    if (this.deadline) clearTimeout(this.deadline);
    this.deadline = null;
    this.o.signal?.removeEventListener('abort', this.onAbort);
  }

  private stop(why: HttpError): void {
    this.stopped ??= why;
    this.ctl.abort(why);
  }

  private armIdle(): void {
    const ms = this.o.idleTimeoutMs ?? DEFAULT_IDLE_TIMEOUT_MS;
    this.disarmIdle();
    this.idle = setTimeout(
      () => this.stop(new HttpError('ETIMEOUT', this.method, this.url, `no data for ${ms} ms`)),
      ms,
    );
    this.idle.unref();
  }

  private disarmIdle(): void {
    if (this.idle) clearTimeout(this.idle);
    this.idle = null;
  }
}
