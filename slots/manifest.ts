// The signed manifest of an update payload: what the builder writes and the update agent accepts.
import { createHash, createPublicKey, verify } from 'node:crypto';
import { KeelError } from '../lib/errors.js';

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

/** Compares dotted versions numerically ("0.10.0" > "0.9.1"); a pre-release sorts before its release. */
export function compareVersions(a: string, b: string): number {
  const split = (v: string) => {
    const [core, pre] = v.split('-', 2);
    return { nums: core.split('.').map(Number), pre: pre ?? null };
  };
  const x = split(a),
    y = split(b);
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
export function manifestFor(
  data: Buffer,
  version: string,
  image: string,
  chunkSize = CHUNK_SIZE,
  verity?: UpdateManifest['verity'],
): UpdateManifest {
  const chunks: string[] = [];
  for (let off = 0; off < data.length; off += chunkSize)
    chunks.push(
      createHash('sha256')
        .update(data.subarray(off, off + chunkSize))
        .digest('hex'),
    );
  return {
    format: 1,
    version,
    size: data.length,
    sha256: createHash('sha256').update(data).digest('hex'),
    chunkSize,
    chunks,
    image,
    ...(verity ? { verity } : {}),
  };
}

/** Checks a manifest's signature and shape; throws a clear reason, never returns an unverified manifest. */
export function verifyManifest(bytes: Buffer, signatureB64: string, publicKeyPem: string): UpdateManifest {
  let ok = false;
  try {
    ok = verify(null, bytes, createPublicKey(publicKeyPem), Buffer.from(signatureB64.trim(), 'base64'));
  } catch {
    ok = false;
  }
  if (!ok)
    throw new KeelError(
      'ESIGNATURE',
      "cannot accept the update: the manifest signature does not verify with the image's public key",
    );
  let m: UpdateManifest;
  try {
    m = JSON.parse(bytes.toString('utf8'));
  } catch {
    throw new KeelError('EMANIFEST', 'cannot accept the update: the manifest is not JSON');
  }
  if (
    m.format !== 1 ||
    typeof m.version !== 'string' ||
    !Number.isSafeInteger(m.size) ||
    !/^[0-9a-f]{64}$/.test(m.sha256) ||
    !Number.isSafeInteger(m.chunkSize) ||
    m.chunkSize <= 0 ||
    !Array.isArray(m.chunks) ||
    m.chunks.length !== Math.ceil(m.size / m.chunkSize) ||
    !m.chunks.every((c) => typeof c === 'string' && /^[0-9a-f]{64}$/.test(c)) ||
    typeof m.image !== 'string' ||
    !/^[A-Za-z0-9._-]+$/.test(m.image) ||
    typeof m.verity !== 'object' ||
    m.verity === null ||
    !/^[0-9a-f]{64}$/.test(m.verity.rootHash) ||
    !Number.isSafeInteger(m.verity.hashOffset) ||
    m.verity.hashOffset <= 0 ||
    m.verity.hashOffset >= m.size ||
    m.verity.hashOffset % 4096 !== 0 ||
    !/^[0-9a-f]*$/.test(m.verity.salt)
  ) {
    throw new KeelError('EMANIFEST', 'cannot accept the update: the manifest is malformed');
  }
  return m;
}
