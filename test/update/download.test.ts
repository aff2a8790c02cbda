import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { manifestFor, type UpdateManifest } from '../../builder/payload.js';
import { serveDirectory } from '../../builder/serve.js';
import {
  downloadToTarget,
  readBack,
  type Checkpoint,
  type DownloadOptions,
  type DownloadProgress,
} from '../../update/download.js';
import type { KeelError } from '../../lib/errors.js';
import { callsAfterRename, recordingFs } from '../lib/recording-fs.js';

const CHUNK = 64 * 1024;
const SIZE = 2 * 1024 * 1024 + 12345; // a short last chunk
const SLOT = 3 * 1024 * 1024;
const OLD = 0xaa; // what the target holds before the update

/** How the test server misbehaves. */
interface Behaviour {
  ignoreRange?: boolean;
  /** Drop the connection of the first N requests after a few bytes of body. */
  dropRequests?: number;
  /** Drop every connection after this many body bytes. */
  dropAfter?: number;
  /** Send this many body bytes, then nothing more (call onStall once they are flushed). */
  stallAfter?: number;
  onStall?: () => void;
}

interface TestServer {
  url: (name: string) => string;
  sent: () => number;
  requests: () => number;
  close: () => Promise<void>;
}

/** A static server over `dir` that can drop, stall, ignore Range and redirect /moved/NAME to /NAME. */
async function startServer(dir: string, b: Behaviour = {}): Promise<TestServer> {
  let sent = 0,
    requests = 0;
  const server = createServer((req, res) => {
    requests++;
    const path = (req.url ?? '/').split('?')[0];
    if (path.startsWith('/moved/')) {
      res.writeHead(302, { location: path.slice('/moved'.length) }).end();
      return;
    }
    const data = readFileSync(join(dir, path.slice(1)));
    const r = b.ignoreRange ? null : /^bytes=(\d+)-(\d+)$/.exec(req.headers.range ?? '');
    const start = r ? Number(r[1]) : 0,
      end = r ? Math.min(Number(r[2]), data.length - 1) : data.length - 1;
    res.writeHead(r ? 206 : 200, {
      'content-length': String(end - start + 1),
      ...(r ? { 'content-range': `bytes ${start}-${end}/${data.length}` } : {}),
    });
    const body = data.subarray(start, end + 1);
    const cut = requests <= (b.dropRequests ?? 0) ? 1000 : (b.dropAfter ?? b.stallAfter);
    if (cut === undefined || cut >= body.length) {
      sent += body.length;
      res.end(body);
      return;
    }
    sent += cut;
    res.write(body.subarray(0, cut), () => (b.stallAfter !== undefined ? b.onStall?.() : res.destroy()));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return wrap(
    server,
    () => sent,
    () => requests,
  );
}

function wrap(server: Server, sent = () => 0, requests = () => 0): TestServer {
  const port = (server.address() as AddressInfo).port;
  return {
    url: (name) => `http://127.0.0.1:${port}/${name}`,
    sent,
    requests,
    close: () => {
      server.closeAllConnections();
      return new Promise((resolve) => server.close(() => resolve()));
    },
  };
}

describe('update/download (resumable, verified image download)', function () {
  let dir: string,
    served = '',
    image: Buffer,
    manifest: UpdateManifest;
  let n = 0;
  const servers: TestServer[] = [];
  const serve = async (b?: Behaviour) => {
    const s = await startServer(served, b);
    servers.push(s);
    return s;
  };

  before(() => {
    dir = mkdtempSync(join(tmpdir(), 'keel-download-'));
    image = randomBytes(SIZE);
    manifest = manifestFor(image, '1.0.0', 'usr-1.0.0.img', CHUNK);
  });
  afterEach(async () => {
    while (servers.length) await servers.pop()!.close();
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  /** A fresh slot filled with OLD, a checkpoint path, and the image (or `data`) on the served directory. */
  function setup(data: Buffer = image): { target: string; checkpointFile: string } {
    served = mkdtempSync(join(dir, 'www-'));
    writeFileSync(join(served, manifest.image), data);
    const target = join(dir, `slot-${++n}`);
    writeFileSync(target, Buffer.alloc(SLOT, OLD));
    return { target, checkpointFile: join(dir, `checkpoint-${n}.json`) };
  }

  function options(
    s: TestServer,
    t: { target: string; checkpointFile: string },
    more: Partial<DownloadOptions> = {},
  ): DownloadOptions {
    return { url: s.url(manifest.image), manifest, manifestSha256: 'm1', targetSize: SLOT, ...t, ...more };
  }

  function assertImageOn(target: string): void {
    const bytes = readFileSync(target);
    assert.ok(bytes.subarray(0, SIZE).equals(image), 'the image is at offset 0');
    assert.ok(bytes.subarray(SIZE).equals(Buffer.alloc(SLOT - SIZE, OLD)), 'bytes after the image are untouched');
  }

  const checkpoint = (file: string): Checkpoint => JSON.parse(readFileSync(file, 'utf8'));

  it('downloads the whole image to offset 0, leaves the rest of the slot alone, and reads back ok', async () => {
    const t = setup();
    const s = wrap(await serveDirectory(served, 0));
    servers.push(s);
    const seen: DownloadProgress[] = [];
    // A clock that moves 100 ms at every read: the start, one read per chunk's progress, the final one, the result.
    let clock = 0;
    const now = () => {
      const t = clock;
      clock += 100;
      return t;
    };
    const at: number[] = [];
    const r = await downloadToTarget(
      options(s, t, {
        now,
        progress: (p) => {
          seen.push(p);
          at.push(clock - 100);
        },
      }),
    );
    assertImageOn(t.target);
    assert.equal(r.resumedChunks, 0);
    assert.equal(r.downloadedBytes, SIZE);
    assert.deepEqual(await readBack(t.target, manifest), { ok: true });
    assert.deepEqual(checkpoint(t.checkpointFile), {
      manifestSha256: 'm1',
      target: t.target,
      done: manifest.chunks.map((_, i) => i),
    });
    // 33 chunks read the clock at 100..3300 ms: one call, then none until 250 ms have passed; the final one always.
    const chunks = manifest.chunks.length;
    assert.equal(chunks, 33);
    assert.deepEqual(at, [...[...Array(11).keys()].map((k) => 100 + 300 * k), 3400], 'progress is throttled to 250 ms');
    assert.equal(r.seconds, 3.5);
    assert.deepEqual(seen.at(-1), { doneBytes: SIZE, totalBytes: SIZE, resumedBytes: 0, bytesPerSecond: SIZE / 3.4 });
  });

  it(
    'progress: bytesPerSecond is the bytes downloaded (not resumed) over the ' +
      'seconds since the start (it was compared with itself)',
    async () => {
      const t = setup();
      await assert.rejects(downloadToTarget(options(await serve({ dropAfter: SIZE >> 1 }), t, { retries: 0 })));
      const resumed = checkpoint(t.checkpointFile).done.length;
      assert.ok(resumed > 0);
      // A clock that reads 1000 ms at the start and 3000 ms ever after: every rate is over 2 s.
      let reads = 0;
      const seen: DownloadProgress[] = [];
      const r = await downloadToTarget(
        options(await serve(), t, { now: () => (reads++ === 0 ? 1000 : 3000), progress: (p) => seen.push(p) }),
      );
      assert.equal(r.seconds, 2);
      assert.equal(r.downloadedBytes, SIZE - resumed * CHUNK);
      assert.deepEqual(seen.at(-1), {
        doneBytes: SIZE,
        totalBytes: SIZE,
        resumedBytes: resumed * CHUNK,
        bytesPerSecond: r.downloadedBytes / 2,
      });
      assertImageOn(t.target);
    },
  );

  it('resumes after a dropped connection, fetching only the missing chunks', async () => {
    const t = setup();
    const dropping = await serve({ dropAfter: Math.floor(SIZE * 0.45) });
    await assert.rejects(
      downloadToTarget(options(dropping, t, { retries: 0 })),
      (e: KeelError) => e.code === 'EDOWNLOAD' && /closed after|aborted|reset/.test(e.message),
    );
    // Node discards body bytes not yet read when the connection drops, so fewer chunks may have landed than were sent.
    const done = checkpoint(t.checkpointFile).done;
    assert.ok(done.length > 0 && done.length <= Math.floor((SIZE * 0.45) / CHUNK));
    assert.deepEqual(done, [...Array(done.length).keys()], 'the checkpoint lists the chunks received, in order');

    const good = await serve();
    const r = await downloadToTarget(options(good, t));
    assert.equal(r.resumedChunks, done.length);
    assert.equal(r.downloadedBytes, SIZE - done.length * CHUNK);
    assert.equal(good.sent(), r.downloadedBytes, 'the server sent only the missing chunks');
    assertImageOn(t.target);
    assert.deepEqual(await readBack(t.target, manifest), { ok: true });
  });

  it('stops promptly on abort, leaving a checkpoint of what was received, then resumes', async () => {
    const t = setup();
    const ac = new AbortController();
    const whole = 17; // not a multiple of syncEveryChunks: the last ones are flushed by the abort
    const landed = () =>
      readFileSync(t.target)
        .subarray(0, whole * CHUNK)
        .equals(image.subarray(0, whole * CHUNK));
    const abortOnceLanded = () => {
      const poll = setInterval(() => {
        if (landed()) {
          clearInterval(poll);
          ac.abort();
        }
      }, 10);
    };
    const stalling = await serve({ stallAfter: whole * CHUNK + 1000, onStall: abortOnceLanded });
    // Nothing but the abort can end this download: the server never sends more and the idle timeout is a day,
    // so a late abort shows as mocha's timeout, not as a pass.
    await assert.rejects(
      downloadToTarget(options(stalling, t, { signal: ac.signal, timeoutMs: 86_400_000 })),
      (e: KeelError) => e.code === 'EABORT' && e.cause === ac.signal.reason,
    );
    assert.deepEqual(checkpoint(t.checkpointFile).done, [...Array(whole).keys()]);

    const r = await downloadToTarget(options(await serve(), t));
    assert.equal(r.resumedChunks, whole);
    assertImageOn(t.target);
  });

  it('times out a server that stops sending, as a network failure', async () => {
    const t = setup();
    const stalling = await serve({ stallAfter: 3 * CHUNK });
    await assert.rejects(
      downloadToTarget(options(stalling, t, { retries: 0, timeoutMs: 300 })),
      /cannot download .*: 1 attempt in a row failed; last error: cannot GET .*: no data for 300 ms/,
    );
    const done = checkpoint(t.checkpointFile).done;
    assert.deepEqual(done, [0, 1, 2].slice(0, done.length), 'the chunks received before the stall are checkpointed');
  });

  it('ignores a checkpoint of another update, and re-fetches checkpointed chunks that no longer match', async () => {
    const t = setup();
    writeFileSync(t.target, image); // already right, but the checkpoint cannot vouch for it
    writeFileSync(t.target, Buffer.alloc(SLOT - SIZE, OLD), { flag: 'a' });
    const all = manifest.chunks.map((_, i) => i);
    writeFileSync(t.checkpointFile, JSON.stringify({ manifestSha256: 'other', target: t.target, done: all }));
    const s = await serve();
    const r = await downloadToTarget(options(s, t));
    assert.equal(r.resumedChunks, 0);
    assert.equal(s.sent(), SIZE);

    // Same update and target, but chunk 3 was overwritten since: the bytes win over the list.
    const fd = readFileSync(t.target);
    fd[3 * CHUNK + 7] ^= 1;
    writeFileSync(t.target, fd);
    const r2 = await downloadToTarget(options(s, t));
    assert.equal(r2.resumedChunks, all.length - 1);
    assert.equal(r2.downloadedBytes, CHUNK);
    assertImageOn(t.target);
  });

  it('rejects a tampered chunk naming it, never writes it and never checkpoints it', async () => {
    const bad = Buffer.from(image);
    bad[5 * CHUNK + 100] ^= 0xff;
    const t = setup(bad);
    const s = await serve();
    await assert.rejects(downloadToTarget(options(s, t)), (e: KeelError) => {
      assert.equal(e.code, 'ECHUNKFATAL');
      assert.match(
        e.message,
        new RegExp(
          `chunk 5 of ${s.url(manifest.image)}: its sha256 is [0-9a-f]{64}, ` +
            `the signed manifest says ${manifest.chunks[5]}`,
        ),
      );
      return true;
    });
    assert.equal(s.requests(), 3, 'a bad chunk is fetched again twice, no more');
    const bytes = readFileSync(t.target);
    assert.ok(bytes.subarray(5 * CHUNK, 6 * CHUNK).equals(Buffer.alloc(CHUNK, OLD)), 'the bad chunk is not written');
    assert.ok(bytes.subarray(0, 5 * CHUNK).equals(image.subarray(0, 5 * CHUNK)), 'the chunks before it are');
    assert.deepEqual(checkpoint(t.checkpointFile).done, [0, 1, 2, 3, 4]);
  });

  it(
    'checkpoint.json: each write has a temp file of its own (not ' +
      'checkpoint.json.tmp) and the directory is fsynced after the rename',
    async () => {
      const t = setup();
      const { fs, calls } = recordingFs();
      await downloadToTarget(options(await serve(), t, { fs }));
      const temps = calls.filter((c) => c.call === 'rename' && c.to === t.checkpointFile).map((c) => c.path);
      assert.ok(temps.length >= 2, `resume's checkpoint and at least one after a flush (${temps.length})`);
      assert.equal(new Set(temps).size, temps.length, temps.join(', '));
      assert.ok(
        temps.every((p) => !p.endsWith('.tmp')),
        temps.join(', '),
      );
      for (const after of callsAfterRename(calls, t.checkpointFile)) {
        assert.deepEqual(
          after.map((c) => [c.call, c.path]),
          [
            ['open r', dir],
            ['fsync', dir],
            ['close', dir],
          ],
        );
      }
      assertImageOn(t.target);
    },
  );

  it('refuses an image larger than the target before writing anything', async () => {
    const t = setup();
    const s = await serve();
    await assert.rejects(
      downloadToTarget(options(s, t, { targetSize: SIZE - 1 })),
      /cannot write .* the image is \d+ bytes, the target holds only \d+/,
    );
    assert.ok(readFileSync(t.target).equals(Buffer.alloc(SLOT, OLD)));
    assert.equal(s.requests(), 0);
    assert.equal(existsSync(t.checkpointFile), false);
  });

  it('refuses a server whose size disagrees with the manifest (Content-Range and Content-Length)', async () => {
    const t = setup(Buffer.concat([image, Buffer.from('x')]));
    const ranged = wrap(await serveDirectory(served, 0));
    servers.push(ranged);
    const says = new RegExp(`server says ${SIZE + 1} bytes, the signed manifest says ${SIZE}`);
    await assert.rejects(downloadToTarget(options(ranged, t)), says);
    await assert.rejects(downloadToTarget(options(await serve({ ignoreRange: true }), t)), says);
    assert.ok(readFileSync(t.target).equals(Buffer.alloc(SLOT, OLD)));
  });

  it('resumes correctly from a server that ignores Range', async () => {
    const t = setup();
    await assert.rejects(downloadToTarget(options(await serve({ dropAfter: SIZE >> 1 }), t, { retries: 0 })));
    const whole = await serve({ ignoreRange: true });
    const r = await downloadToTarget(options(whole, t));
    assert.ok(r.resumedChunks > 0);
    assert.equal(whole.requests(), 1, 'one whole-body request fills every gap');
    assertImageOn(t.target);
    assert.deepEqual(await readBack(t.target, manifest), { ok: true });
  });

  it('follows redirects, to another server too', async () => {
    const t = setup();
    const real = wrap(await serveDirectory(served, 0));
    servers.push(real);
    const redirector = createServer((req, res) => res.writeHead(302, { location: real.url(manifest.image) }).end());
    await new Promise<void>((resolve) => redirector.listen(0, '127.0.0.1', resolve));
    const r302 = wrap(redirector);
    servers.push(r302);
    await downloadToTarget(options(r302, t));
    assertImageOn(t.target);

    const t2 = setup();
    const local = await serve(); // relative Location on the same server
    await downloadToTarget({ ...options(local, t2), url: local.url(`moved/${manifest.image}`) });
    assertImageOn(t2.target);
  });

  it('readBack names the chunk of a flipped byte, and a short target', async () => {
    const t = setup();
    writeFileSync(t.target, image);
    assert.deepEqual(await readBack(t.target, manifest), { ok: true });
    const bytes = readFileSync(t.target);
    bytes[17 * CHUNK + 1] ^= 0x10;
    writeFileSync(t.target, bytes);
    const r = await readBack(t.target, manifest);
    assert.equal(r.ok, false);
    assert.match(
      (r as { reason: string }).reason,
      /^chunk 17 \(bytes 1114112-1179647\) of .* has sha256 [0-9a-f]{64}, the signed manifest says /,
    );
    writeFileSync(t.target, image.subarray(0, SIZE - 10));
    assert.match(
      ((await readBack(t.target, manifest)) as { reason: string }).reason,
      new RegExp(`ends after ${SIZE - 10} bytes`),
    );
  });

  it('retries dropped connections with backoff, and gives up naming the URL and the last error', async () => {
    const t = setup();
    const flaky = await serve({ dropRequests: 2 });
    const t0 = performance.now();
    const r = await downloadToTarget(options(flaky, t));
    assert.equal(flaky.requests(), 3);
    assert.ok(performance.now() - t0 >= 550, 'backoff 200 ms then 400 ms');
    assert.ok(r.downloadedBytes >= SIZE && r.downloadedBytes <= SIZE + 2000);
    assertImageOn(t.target);

    const t2 = setup();
    const flaky2 = await serve({ dropRequests: 2 });
    await assert.rejects(downloadToTarget(options(flaky2, t2, { retries: 1 })), (e: KeelError) => {
      assert.equal(e.code, 'EDOWNLOAD');
      assert.match(
        e.message,
        new RegExp(`^cannot download ${flaky2.url(manifest.image)}: 2 attempts in a row failed; last error: .+`),
      );
      return true;
    });
  });

  it('keeps going while each attempt makes progress, however many attempts it takes', async () => {
    const t = setup();
    const s = await serve({ dropAfter: 10 * CHUNK + 1 });
    await downloadToTarget(options(s, t, { retries: 1 }));
    assert.ok(s.requests() >= 4, 'at most 10 chunks per attempt');
    assertImageOn(t.target);
  });
});
