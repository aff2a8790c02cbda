// The small matchers systemd's conditions share: fnmatch globs, version order and comparison
// operators. Pure.

/** fnmatch(3) without flags: `*`, `?`, `[...]` (with `!`/`^` negation) and backslash escapes. */
export function fnmatch(pattern: string, text: string, caseFold = false): boolean {
  let re = '';
  for (let i = 0; i < pattern.length; i++) {
    const ch = pattern[i];
    if (ch === '*') re += '.*';
    else if (ch === '?') re += '.';
    else if (ch === '\\' && i + 1 < pattern.length) re += escape(pattern[++i]);
    else if (ch === '[') {
      const end = pattern.indexOf(']', i + 2);
      if (end < 0) {
        re += '\\[';
        continue;
      }
      let set = pattern.slice(i + 1, end);
      const neg = set[0] === '!' || set[0] === '^';
      if (neg) set = set.slice(1);
      re += `[${neg ? '^' : ''}${set.replace(/[\\\]]/g, '\\$&')}]`;
      i = end;
    } else re += escape(ch);
  }
  return new RegExp(`^${re}$`, caseFold ? 'is' : 's').test(text);
}

const escape = (c: string) => c.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&');

/** Orders versions as systemd's strverscmp_improved does: digit runs by value, '~' before anything. */
export function compareVersions(a: string, b: string): number {
  const parts = (s: string) => s.match(/~|\d+|[a-zA-Z]+|[^~\da-zA-Z]+/g) ?? [];
  const pa = parts(a);
  const pb = parts(b);
  for (let i = 0; i < Math.max(pa.length, pb.length); i++) {
    const x = pa[i];
    const y = pb[i];
    if (x === y) continue;
    if (x === '~') return -1;
    if (y === '~') return 1;
    if (x === undefined) return -1;
    if (y === undefined) return 1;
    const nx = /^\d/.test(x);
    const ny = /^\d/.test(y);
    if (nx && ny) {
      const d = BigInt(x) - BigInt(y);
      if (d !== 0n) return d < 0n ? -1 : 1;
      continue;
    }
    if (nx !== ny) return nx ? 1 : -1; // a number sorts after letters and punctuation
    return x < y ? -1 : 1;
  }
  return 0;
}

/** A comparison operator at the start of an expression. */
export type CompareOp = '<' | '<=' | '=' | '!=' | '>=' | '>';

/** Splits "OP rest" (the longest operator first); null when there is no operator. */
export function splitOperator(s: string): { op: CompareOp; rest: string } | null {
  for (const op of ['<=', '>=', '!=', '<', '>', '='] as const)
    if (s.startsWith(op)) return { op, rest: s.slice(op.length).trim() };
  return null;
}

/** Whether `order` (negative, zero, positive: left against right) satisfies `op`. */
export function orderHolds(op: CompareOp, order: number): boolean {
  switch (op) {
    case '<':
      return order < 0;
    case '<=':
      return order <= 0;
    case '=':
      return order === 0;
    case '!=':
      return order !== 0;
    case '>=':
      return order >= 0;
    case '>':
      return order > 0;
  }
}
