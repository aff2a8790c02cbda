// keel run -t / -it and keel exec -it, run for real as root on this host: bin/keel is driven
// under a real pseudo-terminal (python3's pty module) with a known window size, input typed
// once the shell shows its prompt, its output and exit status collected.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { closeSync, mkdtempSync, openSync, rmSync, writeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ReadStream } from 'node:tty';
import { repoRoot } from '../../builder/bundle.js';
import { detachScanner, encodeFrame, FRAME, frameReader, resizeFrame } from '../../containers/attach-protocol.js';
import { holdTerminal, type Terminal } from '../../containers/pty.js';
import { addBusybox } from './busybox-fixture.js';
import { ImageStore } from '../../containers/store.js';
import { isNativeError, native } from '../../native/native.js';
import { itAsRoot } from '../needs.js';

const KEEL = join(repoRoot(), 'bin/keel');

/** One of the DRIVER's input steps. */
type Step = string | { text: string; after?: string } | { size: [number, number]; after?: string };

// Runs argv on a new pty of ROWSxCOLS; performs the INPUT steps once something was printed (the
// prompt) and then each once more output came (or the text `after` did; or 5 s passed): a string
// or { text } is typed, { size: [ROWS, COLS] } resizes the terminal (its foreground gets SIGWINCH);
// prints everything read from the pty, then exits as the command did.
const DRIVER = String.raw`
import fcntl, json, os, pty, select, struct, sys, termios, time
cfg = json.loads(os.environ['PTY_DRIVER'])
pid, fd = pty.fork()
if pid == 0:
    fcntl.ioctl(0, termios.TIOCSWINSZ, struct.pack('HHHH', cfg['rows'], cfg['cols'], 0, 0))
    os.execvp(cfg['argv'][0], cfg['argv'])
out = b''
steps = cfg.get('input')
steps = [] if steps is None else [steps] if isinstance(steps, str) else steps
steps = [s if isinstance(s, dict) else {'text': s} for s in steps]
seen = 0
start = last = time.time()
while True:
    r, _, _ = select.select([fd], [], [], 0.2)
    if r:
        try:
            data = os.read(fd, 4096)
        except OSError:
            data = b''
        if not data:
            break
        out += data
    if steps:
        step = steps[0]
        ready = step['after'].encode() in out[seen:] if 'after' in step else len(out) > seen
        if ready or time.time() - last > 5:
            steps.pop(0)
            time.sleep(0.1)
            if 'size' in step:
                fcntl.ioctl(fd, termios.TIOCSWINSZ, struct.pack('HHHH', step['size'][0], step['size'][1], 0, 0))
            else:
                os.write(fd, step['text'].encode())
            seen = len(out)
            last = time.time()
    if time.time() - start > 30:
        break
_, status = os.waitpid(pid, 0)
sys.stdout.buffer.write(out)
sys.exit(os.waitstatus_to_exitcode(status) & 255)
`;

