// Update payloads: the USR image of a build plus a manifest (version, size, sha256, per-chunk
// sha256) signed with ed25519. An update server is any static HTTP directory holding them.
import { createHash, createPrivateKey, generateKeyPairSync, sign } from 'node:crypto';
import { chmodSync, closeSync, mkdirSync, openSync, readFileSync, readSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { BuildError } from './errors.js';
import { CHUNK_SIZE, compareVersions, manifestFor, verifyManifest, type UpdateManifest } from '../slots/manifest.js';

export { CHUNK_SIZE, compareVersions, manifestFor, verifyManifest, type UpdateManifest };

/** Makes an ed25519 key pair in `dir`: keel-update.key (private, 0600) and keel-update.pub. */
export function generateKeys(dir: string): { privateKey: string; publicKey: string } {
  mkdirSync(dir, { recursive: true });
  const { privateKey, publicKey } = generateKeyPairSync('ed25519');
  const priv = join(dir, 'keel-update.key');
  const pub = join(dir, 'keel-update.pub');
  writeFileSync(priv, privateKey.export({ type: 'pkcs8', format: 'pem' }), { mode: 0o600 });
  chmodSync(priv, 0o600);
  writeFileSync(pub, publicKey.export({ type: 'spki', format: 'pem' }));
  return { privateKey: priv, publicKey: pub };
}

/** Signs the manifest's exact bytes; returns the bytes and the base64 signature. */
export function signManifest(m: UpdateManifest, privateKeyPem: string): { bytes: Buffer; signature: string } {
  const bytes = Buffer.from(JSON.stringify(m, null, 2) + '\n');
  return { bytes, signature: sign(null, bytes, createPrivateKey(privateKeyPem)).toString('base64') };
}

/** Reads `size` bytes at `offset` of a file. */
function readRange(file: string, offset: number, size: number): Buffer {
  const fd = openSync(file, 'r');
  try {
    const b = Buffer.alloc(size);
    readSync(fd, b, 0, size, offset);
    return b;
  } finally {
    closeSync(fd);
  }
}

/** Turns a built image into an update in `outDir`: usr-VERSION.img, manifest.json and its .sig. */
export function makePayload(opts: {
  image: string;
  key: string;
  outDir: string;
  version?: string;
  usrOffset: number;
}): { manifest: string; image: string; version: string } {
  const built = JSON.parse(readFileSync(opts.image.replace(/keel\.img$/, 'keel.manifest.json'), 'utf8'));
  const version: string = opts.version ?? built.version;
  const data = readRange(opts.image, opts.usrOffset, built.usr.bytes);
  const sum = createHash('sha256').update(data).digest('hex');
  if (sum !== built.usr.sha256)
    throw new BuildError(
      'ECHECKSUM',
      `cannot make a payload: USR-A of ${opts.image} does not match its build manifest (sha256 ${sum})`,
    );
  mkdirSync(opts.outDir, { recursive: true });
  const imageName = `usr-${version}.img`;
  writeFileSync(join(opts.outDir, imageName), data);
  const v = built.usr.verity;
  if (!v?.rootHash)
    throw new BuildError(
      'EMANIFEST',
      `cannot make a payload: the build manifest of ${opts.image} has no verity root hash (rebuild the image)`,
    );
  const verity = { rootHash: v.rootHash, hashOffset: v.hashOffset, salt: v.salt };
  const { bytes, signature } = signManifest(
    manifestFor(data, version, imageName, CHUNK_SIZE, verity),
    readFileSync(opts.key, 'utf8'),
  );
  writeFileSync(join(opts.outDir, 'manifest.json'), bytes);
  writeFileSync(join(opts.outDir, 'manifest.json.sig'), signature + '\n');
  return { manifest: join(opts.outDir, 'manifest.json'), image: join(opts.outDir, imageName), version };
}
