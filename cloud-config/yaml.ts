// YAML to a tree that keeps the line and column of every key, list item and value. The `yaml`
// package parses (YAML 1.1, keeping node ranges and the source tokens); scalars are typed as
// go-yaml v1 typed them (yaml-scalars.ts), errors worded as libyaml worded them (yaml-errors.ts).
// Only the first document counts, as with go-yaml's Unmarshal.
import {
  isAlias,
  isMap,
  isScalar,
  isSeq,
  LineCounter,
  parseAllDocuments,
  visit,
  type Document,
  type YAMLParseError,
  type ParsedNode as Node,
  type Scalar,
  type YAMLMap,
  type YAMLSeq,
} from 'yaml';
import { goFloat } from './go-compat.js';
import { libyamlError, tabError, type Span } from './yaml-errors.js';
import { resolveBinary, resolvePlain, resolveTagged } from './yaml-scalars.js';

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
export interface YamlError {
  line: number;
  column: number;
  message: string;
}

/** A failure go-yaml reported without a line number while decoding (so coreos-cloudinit said "line 1"). */
class DecodeError extends Error {}

type Where = (pos: number) => { line: number; column: number };

/** A syntax error libyaml finds and the `yaml` package does not, at offset `pos`. */
class SyntaxAt extends Error {
  constructor(
    readonly pos: number,
    message: string,
  ) {
    super(message);
  }
}

const TAG = 'tag:yaml.org,2002:';
const TYPED = new Set(['int', 'float', 'bool', 'null']);

const OPTIONS = { version: '1.1', schema: 'failsafe', keepSourceTokens: true, uniqueKeys: false } as const;

/** Parses `source`; the root is null for an empty document. */
export function parseYaml(source: string): { root: YNode | null; error: YamlError | null } {
  const original = source.replace(/^\uFEFF/, '');
  const lines = new LineCounter();
  lines.addNewLine(0);
  for (let i = original.indexOf('\n'); i >= 0; i = original.indexOf('\n', i + 1)) lines.addNewLine(i + 1);
  const { text, docs, toOriginal } = parseQuotedLikeLibyaml(original);
  const where = (pos: number) => {
    const p = lines.linePos(toOriginal(pos));
    return { line: p.line, column: p.col };
  };
  const doc = Array.isArray(docs) ? docs[0] : undefined;
  const all = doc ? doc.errors : (docs as unknown as { errors: YAMLParseError[] }).errors;
  const errors = [...all].sort((a, b) => a.pos[0] - b.pos[0]);
  const error = errors.length ? libyamlError(errors[0], text, where) : null;
  // go-yaml never read past the first document: its tabs and errors do not count.
  const marker = /(?:^|\n)(---|\.\.\.)(\s|$)/g;
  marker.lastIndex = doc?.contents ? doc.contents.range[2] : 0;
  const m = doc && docs.length > 1 ? marker.exec(text) : null;
  const firstEnd = m ? where(m.index + (text[m.index] === '\n' ? 1 : 0)).line : Infinity;
  const spans = doc?.contents ? scalarSpans(doc.contents).map(([a, b]): Span => [toOriginal(a), toOriginal(b)]) : [];
  const tab = tabError(original, spans, Math.min(error?.line ?? Infinity, firstEnd - 1));
  if (tab) return { root: null, error: tab };
  if (error) return { root: null, error };
  if (!doc?.contents) return { root: null, error: null };
  try {
    return { root: new Builder(doc, where).node(doc.contents, 0), error: null };
  } catch (e) {
    if (e instanceof DecodeError) return { root: null, error: { line: 1, column: 1, message: e.message } };
    if (e instanceof SyntaxAt) return { root: null, error: { ...where(e.pos), message: e.message } };
    throw e;
  }
}

/**
 * Parses `text` with one libyaml leniency: a quoted scalar's continuation lines may sit left of
 * the block they are in (coreos-cloudinit's own test configs do that). The `yaml` package ends the
 * scalar there, so those lines are indented (which does not change the folded value) and parsed
 * again; `toOriginal` maps offsets back.
 */
