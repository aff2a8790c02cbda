// Update servers for the QEMU update tests: payloads made from the built image (as `keel payload`
// makes them) or derived from its USR with a change, signed with the checkout's update key, and
// served over HTTP on the host's loopback (the guest reaches it as 10.0.2.2).
import { execFileSync } from 'node:child_process';
import { closeSync, existsSync, mkdirSync, openSync, readFileSync, readSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import { join } from 'node:path';
import { repoRoot } from '../../builder/bundle.js';
import { parseGpt } from '../../builder/gpt.js';
import { CHUNK_SIZE, makePayload, manifestFor, signManifest } from '../../builder/payload.js';
import { parseRange, serveDirectory } from '../../builder/serve.js';
import { appendVerity, veritySaltFor, verityUuidFor } from '../../slots/verity.js';

/** The key `make image` baked into the image. */
export const updateKey = () => join(repoRoot(), 'keys/keel-update.key');

/** Byte offset of USR-A in a built image. */
export function usrOffset(image: string): number {
  const head = Buffer.alloc(34 * 512);
  const fd = openSync(image, 'r');
  try {
    readSync(fd, head, 0, head.length, 0);
  } finally {
    closeSync(fd);
  }
  const p = parseGpt(head).partitions.find((x) => x.name === 'USR-A');
  if (!p) throw new Error(`${image} has no USR-A`);
  return Number(p.firstLba) * 512;
}

/** A static update server on 127.0.0.1 serving `dir`; the group directory is `stable`. */
export class UpdateServer {
  private constructor(
    readonly dir: string,
    private server: Server,
    readonly port: number,
  ) {}

  static async start(dir: string, o: { bytesPerSecond?: number } = {}): Promise<UpdateServer> {
    mkdirSync(join(dir, 'stable'), { recursive: true });
    const server = o.bytesPerSecond
      ? await slowServer(dir, o.bytesPerSecond)
      : await serveDirectory(dir, 0, '127.0.0.1');
    return new UpdateServer(dir, server, (server.address() as { port: number }).port);
  }

  /** The SERVER= the guest uses. */
  get guestUrl(): string {
    return `http://10.0.2.2:${this.port}`;
  }

  /** Publishes the built image's USR as `version`. */
  publish(image: string, version: string): void {
    this.clear();
    makePayload({ image, key: updateKey(), outDir: join(this.dir, 'stable'), version, usrOffset: usrOffset(image) });
  }

  /** Publishes a USR derived from the image's, changed by `change(root)` (run as root: ownership kept). */
  publishDerived(image: string, version: string, change: (root: string) => void): void {
    this.clear();
    const work = join(this.dir, 'derive');
    rmSync(work, { recursive: true, force: true });
    mkdirSync(work);
    const built = JSON.parse(readFileSync(image.replace(/keel\.img$/, 'keel.manifest.json'), 'utf8'));
    const squash = Buffer.alloc(built.usr.verity.hashOffset);
    const fd = openSync(image, 'r');
    try {
      readSync(fd, squash, 0, squash.length, usrOffset(image));
    } finally {
      closeSync(fd);
    }
    writeFileSync(join(work, 'usr.squashfs'), squash);
    execFileSync('unsquashfs', ['-q', '-n', '-d', join(work, 'root'), join(work, 'usr.squashfs')], { stdio: 'ignore' });
    change(join(work, 'root'));
    const out = join(work, 'new.squashfs');
    // gzip at level 1: the test needs a valid USR quickly, not a small one.
    execFileSync(
      'mksquashfs',
      [join(work, 'root'), out, '-comp', 'gzip', '-Xcompression-level', '1', '-noappend', '-quiet', '-no-progress'],
      { stdio: 'ignore' },
    );
    const v = appendVerity(out, {
      salt: veritySaltFor(`derived-${version}`),
      uuid: verityUuidFor(`derived-${version}`),
    });
    const data = readFileSync(out);
    const name = `usr-${version}.img`;
    writeFileSync(join(this.dir, 'stable', name), data);
    const { bytes, signature } = signManifest(
      manifestFor(data, version, name, CHUNK_SIZE, {
        rootHash: v.rootHash,
        hashOffset: v.hashOffset,
        salt: v.salt.toString('hex'),
      }),
      readFileSync(updateKey(), 'utf8'),
    );
    writeFileSync(join(this.dir, 'stable', 'manifest.json'), bytes);
    writeFileSync(join(this.dir, 'stable', 'manifest.json.sig'), signature + '\n');
    rmSync(work, { recursive: true, force: true });
  }

  private clear(): void {
    rmSync(join(this.dir, 'stable'), { recursive: true, force: true });
    mkdirSync(join(this.dir, 'stable'), { recursive: true });
  }

  close(): void {
    this.server.close();
  }
}

/** Like keel serve, but at most `rate` bytes a second: long enough to cut the power mid-download. */
function slowServer(dir: string, rate: number): Promise<Server> {
  const server = createServer((req, res) => {
    const file = join(dir, decodeURIComponent((req.url ?? '/').split('?')[0]));
    if (!file.startsWith(dir) || !existsSync(file)) {
      res.writeHead(404).end();
      return;
    }
    const data = readFileSync(file);
    const r = parseRange(req.headers.range, data.length);
    if (r === 'invalid') {
      res.writeHead(416).end();
      return;
    }
    const { start, end } = r ?? { start: 0, end: data.length - 1 };
    res.writeHead(r ? 206 : 200, {
      'content-length': String(end - start + 1),
      ...(r ? { 'content-range': `bytes ${start}-${end}/${data.length}` } : {}),
    });
    let off = start;
    const piece = Math.max(1, Math.floor(rate / 10));
    const timer = setInterval(() => {
      if (res.destroyed) {
        clearInterval(timer);
        return;
      }
      const n = Math.min(piece, end + 1 - off);
      res.write(data.subarray(off, off + n));
      off += n;
      if (off > end) {
        clearInterval(timer);
        res.end();
      }
    }, 100);
    res.on('close', () => clearInterval(timer));
  });
  return new Promise((resolve) => server.listen(0, '127.0.0.1', () => resolve(server)));
}

/** User-data that points the machine's update agent at `server`. */
export function updateUserData(server: UpdateServer, conf: Record<string, string | number>, extra = ''): string {
  const lines = Object.entries({ SERVER: server.guestUrl, ...conf })
    .map(([k, v]) => `      ${k}=${v}`)
    .join('\n');
  return `#cloud-config
write_files:
  - path: /etc/keel/update.conf
    content: |
${lines}
${extra}`;
}
