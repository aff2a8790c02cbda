import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  CHUNK_SIZE,
  compareVersions,
  generateKeys,
  manifestFor,
  signManifest,
  verifyManifest,
} from '../../builder/payload.js';

const VERITY = { rootHash: 'ab'.repeat(32), hashOffset: 4096, salt: '00'.repeat(32) };

describe('builder/payload (signed update manifests)', () => {
  let dir: string;
  before(() => {
    dir = mkdtempSync(join(tmpdir(), 'keel-payload-'));
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  it('makes an ed25519 key pair with a private key only its owner reads', () => {
    const k = generateKeys(join(dir, 'keys'));
    assert.equal(statSync(k.privateKey).mode & 0o777, 0o600);
    assert.match(readFileSync(k.publicKey, 'utf8'), /BEGIN PUBLIC KEY/);
  });

  it('signs a manifest that verifies, with a hash per chunk', () => {
    const k = generateKeys(join(dir, 'k2'));
    const data = Buffer.alloc(2.5 * 1024 * 1024, 7);
    const m = manifestFor(data, '1.2.3', 'usr-1.2.3.img', CHUNK_SIZE, VERITY);
    assert.equal(m.chunks.length, 3);
    const { bytes, signature } = signManifest(m, readFileSync(k.privateKey, 'utf8'));
    assert.deepEqual(verifyManifest(bytes, signature, readFileSync(k.publicKey, 'utf8')), m);
  });

  it('rejects a tampered manifest, a missing signature and another key', () => {
    const k = generateKeys(join(dir, 'k3'));
    const other = generateKeys(join(dir, 'k4'));
    const { bytes, signature } = signManifest(
      manifestFor(Buffer.alloc(8192), '1.0.0', 'usr.img', CHUNK_SIZE, VERITY),
      readFileSync(k.privateKey, 'utf8'),
    );
    const pub = readFileSync(k.publicKey, 'utf8');
    assert.equal(verifyManifest(bytes, signature, pub).version, '1.0.0');
    const tampered = Buffer.from(bytes.toString().replace('1.0.0', '9.0.0'));
    assert.throws(() => verifyManifest(tampered, signature, pub), /signature does not verify/);
    assert.throws(() => verifyManifest(bytes, '', pub), /signature does not verify/);
    assert.throws(
      () => verifyManifest(bytes, signature, readFileSync(other.publicKey, 'utf8')),
      /signature does not verify/,
    );
  });

  it('rejects a signed manifest without a verity root hash, or with an image name that is a path', () => {
    const k = generateKeys(join(dir, 'k5'));
    const priv = readFileSync(k.privateKey, 'utf8');
    const pub = readFileSync(k.publicKey, 'utf8');
    const noVerity = signManifest(manifestFor(Buffer.alloc(8192), '1.0.0', 'usr.img'), priv);
    assert.throws(() => verifyManifest(noVerity.bytes, noVerity.signature, pub), /manifest is malformed/);
    const path = signManifest(manifestFor(Buffer.alloc(8192), '1.0.0', '../../etc/shadow', CHUNK_SIZE, VERITY), priv);
    assert.throws(() => verifyManifest(path.bytes, path.signature, pub), /manifest is malformed/);
    const outside = signManifest(
      manifestFor(Buffer.alloc(8192), '1.0.0', 'usr.img', CHUNK_SIZE, { ...VERITY, hashOffset: 8192 }),
      priv,
    );
    assert.throws(() => verifyManifest(outside.bytes, outside.signature, pub), /manifest is malformed/);
  });

  it('orders versions numerically, pre-releases first', () => {
    assert.equal(compareVersions('0.10.0', '0.9.1'), 1);
    assert.equal(compareVersions('1.0.0', '1.0.0'), 0);
    assert.equal(compareVersions('1.0.0-rc1', '1.0.0'), -1);
    assert.equal(compareVersions('0.1.0', '0.2.0'), -1);
  });
});

describe('builder/serve (update directory over HTTP with Range)', () => {
  it('serves whole files, byte ranges for resumed downloads, and nothing outside the directory', async () => {
    const { serveDirectory, parseRange } = await import('../../builder/serve.js');
    const { writeFileSync } = await import('node:fs');
    const d = mkdtempSync(join(tmpdir(), 'keel-serve-'));
    writeFileSync(join(d, 'usr.img'), Buffer.from('0123456789'));
    const server = await serveDirectory(d, 0);
    const port = (server.address() as { port: number }).port;
    try {
      const whole = await fetch(`http://127.0.0.1:${port}/usr.img`);
      assert.equal(await whole.text(), '0123456789');
      const part = await fetch(`http://127.0.0.1:${port}/usr.img`, { headers: { range: 'bytes=4-' } });
      assert.equal(part.status, 206);
      assert.equal(part.headers.get('content-range'), 'bytes 4-9/10');
      assert.equal(await part.text(), '456789');
      assert.equal((await fetch(`http://127.0.0.1:${port}/usr.img`, { headers: { range: 'bytes=20-' } })).status, 416);
      // A raw request (fetch would normalise the dots away before sending).
      const { request } = await import('node:http');
      const status = await new Promise<number>((resolve) =>
        request({ host: '127.0.0.1', port, path: '/../../etc/passwd' }, (r) => {
          r.resume();
          resolve(r.statusCode ?? 0);
        }).end(),
      );
      assert.equal(status, 403);
      assert.equal((await fetch(`http://127.0.0.1:${port}/missing`)).status, 404);
      assert.deepEqual(parseRange('bytes=-3', 10), { start: 7, end: 9 });
    } finally {
      server.close();
      rmSync(d, { recursive: true, force: true });
    }
  });
});
