// pullImage against real registries on loopback: Debian's docker-registry (distribution v2.8), fed
// with skopeo from an OCI layout written here, once without auth and once with token auth (a JWT
// token server in this file). Proxies in front of them redirect blobs to another loopback host or
// tamper with bytes; a small fake registry (clearly named) covers what the real one can't serve.
import { startRegistry, type RegistryProcess } from './registry-helpers.js';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { createHash, randomBytes, sign, X509Certificate, createPrivateKey, type KeyObject } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import http, { type IncomingHttpHeaders, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { gzipSync } from 'node:zlib';
import { isContainerError } from '../../containers/errors.js';
import { parseReference } from '../../containers/reference.js';
import { pullImage, type PullProgress } from '../../containers/registry.js';
import { isLoopback, parseChallenges } from '../../containers/registry-client.js';

const run = promisify(execFile);
const REQUIRED_TOOLS = ['/usr/bin/docker-registry', '/usr/bin/skopeo', '/usr/bin/openssl'];

describe('containers/reference parseReference', () => {
  const HEX = 'a'.repeat(64);

  it('applies Docker Hub defaults to a bare name', () => {
    assert.deepEqual(parseReference('busybox'), {
      registry: 'docker.io',
      repository: 'library/busybox',
      tag: 'latest',
      digest: null,
      normalized: 'docker.io/library/busybox:latest',
    });
  });

  it('reads user/app:tag, registries with ports, IPs and localhost', () => {
    assert.equal(parseReference('user/app:1').normalized, 'docker.io/user/app:1');
    assert.deepEqual(parseReference('localhost:5000/app'), {
      registry: 'localhost:5000',
      repository: 'app',
      tag: 'latest',
      digest: null,
      normalized: 'localhost:5000/app:latest',
    });
    const r = parseReference('127.0.0.1:5000/a/b:t');
    assert.equal(r.registry, '127.0.0.1:5000');
    assert.equal(r.repository, 'a/b');
    assert.equal(r.tag, 't');
    assert.equal(parseReference('localhost/app').registry, 'localhost');
    assert.equal(parseReference('ghcr.io/o/app:v1.2').registry, 'ghcr.io');
    assert.equal(parseReference('[::1]:5000/app').registry, '[::1]:5000');
    assert.equal(parseReference('index.docker.io/busybox').normalized, 'docker.io/library/busybox:latest');
    // A first component without '.', ':' and not localhost is a path component, not a registry.
    assert.equal(parseReference('registry/app').registry, 'docker.io');
  });

  it('reads digests, with and without a tag', () => {
    const d = parseReference(`name@sha256:${HEX}`);
    assert.equal(d.tag, null);
    assert.equal(d.digest, `sha256:${HEX}`);
    assert.equal(d.normalized, `docker.io/library/name@sha256:${HEX}`);
    assert.equal(parseReference(`localhost:5000/app:1@sha256:${HEX}`).normalized, `localhost:5000/app:1@sha256:${HEX}`);
  });

  it('rejects bad references with a clear error', () => {
    const bad: [string, RegExp][] = [
      ['Busybox', /must be lowercase/],
      ['user/App:1', /must be lowercase/],
      ['busybox:bad!tag', /"bad!tag" is not a valid tag/],
      ['busybox:.hidden', /is not a valid tag/],
      [`busybox@sha256:${'a'.repeat(63)}`, /not a sha256 digest/],
      [`busybox@sha256:${'A'.repeat(64)}`, /not a sha256 digest/],
      ['busybox@md5:abc', /only sha256 digests/],
      ['busybox@nothing', /is not a digest/],
      ['', /empty/],
      ['a//b', /not a valid repository path component/],
      ['localhost:99999/app', /not a valid port/],
      ['-bad.host/app', /not a valid registry host/],
      ['my app', /white space/],
    ];
    for (const [ref, message] of bad) {
      assert.throws(
        () => parseReference(ref),
        (e: unknown) =>
          isContainerError(e, 'EREFERENCE') &&
          message.test(e.message) &&
          e.message.startsWith(`invalid image reference "${ref}"`),
        ref,
      );
    }
  });
});

describe('containers/registry-client helpers', () => {
  it('parses WWW-Authenticate challenges', () => {
    assert.deepEqual(
      parseChallenges('Bearer realm="https://auth.example/token",service="reg",scope="repository:a/b:pull,push"'),
      [
        {
          scheme: 'bearer',
          params: { realm: 'https://auth.example/token', service: 'reg', scope: 'repository:a/b:pull,push' },
        },
      ],
    );
    assert.deepEqual(parseChallenges('Basic realm="x \\"y\\"", Bearer realm=r'), [
      { scheme: 'basic', params: { realm: 'x "y"' } },
      { scheme: 'bearer', params: { realm: 'r' } },
    ]);
  });

  it('knows loopback hosts', () => {
    for (const h of ['127.0.0.1', '127.1.2.3', 'localhost', '[::1]', '::1']) assert.ok(isLoopback(h), h);
    for (const h of ['10.0.0.1', '128.0.0.1', 'example.com', 'localhost.example.com', '[::2]', '::'])
      assert.ok(!isLoopback(h), h);
  });
});

describe('containers/registry pullImage (real docker-registry on loopback)', function () {
  this.timeout(60_000);
  let work: string;
  let layout: TestLayout;
  let plain: RegistryProcess;
  let tokenServer: TokenServer;
  let secured: RegistryProcess;
  const servers: http.Server[] = [];
  let blobCounter = 0;
  const newBlobDir = () => join(work, `blobs-${++blobCounter}`);

  before(async function () {
    const missing = REQUIRED_TOOLS.filter((t) => !existsSync(t));
    if (missing.length)
      throw new Error(`missing ${missing.join(', ')}: apt-get install docker-registry skopeo openssl`);
    work = await mkdtemp(join(tmpdir(), 'keel-registry-test-'));
    layout = await writeLayout(join(work, 'layout'));
    tokenServer = await startTokenServer(work);
    servers.push(tokenServer.server);
    [plain, secured] = await Promise.all([
      startRegistry(join(work, 'plain'), ''),
      startRegistry(
        join(work, 'secured'),
        [
          'auth:',
          '  token:',
          `    realm: ${tokenServer.url}/token`,
          `    service: ${TOKEN_SERVICE}`,
          `    issuer: ${TOKEN_ISSUER}`,
          `    rootcertbundle: ${tokenServer.certFile}`,
        ].join('\n'),
      ),
    ]);
    const host = `127.0.0.1:${plain.port}`;
    await Promise.all([
      skopeo('copy', 'oci:' + layout.dir + ':amd64', `docker://${host}/app:oci`),
      skopeo('copy', '--format', 'v2s2', 'oci:' + layout.dir + ':amd64', `docker://${host}/app:v2s2`),
      skopeo('copy', '--all', 'oci:' + layout.dir + ':multi', `docker://${host}/multi:latest`),
      skopeo('copy', '--format', 'v2s2', 'oci:' + layout.dir + ':amd64', `docker://${host}/dlist:amd64`),
      skopeo('copy', '--format', 'v2s2', 'oci:' + layout.dir + ':arm64', `docker://${host}/dlist:arm64`),
      skopeo(
        'copy',
        '--dest-creds',
        `${USER}:${PASSWORD}`,
        'oci:' + layout.dir + ':amd64',
        `docker://127.0.0.1:${secured.port}/private/app:latest`,
      ),
    ]);
    await putDockerManifestList(plain.url, 'dlist', ['amd64', 'arm64']);
  });

  after(async () => {
    for (const s of servers) {
      s.closeAllConnections();
      s.close();
    }
    await Promise.all([plain?.stop(), secured?.stop()]);
    if (work) await rm(work, { recursive: true, force: true });
  });

  it('pulls an OCI image: manifest, config and layers, verified into blobDir/sha256', async () => {
    const blobDir = newBlobDir();
    const seen: PullProgress[] = [];
    const img = await pullImage(`127.0.0.1:${plain.port}/app:oci`, {
      insecure: true,
      blobDir,
      progress: (p) => seen.push(p),
    });
    const amd = layout.images.amd64;
    assert.equal(img.ref, `127.0.0.1:${plain.port}/app:oci`);
    assert.equal(img.manifestDigest, amd.manifestDigest);
    assert.deepEqual(img.manifest, amd.manifest);
    assert.deepEqual(img.config, amd.config);
    assert.equal(img.indexDigest, undefined);
    assert.deepEqual(
      img.layers,
      amd.layers.map((l) => ({
        digest: l.digest,
        mediaType: 'application/vnd.oci.image.layer.v1.tar+gzip',
        size: l.bytes.length,
      })),
    );
    for (const l of amd.layers) assert.deepEqual(await readFile(join(blobDir, 'sha256', l.digest.slice(7))), l.bytes);
    assert.deepEqual(await readFile(join(blobDir, 'sha256', amd.configDigest.slice(7))), amd.config);
    assert.deepEqual(
      (await readdir(join(blobDir, 'sha256'))).filter((f) => f.startsWith('.')),
      [],
      'no temporary files left',
    );
    const big = amd.layers[1] as Blob;
    const bigProgress = seen.filter((p) => p.digest === big.digest);
    assert.ok(bigProgress.length >= 2, 'progress of the big layer is reported');
    assert.deepEqual(bigProgress.at(-1), {
      digest: big.digest,
      doneBytes: big.bytes.length,
      totalBytes: big.bytes.length,
    });
  });

  it('pulls a Docker schema 2 image', async () => {
    const img = await pullImage(`127.0.0.1:${plain.port}/app:v2s2`, { insecure: true, blobDir: newBlobDir() });
    const manifest = JSON.parse(img.manifest.toString()) as { mediaType: string };
    assert.equal(manifest.mediaType, 'application/vnd.docker.distribution.manifest.v2+json');
    assert.equal(img.manifestDigest, sha256(img.manifest));
    assert.deepEqual(
      img.layers.map((l) => l.digest),
      layout.images.amd64.layers.map((l) => l.digest),
    );
    assert.ok(img.layers.every((l) => l.mediaType === 'application/vnd.docker.image.rootfs.diff.tar.gzip'));
  });

  it('chooses linux/amd64 from an OCI index by default, and another platform when asked', async () => {
    const ref = `127.0.0.1:${plain.port}/multi:latest`;
    const amd = await pullImage(ref, { insecure: true, blobDir: newBlobDir() });
    assert.equal(amd.manifestDigest, layout.images.amd64.manifestDigest);
    assert.equal(amd.indexDigest, layout.indexDigest);
    assert.equal((JSON.parse(amd.config.toString()) as { architecture: string }).architecture, 'amd64');
    const arm = await pullImage(ref, {
      insecure: true,
      blobDir: newBlobDir(),
      platform: { os: 'linux', architecture: 'arm64' },
    });
    assert.equal(arm.manifestDigest, layout.images.arm64.manifestDigest);
    const armV8 = await pullImage(ref, {
      insecure: true,
      blobDir: newBlobDir(),
      platform: { os: 'linux', architecture: 'arm64', variant: 'v8' },
    });
    assert.equal(armV8.manifestDigest, layout.images.arm64.manifestDigest);
  });

  it('names the available platforms when the wanted one is not in the index', async () => {
    const blobDir = newBlobDir();
    await assert.rejects(
      pullImage(`127.0.0.1:${plain.port}/multi:latest`, {
        insecure: true,
        blobDir,
        platform: { os: 'linux', architecture: 's390x' },
      }),
      (e: unknown) =>
        isContainerError(e, 'EPLATFORM') &&
        e.message ===
          `cannot pull 127.0.0.1:${plain.port}/multi:latest: no image for ` +
            'linux/s390x in the index; it has linux/amd64, linux/arm64/v8',
    );
    assert.ok(!existsSync(blobDir), 'nothing downloaded');
  });

  it('chooses linux/amd64 from a Docker manifest list PUT through the registry API', async () => {
    const img = await pullImage(`127.0.0.1:${plain.port}/dlist:latest`, { insecure: true, blobDir: newBlobDir() });
    assert.equal((JSON.parse(img.config.toString()) as { architecture: string }).architecture, 'amd64');
    assert.equal(
      (JSON.parse(img.manifest.toString()) as { mediaType: string }).mediaType,
      'application/vnd.docker.distribution.manifest.v2+json',
    );
    assert.ok(img.indexDigest?.startsWith('sha256:'));
  });

  it('pulls by digest, and says 404 for a manifest the registry does not have', async () => {
    const digest = layout.images.amd64.manifestDigest;
    const img = await pullImage(`127.0.0.1:${plain.port}/app@${digest}`, { insecure: true, blobDir: newBlobDir() });
    assert.equal(img.manifestDigest, digest);
    assert.equal(img.ref, `127.0.0.1:${plain.port}/app@${digest}`);
    const missing = `sha256:${'0'.repeat(64)}`;
    await assert.rejects(
      pullImage(`127.0.0.1:${plain.port}/app@${missing}`, { insecure: true, blobDir: newBlobDir() }),
      (e: unknown) =>
        isContainerError(e, 'ENOTFOUND') &&
        e.message.startsWith(`cannot pull 127.0.0.1:${plain.port}/app@${missing}: manifest ${missing} not found`) &&
        /MANIFEST_UNKNOWN/.test(e.message),
    );
    await assert.rejects(
      pullImage(`127.0.0.1:${plain.port}/app:nope`, { insecure: true, blobDir: newBlobDir() }),
      (e: unknown) =>
        isContainerError(e, 'ENOTFOUND') &&
        /manifest nope not found in 127\.0\.0\.1:\d+\/app \(404 MANIFEST_UNKNOWN/.test(e.message),
    );
  });

  it('does not fetch blobs that are already in blobDir, and fetches a damaged one again', async () => {
    const proxy = await startProxy(plain.port);
    servers.push(proxy.server);
    const blobDir = newBlobDir();
    const ref = `127.0.0.1:${proxy.port}/app:oci`;
    const blobGets = () => proxy.log.filter((r) => r.path.includes('/blobs/')).map((r) => r.path.split('/blobs/')[1]);
    await pullImage(ref, { insecure: true, blobDir });
    assert.equal(blobGets().length, 3, 'config and two layers');
    proxy.log.length = 0;
    await pullImage(ref, { insecure: true, blobDir });
    assert.deepEqual(blobGets(), [], 'nothing downloaded again');
    const [small, big] = layout.images.amd64.layers as [Blob, Blob];
    await rm(join(blobDir, 'sha256', small.digest.slice(7)));
    await writeFile(join(blobDir, 'sha256', big.digest.slice(7)), Buffer.from('damaged'));
    proxy.log.length = 0;
    await pullImage(ref, { insecure: true, blobDir });
    assert.deepEqual(blobGets().sort(), [small.digest, big.digest].sort());
    assert.deepEqual(await readFile(join(blobDir, 'sha256', big.digest.slice(7))), big.bytes);
  });

  it('rejects a layer with one byte changed, naming both digests, and keeps nothing of it', async () => {
    const big = layout.images.amd64.layers[1] as Blob;
    const tampered = Buffer.from(big.bytes);
    tampered[tampered.length >> 1] ^= 0xff;
    const proxy = await startProxy(plain.port, (path, body) =>
      path.endsWith(`/blobs/${big.digest}`) ? tampered : body,
    );
    servers.push(proxy.server);
    const blobDir = newBlobDir();
    await assert.rejects(
      pullImage(`127.0.0.1:${proxy.port}/app:oci`, { insecure: true, blobDir }),
      (e: unknown) =>
        isContainerError(e, 'EDIGEST') &&
        e.message ===
          `cannot pull 127.0.0.1:${proxy.port}/app:oci: digest mismatch for blob ` +
            `${big.digest}: expected ${big.digest}, got ${sha256(tampered)}`,
    );
    const left = await readdir(join(blobDir, 'sha256'));
    assert.ok(!left.some((f) => f.includes(big.digest.slice(7))), `nothing of the layer is left: ${left.join(', ')}`);
  });

  it('rejects a blob longer than its descriptor says', async () => {
    const small = layout.images.amd64.layers[0] as Blob;
    const proxy = await startProxy(plain.port, (path, body) =>
      path.endsWith(`/blobs/${small.digest}`) ? Buffer.concat([body, Buffer.from('x')]) : body,
    );
    servers.push(proxy.server);
    const blobDir = newBlobDir();
    await assert.rejects(
      pullImage(`127.0.0.1:${proxy.port}/app:oci`, { insecure: true, blobDir }),
      (e: unknown) =>
        isContainerError(e, 'ESIZE') &&
        e.message.includes(`size mismatch for blob ${small.digest}: the manifest says ${small.bytes.length} bytes`),
    );
    assert.ok(!(await readdir(join(blobDir, 'sha256'))).some((f) => f.includes(small.digest.slice(7))));
  });

  it('checks a manifest against the digest it was asked by, and against Docker-Content-Digest', async () => {
    const digest = layout.images.amd64.manifestDigest;
    const altered = (body: Buffer) => Buffer.concat([body, Buffer.from('\n')]);
    const byDigest = await startProxy(plain.port, (path, body, headers) => {
      if (!path.includes('/manifests/')) return body;
      delete headers['docker-content-digest'];
      return altered(body);
    });
    servers.push(byDigest.server);
    await assert.rejects(
      pullImage(`127.0.0.1:${byDigest.port}/app@${digest}`, { insecure: true, blobDir: newBlobDir() }),
      (e: unknown) =>
        isContainerError(e, 'EDIGEST') &&
        e.message.includes(
          `digest mismatch for manifest ${digest}: expected ${digest}, got ` +
            `${sha256(altered(layout.images.amd64.manifest))}`,
        ),
    );
    const byTag = await startProxy(plain.port, (path, body) => (path.includes('/manifests/') ? altered(body) : body));
    servers.push(byTag.server);
    await assert.rejects(
      pullImage(`127.0.0.1:${byTag.port}/app:oci`, { insecure: true, blobDir: newBlobDir() }),
      (e: unknown) =>
        isContainerError(e, 'EDIGEST') &&
        e.message.includes(
          `the registry announced ${digest} (Docker-Content-Digest), the bytes hash ` +
            `to ${sha256(altered(layout.images.amd64.manifest))}`,
        ),
    );
  });

  it('pulls from a token-auth registry with credentials, one token for the whole pull', async () => {
    tokenServer.requests.length = 0;
    const img = await pullImage(`127.0.0.1:${secured.port}/private/app`, {
      insecure: true,
      blobDir: newBlobDir(),
      auth: { username: USER, password: PASSWORD },
    });
    assert.equal(img.manifestDigest, layout.images.amd64.manifestDigest);
    assert.equal(tokenServer.requests.length, 1, 'the token is cached for the scope');
    const q = tokenServer.requests[0] as URL;
    assert.equal(q.searchParams.get('service'), TOKEN_SERVICE);
    assert.deepEqual(q.searchParams.getAll('scope'), ['repository:private/app:pull']);
  });

  it('says 401 when the registry refuses an anonymous token, and names a refused password', async () => {
    const ref = `127.0.0.1:${secured.port}/private/app:latest`;
    await assert.rejects(
      pullImage(ref, { insecure: true, blobDir: newBlobDir() }),
      (e: unknown) =>
        isContainerError(e, 'EAUTH') &&
        /^cannot pull 127\.0\.0\.1:\d+\/private\/app:latest: manifest latest: the registry answered 401 Unauthorized after authenticating without credentials: UNAUTHORIZED/.test(
          e.message,
        ),
    );
    await assert.rejects(
      pullImage(ref, { insecure: true, blobDir: newBlobDir(), auth: { username: USER, password: 'wrong' } }),
      (e: unknown) =>
        isContainerError(e, 'EAUTH') &&
        e.message.includes(`the token server ${tokenServer.url} refused the credentials of ${USER} (401`),
    );
  });

  it(
    'follows a blob redirect to another origin (a CDN on another port) ' +
      'without sending it the Authorization header',
    async () => {
      const cdn = await startCdn(layout.dir);
      servers.push(cdn.server);
      // In front of the token-auth registry: blob GETs are answered with 307 to the "CDN", another origin (port).
      const proxy = await startProxy(secured.port, undefined, (req, res) => {
        if (!req.url?.includes('/blobs/sha256:')) return false;
        res
          .writeHead(307, {
            location: `http://127.0.0.1:${cdn.port}/cdn/${req.url.split('/blobs/sha256:')[1]}?expires=1`,
          })
          .end();
        return true;
      });
      servers.push(proxy.server);
      const blobDir = newBlobDir();
      const img = await pullImage(`127.0.0.1:${proxy.port}/private/app:latest`, {
        insecure: true,
        blobDir,
        auth: { username: USER, password: PASSWORD },
      });
      assert.equal(img.layers.length, 2);
      for (const l of layout.images.amd64.layers)
        assert.deepEqual(await readFile(join(blobDir, 'sha256', l.digest.slice(7))), l.bytes);
      const blobRequests = proxy.log.filter((r) => r.path.includes('/blobs/'));
      assert.equal(blobRequests.length, 3);
      assert.ok(
        blobRequests.every((r) => r.authorization?.startsWith('Bearer ')),
        'the registry host gets the token',
      );
      assert.equal(cdn.log.length, 3);
      assert.deepEqual(
        cdn.log.filter((r) => r.authorization !== undefined),
        [],
        'the other origin never sees Authorization',
      );
    },
  );

  it('refuses plain HTTP to a registry off loopback before connecting', async () => {
    await assert.rejects(
      pullImage('registry.example.invalid:5000/app', { insecure: true, blobDir: newBlobDir() }),
      (e: unknown) =>
        isContainerError(e, 'EINSECURE') &&
        e.message ===
          'cannot pull registry.example.invalid:5000/app:latest: plain HTTP (insecure) is ' +
            'allowed only for registries on loopback (127.0.0.0/8, ::1, localhost) or listed in ' +
            'insecure-registries of /etc/docker/daemon.json, not for registry.example.invalid:5000',
    );
  });

  it("speaks plain HTTP, without --insecure, to a registry listed in docker's insecure-registries", async () => {
    const img = await pullImage(`127.0.0.1:${plain.port}/app:v2s2`, {
      insecureRegistries: [`127.0.0.1:${plain.port}`],
      blobDir: newBlobDir(),
    });
    assert.equal(img.manifestDigest, sha256(img.manifest));
    await assert.rejects(
      pullImage('registry.example.invalid:5000/app', {
        insecure: true,
        insecureRegistries: ['registry.example.invalid:5001'],
        blobDir: newBlobDir(),
      }),
      (e: unknown) => isContainerError(e, 'EINSECURE'),
    );
  });

  it('speaks HTTPS unless insecure is given', async () => {
    await assert.rejects(
      pullImage(`127.0.0.1:${plain.port}/app:oci`, { blobDir: newBlobDir() }),
      (e: unknown) =>
        isContainerError(e, 'ENETWORK') &&
        e.message.startsWith(
          `cannot pull 127.0.0.1:${plain.port}/app:oci: cannot reach https://127.0.0.1:${plain.port}`,
        ),
    );
  });

  it('stops when its signal is aborted', async () => {
    const ac = new AbortController();
    const p = pullImage(`127.0.0.1:${plain.port}/app:oci`, {
      insecure: true,
      blobDir: newBlobDir(),
      signal: ac.signal,
    });
    ac.abort();
    await assert.rejects(p, (e: unknown) => isContainerError(e, 'EABORTED'));
  });

  describe('against a fake registry (for what distribution v2.8 no longer serves)', () => {
    let fake: FakeRegistry;
    before(async () => {
      fake = await startFakeRegistry(layout);
      servers.push(fake.server);
    });

    it('refuses a schema 1 manifest clearly', async () => {
      await assert.rejects(
        pullImage(`127.0.0.1:${fake.port}/old:latest`, { insecure: true, blobDir: newBlobDir() }),
        (e: unknown) =>
          isContainerError(e, 'EUNSUPPORTED') &&
          /manifest latest is a Docker schema 1 manifest, which is not supported/.test(e.message),
      );
    });

    it('answers a Basic challenge with the credentials, and says so when there are none', async () => {
      const ref = `127.0.0.1:${fake.port}/basic/app:latest`;
      const img = await pullImage(ref, {
        insecure: true,
        blobDir: newBlobDir(),
        auth: { username: USER, password: PASSWORD },
      });
      assert.equal(img.manifestDigest, layout.images.amd64.manifestDigest);
      await assert.rejects(
        pullImage(ref, { insecure: true, blobDir: newBlobDir() }),
        (e: unknown) =>
          isContainerError(e, 'EAUTH') &&
          /asks for a user name and password \(Basic auth\) and none were given/.test(e.message),
      );
      await assert.rejects(
        pullImage(ref, { insecure: true, blobDir: newBlobDir(), auth: { username: USER, password: 'wrong' } }),
        (e: unknown) =>
          isContainerError(e, 'EAUTH') && /401 Unauthorized after authenticating as alice/.test(e.message),
      );
    });
  });
});

// --- An OCI layout written by hand: two single-platform images and an index of both -----------

interface Blob {
  digest: string;
  bytes: Buffer;
}
interface TestImage {
  manifest: Buffer;
  manifestDigest: string;
  config: Buffer;
  configDigest: string;
  layers: Blob[];
}
interface TestLayout {
  dir: string;
  images: { amd64: TestImage; arm64: TestImage };
  indexDigest: string;
}

const OCI_INDEX = 'application/vnd.oci.image.index.v1+json';
const OCI_MANIFEST = 'application/vnd.oci.image.manifest.v1+json';

async function writeLayout(dir: string): Promise<TestLayout> {
  await mkdir(join(dir, 'blobs', 'sha256'), { recursive: true });
  const put = async (bytes: Buffer): Promise<Blob> => {
    const digest = sha256(bytes);
    await writeFile(join(dir, 'blobs', 'sha256', digest.slice(7)), bytes);
    return { digest, bytes };
  };
  const image = async (arch: string, variant?: string): Promise<TestImage> => {
    const tars = [tar([['etc/arch', Buffer.from(`${arch}\n`)]]), tar([['data/random', randomBytes(512 * 1024)]])];
    const layers = await Promise.all(tars.map((t) => put(gzipSync(t))));
    const config = await put(
      Buffer.from(
        JSON.stringify({
          architecture: arch,
          ...(variant ? { variant } : {}),
          os: 'linux',
          config: { Cmd: ['/bin/sh'] },
          rootfs: { type: 'layers', diff_ids: tars.map(sha256) },
        }),
      ),
    );
    const manifest = await put(
      Buffer.from(
        JSON.stringify({
          schemaVersion: 2,
          mediaType: OCI_MANIFEST,
          config: {
            mediaType: 'application/vnd.oci.image.config.v1+json',
            digest: config.digest,
            size: config.bytes.length,
          },
          layers: layers.map((l) => ({
            mediaType: 'application/vnd.oci.image.layer.v1.tar+gzip',
            digest: l.digest,
            size: l.bytes.length,
          })),
        }),
      ),
    );
    return {
      manifest: manifest.bytes,
      manifestDigest: manifest.digest,
      config: config.bytes,
      configDigest: config.digest,
      layers,
    };
  };
  const amd64 = await image('amd64');
  const arm64 = await image('arm64', 'v8');
  const entry = (img: TestImage, platform: object, ref?: string) => ({
    mediaType: OCI_MANIFEST,
    digest: img.manifestDigest,
    size: img.manifest.length,
    platform,
    ...(ref ? { annotations: { 'org.opencontainers.image.ref.name': ref } } : {}),
  });
  const index = await put(
    Buffer.from(
      JSON.stringify({
        schemaVersion: 2,
        mediaType: OCI_INDEX,
        manifests: [
          entry(amd64, { os: 'linux', architecture: 'amd64' }),
          entry(arm64, { os: 'linux', architecture: 'arm64', variant: 'v8' }),
        ],
      }),
    ),
  );
  await writeFile(join(dir, 'oci-layout'), JSON.stringify({ imageLayoutVersion: '1.0.0' }));
  await writeFile(
    join(dir, 'index.json'),
    JSON.stringify({
      schemaVersion: 2,
      mediaType: OCI_INDEX,
      manifests: [
        entry(amd64, { os: 'linux', architecture: 'amd64' }, 'amd64'),
        entry(arm64, { os: 'linux', architecture: 'arm64', variant: 'v8' }, 'arm64'),
        {
          mediaType: OCI_INDEX,
          digest: index.digest,
          size: index.bytes.length,
          annotations: { 'org.opencontainers.image.ref.name': 'multi' },
        },
      ],
    }),
  );
  return { dir, images: { amd64, arm64 }, indexDigest: index.digest };
}

/** A ustar archive of regular files. */
function tar(files: [string, Buffer][]): Buffer {
  const parts: Buffer[] = [];
  for (const [name, content] of files) {
    const h = Buffer.alloc(512);
    h.write(name, 0, 100);
    h.write('0000644\0', 100);
    h.write('0000000\0', 108);
    h.write('0000000\0', 116);
    h.write(`${content.length.toString(8).padStart(11, '0')}\0`, 124);
    h.write('00000000000\0', 136);
    h.write('        ', 148);
    h.write('0', 156);
    h.write('ustar\0', 257);
    h.write('00', 263);
    const sum = h.reduce((a, b) => a + b, 0);
    h.write(`${sum.toString(8).padStart(6, '0')}\0 `, 148);
    parts.push(h, content, Buffer.alloc((512 - (content.length % 512)) % 512));
  }
  return Buffer.concat([...parts, Buffer.alloc(1024)]);
}

function sha256(bytes: Buffer): string {
  return `sha256:${createHash('sha256').update(bytes).digest('hex')}`;
}

async function skopeo(...args: string[]): Promise<void> {
  await run('skopeo', ['--insecure-policy', ...args.slice(0, 1), '--dest-tls-verify=false', ...args.slice(1)], {
    timeout: 30_000,
  });
}

/** PUTs a Docker manifest list of `tags` (already in `repo`) as `repo:latest`. */
async function putDockerManifestList(base: string, repo: string, tags: string[]): Promise<void> {
  const manifests = await Promise.all(
    tags.map(async (tag) => {
      const res = await fetch(`${base}/v2/${repo}/manifests/${tag}`, {
        headers: { accept: 'application/vnd.docker.distribution.manifest.v2+json' },
      });
      const body = Buffer.from(await res.arrayBuffer());
      const config = JSON.parse(body.toString()) as { config: { digest: string } };
      const cfg = JSON.parse(await (await fetch(`${base}/v2/${repo}/blobs/${config.config.digest}`)).text()) as {
        architecture: string;
        variant?: string;
      };
      return {
        mediaType: res.headers.get('content-type'),
        digest: sha256(body),
        size: body.length,
        platform: { os: 'linux', architecture: cfg.architecture, ...(cfg.variant ? { variant: cfg.variant } : {}) },
      };
    }),
  );
  const list = JSON.stringify({
    schemaVersion: 2,
    mediaType: 'application/vnd.docker.distribution.manifest.list.v2+json',
    manifests,
  });
  const res = await fetch(`${base}/v2/${repo}/manifests/latest`, {
    method: 'PUT',
    body: list,
    headers: { 'content-type': 'application/vnd.docker.distribution.manifest.list.v2+json' },
  });
  assert.equal(res.status, 201, await res.text());
}

function listen(server: http.Server, host = '127.0.0.1'): Promise<number> {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, host, () => resolve((server.address() as AddressInfo).port));
  });
}

