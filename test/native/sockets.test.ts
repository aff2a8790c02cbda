// Real-kernel tests (as root) of the helper's pipes, unix datagram sockets, fd watchers and listening sockets.
import assert from 'node:assert/strict';
import { execFile, execFileSync, spawn as spawnChild } from 'node:child_process';
import {
  chmodSync,
  closeSync,
  mkdtempSync,
  openSync,
  readdirSync,
  readFileSync,
  readlinkSync,
  realpathSync,
  rmSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import { connect, createServer, Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { once } from 'node:events';
import { native } from '../../native/native.js';
import { expectNativeError } from './helpers.js';
import { itAsRoot } from '../needs.js';

const execFileAsync = promisify(execFile);
const NATIVE_JS = new URL('../../native/native.js', import.meta.url).href;
const O_NONBLOCK = 0o4000;
const O_CLOEXEC = 0o2000000;

/** Runs an ES module snippet (with `native` in scope) in a fresh node, under `wrapper` such as `unshare -n`. */
function runNode(code: string, env: Record<string, string> = {}, wrapper: string[] = []): string {
  const argv = [
    ...wrapper,
    process.execPath,
    '--input-type=module',
    '-e',
    `const { native } = await import(process.env.NATIVE_JS);\n${code}`,
  ];
  return execFileSync(argv[0], argv.slice(1), {
    encoding: 'utf8',
    env: { ...process.env, NATIVE_JS, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
}

function fdFlags(fd: number, pid: number | 'self' = 'self'): number {
  return parseInt(/^flags:\s*(\d+)/m.exec(readFileSync(`/proc/${pid}/fdinfo/${fd}`, 'utf8'))![1], 8);
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Reads a stream to its end. */
async function readAll(s: NodeJS.ReadableStream): Promise<string> {
  let out = '';
  for await (const chunk of s) out += String(chunk);
  return out;
}

let dir: string;
const opened: number[] = [];
/** Remembers an fd to close after the test. */
function own(fd: number): number {
  opened.push(fd);
  return fd;
}

describe('native sockets', () => {
  beforeEach(() => {
    dir = realpathSync(mkdtempSync(join(tmpdir(), 'keel-native-sock-')));
  });
  afterEach(() => {
    for (const fd of opened.splice(0))
      try {
        closeSync(fd);
      } catch {
        /* already closed */
      }
    rmSync(dir, { recursive: true, force: true });
  });

  describe('pipe', () => {
    it('gives CLOEXEC ends whose read end a net.Socket can own', async () => {
      const [r, w] = native.pipe();
      assert.ok(fdFlags(r) & O_CLOEXEC && fdFlags(w) & O_CLOEXEC);
      const pid = native.spawn({ file: '/bin/echo', argv: ['echo', 'hi'], env: [], stdout: w });
      closeSync(w); // else our own write end keeps the pipe open and 'end' never comes
      const socket = new Socket({ fd: r, readable: true, writable: false });
      const chunks: string[] = [];
      socket.on('data', (d: Buffer) => chunks.push(d.toString()));
      await once(socket, 'end');
      assert.deepEqual(chunks, ['hi\n']);
      assert.equal(native.waitpid(pid, 0)?.code, 0);
      socket.destroy();
    });
  });

  describe('unix datagrams', () => {
    it('binds a non-blocking CLOEXEC socket with the given mode, replacing a stale file', () => {
      const path = join(dir, 'notify');
      writeFileSync(path, 'stale');
      const fd = own(native.unixDgramSocket(path, 0o620));
      const st = statSync(path);
      assert.ok(st.isSocket());
      assert.equal(st.mode & 0o7777, 0o620);
      assert.equal(fdFlags(fd) & (O_NONBLOCK | O_CLOEXEC), O_NONBLOCK | O_CLOEXEC);
      assert.equal(native.recvCred(fd), null, 'nothing queued: null, not a block');
    });

    itAsRoot('receives whole datagrams with the sender credentials from the kernel', () => {
      const path = join(dir, 'notify');
      const fd = own(native.unixDgramSocket(path, 0o600));
      const big = Buffer.alloc(100_000, 'x');
      native.sendDgram(path, 'READY=1\nSTATUS=up');
      native.sendDgram(path, Buffer.from([0, 1, 2, 0]));
      native.sendDgram(path, '');
      native.sendDgram(path, big);
      assert.deepEqual(native.recvCred(fd), {
        pid: process.pid,
        uid: 0,
        gid: 0,
        data: Buffer.from('READY=1\nSTATUS=up'),
      });
      assert.deepEqual(native.recvCred(fd)?.data, Buffer.from([0, 1, 2, 0]));
      assert.deepEqual(native.recvCred(fd)?.data, Buffer.alloc(0), 'an empty datagram is not "nothing queued"');
      assert.ok(native.recvCred(fd)?.data.equals(big), 'sized to the datagram, not truncated');
      assert.equal(native.recvCred(fd), null);
    });

    itAsRoot('reports a child as the sender, with its own uid and gid', () => {
      chmodSync(dir, 0o711); // mkdtemp's 0700 would keep uid 65534 from reaching the socket
      const path = join(dir, 'notify');
      const fd = own(native.unixDgramSocket(path, 0o666));
      const pid = native.spawn({
        file: '/usr/bin/python3',
        argv: [
          'python3',
          '-c',
          `import socket; socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM).sendto(b"hello", "${path}")`,
        ],
        env: [],
        uid: 65534,
        gid: 65533,
      });
      assert.equal(native.waitpid(pid, 0)?.code, 0);
      assert.deepEqual(native.recvCred(fd), { pid, uid: 65534, gid: 65533, data: Buffer.from('hello') });
    });

    it('never lets a sender plant fds in our table (SCM_RIGHTS)', () => {
      const path = join(dir, 'notify');
      const passed = join(dir, 'passed');
      const fd = own(native.unixDgramSocket(path, 0o600));
      const py = `import os, socket; f = os.open("${passed}", os.O_CREAT | os.O_RDONLY)
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM); s.connect("${path}"); socket.send_fds(s, [b"FDSTORE=1"], [f, f])`;
      const pid = native.spawn({ file: '/usr/bin/python3', argv: ['python3', '-c', py], env: [] });
      assert.equal(native.waitpid(pid, 0)?.code, 0);
      assert.equal(native.recvCred(fd)?.data.toString(), 'FDSTORE=1');
      const mine = readdirSync('/proc/self/fd').map((n) => {
        try {
          return readlinkSync(`/proc/self/fd/${n}`);
        } catch {
          return '';
        }
      });
      assert.ok(!mine.includes(passed), 'the passed file is not open here');
    });

    it('works with abstract names and names the syscall on errors', () => {
      const name = `@keel-test-${process.pid}`;
      const fd = own(native.unixDgramSocket(name, 0));
      native.sendDgram(name, 'abstract');
      assert.equal(native.recvCred(fd)?.data.toString(), 'abstract');
      expectNativeError(() => native.unixDgramSocket(name, 0), {
        code: 'EADDRINUSE',
        syscall: 'bind',
        message: new RegExp(`^bind\\(${name}\\): EADDRINUSE`),
      });
      const missing = join(dir, 'missing');
      expectNativeError(() => native.sendDgram(missing, 'x'), {
        code: 'ENOENT',
        syscall: 'sendto',
        path: missing,
        message: new RegExp(`^sendto\\(${missing}\\): ENOENT`),
      });
      expectNativeError(() => native.unixDgramSocket(join(dir, 'no/such/dir'), 0o600), {
        code: 'ENOENT',
        syscall: 'bind',
      });
      assert.throws(() => native.sendDgram('relative', 'x'), {
        name: 'TypeError',
        message: /^sendDgram: path must be an absolute path or "@name" \(at most 107 bytes\), received "relative"$/,
      });
      assert.throws(() => native.unixDgramSocket(`/${'x'.repeat(107)}`, 0o600), TypeError);
      expectNativeError(() => native.recvCred(own(openSync('/dev/null', 'r'))), {
        code: 'ENOTSOCK',
        syscall: 'recvmsg',
      });
    });
  });

  describe('watchFd', () => {
    itAsRoot('calls back when a child sends a datagram, and never after close()', async () => {
      const path = join(dir, 'notify');
      const fd = own(native.unixDgramSocket(path, 0o600));
      let calls = 0;
      let wake = (): void => {};
      const readable = new Promise<void>((resolve) => {
        wake = resolve;
      });
      const watcher = native.watchFd(fd, () => {
        calls++;
        wake();
      });
      const child = JSON.parse(
        runNode(`native.sendDgram(process.env.SOCK, 'READY=1'); console.log(process.pid);`, { SOCK: path }),
      ) as number;
      await readable;
      assert.deepEqual(native.recvCred(fd), { pid: child, uid: 0, gid: 0, data: Buffer.from('READY=1') });
      await sleep(20);
      const seen = calls;
      watcher.close();
      watcher.close(); // idempotent
      native.sendDgram(path, 'late');
      await sleep(50);
      assert.equal(calls, seen, 'no callback after close()');
      assert.equal(native.recvCred(fd)?.data.toString(), 'late', 'premise: the datagram did arrive');
    });

    itAsRoot(
      'keeps the process alive while open, sleeping in epoll (no polling), and lets it exit once closed',
      async () => {
        const path = join(dir, 'notify');
        const code = `const { native } = await import(process.env.NATIVE_JS);
        const fd = native.unixDgramSocket(process.env.SOCK, 0o600);
        const w = native.watchFd(fd, () => { console.log('got', native.recvCred(fd).data.toString()); w.close(); });
        console.log('ready');`;
        const child = spawnChild(process.execPath, ['--input-type=module', '-e', code], {
          env: { ...process.env, NATIVE_JS, SOCK: path },
          stdio: ['ignore', 'pipe', 'inherit'],
        });
        try {
          const output = readAll(child.stdout);
          const exited = once(child, 'exit');
          while (!statSync(path, { throwIfNoEntry: false })) await sleep(10);
          await sleep(300); // let startup work settle
          const switches = () => {
            const s = readFileSync(`/proc/${child.pid}/task/${child.pid}/status`, 'utf8');
            return ['voluntary_ctxt_switches', 'nonvoluntary_ctxt_switches'].reduce(
              (n, k) => n + Number(new RegExp(`^${k}:\\s*(\\d+)`, 'm').exec(s)![1]),
              0,
            );
          };
          const before = switches();
          await sleep(500);
          const woken = switches() - before;
          assert.ok(woken <= 3, `the main thread woke ${woken} times in 500 ms with nothing to do`);
          assert.match(readFileSync(`/proc/${child.pid}/wchan`, 'utf8'), /^(ep_poll|do_epoll_wait|0)$/);
          assert.equal(child.exitCode, null, 'an open watcher keeps the process alive');
          native.sendDgram(path, 'READY=1');
          assert.deepEqual(await exited, [0, null]);
          assert.equal(await output, 'ready\ngot READY=1\n');
        } finally {
          child.kill('SIGKILL');
        }
      },
    );

    it('unref() lets the process exit with the watcher open, and ref() undoes it', () => {
      const out = runNode(
        `const fd = native.unixDgramSocket(process.env.SOCK, 0o600);
        const w = native.watchFd(fd, () => {}); w.unref();
        const v = native.watchFd(native.pipe()[0], () => {}); v.unref(); v.ref();
        setTimeout(() => { v.close(); v.ref(); v.unref(); console.log('closed the ref\\'d one'); }, 50);
        process.on('exit', () => console.log('exit'));`,
        { SOCK: join(dir, 'notify') },
      );
      assert.equal(out, "closed the ref'd one\nexit\n");
    });

    it('calls back in the async context watchFd was called in, draining ticks and promise jobs after', () => {
      // napi_make_callback with the watcher's async context: AsyncLocalStorage sees the store of the caller.
      const out = runNode(
        `const { AsyncLocalStorage } = await import('node:async_hooks');
        const als = new AsyncLocalStorage();
        const fd = native.unixDgramSocket(process.env.SOCK, 0o600);
        const order = [];
        const w = als.run('service-x', () => native.watchFd(fd, () => {
          native.recvCred(fd);
          w.close();
          setImmediate(() => { order.push('immediate'); console.log(order.join(',')); });
          Promise.resolve().then(() => order.push('promise'));
          process.nextTick(() => order.push('tick'));
          order.push('callback in ' + als.getStore());
        }));
        native.sendDgram(process.env.SOCK, 'x');`,
        { SOCK: join(dir, 'notify') },
      );
      assert.equal(out, 'callback in service-x,tick,promise,immediate\n');
    });

    it('reports a throw from the callback as an uncaught exception', () => {
      const out = runNode(
        `const fd = native.unixDgramSocket(process.env.SOCK, 0o600);
        const w = native.watchFd(fd, () => { native.recvCred(fd); throw new Error('boom'); });
        process.on('uncaughtException', (e) => { console.log('uncaught', e.message); w.close(); });
        native.sendDgram(process.env.SOCK, 'x');`,
        { SOCK: join(dir, 'notify') },
      );
      assert.equal(out, 'uncaught boom\n');
    });

    it('closes itself when a worker thread exits with the watcher open', () => {
      // Without that cleanup, the worker's uv_loop_close finds the handle and Node aborts.
      const out = runNode(
        `const { Worker } = await import('node:worker_threads');
        const w = new Worker(\`import(process.env.NATIVE_JS).then(({ native }) => {
          const fd = native.unixDgramSocket(process.env.SOCK, 0o600);
          native.watchFd(fd, () => {});
          return import('node:worker_threads');
        }).then(({ parentPort }) => parentPort.postMessage('watching'));\`, { eval: true });
        await new Promise((r) => w.once('message', r));
        console.log('terminated', await w.terminate());`,
        { SOCK: join(dir, 'notify') },
      );
      assert.equal(out, 'terminated 1\n');
    });

    it('throws for fds epoll refuses and for a bad callback', () => {
      const file = own(openSync(join(dir, 'f'), 'w'));
      expectNativeError(() => native.watchFd(file, () => {}), {
        code: 'EPERM',
        syscall: 'uv_poll_init',
        message: new RegExp(`^uv_poll_init\\(${file}\\): EPERM`),
      });
      assert.throws(() => native.watchFd(0, 'x' as unknown as () => void), {
        name: 'TypeError',
        message: 'watchFd: callback must be a function, received string',
      });
    });
  });

  describe('listenSocket', () => {
    it('hands a listening socket to a child as fd 3, which serves a connection on it', async () => {
      const fd = own(native.listenSocket('stream', '127.0.0.1:0'));
      const port = native.localPort(fd);
      assert.ok(port > 0);
      assert.equal(fdFlags(fd) & (O_NONBLOCK | O_CLOEXEC), O_CLOEXEC, 'CLOEXEC, and blocking as the kernel makes it');
      const [r, w] = native.pipe();
      const py = `import socket
s = socket.socket(fileno=3)
print(s.family.name, s.type.name, s.getsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR), s.getblocking(), flush=True)
c, _ = s.accept()
c.sendall(b"hello from fd 3\\n")
c.close()`;
      const pid = native.spawn({
        file: '/usr/bin/python3',
        argv: ['python3', '-c', py],
        env: [],
        stdout: w,
        stderr: w,
        fds: [fd],
      });
      closeSync(w);
      const childOut = readAll(new Socket({ fd: r, readable: true, writable: false }));
      const reply = await readAll(connect(port, '127.0.0.1'));
      assert.equal(reply, 'hello from fd 3\n');
      assert.equal(await childOut, 'AF_INET SOCK_STREAM 1 True\n');
      assert.equal(native.waitpid(pid, 0)?.code, 0);
    });

    itAsRoot('makes a bare port dual stack even where bindv6only=1 (in a new network namespace)', () => {
      const out = runNode(
        `const fs = await import('node:fs'); const net = await import('node:net');
        native.ifUp('lo');
        fs.writeFileSync('/proc/sys/net/ipv6/bindv6only', '1');
        const fd = native.listenSocket('stream', '0');
        const server = net.createServer((c) => c.end('ok')).listen({ fd });
        const get = (host) => new Promise((resolve, reject) => {
          let s = ''; net.connect(native.localPort(fd), host).on('data', (d) => ` +
          `s += d).on('end', () => resolve(s)).on('error', reject);
        });
        console.log(server.address().family, await get('127.0.0.1'), await get('::1'));
        server.close();`,
        {},
        ['unshare', '-n'],
      );
      assert.equal(out, 'IPv6 ok ok\n');
    });

    it('binds IPv6 addresses, UDP and unix sockets (path and abstract)', async () => {
      // The fds given to net servers are theirs to close (server.close()), not own()'s.
      const v6 = native.listenSocket('stream', '[::1]:0');
      const server = createServer((c) => c.end('v6')).listen({ fd: v6 });
      try {
        assert.equal(await readAll(connect(native.localPort(v6), '::1')), 'v6');
      } finally {
        server.close();
      }

      const udp = own(native.listenSocket('dgram', '127.0.0.1:0'));
      const py = 'import socket; s = socket.socket(fileno=3); print(s.type.name, s.recv(100).decode(), flush=True)';
      const [r, w] = native.pipe();
      const pid = native.spawn({
        file: '/usr/bin/python3',
        argv: ['python3', '-c', py],
        env: [],
        stdout: w,
        fds: [udp],
      });
      closeSync(w);
      const childOut = readAll(new Socket({ fd: r, readable: true, writable: false }));
      execFileSync('/usr/bin/python3', [
        '-c',
        'import socket; socket.socket(socket.AF_INET, ' +
          `socket.SOCK_DGRAM).sendto(b"udp hi", ("127.0.0.1", ${native.localPort(udp)}))`,
      ]);
      assert.equal(await childOut, 'SOCK_DGRAM udp hi\n');
      assert.equal(native.waitpid(pid, 0)?.code, 0);

      const path = join(dir, 'ctl.sock');
      writeFileSync(path, 'stale');
      const unix = native.listenSocket('stream', path, { mode: 0o600, backlog: 4 });
      assert.equal(statSync(path).mode & 0o7777, 0o600);
      expectNativeError(() => native.localPort(unix), { code: 'EAFNOSUPPORT', syscall: 'getsockname' });
      const abstract = native.listenSocket('stream', `@keel-test-${process.pid}`);
      const servers = [unix, abstract].map((fd) => createServer((c) => c.end(`unix ${fd}`)).listen({ fd }));
      try {
        assert.equal(await readAll(connect(path)), `unix ${unix}`);
        // Python as the client: this Node's libuv pads abstract names to the full sun_path length,
        // a different name to the kernel than the exact-length one bound here (as systemd does).
        const py =
          'import socket; s = socket.socket(socket.AF_UNIX); ' +
          `s.connect("\\0keel-test-${process.pid}"); print(s.recv(100).decode())`;
        assert.equal((await execFileAsync('/usr/bin/python3', ['-c', py])).stdout, `unix ${abstract}\n`);
      } finally {
        for (const s of servers) s.close();
      }
    });

    itAsRoot('names the syscall and the address on errors, and rejects bad arguments', () => {
      const fd = own(native.listenSocket('stream', '127.0.0.1:0'));
      const port = native.localPort(fd);
      expectNativeError(() => native.listenSocket('stream', `127.0.0.1:${port}`), {
        code: 'EADDRINUSE',
        syscall: 'bind',
        message: new RegExp(`^bind\\(127\\.0\\.0\\.1:${port}\\): EADDRINUSE \\(Address already in use\\)$`),
      });
      expectNativeError(() => native.listenSocket('dgram', '[2001:db8::1]:53'), {
        code: 'EADDRNOTAVAIL',
        syscall: 'bind',
        message: /^bind\(\[2001:db8::1\]:53\): EADDRNOTAVAIL/,
      });
      for (const bad of ['localhost:80', '1.2.3.4', '::1:80', '[::1]80', '70000', 'relative.sock', '1.2.3.4:']) {
        assert.throws(
          () => native.listenSocket('stream', bad),
          {
            name: 'TypeError',
            message: new RegExp(
              `^listenSocket: address must be a port, .* received "${bad.replace(/[[\].]/g, '\\$&')}"$`,
            ),
          },
          bad,
        );
      }
      assert.throws(() => native.listenSocket('seqpacket' as 'stream', '80'), {
        name: 'TypeError',
        message: 'listenSocket: kind must be "stream" or "dgram", received "seqpacket"',
      });
    });
  });
});
