// YAML syntax errors in libyaml's words (coreos-cloudinit's go-yaml is a libyaml port), so the
// report reads as coreos-cloudinit's did. The `yaml` package finds the errors; this maps its codes
// onto libyaml's messages, and adds the tab rule libyaml enforces and the `yaml` package does not.
import type { YAMLParseError } from 'yaml';
import type { YamlError } from './yaml.js';

/** The [start, end) offsets of a scalar or a flow collection. */
export type Span = [number, number];

type Where = (pos: number) => { line: number; column: number };

/** The first `:` that starts a mapping value at or after `pos` (libyaml's error points there). */
function nextColon(text: string, pos: number): number {
  const colon = /:(?=[ \t\r\n]|$)/g;
  colon.lastIndex = pos;
  return colon.exec(text)?.index ?? pos;
}

/** The `yaml` package's error as libyaml would have reported it. */
export function libyamlError(e: YAMLParseError, text: string, where: Where): YamlError {
  const gap = /(?:[ \t\r\n]|#[^\n]*)*/y; // libyaml points at the next token, past blanks and comments
  gap.lastIndex = e.pos[0];
  gap.test(text);
  const at = where(Math.min(gap.lastIndex, text.length));
  const reason = e.message.replace(/ at line \d+, column \d+:[^]*$/, '');
  const msg = (message: string, w = at) => ({ ...w, message });
  const bracket = /sequence/.test(reason) ? ']' : '}';
  switch (true) {
    case e.code === 'TAB_AS_INDENT' || e.code === 'BAD_SCALAR_START':
      return msg('found character that cannot start any token');
    case reason === 'Implicit map keys need to be followed by map values':
      // libyaml: the plain scalar was a key that never met its ':'; name the key's line.
      return msg("could not find expected ':'");
    case reason.startsWith('Missing closing'):
      return msg('found unexpected end of stream', where(text.length));
    case e.code === 'BLOCK_AS_IMPLICIT_KEY' && reason.startsWith('Nested mappings'):
      return msg('mapping values are not allowed in this context', where(nextColon(text, e.pos[0])));
    case reason === 'All sequence items must start at the same column':
    case reason === 'Sequence item without - indicator':
      return msg("did not find expected '-' indicator");
    case e.code === 'MULTILINE_IMPLICIT_KEY' || (e.code === 'BAD_INDENT' && reason.startsWith('All mapping items')):
    case reason.startsWith('Unexpected block-seq-ind') || reason.startsWith('A block sequence may not be used'):
      return msg('did not find expected key');
    case /^Flow (sequence|map) in block collection/.test(reason) || /^Missing , (or : )?between/.test(reason):
      return msg(`did not find expected ',' or '${bracket}'`);
    case /^Unexpected .* (at node end|token in YAML stream)/.test(reason): {
      // Something after the root collection ended: libyaml's parser was still inside it.
      const first = text.split('\n').find((l) => !/^\s*(#.*)?$/.test(l)) ?? '';
      if (/^-(\s|$)/.test(first)) return msg("did not find expected '-' indicator");
      const key = /^[^\s#][^#]*?:(\s|$)/.test(first);
      return msg(key ? 'did not find expected key' : 'did not find expected <document start>');
    }
    case e.code === 'BAD_DQ_ESCAPE':
      return msg('found unknown escape character while parsing a quoted scalar');
    case e.code === 'BAD_ALIAS' && reason.endsWith('empty string'):
      return msg('did not find expected alphabetic or numeric character');
    default:
      return msg(reason);
  }
}

/**
 * libyaml refuses a tab wherever a token may start in block context (the start of a line, after
 * `-`, `?` or `:`), even on a blank line; the `yaml` package lets most of those through. `spans`
 * are the scalars and flow collections, where tabs are content. Only lines up to `lastLine` count.
 */
export function tabError(text: string, spans: Span[], lastLine: number): YamlError | null {
  const sorted = [...spans].sort((a, b) => a[0] - b[0]);
  let s = 0;
  let line = 1;
  let column = 1;
  let allowed = true;
  let i = 0;
  const step = () => {
    if (text[i] === '\n') {
      line++;
      column = 1;
    } else column++;
    i++;
  };
  while (i < text.length && line <= lastLine) {
    while (s < sorted.length && sorted[s][1] <= i) s++;
    if (s < sorted.length && sorted[s][0] <= i) {
      // inside a scalar or a flow collection
      const end = sorted[s][1];
      while (i < end && i < text.length) step();
      allowed = text[end - 1] === '\n';
      continue;
    }
    const c = text[i];
    if (c === '#' && (i === 0 || ' \t\n'.includes(text[i - 1]))) {
      // a comment, to the end of the line
      while (i < text.length && text[i] !== '\n') step();
      continue;
    }
    if (c === '\t' && allowed) return { line, column, message: 'found character that cannot start any token' };
    if (c === '\n') allowed = true;
    else if (c !== ' ' && c !== '\t' && c !== '\r') {
      allowed = (c === '-' || c === '?' || c === ':') && ' \t\r\n'.includes(text[i + 1] ?? '\n');
    }
    step();
  }
  return null;
}
