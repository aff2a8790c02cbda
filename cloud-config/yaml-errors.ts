// YAML syntax errors in libyaml's words (coreos-cloudinit's go-yaml is a libyaml port), so the
// report reads as coreos-cloudinit's did. js-yaml finds the errors; this maps its reasons onto
// libyaml's messages, and adds the tab rule libyaml enforces and js-yaml does not.
import type yaml from 'js-yaml';
import type { YamlError } from './yaml.js';

const lines = (text: string) => text.split('\n');

/** The last line at or before `line` (1-based) holding something other than blanks or a comment. */
function lastContentLine(text: string, line: number): number {
  const ls = lines(text);
  for (let l = Math.min(line, ls.length); l >= 1; l--) if (!/^\s*(#.*)?$/.test(ls[l - 1])) return l;
  return line;
}

/** The innermost flow collection still open before `pos`: its closing bracket. */
function openBracket(text: string, pos: number): ']' | '}' {
  const open: string[] = [];
  let quote = '';
  for (let i = 0; i < pos && i < text.length; i++) {
    const c = text[i];
    if (quote) { if (c === quote) quote = ''; continue; }
    if ((c === '"' || c === "'") && /(^|[\s[{,:])$/.test(text.slice(Math.max(0, i - 1), i))) quote = c;  // a quoted scalar starts
    else if (c === '[' || c === '{') open.push(c);
    else if ((c === ']' || c === '}') && open.length) open.pop();
  }
  return open[open.length - 1] === '{' ? '}' : ']';
}

/** js-yaml's error as libyaml would have reported it (line and column 1-based). */
export function libyamlError(e: yaml.YAMLException, text: string): YamlError {
  const mark = e.mark ?? { line: 0, column: 0, position: 0 };
  const at = { line: mark.line + 1, column: mark.column + 1 };
  const ch = text[mark.position] ?? '';
  const reason = e.reason ?? e.message;
  const msg = (message: string, where = at) => ({ ...where, message });
  switch (true) {
    case reason === 'tab characters must not be used in indentation':
      return msg('found character that cannot start any token');
    case reason.startsWith('can not read a block mapping entry; a multiline key') || reason.startsWith('can not read an implicit mapping pair'): {
      // libyaml: the plain scalar before was a key that never met its ':'; name the key's line.
      const line = lastContentLine(text, mark.column === 0 ? mark.line : mark.line + 1);
      return msg("could not find expected ':'", { line, column: (lines(text)[line - 1] ?? '').search(/\S|$/) + 1 });
    }
    case reason === 'bad indentation of a mapping entry':
      if (ch === ':') return msg('mapping values are not allowed in this context');
      if (ch === '@' || ch === '`' || ch === '%') return msg('found character that cannot start any token');
      return msg('did not find expected key');
    case reason === 'bad indentation of a sequence entry':
      return msg("did not find expected '-' indicator");
    case reason === 'end of the stream or a document separator is expected': {
      // Something after the root collection ended: libyaml's parser was still inside it.
      const first = lines(text).find((l) => !/^\s*(#.*)?$/.test(l)) ?? '';
      if (/^-(\s|$)/.test(first)) return msg("did not find expected '-' indicator");
      return msg(/^[^\s#][^#]*?:(\s|$)/.test(first) ? 'did not find expected key' : 'did not find expected <document start>');
    }
    case reason === 'unexpected end of the stream within a flow collection' || reason === 'missed comma between flow collection entries':
      return msg(`did not find expected ',' or '${openBracket(text, mark.position)}'`);
    case reason.startsWith('expected the node content'):
      return msg('did not find expected node content');
    case reason.startsWith('unexpected end of the stream within a'):
      return msg('found unexpected end of stream');
    case reason === 'the stream contains non-printable characters':
      return msg('control characters are not allowed');
    case reason.startsWith('unidentified alias'):
      // go-yaml failed at decode time, without a line: coreos-cloudinit said line 1.
      return { line: 1, column: 1, message: `unknown anchor '${/"(.*)"/.exec(reason)?.[1] ?? ''}' referenced` };
    case reason === 'name of an alias node must contain at least one character' || reason === 'name of an anchor node must contain at least one character':
      return msg('did not find expected alphabetic or numeric character');
    default:
      return msg(reason);
  }
}

/**
 * libyaml refuses a tab wherever a token may start in block context (the start of a line, after
 * `-`, `?` or `:`), even on a blank line; js-yaml lets most of those through. `spans` are the
 * scalars and flow collections, where tabs are content. Only lines before `beforeLine` count.
 */
export function tabError(text: string, spans: [number, number][], beforeLine: number): YamlError | null {
  const sorted = [...spans].sort((a, b) => a[0] - b[0]);
  let s = 0;
  let line = 1;
  let column = 1;
  let allowed = true;
  const step = () => { if (text[i] === '\n') { line++; column = 1; } else column++; i++; };
  let i = 0;
  while (i < text.length && line <= beforeLine) {
    while (s < sorted.length && sorted[s][1] <= i) s++;
    if (s < sorted.length && sorted[s][0] <= i) {  // inside a scalar or a flow collection
      const end = sorted[s][1];
      while (i < end && i < text.length) step();
      allowed = text[end - 1] === '\n';
      continue;
    }
    const c = text[i];
    if (c === '#' && (i === 0 || ' \t\n'.includes(text[i - 1]))) {  // a comment, to the end of the line
      while (i < text.length && text[i] !== '\n') step();
      continue;
    }
    if (c === '\t' && allowed) return { line, column, message: 'found character that cannot start any token' };
    if (c === '\n') allowed = true;
    else if (c !== ' ' && c !== '\t' && c !== '\r') allowed = (c === '-' || c === '?' || c === ':') && ' \t\r\n'.includes(text[i + 1] ?? '\n');
    step();
  }
  return null;
}