// --- A token server for distribution's token auth (JWT, RS256, x5c of a self-signed cert) -------

const USER = 'alice';
const PASSWORD = 'secret';
const TOKEN_SERVICE = 'keel-test-registry';
const TOKEN_ISSUER = 'keel-test-issuer';

interface TokenServer {
  server: http.Server;
  url: string;
  certFile: string;
  requests: URL[];
}

async function startTokenServer(dir: string): Promise<TokenServer> {
  const keyFile = join(dir, 'token.key');
  const certFile = join(dir, 'token.crt');
  await run('openssl', [
    'req',
    '-x509',
    '-newkey',
    'rsa:2048',
    '-nodes',
    '-keyout',
    keyFile,
    '-out',
    certFile,
    '-days',
    '2',
    '-subj',
    '/CN=keel test token issuer',
  ]);
  const key = createPrivateKey(await readFile(keyFile));
  const certDer = new X509Certificate(await readFile(certFile)).raw.toString('base64');
  const requests: URL[] = [];
  const server = http.createServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://token');
    requests.push(url);
    const user = basicUser(req.headers.authorization);
    if (user === 'invalid') return sendJson(res, 401, { details: 'invalid user name or password' });
    // Anonymous users get a valid token that grants nothing, as Docker Hub's token server does.
    const access =
      user === null
        ? []
        : url.searchParams.getAll('scope').map((s) => {
            const [type, name, actions] = [
              s.slice(0, s.indexOf(':')),
              s.slice(s.indexOf(':') + 1, s.lastIndexOf(':')),
              s.slice(s.lastIndexOf(':') + 1),
            ];
            return { type, name, actions: actions.split(',') };
          });
    const now = Math.floor(Date.now() / 1000);
    const token = jwt(key, certDer, {
      iss: TOKEN_ISSUER,
      sub: user ?? '',
      aud: url.searchParams.get('service') ?? '',
      exp: now + 300,
      nbf: now - 10,
      iat: now,
      jti: randomBytes(8).toString('hex'),
      access,
    });
    sendJson(res, 200, { access_token: token, expires_in: 300 });
  });
  const port = await listen(server);
  return { server, url: `http://127.0.0.1:${port}`, certFile, requests };
}

