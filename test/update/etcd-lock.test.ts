// The locksmith reboot lock against a real etcd (Debian's etcd-server, 3.4, installed by
// `make deps`) started by etcd-helpers.ts with the v2 API on free loopback ports; a tiny fake
// server covers the answers a healthy etcd does not give (5xx, 401, silence) and the basic-auth
// header.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { EtcdLockError, EtcdV2, RebootLock, semaphoreKey } from '../../update/etcd-lock.js';
import { freePort, startEtcd, type EtcdProcess } from './etcd-helpers.js';

const KEY = 'coreos.com/updateengine/rebootlock/semaphore';

/** A raw v2 request, for setting up and checking what RebootLock wrote. */
async function v2(base: string, method: string, key: string, form?: Record<string, string>) {
  const r = await fetch(`${base}/v2/keys/${key}`, {
    method,
    body: form && new URLSearchParams(form),
    headers: form && { 'content-type': 'application/x-www-form-urlencoded' },
  });
  return { status: r.status, json: await r.json() };
}

describe('update/etcd-lock (real etcd)', function () {
  this.timeout(15_000);
  let etcd: EtcdProcess | undefined;
  let dataDir: string;
  let url: string;
  let deadUrl: string;
  const lockFor = (id: string, group: string | null = null, endpoints = [url]) =>
    new RebootLock({ endpoints, group, id });
  const stored = async (key = KEY) => JSON.parse((await v2(url, 'GET', key)).json.node.value);
  const setRaw = (value: string, key = KEY) => v2(url, 'PUT', key, { value });

  before(async () => {
    dataDir = mkdtempSync(join(tmpdir(), 'keel-etcd-'));
    etcd = await startEtcd('keel-test', join(dataDir, 'data'));
    url = etcd.url;
    // Asked for while etcd holds its ports, so it cannot be one of them.
    deadUrl = `http://127.0.0.1:${await freePort()}`;
  });

  after(async () => {
    await etcd?.stop();
    if (dataDir) rmSync(dataDir, { recursive: true, force: true });
  });

  beforeEach(async () => {
    const r = await v2(url, 'DELETE', 'coreos.com?recursive=true');
    assert.ok(r.status === 200 || r.status === 404, JSON.stringify(r));
  });

  it('etcd 3.4 serves the v2 keys API with --enable-v2: create, get, compare-and-swap', async () => {
    const version = await (await fetch(`${url}/version`)).json();
    assert.match(version.etcdserver, /^3\./);
    const created = await v2(url, 'PUT', 'keel/probe', { value: 'a', prevExist: 'false' });
    assert.equal(created.status, 201);
    assert.equal((await v2(url, 'PUT', 'keel/probe', { value: 'b', prevExist: 'false' })).json.errorCode, 105);
    const index = String(created.json.node.modifiedIndex);
    assert.equal((await v2(url, 'PUT', 'keel/probe', { value: 'b', prevIndex: index + '0' })).json.errorCode, 101);
    assert.equal((await v2(url, 'PUT', 'keel/probe', { value: 'b', prevIndex: index })).status, 200);
    assert.equal((await v2(url, 'GET', 'keel/probe')).json.node.value, 'b');
    await v2(url, 'DELETE', 'keel/probe');
  });

  it('the first lock creates the semaphore and holds it', async () => {
    assert.equal((await v2(url, 'GET', KEY)).status, 404);
    assert.equal(await lockFor('machine-a').lock(), true);
    assert.deepEqual(await stored(), { semaphore: 0, max: 1, holders: ['machine-a'] });
    assert.deepEqual(await lockFor('anyone').status(), { semaphore: 0, max: 1, holders: ['machine-a'] });
  });

  it('a second machine is refused while max=1', async () => {
    assert.equal(await lockFor('machine-a').lock(), true);
    assert.equal(await lockFor('machine-b').lock(), false);
    assert.deepEqual(await stored(), { semaphore: 0, max: 1, holders: ['machine-a'] });
  });

  it('unlock gives the slot back and lets the second machine take it', async () => {
    const a = lockFor('machine-a');
    const b = lockFor('machine-b');
    assert.equal(await a.lock(), true);
    assert.equal(await b.lock(), false);
    await a.unlock();
    assert.deepEqual(await stored(), { semaphore: 1, max: 1, holders: [] });
    assert.equal(await b.lock(), true);
    assert.deepEqual(await stored(), { semaphore: 0, max: 1, holders: ['machine-b'] });
  });

  it('lock and unlock are idempotent; unlocking writes nothing when not a holder', async () => {
    const a = lockFor('machine-a');
    assert.equal(await a.lock(), true);
    assert.equal(await a.lock(), true, 'a holder asking again, with the semaphore at 0');
    assert.deepEqual(await stored(), { semaphore: 0, max: 1, holders: ['machine-a'] });
    const before = (await v2(url, 'GET', KEY)).json.node.modifiedIndex;
    await lockFor('machine-b').unlock();
    assert.equal((await v2(url, 'GET', KEY)).json.node.modifiedIndex, before);
    await a.unlock();
    await a.unlock();
    assert.deepEqual(await stored(), { semaphore: 1, max: 1, holders: [] });
    await v2(url, 'DELETE', KEY);
    await a.unlock();
    assert.equal((await v2(url, 'GET', KEY)).status, 404, 'unlock does not create the key');
    assert.deepEqual(await a.status(), { semaphore: 1, max: 1, holders: [] });
  });

  it('groups use their own key, named as locksmith names it', async () => {
    assert.equal(semaphoreKey('web'), 'coreos.com/updateengine/rebootlock/groups/web/semaphore');
    assert.equal(await lockFor('machine-a', 'web').lock(), true);
    assert.equal(await lockFor('machine-b').lock(), true, 'the default lock is another semaphore');
    assert.equal(await lockFor('machine-c', 'web').lock(), false);
    assert.equal(await lockFor('machine-c', 'db/eu west').lock(), true);
    assert.deepEqual(await stored('coreos.com/updateengine/rebootlock/groups/web/semaphore'), {
      semaphore: 0,
      max: 1,
      holders: ['machine-a'],
    });
    assert.deepEqual(await stored(), { semaphore: 0, max: 1, holders: ['machine-b'] });
    // Go's url.QueryEscape("db/eu west"): one key segment "db%2Feu+west".
    const groups = (await v2(url, 'GET', 'coreos.com/updateengine/rebootlock/groups')).json.node.nodes
      .map((n: { key: string }) => n.key)
      .sort();
    assert.deepEqual(groups, [
      '/coreos.com/updateengine/rebootlock/groups/db%2Feu+west',
      '/coreos.com/updateengine/rebootlock/groups/web',
    ]);
  });

  it(
    'concurrent lock() calls from different machines: exactly one ' + 'wins (CAS), also while creating the key',
    async () => {
      const ids = ['m1', 'm2', 'm3', 'm4', 'm5'];
      // Count the conditional writes etcd refused, to see that the races really happened.
      const put = EtcdV2.prototype.put;
      let refused = 0;
      EtcdV2.prototype.put = async function (...args) {
        const ok = await put.apply(this, args);
        if (!ok) refused++;
        return ok;
      };
      let won: boolean[];
      try {
        won = await Promise.all(ids.map((id) => lockFor(id).lock()));
      } finally {
        EtcdV2.prototype.put = put;
      }
      assert.ok(refused >= 1, 'no write was refused: the calls did not race');
      assert.equal(won.filter(Boolean).length, 1, String(won));
      const winner = ids[won.indexOf(true)];
      assert.deepEqual(await stored(), { semaphore: 0, max: 1, holders: [winner] });
    },
  );

  it('with max=3, eight concurrent machines: exactly three win; holders stay sorted', async () => {
    await setRaw('{"semaphore":3,"max":3,"holders":[]}');
    const ids = ['h', 'c', 'f', 'a', 'g', 'b', 'e', 'd'];
    const won = await Promise.all(ids.map((id) => lockFor(id).lock()));
    const winners = ids.filter((_, i) => won[i]).sort();
    assert.equal(winners.length, 3, String(won));
    assert.deepEqual(await stored(), { semaphore: 0, max: 3, holders: winners });
  });

  it('reads the document locksmith creates ("holders":null) and keeps holders sorted', async () => {
    await setRaw('{"semaphore":2,"max":2,"holders":null}');
    assert.equal(await lockFor('zz').lock(), true);
    assert.equal(await lockFor('aa').lock(), true);
    assert.deepEqual(await stored(), { semaphore: 0, max: 2, holders: ['aa', 'zz'] });
  });

  it('a key that holds no semaphore is an error naming key and endpoint', async () => {
    for (const [value, why] of [
      ['not json', /bad JSON/],
      ['{"semaphore":"1","max":1,"holders":[]}', /must be integers/],
      ['{"semaphore":1,"max":1,"holders":[1]}', /list of machine ids/],
    ] as const) {
      await setRaw(value);
      await assert.rejects(lockFor('machine-a').lock(), (e: unknown) => {
        assert.ok(e instanceof EtcdLockError);
        assert.equal(e.code, 'bad-value');
        assert.match(e.message, why);
        assert.ok(e.message.includes(`etcd key ${KEY} at ${url} holds no reboot semaphore`), e.message);
        return true;
      });
    }
    await v2(url, 'DELETE', KEY);
    await v2(url, 'PUT', `${KEY}?dir=true`);
    await assert.rejects(lockFor('machine-a').status(), new RegExp(`etcd key ${KEY} at ${url} is a directory`));
  });

  it('etcd down: a clear error naming the endpoint and the key', async () => {
    await assert.rejects(lockFor('machine-a', null, [deadUrl]).lock(), (e: unknown) => {
      assert.ok(e instanceof EtcdLockError);
      assert.equal(e.code, 'unreachable');
      assert.equal(e.endpoint, deadUrl);
      assert.equal(
        e.message,
        `etcd unreachable for key ${KEY}: ${deadUrl}: connect ECONNREFUSED ${deadUrl.slice('http://'.length)}`,
      );
      return true;
    });
  });

  it('a dead first endpoint: the second is used', async () => {
    const a = lockFor('machine-a', null, [deadUrl, url]);
    assert.equal(await a.lock(), true);
    assert.deepEqual(await a.status(), { semaphore: 0, max: 1, holders: ['machine-a'] });
    await a.unlock();
    assert.deepEqual(await stored(), { semaphore: 1, max: 1, holders: [] });
  });
});

