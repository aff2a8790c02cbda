// Exec*= command lines as systemd's config_parse_exec reads them (prefixes, quoting, C escapes,
// `;` separators), and the $VAR/${VAR} expansion done at spawn time (replace_env_argv). Pure.
import type { ExecCommand } from './types.js';
import { simplifyPath } from './names.js';
import { extractWord, splitWords } from './words.js';

const WORD_FLAGS = { unquote: true, cunescape: true } as const;
const isSpace = (c: string | undefined) => c === undefined || c === ' ' || c === '\t' || c === '\n' || c === '\r';

/** The prefix characters of the first word, in the combinations systemd accepts (each once; +, ! and !! exclusive). */
function stripPrefixes(word: string): { rest: string; cmd: Omit<ExecCommand, 'argv' | 'path'> } {
  const cmd = {
    ignoreFailure: false,
    argv0Override: false,
    noSubstitution: false,
    privileged: false,
    privilegeMode: undefined as ExecCommand['privilegeMode'],
  };
  let i = 0;
  for (; i < word.length; i++) {
    const c = word[i];
    if (c === '-' && !cmd.ignoreFailure) cmd.ignoreFailure = true;
    else if (c === '@' && !cmd.argv0Override) cmd.argv0Override = true;
    else if (c === ':' && !cmd.noSubstitution) cmd.noSubstitution = true;
    else if (c === '+' && !cmd.privilegeMode) cmd.privilegeMode = '+';
    else if (c === '!' && !cmd.privilegeMode) cmd.privilegeMode = '!';
    else if (c === '!' && cmd.privilegeMode === '!') cmd.privilegeMode = '!!';
    else break;
  }
  cmd.privileged = cmd.privilegeMode !== undefined;
  if (cmd.privilegeMode === undefined) delete cmd.privilegeMode;
  return { rest: word.slice(i), cmd };
}

/**
 * Parses the value of an Exec*= directive into its commands (a lone `;` separates several). An empty
 * value gives []. Throws a TypeError naming the value for bad quoting, escapes or program names.
 */
export function parseExecLine(value: string): ExecCommand[] {
  const fail = (why: string) => new TypeError(`cannot parse command line ${JSON.stringify(value)}: ${why}`);
  const commands: ExecCommand[] = [];
  let pos = 0;
  for (;;) {
    let first;
    try {
      first = extractWord(value, pos, WORD_FLAGS);
    } catch (e) {
      throw fail((e as { reason?: string }).reason ?? String(e));
    }
    if (!first) return commands;
    pos = first.next;
    if (first.word === ';') continue;
    const { rest: path, cmd } = stripPrefixes(first.word);
    if (path === '') throw fail('empty program path');
    if (/[\x00-\x1f\x7f]/.test(path)) throw fail(`program name ${JSON.stringify(path)} contains special characters`);
    if (path.endsWith('/')) throw fail(`program path ${path} is a directory`);
    if (!path.startsWith('/') && (path.includes('/') || path === '.' || path === '..')) {
      throw fail(`${JSON.stringify(path)} is neither a valid program name nor an absolute path`);
    }
    const argv = cmd.argv0Override ? [] : [path];
    let more = false;
    while (pos < value.length) {
      if (value[pos] === ';' && isSpace(value[pos + 1])) {
        // an unquoted lone ";" ends this command
        pos++;
        while (isSpace(value[pos]) && pos < value.length) pos++;
        more = true;
        break;
      }
      if (value[pos] === '\\' && value[pos + 1] === ';' && isSpace(value[pos + 2])) {
        // "\;" is a literal ";" argument
        argv.push(';');
        pos += 2;
        while (isSpace(value[pos]) && pos < value.length) pos++;
        continue;
      }
      let w;
      try {
        w = extractWord(value, pos, WORD_FLAGS);
      } catch (e) {
        throw fail((e as { reason?: string }).reason ?? String(e));
      }
      if (!w) break;
      argv.push(w.word);
      pos = w.next;
    }
    if (argv.length === 0) throw fail('empty argv[0] after "@"');
    commands.push({ argv, path: path.startsWith('/') ? simplifyPath(path) : path, ...cmd });
    if (!more) return commands;
  }
}

const ENV_NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;

/** Substitutes ${NAME} (unset: empty) and $$ (→ $) inside one word; `$NAME` inside a word stays as written. */
function replaceInWord(word: string, env: Map<string, string>): string {
  return word.replace(/\$\$|\$\{([^}]*)\}/g, (m, name: string | undefined) => {
    if (m === '$$') return '$';
    return env.get(name!) ?? '';
  });
}

/**
 * Expands variables in argv as systemd does at spawn time: a word that is exactly `$NAME` becomes
 * the variable's value split into words (quotes honoured; unset gives no word), `${NAME}` is replaced
 * inside a word without splitting, `$$` is a literal `$`.
 */
export function expandCommandVariables(argv: string[], env: Map<string, string>): string[] {
  const out: string[] = [];
  for (const word of argv) {
    if (word[0] === '$' && word[1] !== '{' && word[1] !== '$') {
      const name = word.slice(1);
      const value = ENV_NAME.test(name) ? env.get(name) : undefined;
      if (value !== undefined) out.push(...splitWords(value, { unquote: true, relax: true }));
      continue;
    }
    out.push(replaceInWord(word, env));
  }
  return out;
}
