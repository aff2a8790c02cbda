// Test helpers for the container image side: a tiny tar writer that is independent of the code
// under test (to craft hostile archives), umoci-built images, and temp dirs.
import { execFileSync, spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { chmodSync, lstatSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { repoRoot } from '../../builder/bundle.js';
import type { ImageRecord, ImageStore } from '../../containers/store.js';
import type { ContainerDb } from '../../containers/db.js';

export interface RawEntry {
  name: string;
  /** '0' file, '1' hard link, '2' symlink, '3' char device, '5' dir, '6' fifo. */
  type?: string;
  data?: Buffer | string;
  linkname?: string;
  mode?: number;
  /** Size written in the header when it must differ from the data (truncated archives). */
  size?: number;
}

/** A ustar archive written naively: names go in verbatim, whatever they are. */
export function rawTar(entries: RawEntry[], opts: { end?: boolean } = {}): Buffer {
  const parts: Buffer[] = [];
  for (const e of entries) {
    const data = Buffer.from(e.data ?? '');
    const h = Buffer.alloc(512);
    h.write(e.name, 0, 100, 'utf8');
    h.write(`${(e.mode ?? 0o644).toString(8).padStart(7, '0')}\0`, 100);
    h.write('0000000\0', 108);
    h.write('0000000\0', 116);
    h.write(`${(e.size ?? data.length).toString(8).padStart(11, '0')}\0`, 124);
    h.write(`${(1_600_000_000).toString(8).padStart(11, '0')}\0`, 136);
    h.write(e.type ?? '0', 156);
    h.write(e.linkname ?? '', 157, 100, 'utf8');
    h.write('ustar\u000000', 257, 'latin1');
    h.fill(0x20, 148, 156);
    let sum = 0;
    for (const b of h) sum += b;
    h.write(`${sum.toString(8).padStart(6, '0')}\0 `, 148);
    parts.push(h, data, Buffer.alloc((512 - (data.length % 512)) % 512));
  }
  if (opts.end !== false) parts.push(Buffer.alloc(1024));
  return Buffer.concat(parts);
}

export function tempDir(prefix: string): string {
  return mkdtempSync(join(tmpdir(), `keel-${prefix}-`));
}

/** Removes a test's directory, even one an archive unpacked with directories its owner cannot write or enter. */
export function removeDir(dir: string): void {
  // Root ignores modes; anyone else needs rwx on a directory to empty it (a tar's "t/" entry may be 0644).
  ownerRwxDirs(dir);
  rmSync(dir, { recursive: true, force: true });
}

function ownerRwxDirs(dir: string): void {
  let st;
  try {
    st = lstatSync(dir);
  } catch {
    return;
  } // already gone
  if (!st.isDirectory()) return;
  chmodSync(dir, st.mode | 0o700);
  for (const name of readdirSync(dir)) ownerRwxDirs(join(dir, name));
}

export function run(cmd: string, args: string[], cwd?: string): string {
  return execFileSync(cmd, args, { cwd, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
}

export function sha256(data: Buffer | string): string {
  return `sha256:${createHash('sha256').update(data).digest('hex')}`;
}

/**
 * Builds `layout:tag` with umoci: starting from `from` (a tag of the same layout) or empty, each
 * step changes the unpacked rootfs and is repacked as one layer.
 */
export function umociImage(layout: string, tag: string, steps: ((rootfs: string) => void)[], from?: string): void {
  try {
    readFileSync(join(layout, 'index.json'));
  } catch {
    run('umoci', ['init', '--layout', layout]);
  }
  if (from === undefined) run('umoci', ['new', '--image', `${layout}:${tag}`]);
  let source = from ?? tag;
  for (const step of steps) {
    const bundle = mkdtempSync(join(tmpdir(), 'keel-bundle-'));
    rmSync(bundle, { recursive: true });
    run('umoci', ['unpack', '--image', `${layout}:${source}`, bundle]);
    step(join(bundle, 'rootfs'));
    run('umoci', ['repack', '--image', `${layout}:${tag}`, bundle]);
    rmSync(bundle, { recursive: true, force: true });
    source = tag;
  }
}

/** Puts the blobs of `layout:tag` into the store and registers the image (as a pull would). */
export async function addFromLayout(
  store: ImageStore,
  layout: string,
  tag: string,
  refs: string[],
): Promise<ImageRecord> {
  const index = JSON.parse(readFileSync(join(layout, 'index.json'), 'utf8'));
  const desc = index.manifests.find((m: any) => m.annotations?.['org.opencontainers.image.ref.name'] === tag);
  const blob = (digest: string): Buffer => readFileSync(join(layout, 'blobs', 'sha256', digest.slice(7)));
  const manifest = blob(desc.digest);
  const m = JSON.parse(manifest.toString());
  for (const l of m.layers) await store.putBlob(blob(l.digest), l.digest);
  return store.addImage({
    manifest,
    manifestDigest: desc.digest,
    config: blob(m.config.digest),
    layers: m.layers,
    refs,
  });
}

export function isRoot(): boolean {
  return process.getuid?.() === 0;
}

/** The checkout's keel command. */
export const KEEL = join(repoRoot(), 'bin/keel');

/** `keel VERB --root ROOT ARGS...` run to its end: exit status, stdout, stderr. */
export function keelAt(
  root: string,
  [verb, ...args]: string[],
  input?: string,
): { code: number | null; out: string; err: string } {
  const r = spawnSync(KEEL, [verb, '--root', root, ...args], {
    encoding: 'utf8',
    timeout: 45_000,
    ...(input !== undefined ? { input } : {}),
  });
  return { code: r.status, out: r.stdout, err: r.stderr };
}

/** Polls `check` until it returns a value (not undefined), then returns it; fails naming `what` after `ms`. */
export async function eventually<T>(what: string, check: () => T | undefined, ms = 30_000): Promise<T> {
  const deadline = Date.now() + ms;
  for (;;) {
    const v = check();
    if (v !== undefined) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

/** Resolves once `text()` contains `s`; rejects if `child` exits first. */
export function outputIncludes(
  child: import('node:child_process').ChildProcess,
  text: () => string,
  s: string,
): Promise<void> {
  return new Promise((resolve, reject) => {
    const check = () => {
      if (text().includes(s)) {
        done();
        resolve();
      }
    };
    const onExit = (code: number | null) => {
      done();
      reject(new Error(`exited (${code}) before printing ${JSON.stringify(s)}: ${JSON.stringify(text())}`));
    };
    const done = () => {
      child.stdout?.off('data', check);
      child.off('exit', onExit);
    };
    child.stdout?.on('data', check);
    child.once('exit', onExit);
    check();
  });
}

/** True while a `keel container-monitor` of container `id` runs. */
export function monitorRunning(id: string): boolean {
  for (const pid of readdirSync('/proc').filter((p) => /^\d+$/.test(p))) {
    let cmd = '';
    try {
      cmd = readFileSync(`/proc/${pid}/cmdline`, 'utf8');
    } catch {
      continue;
    }
    if (cmd.includes('container-monitor') && cmd.includes(id)) return true;
  }
  return false;
}

/** A busybox container's fields for ContainerDb.create(), with `over` on top (tests that play keel run). */
export function containerFields(over: Partial<NewContainer> & Pick<NewContainer, 'argv'>): NewContainer {
  return {
    image: 'busybox',
    imageId: 'sha256:0',
    env: [],
    cwd: '/',
    user: '',
    hostname: '',
    network: 'none',
    volumes: [],
    ports: [],
    restart: { policy: 'no', max: 0 },
    readOnly: false,
    capAdd: [],
    capDrop: [],
    privileged: false,
    memory: null,
    cpus: null,
    pidsLimit: null,
    tty: false,
    interactive: false,
    autoRemove: false,
    ...over,
  };
}

type NewContainer = Parameters<ContainerDb['create']>[0];