describe('keel run -t / exec -t: a pseudo-terminal (as root)', function () {
  this.timeout(60_000);
  let dir: string;
  let root: string;
  const onPty = (args: string[], input?: string | Step[], size = { rows: 40, cols: 100 }) => {
    const argv = [KEEL, args[0], '--root', root, ...args.slice(1)];
    const r = spawnSync('python3', ['-c', DRIVER], {
      encoding: 'utf8',
      timeout: 45_000,
      env: { ...process.env, PTY_DRIVER: JSON.stringify({ argv, input, ...size }) },
    });
    return { code: r.status, out: r.stdout.replace(/\r/g, ''), err: r.stderr };
  };
  const keel = (args: string[], input?: string) => {
    const r = spawnSync(KEEL, [args[0], '--root', root, ...args.slice(1)], {
      encoding: 'utf8',
      timeout: 45_000,
      ...(input !== undefined ? { input } : {}),
    });
    return { code: r.status, out: r.stdout, err: r.stderr };
  };

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'keel-pty-'));
    root = join(dir, 'root');
    await addBusybox(new ImageStore(root), '/bin/busybox', 1700000000);
  });
  after(() => {
    spawnSync(KEEL, ['rm', '-f', '--root', root, ...keel(['ps', '-aq']).out.split('\n').filter(Boolean)]);
    rmSync(dir, { recursive: true, force: true });
  });

  it('native.openPty and setWindowSize', () => {
    const { master, slave } = native.openPty();
    try {
      assert.match(slave, /^\/dev\/pts\/\d+$/);
      native.setWindowSize(master, 12, 34);
      const size = spawnSync('sh', ['-c', `stty size < ${slave}`], { encoding: 'utf8' });
      assert.equal(size.stdout, '12 34\n', size.stderr);
    } finally {
      closeSync(master);
    }
    assert.throws(
      () => native.setWindowSize(0x7fff, 1, 1),
      (e) => isNativeError(e, 'EBADF') && e.syscall === 'ioctl',
    );
  });

  it(
    'spawn() console: the child opens the pty, sends the master, ' + 'takes the slave as 0-2 and controlling tty',
    async () => {
      const [ours, theirs] = native.socketPair();
      try {
        assert.equal(native.recvFd(ours), null);
        const pid = native.spawn({
          file: '/bin/sh',
          argv: ['sh', '-c', 'tty; stty size; ps -o tty= -p $$'],
          env: [],
          console: theirs,
          consoleRows: 13,
          consoleCols: 57,
        });
        const master = native.recvFd(ours);
        assert.ok(master !== null && master > 2);
        const chunks: Buffer[] = [];
        const rd = new ReadStream(master);
        await new Promise<void>((done) => {
          rd.on('data', (c: Buffer) => chunks.push(c));
          rd.on('error', () => done());
          rd.on('close', () => done());
        });
        const lines = Buffer.concat(chunks).toString().replace(/\r/g, '').trim().split('\n');
        assert.match(lines[0], /^\/dev\/pts\/\d+$/);
        assert.equal(lines[1], '13 57');
        assert.equal(lines[2].trim(), lines[0].slice(5));
        while (!native.waitpid(pid, native.constants.WNOHANG)) await new Promise((r) => setTimeout(r, 10));
      } finally {
        closeSync(ours);
        closeSync(theirs);
      }
      assert.throws(
        () => native.spawn({ file: '/bin/true', argv: ['true'], env: [], tty: '/dev/tty', console: 1 }),
        /tty and console exclude each other/,
      );
      assert.throws(
        () => native.spawn({ file: '/bin/true', argv: ['true'], env: [], console: 0x7ff0 }),
        (e) => isNativeError(e, 'EBADF'),
      );
    },
  );

  itAsRoot('keel run -t gives the container a terminal (0-2), TERM=xterm, our window size; without -t none', () => {
    const r = onPty([
      'run',
      '--rm',
      '-t',
      'busybox',
      'sh',
      '-c',
      'for f in 0 1 2; do test -t $f && echo fd$f terminal; done; stty size; echo TERM=$TERM; tty; exit 5',
    ]);
    assert.equal(r.code, 5, r.out + r.err);
    // The pty is the container's own (opened in its devpts, after pivot_root): tty names it.
    assert.match(
      r.out,
      /fd0 terminal\r?\nfd1 terminal\r?\nfd2 terminal\r?\n40 100\r?\nTERM=xterm\r?\n\/dev\/pts\/0\r?\n/,
    );
    const plain = keel(['run', '--rm', 'busybox', 'tty']);
    assert.equal(plain.out, 'not a tty\n');
    assert.equal(plain.code, 1);
    // -t from a pipe (no -i): the container still gets a terminal; our stdin is not read.
    const piped = keel(
      ['run', '--rm', '-t', 'busybox', 'sh', '-c', 'test -t 0 && echo terminal; read -t 1 x; echo "got [$x]"'],
      'not forwarded\n',
    );
    assert.equal(piped.code, 0, piped.err);
    assert.equal(piped.out.replace(/\r/g, ''), 'terminal\ngot []\n');
  });

  itAsRoot('keel run -it busybox sh: typed input, output, exit status; the window size inside', () => {
    const r = onPty(['run', '--rm', '-it', 'busybox', 'sh'], 'stty size; echo $((6*7)); exit 3\r', {
      rows: 33,
      cols: 77,
    });
    assert.equal(r.code, 3, r.out + r.err);
    assert.match(r.out, /^33 77$/m);
    assert.match(r.out, /^42$/m);
  });

  it('keel run -it with stdin from a pipe fails as docker does', () => {
    const r = keel(['run', '--rm', '-it', 'busybox', 'sh'], 'echo hi\n');
    assert.equal(r.code, 1);
    assert.match(r.err, /the input device is not a TTY/);
    assert.equal(keel(['ps', '-aq']).out, '');
  });

  // Each attach below uses a size other than the detached terminal's 24x80: the new size makes
  // the shell redraw its prompt, which is when the DRIVER starts typing.
  itAsRoot(
    'keel run -dit, then keel attach: typed input, its output, its exit status (docker run -dit; docker attach)',
    () => {
      const started = keel(['run', '-dit', '--name', 's', 'busybox', 'sh']);
      assert.equal(started.code, 0, started.err);
      assert.match(started.out, /^[0-9a-f]{64}\n$/);
      const r = onPty(['attach', 's'], 'echo $((6*7)); tty; exit 3\r');
      assert.equal(r.code, 3, r.out + r.err);
      assert.match(r.out, /^42$/m);
      assert.match(r.out, /^\/dev\/pts\/0$/m);
      assert.match(keel(['ps', '-a']).out, /Exited \(3\) .* s$/m);
      // The terminal's output is the log, raw (\r\n), as docker logs shows a tty container's.
      assert.match(keel(['logs', 's']).out, /^42\r\n\/dev\/pts\/0\r\n/m);
    },
  );

  itAsRoot('keel attach: ctrl-p ctrl-q detaches, leaving the container running, to attach again', async () => {
    assert.equal(keel(['run', '-dit', '--name', 'd', 'busybox', 'sh']).code, 0);
    const r = onPty(['attach', 'd'], ['echo mark$((1+1))\r', { text: '\x10\x11', after: 'mark2' }]);
    assert.equal(r.code, 0, r.out + r.err);
    assert.match(r.out, /^mark2$/m);
    assert.match(keel(['ps']).out, /Up .* d$/m);
    assert.match(keel(['logs', 'd']).out, /^mark2\r$/m);
    const again = onPty(['attach', 'd'], 'stty size; exit 4\r', { rows: 31, cols: 91 });
    assert.equal(again.code, 4, again.out + again.err);
    assert.match(again.out, /^31 91$/m);
    assert.match(keel(['ps', '-a']).out, /Exited \(4\) .* d$/m);
  });

  itAsRoot('keel run -di keeps stdin open: keel attach with piped input', () => {
    assert.equal(keel(['run', '-di', '--name', 'r', 'busybox', 'sh', '-c', 'read x; echo got $x']).code, 0);
    const r = keel(['attach', 'r'], 'hello\n');
    assert.equal(r.out, 'got hello\n', r.err);
    assert.equal(r.code, 0);
    // Without -i nothing is sent: the container reads its /dev/null.
    assert.equal(keel(['run', '-d', '--name', 'n', 'busybox', 'sh', '-c', 'sleep 1; read x; echo "got [$x]"']).code, 0);
    const plain = keel(['attach', 'n'], 'not sent\n');
    assert.equal(plain.out, 'got []\n', plain.err);
  });

  itAsRoot('keel attach gives a -dit container our window size, and the new one on a resize', () => {
    assert.equal(keel(['run', '-dit', '--name', 'w', 'busybox', 'sh']).code, 0);
    // After the resize, input waits for the shell's redraw (its prompt, then ESC [ J): it has the new size then.
    const r = onPty(
      ['attach', 'w'],
      ['stty size\r', { size: [20, 50], after: '33 77' }, { text: 'stty size; exit 0\r', after: '\x1b[J' }],
      { rows: 33, cols: 77 },
    );
    assert.equal(r.code, 0, r.out + r.err);
    assert.match(r.out, /^33 77$/m);
    assert.match(r.out, /^20 50$/m);
  });

  itAsRoot('keel exec -it box sh into a running container', () => {
    const started = keel(['run', '-d', '--name', 'box', 'busybox', 'sleep', '300']);
    assert.equal(started.code, 0, started.err);
    const r = onPty(
      ['exec', '-it', 'box', 'sh'],
      'stty size; ps -o pid,args; echo $((6*7)); tty; ls /dev/pts; exit 3\r',
      { rows: 21, cols: 61 },
    );
    assert.equal(r.code, 3, r.out + r.err);
    // Opened in the container's devpts, which had none before: its first, and the host's ptys are not there.
    assert.match(r.out, /^\/dev\/pts\/0\r?$/m);
    assert.match(r.out, /^0 +ptmx\r?$/m);
    assert.match(r.out, /^21 61$/m);
    assert.match(r.out, /^42$/m);
    assert.match(r.out, /^ +1 sleep 300$/m);
    assert.match(r.out, /^ +\d+ sh$/m);
    const piped = keel(['exec', '-it', 'box', 'sh'], 'echo hi\n');
    assert.equal(piped.code, 1);
    assert.match(piped.err, /the input device is not a TTY/);
  });
});

