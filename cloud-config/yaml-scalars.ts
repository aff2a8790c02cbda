// Scalars typed the way coreos-cloudinit's YAML library (go-yaml v1, YAML 1.1 rules) typed them:
// `yes`/`y`/`on` are booleans, `0744` is the octal int 484 (a string field still gets the text
// "0744"), `off` is false, `1_000` is 1000, `08` and `1e3` are floats, `10:30` and `2001-12-14`
// stay strings. The `yaml` package's own 1.1 schema differs on those last four (and on big ints),
// so plain scalars are parsed as strings and typed here.
import { goBase64 } from './go-compat.js';

/** A scalar that is not a string: its Go kind and value. */
export interface GoScalar {
  kind: 'int' | 'float' | 'bool' | 'null';
  value: number | boolean | null;
}

const BOOL_NULL: Record<string, boolean | null> = {};
for (const s of ['y', 'Y', 'yes', 'Yes', 'YES', 'true', 'True', 'TRUE', 'on', 'On', 'ON']) BOOL_NULL[s] = true;
for (const s of ['n', 'N', 'no', 'No', 'NO', 'false', 'False', 'FALSE', 'off', 'Off', 'OFF']) BOOL_NULL[s] = false;
for (const s of ['~', 'null', 'Null', 'NULL']) BOOL_NULL[s] = null;
const SPECIAL_FLOATS: Record<string, number> = {};
for (const s of ['.nan', '.NaN', '.NAN']) SPECIAL_FLOATS[s] = NaN;
for (const s of ['.inf', '.Inf', '.INF', '+.inf', '+.Inf', '+.INF']) SPECIAL_FLOATS[s] = Infinity;
for (const s of ['-.inf', '-.Inf', '-.INF']) SPECIAL_FLOATS[s] = -Infinity;

const INT64 = 2n ** 63n;

/** strconv.ParseInt(s, 0, 64) as Go had it then: 0x hex, leading-0 octal, decimal. */
function parseGoInt(s: string): number | null {
  const m = /^([+-]?)(0[xX][0-9a-fA-F]+|0[0-7]*|[1-9][0-9]*)$/.exec(s);
  if (!m) return null;
  const digits = m[2];
  const magnitude = /^0[xX]/.test(digits)
    ? BigInt(digits)
    : digits.length > 1 && digits[0] === '0'
      ? BigInt(`0o${digits.slice(1)}`)
      : BigInt(digits);
  const v = (m[1] === '-' ? -1n : 1n) * magnitude;
  return v >= -INT64 && v < INT64 ? Number(v) : null;
}

/** strconv.ParseFloat(s, 64): decimal syntax or signed infinities; out of range is an error. */
function parseGoFloat(s: string): number | null {
  if (/^[+-]?(inf|infinity)$/i.test(s)) return s.startsWith('-') ? -Infinity : Infinity;
  if (!/^[+-]?([0-9]+\.?[0-9]*|\.[0-9]+)([eE][+-]?[0-9]+)?$/.test(s)) return null;
  const v = Number(s);
  return Number.isFinite(v) ? v : null;
}

/** go-yaml v1's resolve() for a plain scalar: null when it stays a string. */
export function resolvePlain(text: string): GoScalar | null {
  if (Object.hasOwn(BOOL_NULL, text)) {
    const v = BOOL_NULL[text];
    return { kind: v === null ? 'null' : 'bool', value: v };
  }
  if (Object.hasOwn(SPECIAL_FLOATS, text)) return { kind: 'float', value: SPECIAL_FLOATS[text] };
  const c = text[0] ?? '';
  if (c === '.') {
    const f = parseGoFloat(text);
    return f === null ? null : { kind: 'float', value: f };
  }
  if (!/[0-9+-]/.test(c)) return null;
  const plain = text.replace(/_/g, '');
  const i = parseGoInt(plain);
  if (i !== null) return { kind: 'int', value: i };
  const f = parseGoFloat(plain);
  if (f !== null) return { kind: 'float', value: f };
  const b = /^(-?)0b([01]+)$/.exec(plain);
  if (b && BigInt(`0b${b[2]}`) < INT64) return { kind: 'int', value: (b[1] ? -1 : 1) * Number(BigInt(`0b${b[2]}`)) };
  return null;
}

/**
 * An explicit !!int, !!float, !!bool or !!null: Go resolved the text and refused a mismatch (a
 * !!float takes an int). Returns the scalar, or the reason go-yaml gave.
 */
export function resolveTagged(text: string, kind: GoScalar['kind']): GoScalar | string {
  const r = resolvePlain(text);
  if (r?.kind === kind) return r;
  if (kind === 'float' && r?.kind === 'int') return { kind: 'float', value: r.value };
  return `cannot decode !!${r?.kind ?? 'str'} \`${text}\` as a !!${kind}`;
}

/** A !!binary scalar: its bytes, and the text a Go string got (UTF-8, else Latin-1); or go-yaml's reason. */
export function resolveBinary(text: string): { bytes: Buffer; text: string } | string {
  const bytes = goBase64(text);
  if (!bytes) return '!!binary value contains invalid base64 data';
  const utf8 = bytes.toString('utf8');
  return { bytes, text: Buffer.from(utf8, 'utf8').equals(bytes) ? utf8 : bytes.toString('latin1') };
}
