// Scalars typed the way coreos-cloudinit's YAML library (go-yaml v1, YAML 1.1 rules) typed them,
// as a js-yaml schema: `yes`/`y`/`on` are booleans, `0744` is the octal int 484 (a string field
// still gets the text "0744"), `off` is false, `1_000` is 1000, `08` is the float 8.
import yaml from 'js-yaml';
import { goBase64, goFloat } from './go-compat.js';

/** A scalar that is not a string: its Go kind and value, and the text a Go string field would get. */
export class GoScalar {
  constructor(readonly kind: 'int' | 'float' | 'bool' | 'null' | 'binary', readonly value: number | boolean | null | Buffer, readonly text: string) {}
  get [Symbol.toStringTag](): string { return 'GoScalar'; }
  /** js-yaml stringifies mapping keys; Go named them with fmt's %s. */
  toString(): string { return goKeyName(this); }
}

/** A failure go-yaml reported without a line number (so coreos-cloudinit said "line 1"). */
export class GoYamlError extends Error {}

/** Go's fmt.Sprintf("%s", key) for a decoded mapping key. */
export function goKeyName(k: unknown): string {
  if (typeof k === 'string') return k;
  if (k === null || k === undefined) return '%!s(<nil>)';
  if (k instanceof GoScalar) {
    if (k.kind === 'binary') return k.text;
    if (k.kind === 'null') return '%!s(<nil>)';
    if (k.kind === 'float') return `%!s(float64=${goFloat(k.value as number)})`;
    return `%!s(${k.kind}=${String(k.value)})`;
  }
  return String(k);
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
  const v = (m[1] === '-' ? -1n : 1n) * (/^0[xX]/.test(digits) ? BigInt(digits) : digits.length > 1 && digits[0] === '0' ? BigInt(`0o${digits.slice(1)}`) : BigInt(digits));
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
    return new GoScalar(v === null ? 'null' : 'bool', v, text);
  }
  if (Object.hasOwn(SPECIAL_FLOATS, text)) return new GoScalar('float', SPECIAL_FLOATS[text], text);
  const c = text[0] ?? '';
  if (c === '.') {
    const f = parseGoFloat(text);
    return f === null ? null : new GoScalar('float', f, text);
  }
  if (!/[0-9+-]/.test(c)) return null;
  const plain = text.replace(/_/g, '');
  const i = parseGoInt(plain);
  if (i !== null) return new GoScalar('int', i, text);
  const f = parseGoFloat(plain);
  if (f !== null) return new GoScalar('float', f, text);
  const b = /^(-?)0b([01]+)$/.exec(plain);
  if (b && BigInt(`0b${b[2]}`) < INT64) return new GoScalar('int', (b[1] ? -1 : 1) * Number(BigInt(`0b${b[2]}`)), text);
  return null;
}

const TAG = 'tag:yaml.org,2002:';
const implicit = new yaml.Type(`${TAG}goscalar`, {
  kind: 'scalar',
  resolve: (data: string) => resolvePlain(data) !== null,
  construct: (data: string) => resolvePlain(data),
});

/** An explicit !!int, !!float, !!bool or !!null: Go resolved the text and refused a mismatch. */
function explicitType(kind: 'int' | 'float' | 'bool' | 'null'): yaml.Type {
  return new yaml.Type(`${TAG}${kind}`, {
    kind: 'scalar',
    construct: (data: string) => {
      const r = resolvePlain(data);
      if (r?.kind === kind) return r;
      if (kind === 'float' && r?.kind === 'int') return new GoScalar('float', r.value, data);
      throw new GoYamlError(`cannot decode !!${r?.kind ?? 'str'} \`${data}\` as a !!${kind}`);
    },
  });
}

const binary = new yaml.Type(`${TAG}binary`, {
  kind: 'scalar',
  construct: (data: string) => {
    const bytes = goBase64(data);
    if (!bytes) throw new GoYamlError('!!binary value contains invalid base64 data');
    const utf8 = bytes.toString('utf8');
    return new GoScalar('binary', bytes, Buffer.from(utf8, 'utf8').equals(bytes) ? utf8 : bytes.toString('latin1'));
  },
});

// `<<: *base` merges a mapping in, as go-yaml v1 did.
const merge = new yaml.Type(`${TAG}merge`, { kind: 'scalar', resolve: (data: string) => data === '<<' });

// Unknown tags (`!foo`, `!!set`, ...): go-yaml v1 kept the node as an untyped string, map or list.
const anyTag = (kind: 'scalar' | 'sequence' | 'mapping') => new yaml.Type('', { kind, multi: true, construct: (d: unknown) => d });

/** The schema: failsafe (str, seq, map), go-yaml v1's implicit scalars, merge keys and explicit tags. */
export const GO_YAML_SCHEMA = yaml.FAILSAFE_SCHEMA.extend({
  implicit: [implicit, merge],
  explicit: [explicitType('int'), explicitType('float'), explicitType('bool'), explicitType('null'), binary, anyTag('scalar'), anyTag('sequence'), anyTag('mapping')],
});
