// The document as coreos-cloudinit's validator saw it: a tree of named nodes with Go kinds, key
// names normalised ('-' read as '_'), and each scalar under a string field turned into the text
// Go's decoder put there (so `0744` is "0744", `off` is "off"). Also the typed config built from it.
import { keyName, type YNode } from './yaml.js';
import type { CloudConfig, SchemaNode } from './schema.js';

/** The reflect kinds the rules reason in; `invalid` is a null or empty value. */
export type GoKind = 'string' | 'int' | 'float64' | 'bool' | 'map' | 'slice' | 'invalid';

/** One node: its name (a key, or `parent[i]` for list items), where it is, what it holds. */
export interface CNode {
  name: string;
  line: number;
  column: number;
  kind: GoKind;
  /** Scalars: the value (after the string-field coercion); null otherwise. */
  value: string | number | boolean | null;
  /** The bytes of a !!binary scalar. */
  bytes?: Buffer;
  children: CNode[];
}

const KIND: Record<YNode['kind'], GoKind> = {
  str: 'string',
  binary: 'string',
  int: 'int',
  float: 'float64',
  bool: 'bool',
  null: 'invalid',
  map: 'map',
  seq: 'slice',
};

/**
 * Builds the node tree. `schema` is where the node sits in the schema (undefined outside it):
 * under a string field, Go's typed decoding left the scalar's text, which the validator then used.
 */
export function toNode(
  y: YNode,
  name: string,
  schema: SchemaNode | undefined,
  at: { line: number; column: number } = y,
): CNode {
  const n: CNode = { name, line: at.line, column: at.column, kind: KIND[y.kind], value: null, children: [] };
  if (y.kind === 'map') {
    n.children = y.entries.map(({ key, value }) => {
      const child = keyName(key).replace(/-/g, '_');
      // Go placed a value at its key
      return toNode(value, child, schema?.type === 'object' ? schema.properties?.[child] : undefined, key);
    });
  } else if (y.kind === 'seq') {
    n.children = y.items.map((item, i) =>
      toNode(item, `${name}[${i}]`, schema?.type === 'array' ? schema.items : undefined),
    );
  } else if (y.kind === 'binary') {
    n.value = y.text;
    n.bytes = y.value as Buffer;
  } else if (y.kind !== 'null') {
    n.value = y.value as string | number | boolean;
    if (schema?.type === 'string') {
      n.kind = 'string';
      n.value = y.text;
    } else if (schema?.type === 'number' && n.kind === 'int') n.kind = 'float64';
  }
  return n;
}

/** Go's node.Child: the first child of that name. */
export const child = (n: CNode | undefined, name: string): CNode | undefined =>
  n?.children.find((c) => c.name === name);

/** The node's bytes as Go held the string (binary scalars keep theirs). */
export const nodeBytes = (n: CNode): Buffer => n.bytes ?? Buffer.from(goString(n));

/** reflect.Value.String(): the string itself, or "<kind Value>" for anything else. */
export function goString(n: CNode | undefined): string {
  if (!n || n.kind === 'invalid') return '<invalid Value>';
  if (n.kind === 'string') return String(n.value);
  return (
    '<' +
    `${
      {
        int: 'int',
        float64: 'float64',
        bool: 'bool',
        map: 'map[interface ' + '{}]interface {}',
        slice: '[]interface {}',
      }[n.kind]
    } Value>`
  );
}

/** The typed value of `n` under `s`, or undefined where the types disagree (Go left the zero value). */
function typed(n: CNode, s: SchemaNode): unknown {
  switch (s.type) {
    case 'string':
      return n.kind === 'string' ? n.value : undefined;
    case 'boolean':
      return n.kind === 'bool' ? n.value : undefined;
    case 'integer':
      return n.kind === 'int' ? n.value : undefined;
    case 'number':
      return n.kind === 'int' || n.kind === 'float64' ? n.value : undefined;
    case 'array':
      return n.kind === 'slice' ? n.children.map((c) => typed(c, s.items!)).filter((v) => v !== undefined) : undefined;
    case 'object': {
      if (n.kind !== 'map') return undefined;
      const out: Record<string, unknown> = {};
      for (const c of n.children) {
        const cs = s.properties?.[c.name];
        const v = cs && typed(c, cs);
        if (v !== undefined) out[c.name] = v;
      }
      const content = n.children.filter((c) => c.name === 'content').pop();
      if (content?.bytes && s.properties?.encoding) Object.assign(out, binaryContent(content.bytes, out));
      return out;
    }
  }
}

/** write_files content given as !!binary: kept as text when it is UTF-8, else handed on in base64. */
function binaryContent(bytes: Buffer, file: Record<string, unknown>): Record<string, unknown> {
  if (Buffer.from(bytes.toString('utf8'), 'utf8').equals(bytes)) return { content: bytes.toString('utf8') };
  const enc = file.encoding ?? '';
  if (enc === '') return { content: bytes.toString('base64'), encoding: 'base64' };
  if (enc === 'gz' || enc === 'gzip') return { content: bytes.toString('base64'), encoding: 'gzip+base64' };
  return { content: bytes.toString('latin1') }; // already undecodable: the report says so
}

/** The typed config: known keys of the right type; users, files and units always have a name. */
export function typedConfig(root: CNode | null, schema: SchemaNode): CloudConfig {
  const cfg = ((root && typed(root, schema)) ?? {}) as CloudConfig;
  for (const u of cfg.users ?? []) u.name ??= '';
  for (const f of cfg.write_files ?? []) f.path ??= '';
  for (const u of cfg.coreos?.units ?? []) {
    u.name ??= '';
    for (const d of u.drop_ins ?? []) {
      d.name ??= '';
      d.content ??= '';
    }
  }
  return cfg;
}