// One reader of a terminal's master (holdTerminal), for keel run -t and the detached monitor alike:
// EIO (every holder of the slave closed it) is the normal end; any other read error is reported
// (the monitor's copy once ended on it silently). A real error on the master: a unix socket in its
// place whose peer closed with input unread, so the read fails with ECONNRESET.
describe("containers/pty: the master's reader (holdTerminal, relayTerminal)", () => {
  const asTerminal = (master: number): Terminal => ({ master, close: () => closeSync(master) });
  /** A master whose read fails with ECONNRESET. */
  const failing = (): number => {
    const [ours, theirs] = native.socketPair();
    writeSync(ours, 'unread');
    closeSync(theirs);
    return ours;
  };
  /** A real pty master whose slave said `text` and was closed: it reads `text`, then EIO. */
  const ended = (text: string): number => {
    const { master, slave } = native.openPty();
    const fd = openSync(slave, 'w');
    writeSync(fd, text);
    closeSync(fd);
    return master;
  };
  // Runs relayTerminal in a process of its own (it owns stdio) on the master MAKE() returns.
  const relay = (make: string) =>
    spawnSync(
      process.execPath,
      [
        '--input-type=module',
        '-e',
        `
    import { closeSync, openSync, writeSync } from 'node:fs';
    const { native } = await import(${JSON.stringify(join(repoRoot(), 'dist/native/native.js'))});
    const { relayTerminal } = await import(${JSON.stringify(join(repoRoot(), 'dist/containers/pty.js'))});
    const master = (${make})();
    // The exit comes at once; the master's end (or error) decides, long before the drain time.
    await relayTerminal({ master, close() {} }, async () => ({ code: 0, ` +
          `signal: null }), { interactive: false, drainMs: 30000 });
  `,
      ],
      { encoding: 'utf8', timeout: 20_000 },
    );

  it('holdTerminal: the slave closed (EIO) ends the output with no error', async () => {
    const chunks: Buffer[] = [];
    const held = holdTerminal(asTerminal(ended('hello\n')), (c) => chunks.push(c));
    assert.equal(await held.eof, null);
    held.close();
    assert.equal(Buffer.concat(chunks).toString().replace(/\r/g, ''), 'hello\n');
  });

  it('holdTerminal reports a read error other than EIO on the master (the detached copy swallowed it)', async () => {
    const held = holdTerminal(asTerminal(failing()), () => {});
    const e = await held.eof;
    held.close();
    assert.ok(e, 'an error');
    assert.deepEqual([e.code, e.message], ['ETERMINAL', 'cannot read the terminal: read ECONNRESET']);
  });

  it('relayTerminal reads the master through holdTerminal: an error is said on stderr, EIO is not', () => {
    const bad = relay(`() => { const [a, b] = native.socketPair(); writeSync(a, 'unread'); closeSync(b); return a; }`);
    assert.deepEqual(
      [bad.status, bad.stdout, bad.stderr],
      [0, '', 'keel: cannot read the terminal: read ECONNRESET\n'],
    );
    const good = relay(
      '() => { const { master, slave } = native.openPty(); const fd = openSync(slave, ' +
        `'w'); writeSync(fd, 'hi\\n'); closeSync(fd); return master; }`,
    );
    assert.deepEqual([good.status, good.stdout.replace(/\r/g, ''), good.stderr], [0, 'hi\n', '']);
  });
});

