// The builder's cache outside the checkout: fetched packages and the outputs of expensive steps.
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, renameSync, rmSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';

export { sha256File, sha256Hex } from '../lib/hash.js';

/** The cache root: $KEEL_CACHE, else $XDG_CACHE_HOME/keel, else ~/.cache/keel. */
export function cacheRoot(env: NodeJS.ProcessEnv = process.env): string {
  if (env.KEEL_CACHE) return env.KEEL_CACHE;
  return join(env.XDG_CACHE_HOME || join(homedir(), '.cache'), 'keel');
}

/** sha256 over a list of strings and buffers, hex: the key of a cached step. */
export function keyOf(...parts: (string | Buffer)[]): string {
  const h = createHash('sha256');
  for (const p of parts) h.update(typeof p === 'string' ? Buffer.from(p) : p).update('\0');
  return h.digest('hex').slice(0, 24);
}

/**
 * Runs `produce(tmpDir)` unless `root/steps/name-key` already exists; the directory appears
 * atomically (renamed into place), so an interrupted build never leaves a half-made entry.
 */
export async function cachedDir(
  root: string,
  name: string,
  key: string,
  produce: (dir: string) => Promise<void>,
  opts: { enabled?: boolean } = {},
): Promise<{ dir: string; hit: boolean }> {
  const dir = join(root, 'steps', `${name}-${key}`);
  if (opts.enabled !== false && existsSync(dir)) return { dir, hit: true };
  const tmp = `${dir}.tmp-${process.pid}`;
  rmSync(tmp, { recursive: true, force: true });
  mkdirSync(tmp, { recursive: true });
  try {
    await produce(tmp);
    rmSync(dir, { recursive: true, force: true });
    renameSync(tmp, dir);
  } catch (e) {
    rmSync(tmp, { recursive: true, force: true });
    throw e;
  }
  return { dir, hit: false };
}
