// Update payloads: the USR image of a build plus a manifest (version, size, sha256, per-chunk
// sha256) signed with ed25519. An update server is any static HTTP directory holding them.
import { createHash, createPrivateKey, createPublicKey, generateKeyPairSync, sign, verify } from 'node:crypto';
import { chmodSync, closeSync, mkdirSync, openSync, readFileSync, readSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { BuildError } from './errors.js';

/** The manifest of one update, as signed. */
export interface UpdateManifest {
  format: 1;
  version: string;
  size: number;
  sha256: string;
  chunkSize: number;
  chunks: string[];
  image: string;
  /** The dm-verity tree inside the image: GRUB passes rootHash to the kernel for this slot.
   *  Always present in a manifest verifyManifest accepts. */
  verity?: { rootHash: string; hashOffset: number; salt: string };
}

/** Default chunk size: the unit of resumed downloads and of per-chunk verification. */
export const CHUNK_SIZE = 1 << 20;

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

/** Compares dotted versions numerically ("0.10.0" > "0.9.1"); a pre-release sorts before its release. */
export function compareVersions(a: string, b: string): number {
  const split = (v: string) => { const [core, pre] = v.split('-', 2); return { nums: core.split('.').map(Number), pre: pre ?? null }; };
  const x = split(a), y = split(b);
  for (let i = 0; i < Math.max(x.nums.length, y.nums.length); i++) {
    const d = (x.nums[i] ?? 0) - (y.nums[i] ?? 0);
    if (d) return Math.sign(d);
  }
  if (x.pre === y.pre) return 0;
  if (x.pre === null) return 1;
  if (y.pre === null) return -1;
  return x.pre < y.pre ? -1 : 1;
}

/** The manifest of `data` (hashes of the whole and of each chunk). */
export function manifestFor(data: Buffer, version: string, image: string, chunkSize = CHUNK_SIZE, verity?: UpdateManifest['verity']): UpdateManifest {
  const chunks: string[] = [];
  for (let off = 0; off < data.length; off += chunkSize) chunks.push(createHash('sha256').update(data.subarray(off, off + chunkSize)).digest('hex'));
  return { format: 1, version, size: data.length, sha256: createHash('sha256').update(data).digest('hex'), chunkSize, chunks, image, ...(verity ? { verity } : {}) };
}

/** Signs the manifest's exact bytes; returns the bytes and the base64 signature. */
export function signManifest(m: UpdateManifest, privateKeyPem: string): { bytes: Buffer; signature: string } {
  const bytes = Buffer.from(JSON.stringify(m, null, 2) + '\n');
  return { bytes, signature: sign(null, bytes, createPrivateKey(privateKeyPem)).toString('base64') };
}

/** Checks a manifest's signature and shape; throws a clear reason, never returns an unverified manifest. */
export function verifyManifest(bytes: Buffer, signatureB64: string, publicKeyPem: string): UpdateManifest {
  let ok = false;
  try { ok = verify(null, bytes, createPublicKey(publicKeyPem), Buffer.from(signatureB64.trim(), 'base64')); } catch { ok = false; }
  if (!ok) throw new BuildError('ESIGNATURE', 'cannot accept the update: the manifest signature does not verify with the image\'s public key');
  let m: UpdateManifest;
  try { m = JSON.parse(bytes.toString('utf8')); } catch { throw new BuildError('EMANIFEST', 'cannot accept the update: the manifest is not JSON'); }
  if (m.format !== 1 || typeof m.version !== 'string' || !Number.isSafeInteger(m.size) || !/^[0-9a-f]{64}$/.test(m.sha256) ||
    !Number.isSafeInteger(m.chunkSize) || m.chunkSize <= 0 || !Array.isArray(m.chunks) || m.chunks.length !== Math.ceil(m.size / m.chunkSize) ||
    !m.chunks.every((c) => typeof c === 'string' && /^[0-9a-f]{64}$/.test(c)) || typeof m.image !== 'string' || !/^[A-Za-z0-9._-]+$/.test(m.image) ||
    typeof m.verity !== 'object' || m.verity === null || !/^[0-9a-f]{64}$/.test(m.verity.rootHash) || !Number.isSafeInteger(m.verity.hashOffset) ||
    m.verity.hashOffset <= 0 || m.verity.hashOffset >= m.size || m.verity.hashOffset % 4096 !== 0 || !/^[0-9a-f]*$/.test(m.verity.salt)) {
    throw new BuildError('EMANIFEST', 'cannot accept the update: the manifest is malformed');
  }
  return m;
}

/** Reads `size` bytes at `offset` of a file. */
function readRange(file: string, offset: number, size: number): Buffer {
  const fd = openSync(file, 'r');
  try { const b = Buffer.alloc(size); readSync(fd, b, 0, size, offset); return b; } finally { closeSync(fd); }
}

/** Turns a built image into an update in `outDir`: usr-VERSION.img, manifest.json and its .sig. */
export function makePayload(opts: { image: string; key: string; outDir: string; version?: string; usrOffset: number }): { manifest: string; image: string; version: string } {
  const built = JSON.parse(readFileSync(opts.image.replace(/keel\.img$/, 'keel.manifest.json'), 'utf8'));
  const version: string = opts.version ?? built.version;
  const data = readRange(opts.image, opts.usrOffset, built.usr.bytes);
  const sum = createHash('sha256').update(data).digest('hex');
  if (sum !== built.usr.sha256) throw new BuildError('ECHECKSUM', `cannot make a payload: USR-A of ${opts.image} does not match its build manifest (sha256 ${sum})`);
  mkdirSync(opts.outDir, { recursive: true });
  const imageName = `usr-${version}.img`;
  writeFileSync(join(opts.outDir, imageName), data);
  const v = built.usr.verity;
  if (!v?.rootHash) throw new BuildError('EMANIFEST', `cannot make a payload: the build manifest of ${opts.image} has no verity root hash (rebuild the image)`);
  const verity = { rootHash: v.rootHash, hashOffset: v.hashOffset, salt: v.salt };
  const { bytes, signature } = signManifest(manifestFor(data, version, imageName, CHUNK_SIZE, verity), readFileSync(opts.key, 'utf8'));
  writeFileSync(join(opts.outDir, 'manifest.json'), bytes);
  writeFileSync(join(opts.outDir, 'manifest.json.sig'), signature + '\n');
  return { manifest: join(opts.outDir, 'manifest.json'), image: join(opts.outDir, imageName), version };
}