function basicUser(header: string | undefined): string | null | 'invalid' {
  if (!header) return null;
  const [user, password] = Buffer.from(header.replace(/^Basic /, ''), 'base64')
    .toString()
    .split(':');
  return user === USER && password === PASSWORD ? USER : 'invalid';
}

function jwt(key: KeyObject, certDer: string, claims: object): string {
  const part = (o: object) => Buffer.from(JSON.stringify(o)).toString('base64url');
  const input = `${part({ typ: 'JWT', alg: 'RS256', x5c: [certDer] })}.${part(claims)}`;
  return `${input}.${sign('sha256', Buffer.from(input), key).toString('base64url')}`;
}

function sendJson(res: ServerResponse, status: number, body: object): void {
  res.writeHead(status, { 'content-type': 'application/json' }).end(JSON.stringify(body));
}

// --- Proxies and a CDN in front of the real registry --------------------------------------------

interface LoggedRequest {
  path: string;
  authorization?: string;
}
type Rewrite = (path: string, body: Buffer, headers: IncomingHttpHeaders) => Buffer;
interface TestProxy {
  server: http.Server;
  port: number;
  log: LoggedRequest[];
}

/** Forwards to the registry on `targetPort`; `rewrite` may change a GET's body, `intercept` answer it instead. */
async function startProxy(
  targetPort: number,
  rewrite?: Rewrite,
  intercept?: (req: IncomingMessage, res: ServerResponse) => boolean,
): Promise<TestProxy> {
  const log: LoggedRequest[] = [];
  const server = http.createServer((req, res) => {
    log.push({
      path: req.url ?? '',
      ...(req.headers.authorization ? { authorization: req.headers.authorization } : {}),
    });
    if (intercept?.(req, res)) return;
    const upstream = http.request(
      { host: '127.0.0.1', port: targetPort, method: req.method, path: req.url, headers: req.headers },
      async (up) => {
        const headers = { ...up.headers };
        if (!rewrite || req.method !== 'GET' || up.statusCode !== 200) {
          res.writeHead(up.statusCode ?? 502, headers);
          up.pipe(res);
          return;
        }
        const chunks: Buffer[] = [];
        for await (const c of up) chunks.push(c as Buffer);
        const body = rewrite(req.url ?? '', Buffer.concat(chunks), headers);
        headers['content-length'] = String(body.length);
        res.writeHead(200, headers).end(body);
      },
    );
    upstream.on('error', () => res.destroy());
    req.pipe(upstream);
  });
  return { server, port: await listen(server), log };
}

