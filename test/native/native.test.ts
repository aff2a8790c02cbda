// Real-kernel tests of the N-API helper (run as root): spawn, waitpid, mounts, namespaces' syscalls.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import {
  closeSync,
  existsSync,
  mkdtempSync,
  openSync,
  readFileSync,
  readlinkSync,
  realpathSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { hostname, tmpdir } from 'node:os';
import { join } from 'node:path';
import { native } from '../../native/native.js';
import { expectNativeError, zombiesOf } from './helpers.js';
import { itAsRoot } from '../needs.js';

const NATIVE_JS = new URL('../../native/native.js', import.meta.url).href;

/** Runs an ES module snippet (with `native` in scope) in a fresh node, under `wrapper` such as `unshare -u`. */
function runNode(code: string, wrapper: string[] = [], env: Record<string, string> = {}, fd40?: number): string {
  const argv = [
    ...wrapper,
    process.execPath,
    '--input-type=module',
    '-e',
    `const { native } = await import(process.env.NATIVE_JS);\n${code}`,
  ];
  const extra = fd40 === undefined ? [] : [...Array<'ignore'>(37).fill('ignore'), fd40];
  return execFileSync(argv[0], argv.slice(1), {
    encoding: 'utf8',
    env: { ...process.env, NATIVE_JS, ...env },
    stdio: ['ignore', 'pipe', 'pipe', ...extra],
  });
}

let dir: string;

/** Spawns with stdout (and stderr) into a file, waits, returns [status, output]. */
function run(opts: Partial<Parameters<typeof native.spawn>[0]> & { argv: string[] }) {
  const out = join(dir, 'out');
  const fd = openSync(out, 'w');
  try {
    const pid = native.spawn({ file: opts.argv[0], env: [], stdout: fd, stderr: fd, ...opts });
    return [native.waitpid(pid, 0), readFileSync(out, 'utf8')] as const;
  } finally {
    closeSync(fd);
  }
}

