// systemd's word splitter (extract_first_word in src/basic/extract-word.c) and C unescaping
// (cunescape_one in src/basic/escape.c), shared by Exec*=, Environment= and $VAR splitting. Pure.

/** How extractWord treats quotes and backslashes, as systemd's EXTRACT_* flags. */
export interface ExtractFlags {
  /** EXTRACT_UNQUOTE: '...' and "..." group words and the quotes are removed. */
  unquote?: boolean;
  /** EXTRACT_CUNESCAPE: \n \t \xNN \NNN ... are decoded; an unknown escape is an error. */
  cunescape?: boolean;
  /** EXTRACT_RELAX: an unterminated quote or trailing backslash ends the word instead of failing. */
  relax?: boolean;
}

/** Decodes one C escape starting after the backslash; returns [bytes, length consumed] or null when invalid. */
export function cunescapeOne(s: string, i: number): [number[], number] | null {
  const c = s[i];
  const simple: Record<string, string> = {
    a: '\x07',
    b: '\b',
    f: '\f',
    n: '\n',
    r: '\r',
    t: '\t',
    v: '\v',
    '\\': '\\',
    '"': '"',
    "'": "'",
    s: ' ',
  };
  if (c !== undefined && c in simple) return [[simple[c].charCodeAt(0)], 1];
  if (c === 'x') {
    const h = s.slice(i + 1, i + 3);
    if (!/^[0-9a-fA-F]{2}$/.test(h) || parseInt(h, 16) === 0) return null; // NUL bytes are refused
    return [[parseInt(h, 16)], 3];
  }
  if (c === 'u' || c === 'U') {
    const n = c === 'u' ? 4 : 8;
    const h = s.slice(i + 1, i + 1 + n);
    if (!new RegExp(`^[0-9a-fA-F]{${n}}$`).test(h)) return null;
    const cp = parseInt(h, 16);
    if (cp === 0 || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff)) return null;
    return [[...Buffer.from(String.fromCodePoint(cp), 'utf8')], n + 1];
  }
  if (c !== undefined && c >= '0' && c <= '7') {
    const o = s.slice(i, i + 3);
    if (!/^[0-7]{3}$/.test(o)) return null;
    const v = parseInt(o, 8);
    if (v === 0 || v > 255) return null;
    return [[v], 3];
  }
  return null;
}

const WHITESPACE = ' \t\n\r';
const codePointAt = (s: string, i: number) => String.fromCodePoint(s.codePointAt(i)!);
/** Appends the UTF-8 bytes of one character; returns how many extra UTF-16 units it took. */
const pushChar = (out: number[], ch: string) => {
  for (const b of Buffer.from(ch, 'utf8')) out.push(b);
  return ch.length - 1;
};

/**
 * Extracts the word starting at `pos` (leading whitespace skipped). Returns the word and the position
 * of the next word (trailing whitespace skipped), null when only whitespace is left, or throws a
 * TypeError ("unterminated quote", "bad escape") naming the text.
 */
export function extractWord(
  text: string,
  pos: number,
  flags: ExtractFlags = {},
): { word: string; next: number } | null {
  let i = pos;
  while (i < text.length && WHITESPACE.includes(text[i])) i++;
  if (i >= text.length) return null;
  const out: number[] = [];
  let quote: string | null = null;
  const fail = (why: string) =>
    Object.assign(new TypeError(`cannot split ${JSON.stringify(text)}: ${why}`), { reason: why });
  for (; i < text.length; i++) {
    const c = text[i];
    if (c === '\\') {
      if (i + 1 >= text.length) {
        if (flags.relax) {
          i++;
          break;
        }
        throw fail('trailing backslash');
      }
      if (flags.cunescape) {
        const r = cunescapeOne(text, i + 1);
        if (!r) throw fail(`bad escape "\\${text[i + 1]}" at offset ${i}`);
        out.push(...r[0]);
        i += r[1];
      } else {
        i++;
        i += pushChar(out, codePointAt(text, i));
      }
    } else if (quote !== null) {
      if (c === quote) quote = null;
      else i += pushChar(out, codePointAt(text, i));
    } else if (flags.unquote && (c === '"' || c === "'")) {
      quote = c;
    } else if (WHITESPACE.includes(c)) {
      break;
    } else {
      i += pushChar(out, codePointAt(text, i));
    }
  }
  if (quote !== null && !flags.relax) throw fail('unterminated quote');
  while (i < text.length && WHITESPACE.includes(text[i])) i++;
  return { word: Buffer.from(out).toString('utf8'), next: i };
}

/** Splits `text` into all its words with extractWord. */
export function splitWords(text: string, flags: ExtractFlags = {}): string[] {
  const words: string[] = [];
  let pos = 0;
  for (let w = extractWord(text, pos, flags); w; w = extractWord(text, pos, flags)) {
    words.push(w.word);
    pos = w.next;
  }
  return words;
}