function parseQuotedLikeLibyaml(original: string) {
  let text = original;
  const inserts: [number, number][] = []; // [offset in `text`, spaces inserted there]
  const toOriginal = (pos: number) => {
    let shift = 0;
    for (const [at, n] of inserts) if (at < pos) shift += Math.min(n, pos - at);
    return pos - shift;
  };
  for (;;) {
    const docs = parseAllDocuments(text, OPTIONS);
    const doc = Array.isArray(docs) ? docs[0] : undefined;
    const cut = doc?.errors.find((e) => e.message.startsWith('Missing closing') && e.pos[0] < text.length);
    let open: Scalar.Parsed | undefined;
    const quoted = (n: Scalar) => n.range?.[1] === cut?.pos[0] && n.type?.startsWith('QUOTE');
    if (cut)
      visit(doc!, {
        Scalar(_, n) {
          if (quoted(n)) open = n as Scalar.Parsed;
        },
      });
    const close = open && closingQuote(text, open.range[0]);
    if (!open || close === undefined) return { text, docs, toOriginal };
    const pad = ' '.repeat(open.range[0] - text.lastIndexOf('\n', open.range[0]));
    let out = text.slice(0, open.range[0]);
    let at = open.range[0];
    for (let nl = text.indexOf('\n', at); nl >= 0 && nl < close; nl = text.indexOf('\n', nl + 1)) {
      out += text.slice(at, nl + 1);
      inserts.push([out.length, pad.length]);
      out += pad;
      at = nl + 1;
    }
    text = out + text.slice(at);
  }
}

/** Where the quoted scalar opening at `start` closes ('' and \" do not close it); undefined if nowhere. */
function closingQuote(text: string, start: number): number | undefined {
  const q = text[start];
  for (let i = start + 1; i < text.length; i++) {
    if (q === '"' && text[i] === '\\') i++;
    else if (text[i] === q) {
      if (q === "'" && text[i + 1] === "'") i++;
      else return i;
    }
  }
  return undefined;
}

/** The [start, end) offsets of scalars and flow collections: tabs inside them are content. */
function scalarSpans(n: Node, out: Span[] = []): Span[] {
  if (isScalar(n) || ((isMap(n) || isSeq(n)) && n.flow)) {
    if (n.range[1] > n.range[0]) out.push([n.range[0], n.range[1]]);
  } else if (isMap(n)) {
    for (const p of n.items) {
      for (const c of [p.key, p.value]) if (c && typeof c === 'object') scalarSpans(c as Node, out);
    }
  } else if (isSeq(n)) for (const c of n.items) if (c && typeof c === 'object') scalarSpans(c as Node, out);
  return out;
}

/** The CST of a block collection, as keepSourceTokens leaves it on the node. */
interface Token {
  type: string;
  offset: number;
}
interface BlockToken {
  type: string;
  items: { start: Token[]; sep?: Token[] }[];
}

class Builder {
  private readonly building = new Set<Node>();
  constructor(
    private readonly doc: Document,
    private readonly where: Where,
  ) {}

  private blank(kind: YKind, pos: number): YNode {
    return { kind, ...this.where(pos), value: null, text: '', entries: [], items: [] };
  }

  /** The node `n`, placed at offset `pos`. */
  node(n: Node, pos: number): YNode {
    if (isAlias(n)) {
      const target = n.resolve(this.doc); // the anchored node again, where the alias stands
      if (!target) throw new DecodeError(`unknown anchor '${n.source}' referenced`);
      if (this.building.has(target as Node)) return this.blank(isSeq(target) ? 'seq' : 'map', pos);
      return { ...this.node(target as Node, pos), ...this.where(pos) };
    }
    if (isMap(n) || isSeq(n)) {
      this.building.add(n);
      try {
        return isMap(n) ? this.mapping(n, pos) : this.sequence(n, pos);
      } finally {
        this.building.delete(n);
      }
    }
    return this.scalar(n, pos);
  }