describe('native', () => {
  beforeEach(() => {
    dir = realpathSync(mkdtempSync(join(tmpdir(), 'keel-native-')));
  });
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  describe('native spawn and waitpid', () => {
    it('reports a normal exit with its code', () => {
      const pid = native.spawn({ file: '/bin/sh', argv: ['sh', '-c', 'exit 7'], env: [] });
      assert.deepEqual(native.waitpid(pid, 0), {
        pid,
        status: 7 << 8,
        exited: true,
        code: 7,
        signaled: false,
        signal: null,
      });
    });

    it('reports a death by SIGKILL, and WNOHANG gives null while the child runs', () => {
      const pid = native.spawn({ file: '/bin/sleep', argv: ['sleep', '10'], env: [] });
      assert.equal(native.waitpid(pid, native.constants.WNOHANG), null);
      process.kill(pid, 'SIGKILL');
      assert.deepEqual(native.waitpid(pid, 0), {
        pid,
        status: 9,
        exited: false,
        code: null,
        signaled: true,
        signal: 9,
      });
    });

    it('puts parent fds on stdin, stdout and stderr', () => {
      writeFileSync(join(dir, 'in'), 'from stdin\n');
      const input = openSync(join(dir, 'in'), 'r');
      try {
        const [st, out] = run({ argv: ['/bin/sh', '-c', 'cat; echo to stderr >&2'], stdin: input });
        assert.equal(st?.code, 0);
        assert.equal(out, 'from stdin\nto stderr\n');
      } finally {
        closeSync(input);
      }
    });

    it('gives the child our own fd 1 even though Node marks 0-2 close-on-exec', () => {
      // A "source fd == target fd, skip the dup2" shortcut would leave FD_CLOEXEC set and the child
      // would start with stdout closed; the child node's fd 1 is a pipe back to us.
      const out =
        runNode(`const pid = native.spawn({ file: '/bin/echo', argv: ['echo', 'via fd 1'], env: [], stdout: 1 });
        native.waitpid(pid, 0);`);
      assert.equal(out, 'via fd 1\n');
    });

    it('applies env and cwd, and searches PATH from the given env', () => {
      const [st, out] = run({
        argv: ['sh', '-c', 'echo "$KEEL_X|$HOME"; pwd'],
        env: ['KEEL_X=42', 'PATH=/nonexistent:/bin'],
        cwd: dir,
      });
      assert.equal(st?.code, 0);
      assert.equal(out, `42|\n${dir}\n`);
    });

    it('closes every fd >= 3 in the child, even one inherited without CLOEXEC', () => {
      // Node opens everything O_CLOEXEC (and at startup marks fds 0-16 so too), so a child node
      // inherits a plain fd 40 from us and spawns from there.
      const extra = openSync('/dev/null', 'r');
      try {
        const out = runNode(
          `
          const fs = await import('node:fs');
          const flags = fs.readFileSync('/proc/self/fdinfo/40', 'utf8').match(/flags:\\s*(\\d+)/)[1];
          const out = fs.openSync(process.env.OUT, 'w');
          const pid = native.spawn({ file: '/bin/sh', argv: ['sh', '-c', 'ls /proc/$$/fd; :'], env: [], stdout: out });
          console.log(JSON.stringify({ flags, status: native.waitpid(pid, 0).code }));`,
          [],
          { OUT: join(dir, 'fds') },
          extra,
        );
        const { flags, status } = JSON.parse(out) as { flags: string; status: number };
        assert.equal(parseInt(flags, 8) & 0o2000000, 0, 'premise: fd 40 in the spawner is not O_CLOEXEC');
        assert.equal(status, 0);
        assert.deepEqual(readFileSync(join(dir, 'fds'), 'utf8').trim().split('\n'), ['0', '1', '2']);
      } finally {
        closeSync(extra);
      }
    });

    it('resets ignored signals and the signal mask in the child', () => {
      const mine = readFileSync('/proc/self/status', 'utf8');
      assert.notEqual(/^SigIgn:\s*(\S+)/m.exec(mine)?.[1], '0000000000000000', 'premise: Node ignores SIGPIPE');
      const [st, out] = run({ argv: ['/bin/cat', '/proc/self/status'] });
      assert.equal(st?.code, 0);
      assert.match(out, /^SigIgn:\s*0000000000000000$/m);
      assert.match(out, /^SigBlk:\s*0000000000000000$/m);
    });

    itAsRoot('drops to uid/gid with supplementary groups cleared or set, sets umask, and starts a session', () => {
      // In a child node that first gains supplementary groups, so "cleared" is observable.
      const out = runNode(
        `process.setgroups([4, 27]);
        const script = 'echo $(id -u) $(id -g) $(id -G) $(umask) $(cut -d" " -f6 /proc/$$/stat) $$';
        for (const extra of [{}, { groups: [10, 20] }]) {
          const pid = native.spawn({ file: '/bin/sh', argv: ['sh', '-c', script], ` +
          `env: [], stdout: 1, uid: 65534, gid: 65534, umask: 0o027, setsid: true, ...extra });
          native.waitpid(pid, 0);
        }`,
      );
      const [dropped, withGroups] = out
        .trim()
        .split('\n')
        .map((l) => l.split(' '));
      assert.deepEqual(dropped.slice(0, 4), ['65534', '65534', '65534', '0027']);
      assert.equal(dropped[4], dropped[5], 'the child leads its own session');
      assert.deepEqual(withGroups.slice(0, 6), ['65534', '65534', '65534', '10', '20', '0027']);
    });

    it('throws execve ENOENT synchronously for a missing file and leaves no zombie', () => {
      const e = expectNativeError(() => native.spawn({ file: '/nonexistent/keel', argv: ['keel'], env: [] }), {
        code: 'ENOENT',
        syscall: 'execve',
        path: '/nonexistent/keel',
        message: /^execve\(\/nonexistent\/keel\): ENOENT \(No such file or directory\)$/,
      });
      assert.equal(e.errno, 2);
      expectNativeError(() => native.spawn({ file: 'keel-no-such-cmd', argv: ['x'], env: ['PATH=/bin:/usr/bin'] }), {
        code: 'ENOENT',
        syscall: 'execve',
        path: 'keel-no-such-cmd',
      });
      writeFileSync(join(dir, 'plain'), '#!/bin/sh\n', { mode: 0o644 });
      expectNativeError(() => native.spawn({ file: join(dir, 'plain'), argv: ['x'], env: [] }), {
        code: 'EACCES',
        syscall: 'execve',
        path: join(dir, 'plain'),
      });
      expectNativeError(() => native.spawn({ file: '/bin/true', argv: ['x'], env: [], cwd: join(dir, 'nope') }), {
        code: 'ENOENT',
        syscall: 'chdir',
        path: join(dir, 'nope'),
      });
      assert.deepEqual(zombiesOf(process.pid), []);
    });

    it('rejects bad options with a TypeError naming what it received', () => {
      assert.throws(() => native.spawn({ file: 1 as unknown as string, argv: [], env: [] }), {
        name: 'TypeError',
        message: 'spawn: file must be a string, received number',
      });
      assert.throws(() => native.spawn({ file: '/bin/true', argv: ['a\0b'], env: [] }), TypeError);
      expectNativeError(() => native.spawn({ file: '/bin/true', argv: ['x'], env: [], tty: '/dev/null' }), {
        code: 'ENOTTY',
        syscall: 'ioctl',
      });
    });

    it('waitpid throws ECHILD for a process that is not our child', () => {
      expectNativeError(() => native.waitpid(1, native.constants.WNOHANG), { code: 'ECHILD', syscall: 'waitpid' });
    });
  });

  describe('native mounts and roots', () => {
    itAsRoot('mounts a tmpfs and unmounts it with umount2', () => {
      native.mount('tmpfs', dir, 'tmpfs', native.constants.MS_NOSUID, 'size=1m');
      try {
        writeFileSync(join(dir, 'f'), 'x');
        assert.ok(readFileSync('/proc/self/mounts', 'utf8').includes(` ${dir} tmpfs `));
      } finally {
        native.umount2(dir, 0);
      }
      assert.equal(existsSync(join(dir, 'f')), false);
      expectNativeError(() => native.umount2(dir, 0), { code: 'EINVAL', syscall: 'umount2', path: dir });
    });

    it('names syscall, errno and path when mount fails', () => {
      const target = join(dir, 'missing');
      expectNativeError(() => native.mount('tmpfs', target, 'tmpfs', 0, null), {
        code: 'ENOENT',
        syscall: 'mount',
        path: target,
        message: new RegExp(`^mount\\(tmpfs, ${target}\\): ENOENT \\(No such file or directory\\)$`),
      });
    });

    itAsRoot('chroot and pivotRoot change the root (in child processes)', () => {
      writeFileSync(join(dir, 'marker'), 'x');
      const chrooted = runNode(
        `native.chroot(process.env.ROOT); native.chdir('/');
        const fs = await import('node:fs'); console.log(fs.readdirSync('/').join(','), fs.readdirSync('.').join(','));`,
        [],
        { ROOT: dir },
      );
      assert.equal(chrooted.trim(), 'marker marker');
      const pivoted = runNode(
        `const fs = await import('node:fs'); const r = process.env.ROOT;
        native.mount('tmpfs', r, 'tmpfs', 0, null); fs.mkdirSync(r + '/old'); fs.writeFileSync(r + '/new', '');
        native.pivotRoot(r, r + '/old'); native.chdir('/');
        console.log(fs.existsSync('/new'), fs.existsSync('/old/etc/hostname'));`,
        ['unshare', '-m'],
        { ROOT: dir },
      );
      assert.equal(pivoted.trim(), 'true true');
      expectNativeError(() => native.chroot(join(dir, 'nope')), {
        code: 'ENOENT',
        syscall: 'chroot',
        path: join(dir, 'nope'),
      });
      const e = expectNativeError(() => native.pivotRoot(join(dir, 'nope'), dir), {
        code: 'ENOENT',
        syscall: 'pivot_root',
        path: join(dir, 'nope'),
      });
      assert.equal(e.dest, dir);
    });
  });

  describe('native system calls in namespaces', () => {
    itAsRoot('sethostname changes the name in a new UTS namespace', () => {
      const out = runNode(
        `native.sethostname('keel-uts-test'); const os = await import('node:os');
        try { native.sethostname('x'.repeat(65)); } catch (e) { console.log(e.code, e.syscall); }
        console.log(os.hostname());`,
        ['unshare', '-u'],
      );
      assert.equal(out, 'EINVAL sethostname\nkeel-uts-test\n');
      assert.notEqual(hostname(), 'keel-uts-test');
    });

    itAsRoot('ifUp brings lo up in a new network namespace', () => {
      const out = runNode(
        `const os = await import('node:os'); const before = Object.keys(os.networkInterfaces());
        native.ifUp('lo'); console.log(JSON.stringify({ before, after: ` +
          'os.networkInterfaces().lo?.map((a) => a.address) }));',
        ['unshare', '-n'],
      );
      const { before, after } = JSON.parse(out) as { before: string[]; after?: string[] };
      assert.deepEqual(before, []);
      assert.ok(after?.includes('127.0.0.1'), `lo addresses: ${String(after)}`);
      expectNativeError(() => native.ifUp('keel-nope0'), {
        code: 'ENODEV',
        syscall: 'ioctl',
        message: /^ioctl\(SIOCGIFFLAGS, keel-nope0\): ENODEV/,
      });
    });

    itAsRoot('reboot(RB_POWER_OFF) as PID 1 of a new PID namespace ends it with SIGINT', () => {
      // Guarded twice: reboot(2) is only ever called as PID 1 of a fresh PID namespace, never on the host.
      const code = `const fs = await import('node:fs');
        if (process.pid !== 1 || fs.readlinkSync('/proc/self/ns/pid') === process.env.HOST_NS) process.exit(3);
        try { native.reboot(0x0badc0de); } catch (e) { console.log(e.message); }
        native.reboot(native.constants.RB_POWER_OFF);
        console.log('still running');`;
      let failure: { signal?: string | null; status?: number | null; stdout?: string } = {};
      try {
        runNode(code, ['unshare', '--pid', '--fork', '--mount-proc'], { HOST_NS: readlinkSync('/proc/self/ns/pid') });
      } catch (e) {
        failure = e as typeof failure;
      }
      assert.equal(failure.stdout, 'reboot(0x0badc0de): EINVAL (Invalid argument)\n');
      assert.ok(
        failure.signal === 'SIGINT' || failure.status === 128 + 2,
        `unshare ended with ${failure.signal ?? failure.status}`,
      );
    });
  });
});
