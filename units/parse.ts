// The unit-file syntax (systemd.syntax(7), config_parse in src/shared/conf-parser.c): sections,
// comments, backslash continuations, `Key=Value`. Produces assignments in order; knows no keys. Pure.
import type { Assignment, Diagnostic } from './types.js';

const COMMENT = /^[ \t\n\r]*[#;]/;
/** systemd's strstrip: only these four count as whitespace. */
const strip = (s: string) => s.replace(/^[ \t\n\r]+|[ \t\n\r]+$/g, '');
/** systemd's string_is_safe: no control characters, quotes or backslashes. */
const UNSAFE = /[\x00-\x1f\x7f"'\\]/;

/** Whether the line ends in an unescaped backslash (an odd run of trailing backslashes). */
function continues(line: string): boolean {
  let n = 0;
  for (let i = line.length - 1; i >= 0 && line[i] === '\\'; i--) n++;
  return n % 2 === 1;
}

/**
 * Parses unit-file text into `Key=Value` assignments with their section, file and line (the line
 * where a continued assignment starts). A line ending in `\` continues on the next; the backslash
 * becomes one space and the next line is appended as written; comment lines inside a continuation
 * are dropped. Problems become diagnostics, never exceptions; an invalid section header stops the
 * parse, as it makes systemd refuse the whole file.
 */
export function parseUnitText(text: string, file: string): { assignments: Assignment[]; diagnostics: Diagnostic[] } {
  const assignments: Assignment[] = [];
  const diagnostics: Diagnostic[] = [];
  const diag = (line: number, severity: Diagnostic['severity'], message: string) =>
    diagnostics.push({ file, line, severity, message });
  const lines = text.replace(/^\uFEFF/, '').split(/\r\n|\r|\n/);
  if (lines.length > 0 && lines[lines.length - 1] === '') lines.pop(); // the final newline ends a line, it starts none
  let section: string | null = null;
  let pending: { text: string; line: number } | null = null;

  /** Handles one logical line; returns false when parsing must stop. */
  const logical = (raw: string, lineNo: number): boolean => {
    const l = strip(raw);
    if (l === '' || COMMENT.test(l)) return true;
    if (l.startsWith('.include ')) {
      diag(lineNo, 'error', `.include directives are not supported anymore, use drop-ins instead: ${l}`);
      return false;
    }
    if (l.startsWith('[')) {
      if (!l.endsWith(']')) {
        diag(lineNo, 'error', `Invalid section header '${l}'`);
        return false;
      }
      const name = l.slice(1, -1);
      if (UNSAFE.test(name)) {
        diag(lineNo, 'error', `Bad characters in section header '${l}'`);
        return false;
      }
      section = name;
      return true;
    }
    if (section === null) {
      diag(lineNo, 'warning', 'Assignment outside of section. Ignoring.');
      return true;
    }
    const eq = l.indexOf('=');
    if (eq < 0) {
      diag(lineNo, 'warning', "Missing '=', ignoring line.");
      return true;
    }
    if (eq === 0) {
      diag(lineNo, 'warning', "Missing key name before '=', ignoring line.");
      return true;
    }
    assignments.push({ section, key: strip(l.slice(0, eq)), value: strip(l.slice(eq + 1)), file, line: lineNo });
    return true;
  };

  for (let i = 0; i < lines.length; i++) {
    const line = lines[i];
    if (COMMENT.test(line)) continue; // comments are skipped, inside continuations too
    const joined: string = pending ? pending.text + line : line;
    const start: number = pending ? pending.line : i + 1;
    if (continues(joined)) {
      pending = { text: `${joined.slice(0, -1)} `, line: start };
      continue;
    }
    pending = null;
    if (!logical(joined, start)) return { assignments, diagnostics };
  }
  if (pending) logical(pending.text, pending.line);
  return { assignments, diagnostics };
}