describe("containers/attach-protocol: frames and docker's detach keys", () => {
  it('reads frames split anywhere, several in one chunk, and refuses unknown or oversized ones', () => {
    const bytes = Buffer.concat([
      encodeFrame(FRAME.input, Buffer.from('ls\r')),
      resizeFrame(33, 77),
      encodeFrame(FRAME.input),
    ]);
    for (let cut = 0; cut <= bytes.length; cut++) {
      const read = frameReader();
      const frames = [...read(bytes.subarray(0, cut)), ...read(bytes.subarray(cut))];
      assert.deepEqual(
        frames.map((f) => [f.type, f.payload.toString('hex')]),
        [
          [FRAME.input, Buffer.from('ls\r').toString('hex')],
          [FRAME.resize, '0021004d'],
          [FRAME.input, ''],
        ],
      );
    }
    assert.throws(() => frameReader()(Buffer.from([9, 0, 0, 0, 0])), /unknown frame type 9/);
    assert.throws(() => frameReader()(Buffer.from([FRAME.input, 0xff, 0, 0, 0])), /over/);
  });

  it('finds ctrl-p ctrl-q across chunks, forwards a ctrl-p that is not followed by ctrl-q', () => {
    const scan = detachScanner();
    assert.deepEqual(scan(Buffer.from('ab')), { forward: Buffer.from('ab'), detach: false });
    assert.deepEqual(scan(Buffer.from('c\x10')), { forward: Buffer.from('c'), detach: false });
    assert.deepEqual(scan(Buffer.from('\x10x')), { forward: Buffer.from('\x10\x10x'), detach: false });
    assert.deepEqual(scan(Buffer.from('y\x10')), { forward: Buffer.from('y'), detach: false });
    assert.deepEqual(scan(Buffer.from('\x11after')), { forward: Buffer.alloc(0), detach: true });
    assert.deepEqual(detachScanner()(Buffer.from('ls\x10\x11')), { forward: Buffer.from('ls'), detach: true });
  });
});
