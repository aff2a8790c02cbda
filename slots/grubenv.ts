// GRUB's environment block (grubenv) as bytes, read and written the way grub-core/lib/envblk.c does.
import { KeelError } from '../lib/errors.js';

/** The first line of every grubenv; GRUB refuses a block without it. */
export const GRUBENV_SIGNATURE = '# GRUB Environment Block\n';
/** The size grub-editenv creates, and the only size Keel reads or writes. */
export const GRUBENV_SIZE = 1024;

/** Variables to set: ordered pairs, or an object (JS key order: integer-like keys first); order is file order. */
export type GrubenvVars = Record<string, string> | [string, string][];
/** Updates for setGrubenvVars: a null value removes the variable (like `grub-editenv unset`). */
export type GrubenvUpdates = Record<string, string | null> | [string, string | null][];

/** Encodes variables, in order, into a 1024-byte grubenv padded with '#' as grub-editenv writes it. */
export function encodeGrubenv(vars: GrubenvVars): Buffer {
  const lines: string[] = [];
  for (const [key, value] of entriesOf(vars, 'encode')) {
    if (value === null) continue;
    lines.push(`${key}=${escapeValue(value)}\n`);
  }
  const body = Buffer.from(GRUBENV_SIGNATURE + lines.join(''), 'utf8');
  if (body.length > GRUBENV_SIZE) {
    throw new KeelError(
      'EGRUBENV',
      `cannot encode grubenv: ${body.length} bytes of variables do not fit in ${GRUBENV_SIZE}`,
    );
  }
  const out = Buffer.alloc(GRUBENV_SIZE, '#');
  body.copy(out);
  return out;
}

/** Decodes a 1024-byte grubenv into its variables, skipping comment lines and '#' padding. */
export function decodeGrubenv(buf: Buffer): Map<string, string> {
  if (!Buffer.isBuffer(buf)) throw new TypeError(`cannot decode grubenv: expected a Buffer, received ${typeof buf}`);
  if (buf.length !== GRUBENV_SIZE)
    throw new KeelError('EGRUBENV', `cannot decode grubenv: expected ${GRUBENV_SIZE} bytes, received ${buf.length}`);
  if (buf.toString('latin1', 0, GRUBENV_SIGNATURE.length) !== GRUBENV_SIGNATURE) {
    throw new KeelError('EGRUBENV', 'cannot decode grubenv: missing "# GRUB Environment Block" signature');
  }
  const vars = new Map<string, string>();
  let p = GRUBENV_SIGNATURE.length;
  // Same walk as grub_envblk_iterate: a line starting with '#' is a comment (the padding is one
  // long comment), otherwise NAME=VALUE up to an unescaped newline, where '\' escapes the next byte.
  while (p < buf.length) {
    if (buf[p] === 0x23 /* # */) {
      p = nextLine(buf, p);
      continue;
    }
    const eq = buf.indexOf(0x3d /* = */, p);
    const nl = buf.indexOf(0x0a, p);
    if (eq < 0 || (nl >= 0 && nl < eq))
      throw new KeelError('EGRUBENV', `cannot decode grubenv: line at offset ${p} has no '='`);
    const value: number[] = [];
    let q = eq + 1;
    while (q < buf.length && buf[q] !== 0x0a) {
      if (buf[q] === 0x5c /* \ */) q++;
      if (q < buf.length) value.push(buf[q]);
      q++;
    }
    if (q >= buf.length)
      throw new KeelError('EGRUBENV', `cannot decode grubenv: variable at offset ${p} has no terminating newline`);
    vars.set(buf.toString('utf8', p, eq), Buffer.from(value).toString('utf8'));
    p = q + 1;
  }
  return vars;
}

/** Sets (or, with null, removes) variables in a grubenv; existing ones keep their place, new ones go last. */
export function setGrubenvVars(buf: Buffer, updates: GrubenvUpdates): Buffer {
  const vars = decodeGrubenv(buf);
  for (const [key, value] of entriesOf(updates, 'update')) {
    if (value === null) vars.delete(key);
    else vars.set(key, value);
  }
  return encodeGrubenv([...vars]);
}

// Pairs from either form, with names and values checked so GRUB reads back what was written.
function entriesOf(vars: GrubenvUpdates, verb: string): [string, string | null][] {
  if (vars === null || typeof vars !== 'object')
    throw new TypeError(
      `cannot ${verb} grubenv: expected an object or [key, value] pairs, ` +
        `received ${vars === null ? 'null' : typeof vars}`,
    );
  const pairs = Array.isArray(vars) ? vars : Object.entries(vars);
  const seen = new Set<string>();
  for (const pair of pairs) {
    const [key, value] = Array.isArray(pair) ? pair : [pair, undefined];
    // Why: GRUB ends a name at the first '=', treats a line starting with '#' as a comment, and
    // does not unescape names, so such a name would read back as something else (or not at all).
    if (typeof key !== 'string' || !/^[^#=\n\\\0][^=\n\\\0]*$/.test(key)) {
      throw new TypeError(`cannot ${verb} grubenv: invalid variable name ${JSON.stringify(key)}`);
    }
    if (
      !(typeof value === 'string' || (value === null && verb === 'update')) ||
      (typeof value === 'string' && value.includes('\0'))
    ) {
      throw new TypeError(
        `cannot ${verb} grubenv: value of ${key} must be a string without NUL, received ${JSON.stringify(value)}`,
      );
    }
    if (verb === 'encode' && seen.has(key)) throw new TypeError(`cannot encode grubenv: variable ${key} given twice`);
    seen.add(key);
  }
  return pairs as [string, string | null][];
}

// grub_envblk_set escapes exactly backslash and newline with a backslash.
function escapeValue(value: string): string {
  return value.replace(/[\\\n]/g, (c) => `\\${c}`);
}

// find_next_line in envblk.c: skip escaped bytes, stop after the next newline.
function nextLine(buf: Buffer, p: number): number {
  while (p < buf.length) {
    if (buf[p] === 0x5c) p += 2;
    else if (buf[p] === 0x0a) break;
    else p++;
  }
  return p + 1;
}
