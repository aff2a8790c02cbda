// lib/http against local node:http servers on 127.0.0.1: statuses and redirects, Authorization
// kept to its origin, Range across hops, bounded bodies, the idle timer, the deadline, aborts and
// dropped connections, each as an HttpError with its code and "cannot METHOD URL: reason".
import assert from 'node:assert/strict';
import {
  createServer,
  type IncomingHttpHeaders,
  type IncomingMessage,
  type Server,
  type ServerResponse,
} from 'node:http';
import type { AddressInfo } from 'node:net';
import { fetchBuffer, httpGet, isHttpError, request, type HttpError } from '../../lib/http.js';

interface Seen {
  method: string;
  url: string;
  headers: IncomingHttpHeaders;
  body: string;
}
interface TestServer {
  base: string;
  seen: Seen[];
  close: () => Promise<void>;
}

const servers: TestServer[] = [];

/** A server on 127.0.0.1 answering with `handler` once a request's body is read; it records every request. */
async function serve(handler: (req: IncomingMessage, res: ServerResponse, body: string) => void): Promise<TestServer> {
  const seen: Seen[] = [];
  const server: Server = createServer((req, res) => {
    const parts: Buffer[] = [];
    req
      .on('data', (c: Buffer) => parts.push(c))
      .on('end', () => {
        const body = Buffer.concat(parts).toString();
        seen.push({ method: req.method ?? '', url: req.url ?? '', headers: req.headers, body });
        handler(req, res, body);
      });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const s: TestServer = {
    base: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    seen,
    close: () => {
      server.closeAllConnections();
      return new Promise((resolve) => server.close(() => resolve()));
    },
  };
  servers.push(s);
  return s;
}

const failsWith = (code: string, message: string | RegExp) => (e: unknown) => {
  assert.ok(isHttpError(e, code), `expected HttpError ${code}, got ${String(e)}`);
  if (typeof message === 'string') assert.equal(e.message, message);
  else assert.match(e.message, message);
  return true;
};

describe('lib/http', () => {
  afterEach(async () => {
    while (servers.length) await servers.pop()!.close();
  });

  it('rejects a non-2xx answer naming the URL and status, and a redirect loop', async () => {
    const s = await serve((req, res) =>
      req.url === '/loop' ? res.writeHead(302, { location: '/loop' }).end() : res.writeHead(404).end(),
    );
    await assert.rejects(httpGet(`${s.base}/nope`), (e: HttpError) => {
      failsWith('EHTTP', `cannot GET ${s.base}/nope: the server answered 404 Not Found`)(e);
      assert.equal(e.status, 404);
      assert.equal(e.reason, 'the server answered 404 Not Found');
      return true;
    });
    await assert.rejects(
      httpGet(`${s.base}/loop`, { maxRedirects: 2 }),
      failsWith('EREDIRECT', `cannot GET ${s.base}/loop: more than 2 redirects`),
    );
    assert.equal(s.seen.length, 1 + 3);
  });

  it('request() hands back any status with its headers and body', async () => {
    const s = await serve((_req, res) => res.writeHead(409, { 'x-why': 'taken' }).end('{"errorCode":105}'));
    const res = await request(`${s.base}/k`, {
      method: 'PUT',
      body: 'value=1',
      headers: { 'Content-Type': 'application/x-www-form-urlencoded' },
    });
    assert.equal(res.status, 409);
    assert.equal(res.header('x-why'), 'taken');
    assert.equal(await res.text(100), '{"errorCode":105}');
    assert.deepEqual(
      [s.seen[0]!.method, s.seen[0]!.body, s.seen[0]!.headers['content-type']],
      ['PUT', 'value=1', 'application/x-www-form-urlencoded'],
    );
  });

  it('fetches small bodies and refuses larger ones, declared or not', async () => {
    const s = await serve((req, res) => {
      if (req.url === '/small') return void res.end('hello');
      res.write('x'.repeat(600));
      res.end('y'.repeat(600)); // chunked: no Content-Length
    });
    assert.equal((await fetchBuffer(`${s.base}/small`, { maxBytes: 5 })).toString(), 'hello');
    await assert.rejects(
      fetchBuffer(`${s.base}/small`, { maxBytes: 4 }),
      failsWith('ETOOLARGE', `cannot GET ${s.base}/small: the body is larger than 4 bytes`),
    );
    await assert.rejects(
      fetchBuffer(`${s.base}/chunked`, { maxBytes: 1000 }),
      failsWith('ETOOLARGE', /the body is larger than 1000 bytes$/),
    );
  });

  it('reports an unreachable server and a URL it cannot fetch', async () => {
    const gone = await serve(() => undefined);
    await gone.close();
    const port = gone.base.split(':').at(-1);
    await assert.rejects(
      httpGet(`${gone.base}/x`),
      failsWith('ENETWORK', `cannot GET ${gone.base}/x: connect ECONNREFUSED 127.0.0.1:${port}`),
    );
    await assert.rejects(
      httpGet('http://127.0.0.1:1/x'),
      failsWith('EURL', 'cannot GET http://127.0.0.1:1/x: fetch refuses port 1'),
    );
    await assert.rejects(
      httpGet('ftp://127.0.0.1/x'),
      failsWith('EURL', 'cannot GET ftp://127.0.0.1/x: only http and https are supported'),
    );
    await assert.rejects(httpGet('not a url'), failsWith('EURL', 'cannot GET not a url: not a URL'));
  });

  it('never sends Authorization to another origin a redirect leads to; keeps it on the same origin', async () => {
    const other = await serve((_req, res) => res.end('other'));
    const s = await serve((req, res) => {
      if (req.url === '/away') return void res.writeHead(307, { location: `${other.base}/blob?sig=1` }).end();
      if (req.url === '/here') return void res.writeHead(302, { location: '/final' }).end();
      res.end('final');
    });
    assert.equal(
      await (await httpGet(`${s.base}/away`, { headers: { Authorization: 'Bearer secret' } })).text(100),
      'other',
    );
    assert.equal(
      await (await httpGet(`${s.base}/here`, { headers: { authorization: 'Bearer secret' } })).text(100),
      'final',
    );
    assert.deepEqual(
      s.seen.map((r) => [r.url, r.headers.authorization]),
      [
        ['/away', 'Bearer secret'],
        ['/here', 'Bearer secret'],
        ['/final', 'Bearer secret'],
      ],
    );
    assert.deepEqual(
      other.seen.map((r) => [r.url, r.headers.authorization]),
      [['/blob?sig=1', undefined]],
      'another port is another origin',
    );
  });

  it(
    'keeps Range (and other headers) across redirects, sends ' + 'Accept-Encoding identity, and says where it ended',
    async () => {
      const other = await serve((req, res) => res.writeHead(206, { 'content-range': `bytes 2-4/10` }).end('234'));
      const s = await serve((_req, res) => res.writeHead(302, { location: `${other.base}/img` }).end());
      const res = await httpGet(`${s.base}/img`, { headers: { range: 'bytes=2-4' } });
      assert.equal(res.status, 206);
      assert.equal(res.url, `${other.base}/img`);
      assert.equal(await res.text(10), '234');
      assert.equal(other.seen[0]!.headers.range, 'bytes=2-4');
      assert.equal(other.seen[0]!.headers['accept-encoding'], 'identity');
      assert.equal(other.seen[0]!.headers['user-agent'], 'keel');
    },
  );

  it('a 303 after a POST continues as a GET without the body; a 307 repeats method and body', async () => {
    const s = await serve((req, res) => {
      if (req.url === '/see-other') return void res.writeHead(303, { location: '/result' }).end();
      if (req.url === '/temporary') return void res.writeHead(307, { location: '/again' }).end();
      res.end(`${req.method} ${req.url}`);
    });
    assert.equal(
      await (await request(`${s.base}/see-other`, { method: 'POST', body: 'a=1' })).text(100),
      'GET /result',
    );
    assert.equal(await (await request(`${s.base}/temporary`, { method: 'PUT', body: 'b=2' })).text(100), 'PUT /again');
    assert.deepEqual(
      s.seen.map((r) => [r.method, r.url, r.body]),
      [
        ['POST', '/see-other', 'a=1'],
        ['GET', '/result', ''],
        ['PUT', '/temporary', 'b=2'],
        ['PUT', '/again', 'b=2'],
      ],
    );
  });

  it(
    'checkUrl sees every hop and can refuse one before it is ' + 'requested; a redirect to another scheme is refused',
    async () => {
      const other = await serve((_req, res) => res.end('must not be asked'));
      const locations: Record<string, string> = { '/ftp': 'ftp://127.0.0.1/x', '/bad': 'http://[not-a-host/x' };
      const s = await serve((req, res) =>
        res.writeHead(302, { location: locations[req.url ?? ''] ?? `${other.base}/x` }).end(),
      );
      const hops: string[] = [];
      const refuse = (u: URL) => {
        hops.push(u.href);
        if (u.origin === other.base) throw new Error(`refusing ${u.href}`);
      };
      await assert.rejects(
        httpGet(`${s.base}/go`, { checkUrl: refuse }),
        new RegExp(`^Error: refusing ${other.base}/x$`),
      );
      assert.deepEqual(hops, [`${s.base}/go`, `${other.base}/x`]);
      assert.equal(other.seen.length, 0);
      await assert.rejects(
        httpGet(`${s.base}/ftp`),
        failsWith('EREDIRECT', `cannot GET ${s.base}/ftp: redirected to unsupported ftp: URL`),
      );
      await assert.rejects(
        httpGet(`${s.base}/bad`),
        failsWith('EREDIRECT', `cannot GET ${s.base}/bad: redirected to an invalid Location "http://[not-a-host/x"`),
      );
    },
  );

  it('times out a body that stops arriving (idle), and an answer that never comes (deadline)', async () => {
    const s = await serve((req, res) => {
      if (req.url === '/silent') return; // headers never come
      res.writeHead(200, { 'content-length': '1000' });
      res.write('x'.repeat(10)); // then nothing
    });
    const res = await httpGet(`${s.base}/stall`, { idleTimeoutMs: 200 });
    const got: Buffer[] = [];
    await assert.rejects(
      (async () => {
        for await (const c of res.chunks()) got.push(c);
      })(),
      failsWith('ETIMEOUT', `cannot GET ${s.base}/stall: no data for 200 ms`),
    );
    assert.equal(Buffer.concat(got).toString(), 'x'.repeat(10), 'what came before the stall is delivered');
    await assert.rejects(
      httpGet(`${s.base}/silent`, { idleTimeoutMs: 200 }),
      failsWith('ETIMEOUT', `cannot GET ${s.base}/silent: no data for 200 ms`),
    );
    await assert.rejects(
      httpGet(`${s.base}/silent`, { timeoutMs: 200 }),
      failsWith('ETIMEOUT', `cannot GET ${s.base}/silent: no answer within 200 ms`),
    );
  });

  it("stops on the caller's abort, before and during the body", async () => {
    let answered!: () => void;
    const headersSent = new Promise<void>((resolve) => {
      answered = resolve;
    });
    const s = await serve((req, res) => {
      res.writeHead(200, { 'content-length': '1000' });
      res.write('x', () => answered());
    });
    const early = new AbortController();
    early.abort();
    await assert.rejects(
      httpGet(`${s.base}/a`, { signal: early.signal }),
      failsWith('EABORT', `cannot GET ${s.base}/a: aborted`),
    );
    assert.equal(s.seen.length, 0, 'an aborted signal sends nothing');
    const ac = new AbortController();
    const res = await httpGet(`${s.base}/b`, { signal: ac.signal });
    await headersSent;
    const reading = (async () => {
      for await (const _ of res.chunks()) ac.abort();
    })();
    await assert.rejects(reading, failsWith('EABORT', `cannot GET ${s.base}/b: aborted`));
  });

  it('reports a connection dropped in the middle of the body as ENETWORK, with the bytes received', async () => {
    const s = await serve((_req, res) => {
      res.writeHead(200, { 'content-length': '1000' });
      res.write('x'.repeat(100), () => res.destroy());
    });
    const res = await httpGet(`${s.base}/drop`);
    await assert.rejects(
      res.buffer(10_000),
      failsWith(
        'ENETWORK',
        new RegExp(`^cannot GET ${s.base}/drop: the connection closed after 100 bytes of the body \\(.+\\)$`),
      ),
    );
  });
});