/** Serves blobs of the OCI layout at /cdn/<hex> on a port of its own, logging who asked with what headers. */
async function startCdn(layoutDir: string): Promise<{ server: http.Server; port: number; log: LoggedRequest[] }> {
  const log: LoggedRequest[] = [];
  const server = http.createServer(async (req, res) => {
    log.push({
      path: req.url ?? '',
      ...(req.headers.authorization ? { authorization: req.headers.authorization } : {}),
    });
    const hex = /^\/cdn\/([a-f0-9]{64})/.exec(req.url ?? '')?.[1];
    const bytes = hex ? await readFile(join(layoutDir, 'blobs', 'sha256', hex)).catch(() => null) : null;
    if (!bytes) return void res.writeHead(404).end();
    res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': bytes.length }).end(bytes);
  });
  return { server, port: await listen(server), log };
}

// --- A fake registry (not distribution): a schema 1 manifest, and Basic auth --------------------

interface FakeRegistry {
  server: http.Server;
  port: number;
}

async function startFakeRegistry(l: TestLayout): Promise<FakeRegistry> {
  const img = l.images.amd64;
  const blobs = new Map([
    [img.configDigest, img.config],
    ...img.layers.map((b) => [b.digest, b.bytes] as [string, Buffer]),
  ]);
  const schema1 = JSON.stringify({
    schemaVersion: 1,
    name: 'old',
    tag: 'latest',
    architecture: 'amd64',
    fsLayers: [],
    history: [],
  });
  const server = http.createServer((req, res) => {
    const path = req.url ?? '';
    if (path === '/v2/old/manifests/latest') {
      return void res
        .writeHead(200, { 'content-type': 'application/vnd.docker.distribution.manifest.v1+prettyjws' })
        .end(schema1);
    }
    if (!path.startsWith('/v2/basic/app/')) return void res.writeHead(404).end();
    if (basicUser(req.headers.authorization) !== USER) {
      return void res
        .writeHead(401, { 'www-authenticate': 'Basic realm="fake registry"', 'content-type': 'application/json' })
        .end(JSON.stringify({ errors: [{ code: 'UNAUTHORIZED', message: 'authentication required' }] }));
    }
    if (path === '/v2/basic/app/manifests/latest')
      return void res.writeHead(200, { 'content-type': OCI_MANIFEST }).end(img.manifest);
    const blob = blobs.get(path.split('/blobs/')[1] ?? '');
    if (!blob) return void res.writeHead(404).end();
    res.writeHead(200, { 'content-length': blob.length }).end(blob);
  });
  return { server, port: await listen(server) };
}
