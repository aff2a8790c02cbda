// YAML to a tree that keeps the line and column of every key, list item and value. js-yaml parses
// (with go-yaml v1's scalar typing, yaml-scalars.ts); its `listener` reports where each node opens
// and closes, and the tree is rebuilt from those events. Only the first document counts, as with
// go-yaml's Unmarshal.
import yaml from 'js-yaml';
import { GO_YAML_SCHEMA, GoScalar, GoYamlError } from './yaml-scalars.js';
import { libyamlError, tabError } from './yaml-errors.js';

/** What a node holds: go-yaml v1's types (binary: a !!binary scalar). */
export type YKind = 'map' | 'seq' | 'str' | 'int' | 'float' | 'bool' | 'null' | 'binary';

/** A node and where it starts (1-based); a list item starts at its `-`. */
export interface YNode {
  kind: YKind;
  line: number;
  column: number;
  /** Scalars: the typed value (binary: the bytes). */
  value: string | number | boolean | null | Buffer;
  /** Scalars: the text as written (what a Go string field received); '' otherwise. */
  text: string;
  /** Mappings: entries in document order, later duplicates replacing earlier ones. */
  entries: { key: YNode; value: YNode }[];
  /** Sequences: the items. */
  items: YNode[];
}

/** A YAML syntax error, worded as libyaml (coreos-cloudinit's parser) worded it. */
export interface YamlError { line: number; column: number; message: string }

interface Frame { pos: number; end: number; children: Frame[]; result: unknown; kind: string | null; tag: string | null }

const MERGE = 'tag:yaml.org,2002:merge';

/** Line starts of `text`, for turning offsets into (line, column). */
function lineIndex(text: string): (pos: number) => { line: number; column: number } {
  const starts = [0];
  for (let i = 0; i < text.length; i++) if (text[i] === '\n') starts.push(i + 1);
  return (pos) => {
    let lo = 0;
    let hi = starts.length - 1;
    while (lo < hi) {
      const mid = (lo + hi + 1) >> 1;
      if (starts[mid] <= pos) lo = mid; else hi = mid - 1;
    }
    return { line: lo + 1, column: pos - starts[lo] + 1 };
  };
}

/** Parses `text`; the root is null for an empty document. */
export function parseYaml(source: string): { root: YNode | null; error: YamlError | null } {
  const text = source.replace(/^\uFEFF/, '');
  const where = lineIndex(text);
  const roots: Frame[] = [];
  const stack: Frame[] = [];
  const listener = (event: string, st: { position: number; result: unknown; kind: string | null; tag: string | null }) => {
    if (event === 'open') { stack.push({ pos: st.position, end: -1, children: [], result: undefined, kind: null, tag: null }); return; }
    const f = stack.pop()!;
    Object.assign(f, { end: st.position, result: st.result, kind: st.kind, tag: st.tag });
    (stack.length ? stack[stack.length - 1].children : roots).push(f);
  };
  let error: YamlError | null = null;
  let firstEnd = Infinity;  // where the first document ends: go-yaml never read further
  try {
    yaml.loadAll(text, () => {}, { schema: GO_YAML_SCHEMA, json: true, listener: listener as never });
  } catch (e) {
    if (e instanceof GoYamlError) return { root: null, error: { line: 1, column: 1, message: e.message } };
    if (!(e instanceof yaml.YAMLException)) throw e;
    error = libyamlError(e, text);
  }
  const root = roots[0];
  if (root) {
    const marker = /\n(---|\.\.\.)(\s|$)/g;
    marker.lastIndex = Math.max(0, root.end - 1);
    const m = marker.exec(text);
    if (m) firstEnd = where(m.index + 1).line;
    if (error && error.line >= firstEnd) error = null;
  }
  const tab = tabError(text, roots.flatMap((f) => spans(f, text)), Math.min(error?.line ?? Infinity, firstEnd - 1));
  if (tab) return { root: null, error: tab };
  if (error) return { root: null, error };
  return { root: root ? new Builder(text, where).node(root, 0) : null, error: null };
}

/** The [start, end) offsets of scalars and flow collections: tabs inside them are content. */
function spans(f: Frame, text: string, out: [number, number][] = []): [number, number][] {
  let start = f.pos;
  while (text[start] === ' ' || text[start] === '\t') start++;
  if (f.kind === 'scalar' || text[start] === '[' || text[start] === '{') {
    if (f.end > start) out.push([start, f.end]);
  } else for (const c of f.children) spans(c, text, out);
  return out;
}

class Builder {
  private readonly anchored = new WeakMap<object, Frame>();
  private readonly building = new Set<Frame>();
  constructor(private readonly text: string, private readonly where: (pos: number) => { line: number; column: number }) {}

  /** First offset at or after `pos` that is not a space or a tab. */
  private skipBlanks(pos: number): number {
    while (pos < this.text.length && (this.text[pos] === ' ' || this.text[pos] === '\t')) pos++;
    return pos;
  }

