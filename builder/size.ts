// Byte sizes written the way people write them in image definitions: 512MiB, 2G, 4096.

const UNITS: Record<string, number> = {
  '': 1,
  B: 1,
  K: 1024,
  KB: 1000,
  KIB: 1024,
  M: 1024 ** 2,
  MB: 1000 ** 2,
  MIB: 1024 ** 2,
  G: 1024 ** 3,
  GB: 1000 ** 3,
  GIB: 1024 ** 3,
};

/** Parses "32MiB", "1G" or 4096 into bytes; throws a TypeError naming the value when it cannot. */
export function parseSize(value: string | number): number {
  if (typeof value === 'number' && Number.isSafeInteger(value) && value >= 0) return value;
  const m = /^\s*(\d+)\s*([a-zA-Z]*)\s*$/.exec(String(value));
  const unit = m ? UNITS[m[2].toUpperCase()] : undefined;
  if (!m || unit === undefined)
    throw new TypeError(`not a size: ${JSON.stringify(value)} (use e.g. 512MiB, 2G or 4096)`);
  const bytes = Number(m[1]) * unit;
  if (!Number.isSafeInteger(bytes)) throw new TypeError(`not a size: ${JSON.stringify(value)} (too large)`);
  return bytes;
}
