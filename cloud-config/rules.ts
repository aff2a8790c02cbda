// coreos-cloudinit's validation rules (config/validate/rules.go), over the node tree and the
// schema: discovery URL, write_files encodings, structure (unknown keys, wrong types, deprecated
// keys), `valid:` values, files under /usr, and write_files misplaced under coreos.
import { decodeGoContent, goDir, goFloat, goParseRequestURI } from './go-compat.js';
import { child, goString, nodeBytes, type CNode, type GoKind } from './nodes.js';
import { humanType, type SchemaNode } from './schema.js';

/** One line of the report. `column` is extra to coreos-cloudinit's report, for people and consoles. */
export interface Entry {
  line: number;
  column?: number;
  kind: 'error' | 'warning' | 'info';
  message: string;
}

type Add = (kind: Entry['kind'], n: { line: number; column?: number }, message: string) => void;

/** Go's %q of a string. */
export function goQuote(s: string): string {
  const esc: Record<string, string> = {
    '"': '\\"',
    '\\': '\\\\',
    '\n': '\\n',
    '\r': '\\r',
    '\t': '\\t',
    '\x07': '\\a',
    '\b': '\\b',
    '\f': '\\f',
    '\v': '\\v',
  };
  return (
    '"' +
    `${[...s]
      .map((c) => esc[c] ?? (c < ' ' || c === '\x7f' ? '\\x' + `${c.charCodeAt(0).toString(16).padStart(2, '0')}` : c))
      .join('')}"`
  );
}

/** Which node kinds a field of schema type `t` takes (rules.go isCompatible). */
function compatible(n: GoKind, t: SchemaNode['type']): boolean {
  switch (t) {
    case 'string':
      return n === 'string' || n === 'int' || n === 'float64' || n === 'bool';
    case 'object':
      return n === 'map';
    case 'number':
      return n === 'float64' || n === 'int';
    case 'boolean':
      return n === 'bool';
    case 'integer':
      return n === 'int';
    case 'array':
      return n === 'slice';
  }
}

/** Unknown keys, wrong types and deprecated keys (checkStructure). */
function structure(n: CNode, g: SchemaNode, add: Add): void {
  if (!compatible(n.kind, g.type)) {
    add('warning', n, `incorrect type for ${goQuote(n.name)} (want ${humanType(g)})`);
    return;
  }
  for (const c of n.children) {
    const cg = g.type === 'object' ? g.properties?.[c.name] : g.items;
    if (!cg) {
      add('warning', c, `unrecognized key ${goQuote(c.name)}`);
      continue;
    }
    if (g.type === 'object' && cg['x-deprecated'])
      add('warning', c, `deprecated key ${goQuote(c.name)} (${cg['x-deprecated']})`);
    structure(c, cg, add);
  }
}

/** %v of a scalar. */
const goValue = (n: CNode) => (n.kind === 'float64' ? goFloat(n.value as number) : String(n.value));

/**
 * The `valid:` rules (checkValidity): a set value must match. Zero values pass; so do lists and
 * maps, on which coreos-cloudinit's check panicked instead of reporting.
 */
function validity(n: CNode, g: SchemaNode, add: Add): void {
  const zero = n.value === null || n.value === '' || n.value === 0 || n.value === false;
  if (g.pattern && !zero && n.kind !== 'map' && n.kind !== 'slice' && !new RegExp(g.pattern).test(goValue(n))) {
    add('error', n, `invalid value ${goValue(n)}`);
  }
  for (const c of n.children) {
    const cg = g.type === 'object' ? g.properties?.[c.name] : g.type === 'array' ? g.items : undefined;
    if (cg) validity(c, cg, add);
  }
}

/** Runs every rule over the document's root node. */
export function runRules(root: CNode, schema: SchemaNode, add: Add): void {
  // checkDiscoveryUrl: coreos.etcd.discovery must parse as a request URI.
  const discovery = child(child(child(root, 'coreos'), 'etcd'), 'discovery');
  if (discovery && discovery.kind !== 'invalid' && !goParseRequestURI(goString(discovery)))
    add('warning', discovery, 'discovery URL is not valid');

  // checkEncoding: content must decode with the encoding given.
  for (const f of child(root, 'write_files')?.children ?? []) {
    const e = child(f, 'encoding');
    if (!e || e.kind === 'invalid') continue;
    const c = child(f, 'content');
    const content = c ? nodeBytes(c) : Buffer.from(goString(c));
    if (decodeGoContent(content, goString(e)) instanceof Error)
      add('error', c ?? e, `content cannot be decoded as ${goQuote(goString(e))}`);
  }

  if (root.kind === 'map') structure(root, schema, add);
  validity(root, schema, add);

  // checkWriteFiles: /usr is read-only.
  for (const f of child(root, 'write_files')?.children ?? []) {
    const p = child(f, 'path');
    if (p && p.kind !== 'invalid' && goDir(goString(p)).startsWith('/usr'))
      add('error', p, 'file cannot be written to a read-only filesystem');
  }

  // checkWriteFilesUnderCoreos
  const misplaced = child(child(root, 'coreos'), 'write_files');
  if (misplaced && misplaced.kind !== 'invalid') add('info', misplaced, "write_files doesn't belong under coreos");
}
