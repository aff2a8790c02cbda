// Real-kernel tests (as root) of spawn()'s service options: fds, cgroup, rlimits, nice, noNewPrivs, pgroup.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import {
  closeSync,
  mkdirSync,
  mkdtempSync,
  openSync,
  readdirSync,
  readFileSync,
  realpathSync,
  rmdirSync,
  rmSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { native, type SpawnOptions } from '../../native/native.js';
import { expectNativeError } from './helpers.js';
import { itAsRoot } from '../needs.js';

const NATIVE_JS = new URL('../../native/native.js', import.meta.url).href;

let dir: string;

/** Spawns with stdout (and stderr) into a file, waits, returns [exit code, output]. */
function run(opts: Partial<SpawnOptions> & { argv: string[] }): [number | null | undefined, string] {
  const out = join(dir, 'out');
  const fd = openSync(out, 'w');
  try {
    const pid = native.spawn({ file: opts.argv[0], env: [], stdout: fd, stderr: fd, ...opts });
    return [native.waitpid(pid, 0)?.code, readFileSync(out, 'utf8')];
  } finally {
    closeSync(fd);
  }
}

/** Field `n` (1-based, as in proc(5)) of /proc/PID/stat. */
function statField(pid: number, n: number): string {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  // The command name (field 2) is in parentheses and may hold spaces; count from after it.
  return stat.slice(stat.lastIndexOf(')') + 2).split(' ')[n - 3];
}

/** Where cgroup2 is mounted: /sys/fs/cgroup on a unified host, /sys/fs/cgroup/unified on a hybrid one. */
function cgroup2Root(): string | undefined {
  return readFileSync('/proc/self/mounts', 'utf8')
    .split('\n')
    .map((l) => l.split(' '))
    .find((f) => f[2] === 'cgroup2')?.[1];
}

