// write_files content encodings, as coreos-cloudinit reads them.
import { gunzipSync } from 'node:zlib';
import { KeelError } from '../lib/errors.js';

/** The encodings coreos-cloudinit accepts, normalised. */
export const ENCODINGS: Record<string, 'b64' | 'gz' | 'gz+b64' | 'plain'> = {
  '': 'plain',
  b64: 'b64',
  base64: 'b64',
  gz: 'gz',
  gzip: 'gz',
  'gz+b64': 'gz+b64',
  'gz+base64': 'gz+b64',
  'gzip+b64': 'gz+b64',
  'gzip+base64': 'gz+b64',
};

/** Decodes content; throws KeelError EENCODING (unknown encoding) or EDECODE (malformed data), naming the encoding. */
export function decodeContent(content: string, encoding = ''): Buffer {
  const kind = ENCODINGS[encoding];
  if (!kind) throw new KeelError('EENCODING', `cannot decode content as ${encoding}: unsupported encoding`);
  const b64 = (s: string) => {
    const clean = s.replace(/\s+/g, '');
    if (!/^[A-Za-z0-9+/]*={0,2}$/.test(clean) || clean.length % 4 === 1) {
      throw new KeelError('EDECODE', `cannot decode content as ${encoding}: not valid base64`);
    }
    return Buffer.from(clean, 'base64');
  };
  const gz = (b: Buffer) => {
    try {
      return gunzipSync(b);
    } catch (e) {
      throw new KeelError('EDECODE', `cannot decode content as ${encoding}: ${(e as Error).message}`, { cause: e });
    }
  };
  switch (kind) {
    case 'plain':
      return Buffer.from(content);
    case 'b64':
      return b64(content);
    case 'gz':
      return gz(Buffer.from(content, 'latin1'));
    case 'gz+b64':
      return gz(b64(content));
  }
}

/** Parses "0644" / "644" / 420 into a mode; throws KeelError EPERMISSIONS naming the value when it is not octal. */
export function parsePermissions(p: string | number | undefined, fallback = 0o644): number {
  if (p === undefined || p === '') return fallback;
  if (typeof p === 'number') return p;
  if (!/^0?[0-7]{3,4}$/.test(p)) {
    throw new KeelError('EPERMISSIONS', `cannot parse permissions "${p}": want an octal mode such as "0644"`);
  }
  return parseInt(p, 8);
}
