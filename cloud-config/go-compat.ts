// The few Go standard-library behaviours coreos-cloudinit's validator leans on, reproduced so its
// report matches: base64.StdEncoding, path.Dir, url.ParseRequestURI and fmt's %v for floats.
import { gunzipSync } from 'node:zlib';
import { KeelError } from '../lib/errors.js';

const B64 = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/;

/** Go's base64.StdEncoding.DecodeString: padding required, only \r and \n ignored; null when invalid. */
export function goBase64(s: string | Buffer): Buffer | null {
  const text = (typeof s === 'string' ? s : s.toString('latin1')).replace(/[\r\n]/g, '');
  return B64.test(text) ? Buffer.from(text, 'base64') : null;
}

/** The write_files encodings coreos-cloudinit's DecodeContent knows. */
export const CONTENT_ENCODINGS = [
  'b64',
  'base64',
  'gz',
  'gzip',
  'gz+base64',
  'gzip+base64',
  'gz+b64',
  'gzip+b64',
] as const;

/**
 * DecodeContent as coreos-cloudinit has it, with one deliberate difference: a gzip stream must be
 * whole (Go only checked the gzip header and silently wrote what it could inflate). Returns the
 * bytes, or a KeelError (EDECODE, EENCODING) saying why not.
 */
export function decodeGoContent(content: Buffer, encoding: string): Buffer | KeelError {
  const fail = (code: string, why: string) => new KeelError(code, `cannot decode content as ${encoding}: ${why}`);
  const gunzip = (b: Buffer) => {
    try {
      return gunzipSync(b);
    } catch (e) {
      return fail('EDECODE', `not gzip data (${(e as Error).message})`);
    }
  };
  switch (encoding) {
    case '':
      return content;
    case 'b64':
    case 'base64':
      return goBase64(content) ?? fail('EDECODE', 'not base64 data');
    case 'gz':
    case 'gzip':
      return gunzip(content);
    case 'gz+base64':
    case 'gzip+base64':
    case 'gz+b64':
    case 'gzip+b64': {
      const raw = goBase64(content);
      return raw ? gunzip(raw) : fail('EDECODE', 'not base64 data');
    }
    default:
      return fail('EENCODING', 'unsupported encoding');
  }
}

/** Go's path.Clean. */
export function goClean(p: string): string {
  if (p === '') return '.';
  const rooted = p.startsWith('/');
  const out: string[] = [];
  for (const part of p.split('/')) {
    if (part === '' || part === '.') continue;
    if (part === '..') {
      if (out.length && out[out.length - 1] !== '..') out.pop();
      else if (!rooted) out.push('..');
    } else out.push(part);
  }
  const s = (rooted ? '/' : '') + out.join('/');
  return s === '' ? '.' : s;
}

/** Go's path.Dir: everything up to the last slash, cleaned. */
export function goDir(p: string): string {
  return goClean(p.slice(0, p.lastIndexOf('/') + 1));
}

const HEX = /^[0-9a-fA-F]{2}$/;
const BAD_HOST_CHAR = /[ #{}|\\^`]/;

/** Go's unescape() validity check: every % starts a two-digit hex escape (host: only for bytes >= 0x80 or %25). */
function escapesOk(s: string, host: boolean): boolean {
  for (let i = 0; i < s.length; i++) {
    if (s[i] === '%') {
      const h = s.slice(i + 1, i + 3);
      if (!HEX.test(h)) return false;
      if (host && parseInt(h[0], 16) < 8 && h !== '25') return false;
      i += 2;
    } else if (host && s.charCodeAt(i) < 0x80 && BAD_HOST_CHAR.test(s[i])) return false;
  }
  return true;
}

function hostOk(host: string): boolean {
  let port = '';
  if (host.startsWith('[')) {
    const i = host.lastIndexOf(']');
    if (i < 0) return false;
    port = host.slice(i + 1);
  } else if (host.includes(':')) port = host.slice(host.lastIndexOf(':'));
  if (port !== '' && !/^:[0-9]*$/.test(port)) return false;
  return escapesOk(host, true);
}

/** Whether Go's url.ParseRequestURI accepts `raw` (an absolute URI or an absolute path). */
export function goParseRequestURI(raw: string): boolean {
  if (/[\x00-\x1f\x7f]/.test(raw) || raw === '') return false;
  if (raw === '*') return true;
  const m = /^([A-Za-z][A-Za-z0-9+.-]*):/.exec(raw);
  if (!m && raw.startsWith(':')) return false; // "missing protocol scheme"
  const scheme = m ? m[1] : '';
  let rest = m ? raw.slice(m[0].length) : raw;
  const q = rest.indexOf('?');
  if (q >= 0) rest = rest.slice(0, q);
  if (!rest.startsWith('/')) return scheme !== ''; // opaque URIs are fine, relative paths are not
  if (scheme !== '' && rest.startsWith('//')) {
    let authority = rest.slice(2);
    const slash = authority.indexOf('/');
    rest = slash >= 0 ? authority.slice(slash) : '';
    if (slash >= 0) authority = authority.slice(0, slash);
    const at = authority.lastIndexOf('@');
    if (!hostOk(authority.slice(at + 1))) return false;
    if (at >= 0) {
      const user = authority.slice(0, at);
      if (!/^[A-Za-z0-9\-._:~!$&'()*+,;=%@]*$/.test(user) || !escapesOk(user, false)) return false;
    }
  }
  return escapesOk(rest, false);
}

/** fmt's %v of a float64: shortest digits, exponent form below 1e-4 and from 1e21. */
export function goFloat(x: number): string {
  if (Number.isNaN(x)) return 'NaN';
  if (!Number.isFinite(x)) return x > 0 ? '+Inf' : '-Inf';
  if (x === 0) return Object.is(x, -0) ? '-0' : '0';
  const [mant, exp] = x.toExponential().split('e');
  const e = Number(exp);
  if (e < -4 || e >= 21) return `${mant}e${e < 0 ? '-' : '+'}${String(Math.abs(e)).padStart(2, '0')}`;
  return String(x); // JS switches to exponents only below 1e-6 and from 1e21: same digits here
}
