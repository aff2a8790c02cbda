// Option values every verb parses the same way.

/** A whole number option (-t 10, -n 20), or a TypeError naming the verb, option and value; `all` (for -n) is null. */
export function wholeNumber(value: unknown, option: string, verb: string, o: { all?: boolean } = {}): number | null {
  const s = String(value).trim();
  if (o.all && s === 'all') return null;
  if (!/^\d+$/.test(s))
    throw new TypeError(
      `${verb}: invalid ${option} ${JSON.stringify(String(value))} (use a whole number${o.all ? ' or all' : ''})`,
    );
  return Number(s);
}