  /** Whether a `:` (after blanks, breaks and comments) follows offset `pos`: the frame was a key. */
  private colonAfter(pos: number): boolean {
    const colon = /(?:[ \t\r\n]|#[^\n]*)*:/y;
    colon.lastIndex = pos;
    return colon.test(this.text);
  }

  /** Where a value starts: past blanks, and for a value on the lines below, past breaks and comments. */
  private valueStart(f: Frame): number {
    const pos = this.skipBlanks(f.pos);
    if (f.kind === null && f.result === null) return pos;  // empty: where it would have been
    const gap = /(?:[ \t\r\n]|#[^\n]*)*/y;
    gap.lastIndex = pos;
    gap.test(this.text);
    return Math.min(gap.lastIndex, f.end);
  }

  /** Where a list item starts: its `-` when it has one. */
  private itemStart(pos: number): number {
    let i = pos - 1;
    while (i >= 0 && ' \t\r\n'.includes(this.text[i])) i--;
    return i >= 0 && this.text[i] === '-' ? i : this.skipBlanks(pos);
  }

  private blank(kind: YKind, pos: number): YNode {
    return { kind, ...this.where(pos), value: null, text: '', entries: [], items: [] };
  }

  node(f: Frame, pos: number): YNode {
    const r = f.result;
    if (this.text[this.skipBlanks(f.pos)] === '*' && r !== null && typeof r === 'object' && !(r instanceof GoScalar)) {
      const target = this.anchored.get(r);  // an alias: the anchored node again, where the alias stands
      if (!target || this.building.has(target)) return this.blank(Array.isArray(r) ? 'seq' : 'map', pos);
      return { ...this.node(target, pos), ...this.where(pos) };
    }
    if (f.kind === 'mapping' || f.kind === 'sequence') {
      if (r !== null && typeof r === 'object' && !this.anchored.has(r)) this.anchored.set(r, f);
      this.building.add(f);
      try { return f.kind === 'mapping' ? this.mapping(f, pos) : this.sequence(f, pos); } finally { this.building.delete(f); }
    }
    return this.scalar(r, pos);
  }

  private scalar(r: unknown, pos: number): YNode {
    const n = this.blank('null', pos);
    if (typeof r === 'string') return { ...n, kind: 'str', value: r, text: r };
    if (r instanceof GoScalar) {
      if (r.kind === 'binary') return { ...n, kind: 'binary', value: r.value, text: r.text };
      return { ...n, kind: r.kind, value: r.value as number | boolean | null, text: r.text };
    }
    return n;  // an empty node
  }

  /**
   * Pairs up key and value frames: a value follows its key after a `:`; a lone key has a null
   * value; an empty frame with no `:` after it was js-yaml looking for one more key, and is dropped.
   */
  private pairs(children: Frame[]): [Frame, Frame | null][] {
    const out: [Frame, Frame | null][] = [];
    for (let i = 0; i < children.length; i++) {
      const k = children[i];
      if (this.colonAfter(k.end) && i + 1 < children.length) out.push([k, children[++i]]);
      else if (k.kind !== null || k.result !== null) out.push([k, null]);
    }
    return out;
  }

  private mapping(f: Frame, pos: number): YNode {
    const byName = new Map<string, { key: YNode; value: YNode }>();
    for (const [k, v] of this.pairs(f.children)) {
      const value = v ? this.node(v, this.valueStart(v)) : this.blank('null', k.end);
      if (k.tag === MERGE) {
        for (const m of value.kind === 'seq' ? value.items : [value]) for (const e of m.entries) byName.set(keyName(e.key), e);
        continue;
      }
      const key = this.scalar(k.result, k.pos);
      byName.delete(keyName(key));
      byName.set(keyName(key), { key, value });
    }
    return { ...this.blank('map', pos), entries: [...byName.values()] };
  }

  private sequence(f: Frame, pos: number): YNode {
    const items: YNode[] = [];
    const kids = f.children;
    for (let i = 0; i < kids.length; i++) {
      const start = this.itemStart(kids[i].pos);
      if (this.colonAfter(kids[i].end) && i + 1 < kids.length) {  // a single-pair mapping: [a: 1]
        const key = this.scalar(kids[i].result, kids[i].pos);
        const value = this.node(kids[++i], this.valueStart(kids[i]));
        items.push({ ...this.blank('map', start), entries: [{ key, value }] });
      } else items.push(this.node(kids[i], start));
    }
    return { ...this.blank('seq', pos), items };
  }
}

/** The name Go gave a mapping key (fmt's %s of the decoded key). */
export function keyName(key: YNode): string {
  switch (key.kind) {
    case 'str': case 'binary': return key.text;
    case 'null': return '%!s(<nil>)';
    case 'int': case 'bool': return `%!s(${key.kind}=${String(key.value)})`;
    case 'float': return String(new GoScalar('float', key.value as number, key.text));
    default: return `%!s(${key.kind})`;
  }
}