describe('update/etcd-lock (fake etcd answers)', () => {
  let server: http.Server;
  let base: string;
  let answer: (req: http.IncomingMessage, res: http.ServerResponse) => void;
  before(async () => {
    server = http.createServer((req, res) => answer(req, res));
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    base = `http://127.0.0.1:${(server.address() as net.AddressInfo).port}`;
  });
  after(() => {
    server.closeAllConnections();
    server.close();
  });
  const reply = (status: number, body: string) => (_: http.IncomingMessage, res: http.ServerResponse) => {
    res.writeHead(status);
    res.end(body);
  };

  it("sends basic auth; an HTTP error names the endpoint, the key and etcd's message", async () => {
    let auth: string | undefined;
    answer = (req, res) => {
      auth = req.headers.authorization;
      reply(401, '{"message":"The request requires user authentication"}')(req, res);
    };
    const lock = new RebootLock({ endpoints: [base], group: 'web', id: 'm', username: 'root', password: 'pw' });
    await assert.rejects(
      lock.status(),
      (e: unknown) =>
        e instanceof EtcdLockError &&
        e.code === 'http' &&
        e.message ===
          `etcd at ${base} refused ` +
            'coreos.com/updateengine/rebootlock/groups/web/semaphore: HTTP 401 The ' +
            'request requires user authentication',
    );
    assert.equal(auth, 'Basic ' + Buffer.from('root:pw').toString('base64'));
  });

  it('an etcd without the v2 API gets a hint; a 5xx or silence moves on and is reported per endpoint', async () => {
    answer = reply(404, '404 page not found\n');
    await assert.rejects(
      new RebootLock({ endpoints: [base], group: null, id: 'm' }).lock(),
      /HTTP 404 404 page not found \(is etcd started with --enable-v2=true\?\)/,
    );
    answer = reply(503, '{"message":"no leader"}');
    const silent = net.createServer(() => {
      /* accepts, never answers */
    });
    await new Promise<void>((resolve) => silent.listen(0, '127.0.0.1', resolve));
    const silentUrl = `http://127.0.0.1:${(silent.address() as net.AddressInfo).port}`;
    try {
      const lock = new RebootLock({ endpoints: [base, silentUrl], group: null, id: 'm', timeoutMs: 200 });
      await assert.rejects(
        lock.lock(),
        (e: unknown) =>
          e instanceof EtcdLockError &&
          e.code === 'unreachable' &&
          e.message ===
            `etcd unreachable for key ${KEY}: ${base}: HTTP 503 {"message":"no ` +
              `leader"}; ${silentUrl}: no answer within 200 ms`,
      );
    } finally {
      silent.close();
    }
  });
});