  private scalar(s: Scalar.Parsed, pos: number): YNode {
    const n = this.blank('null', pos);
    const text = String(s.value ?? '');
    const tag = s.tag?.startsWith(TAG) ? s.tag.slice(TAG.length) : s.tag;
    if (tag === 'binary') {
      const b = resolveBinary(text);
      if (typeof b === 'string') throw new DecodeError(b);
      return { ...n, kind: 'binary', value: b.bytes, text: b.text };
    }
    if (tag && TYPED.has(tag)) {
      const r = resolveTagged(text, tag as 'int');
      if (typeof r === 'string') throw new DecodeError(r);
      return { ...n, kind: r.kind, value: r.value, text };
    }
    // !!str, unknown tags, quoted and block scalars: strings
    if (tag || s.type !== 'PLAIN') return { ...n, kind: 'str', value: text, text };
    if (text === '') return n; // an empty node
    const r = resolvePlain(text);
    return r ? { ...n, kind: r.kind, value: r.value, text } : { ...n, kind: 'str', value: text, text };
  }

  private start(n: Node | null, fallback: number): number {
    return n ? n.range[0] : fallback;
  }

  private mapping(m: YAMLMap.Parsed, pos: number): YNode {
    const byName = new Map<string, { key: YNode; value: YNode }>();
    const cst = m.srcToken as BlockToken | undefined;
    m.items.forEach((p, i) => {
      const k = p.key as Node | null;
      const v = p.value as Node | null;
      const item = cst?.type === 'block-map' ? cst.items[i] : undefined;
      const colon = item?.sep?.find((t) => t.type === 'map-value-ind');
      // `: x` with no key and no `?`: libyaml's block mapping wanted a key there.
      const explicit = item?.start.some((t) => t.type === 'explicit-key-ind');
      if ((!k || isEmpty(k)) && colon && !explicit) throw new SyntaxAt(colon.offset, 'did not find expected key');
      const keyPos = this.start(k, v ? v.range[0] : pos);
      const value = v ? this.node(v, v.range[0]) : this.blank('null', k ? k.range[1] : keyPos);
      // `<<: *base` merges, as in go-yaml v1
      if (k && isScalar(k) && k.type === 'PLAIN' && !k.tag && k.value === '<<') {
        for (const from of value.kind === 'seq' ? value.items : [value])
          for (const e of from.entries) byName.set(keyName(e.key), e);
        return;
      }
      const key = k ? this.node(k, keyPos) : this.blank('null', keyPos);
      byName.delete(keyName(key));
      byName.set(keyName(key), { key, value });
    });
    return { ...this.blank('map', pos), entries: [...byName.values()] };
  }

  private sequence(s: YAMLSeq.Parsed, pos: number): YNode {
    const cst = s.srcToken as BlockToken | undefined;
    const block = cst?.type === 'block-seq' && cst.items.length === s.items.length;
    const items: YNode[] = [];
    s.items.forEach((item, i) => {
      const n = item as Node;
      // An empty item on its own line: the js-yaml port dropped it, and the reports keep that.
      if (block && isEmpty(n)) return;
      const dash = block ? cst.items[i].start.find((t) => t.type === 'seq-item-ind') : undefined;
      items.push(this.node(n, dash ? dash.offset : n.range[0]));
    });
    return { ...this.blank('seq', pos), items };
  }
}

/** An empty node: a plain scalar with no text, tag or anchor. */
function isEmpty(n: Node): boolean {
  return isScalar(n) && n.type === 'PLAIN' && !n.tag && !n.anchor && n.source === '';
}

/** The name Go gave a mapping key (fmt's %s of the decoded key). */
export function keyName(key: YNode): string {
  switch (key.kind) {
    case 'str':
    case 'binary':
      return key.text;
    case 'null':
      return '%!s(<nil>)';
    case 'int':
    case 'bool':
      return `%!s(${key.kind}=${String(key.value)})`;
    case 'float':
      return `%!s(float64=${goFloat(key.value as number)})`;
    default:
      return `%!s(${key.kind})`;
  }
}