describe('native spawn for services', () => {
  beforeEach(() => {
    dir = realpathSync(mkdtempSync(join(tmpdir(), 'keel-native-spawn-')));
  });
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  describe('fds', () => {
    it('puts parent fds on 3, 4, 5, ... even when sources and targets overlap', () => {
      // A child node holds file A on fd 3 and file B on fd 4, and hands them down swapped, B twice,
      // and its stdout pipe as fd 6: a naive dup2(4, 3) would clobber the source of fd 4.
      writeFileSync(join(dir, 'A'), 'A');
      writeFileSync(join(dir, 'B'), 'B');
      const [a, b] = [openSync(join(dir, 'A'), 'r'), openSync(join(dir, 'B'), 'r')];
      try {
        // ls first: sh's own redirections (>&6) leave a saved copy of the fd open for a while.
        const script = 'ls /proc/$$/fd; cat /proc/self/fd/3 /proc/self/fd/4 /proc/self/fd/5; echo; echo via 6 >&6';
        const code =
          `const { native } = await import(process.env.NATIVE_JS);
          const pid = native.spawn({ file: '/bin/sh', argv: ['sh', '-c', ` +
          `${JSON.stringify(script)}], env: [], stdout: 1, fds: [4, 3, 4, 1] });
          native.waitpid(pid, 0);`;
        const out = execFileSync(process.execPath, ['--input-type=module', '-e', code], {
          encoding: 'utf8',
          env: { ...process.env, NATIVE_JS },
          stdio: ['ignore', 'pipe', 'pipe', a, b],
        });
        // Only fds 0-6 survive the close-everything step, and all of them without FD_CLOEXEC (sh saw them after
        // execve).
        assert.equal(out, '0\n1\n2\n3\n4\n5\n6\nBAB\nvia 6\n');
      } finally {
        closeSync(a);
        closeSync(b);
      }
    });

    it('clears FD_CLOEXEC on the inherited fds', () => {
      const [r, w] = native.pipe();
      try {
        assert.ok(
          parseInt(/flags:\s*(\d+)/.exec(readFileSync(`/proc/self/fdinfo/${r}`, 'utf8'))![1], 8) & 0o2000000,
          'premise: pipe() is O_CLOEXEC',
        );
        const [code, out] = run({
          argv: ['/bin/sh', '-c', 'grep flags /proc/$$/fdinfo/3 /proc/$$/fdinfo/4'],
          fds: [r, w],
        });
        assert.equal(code, 0);
        const flags = [...out.matchAll(/flags:\s*(\d+)/g)].map((m) => parseInt(m[1], 8));
        assert.equal(flags.length, 2);
        for (const f of flags) assert.equal(f & 0o2000000, 0);
      } finally {
        closeSync(r);
        closeSync(w);
      }
    });

    it('throws fcntl EBADF for a closed fd before forking', () => {
      const fd = openSync('/dev/null', 'r');
      closeSync(fd);
      expectNativeError(() => native.spawn({ file: '/bin/true', argv: ['true'], env: [], fds: [fd] }), {
        code: 'EBADF',
        syscall: 'fcntl',
        message: new RegExp(`^fcntl\\(${fd}, F_GETFD\\): EBADF`),
      });
      assert.throws(() => native.spawn({ file: '/bin/true', argv: ['true'], env: [], fds: [-1] }), {
        name: 'TypeError',
        message: /^spawn: fds\[\] must be an integer from 0 to 2147483647, received -1$/,
      });
    });
  });

  describe('cgroup', () => {
    let group: string | undefined;
    afterEach(() => {
      if (group) rmdirSync(group);
      group = undefined;
    });

    itAsRoot('starts the program inside the given cgroup v2 directory', function () {
      const root = cgroup2Root();
      assert.ok(root, 'no cgroup2 hierarchy mounted: the tests need one (they run as root)');
      // Only a group that was made is removed after (afterEach rmdir'd one that mkdir had refused).
      const made = join(root!, `keel-test-${process.pid}`);
      mkdirSync(made);
      group = made;
      const pid = native.spawn({ file: '/bin/sleep', argv: ['sleep', '1'], env: [], cgroup: group });
      try {
        assert.match(readFileSync(`/proc/${pid}/cgroup`, 'utf8'), new RegExp(`^0::/keel-test-${process.pid}$`, 'm'));
        assert.deepEqual(readFileSync(join(group, 'cgroup.procs'), 'utf8').trim().split('\n'), [String(pid)]);
      } finally {
        process.kill(pid, 'SIGKILL');
        native.waitpid(pid, 0);
      }
    });

    it('reports a missing cgroup (open) and a failed write like other pre-exec failures', () => {
      const missing = join(dir, 'nope');
      expectNativeError(() => native.spawn({ file: '/bin/true', argv: ['true'], env: [], cgroup: missing }), {
        code: 'ENOENT',
        syscall: 'open',
        path: `${missing}/cgroup.procs`,
        message: new RegExp(`^open\\(${missing}/cgroup.procs\\): ENOENT \\(No such file or directory\\)$`),
      });
      // A cgroup.procs that accepts open but not the write: /dev/full fails every write with ENOSPC.
      symlinkSync('/dev/full', join(dir, 'cgroup.procs'));
      expectNativeError(() => native.spawn({ file: '/bin/true', argv: ['true'], env: [], cgroup: dir }), {
        code: 'ENOSPC',
        syscall: 'write',
        path: `${dir}/cgroup.procs`,
        message: new RegExp(`^write\\(${dir}/cgroup.procs\\): ENOSPC`),
      });
    });
  });

  describe('rlimits, nice, noNewPrivs', () => {
    it('applies rlimits with setrlimit, Infinity meaning unlimited', () => {
      const [code, out] = run({
        argv: ['/bin/sh', '-c', 'ulimit -n; ulimit -Hn; cat /proc/$$/limits'],
        rlimits: [
          { resource: 'NOFILE', soft: 512, hard: 1024 },
          { resource: 'CORE', soft: Infinity, hard: Infinity },
          { resource: 'NPROC', soft: 300, hard: 400 },
          { resource: 'MEMLOCK', soft: 65536, hard: 131072 },
          { resource: 'AS', soft: 2 ** 34, hard: Infinity },
        ],
      });
      assert.equal(code, 0);
      const limit = (name: string) => new RegExp(`^${name}\\s+(\\S+)\\s+(\\S+)`, 'm').exec(out)?.slice(1, 3);
      assert.match(out, /^512\n1024\n/);
      assert.deepEqual(limit('Max open files'), ['512', '1024']);
      assert.deepEqual(limit('Max core file size'), ['unlimited', 'unlimited']);
      assert.deepEqual(limit('Max processes'), ['300', '400']);
      assert.deepEqual(limit('Max locked memory'), ['65536', '131072']);
      assert.deepEqual(limit('Max address space'), [String(2 ** 34), 'unlimited']);
    });

    it('throws setrlimit errors from the child and rejects unknown resources', () => {
      expectNativeError(
        () =>
          native.spawn({
            file: '/bin/true',
            argv: ['true'],
            env: [],
            rlimits: [{ resource: 'NOFILE', soft: 10, hard: 5 }],
          }),
        { code: 'EINVAL', syscall: 'setrlimit', message: /^setrlimit\(RLIMIT_NOFILE, 10, 5\): EINVAL/ },
      );
      assert.throws(
        () =>
          native.spawn({
            file: '/bin/true',
            argv: ['true'],
            env: [],
            rlimits: [{ resource: 'CPU' as 'AS', soft: 1, hard: 1 }],
          }),
        {
          name: 'TypeError',
          message: 'spawn: rlimits[].resource must be one of NOFILE, NPROC, CORE, MEMLOCK, AS, received "CPU"',
        },
      );
      assert.throws(
        () =>
          native.spawn({
            file: '/bin/true',
            argv: ['true'],
            env: [],
            rlimits: [{ resource: 'AS', soft: -1, hard: 1 }],
          }),
        TypeError,
      );
    });

    itAsRoot('sets the nice value, before dropping privileges', () => {
      assert.deepEqual(run({ argv: ['/usr/bin/nice'], nice: 7 }), [0, '7\n']);
      // A negative nice needs CAP_SYS_NICE, which uid 65534 lacks: it must be set before setuid.
      assert.deepEqual(run({ argv: ['/usr/bin/nice'], nice: -5, uid: 65534, gid: 65534 }), [0, '-5\n']);
      assert.throws(() => native.spawn({ file: '/bin/true', argv: ['true'], env: [], nice: 20 }), {
        name: 'TypeError',
        message: 'spawn: nice must be an integer from -20 to 19, received 20',
      });
    });

    it('sets no_new_privs only when asked', () => {
      assert.deepEqual(run({ argv: ['/bin/grep', 'NoNewPrivs', '/proc/self/status'], noNewPrivs: true }), [
        0,
        'NoNewPrivs:\t1\n',
      ]);
      assert.deepEqual(run({ argv: ['/bin/grep', 'NoNewPrivs', '/proc/self/status'] }), [0, 'NoNewPrivs:\t0\n']);
    });
  });

  describe('pgroup', () => {
    it('puts the child in its own process group, so one kill(-pgid) ends the whole tree', async () => {
      const pid = native.spawn({
        file: '/bin/sh',
        argv: ['sh', '-c', 'sleep 30 & sleep 30 & wait'],
        env: [],
        pgroup: true,
      });
      try {
        assert.equal(statField(pid, 5), String(pid), 'pgrp is the child itself');
        assert.equal(statField(pid, 6), statField(process.pid, 6), 'still in our session');
        const inGroup = () =>
          readdirSync('/proc')
            .filter((n) => /^\d+$/.test(n))
            .filter((n) => {
              try {
                return statField(Number(n), 5) === String(pid) && statField(Number(n), 3) !== 'Z';
              } catch {
                return false;
              }
            });
        for (let i = 0; inGroup().length < 3 && i < 100; i++) await new Promise((r) => setTimeout(r, 10));
        assert.equal(inGroup().length, 3, 'sh and its two sleeps');
        process.kill(-pid, 'SIGKILL');
        assert.equal(native.waitpid(pid, 0)?.signal, 9);
        for (let i = 0; inGroup().length > 0 && i < 100; i++) await new Promise((r) => setTimeout(r, 10));
        assert.deepEqual(inGroup(), []);
      } finally {
        try {
          process.kill(-pid, 'SIGKILL');
          native.waitpid(pid, native.constants.WNOHANG);
        } catch {
          /* gone */
        }
      }
    });

    it('stays in our group without it, and combines with setsid', () => {
      const plain = native.spawn({ file: '/bin/sleep', argv: ['sleep', '5'], env: [] });
      const both = native.spawn({ file: '/bin/sleep', argv: ['sleep', '5'], env: [], pgroup: true, setsid: true });
      try {
        assert.equal(statField(plain, 5), statField(process.pid, 5));
        assert.deepEqual([statField(both, 5), statField(both, 6)], [String(both), String(both)]);
      } finally {
        for (const p of [plain, both]) {
          process.kill(p, 'SIGKILL');
          native.waitpid(p, 0);
        }
      }
    });
  });
});
