// keel exec, run for real as root on this host: the CLI binary and a store under a temp --root
// holding the busybox image (as in cli.test.ts), one detached container `box` running
// `sleep 300`, and commands started inside it; plus spawn()'s `join` option directly.
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { hostname, tmpdir } from 'node:os';
import { join } from 'node:path';
import { repoRoot } from '../../builder/bundle.js';
import { addBusybox } from './busybox-fixture.js';
import { ContainerDb } from '../../containers/db.js';
import { execEnvironment, execInContainer, execSpawnOptions } from '../../containers/exec.js';
import { isContainerError } from '../../containers/errors.js';
import { ImageStore } from '../../containers/store.js';
import { native } from '../../native/native.js';
import { expectNativeError, zombiesOf } from '../native/helpers.js';
import { describeAsRoot } from '../needs.js';

const KEEL = join(repoRoot(), 'bin/keel');
const DOCKER_DEFAULT_MASK = 0xa80425fbn;
const hex = (m: bigint) => m.toString(16).padStart(16, '0');

describeAsRoot("keel exec (the CLI and spawn's join option, as root)", function () {
  this.timeout(60_000);
  let dir: string;
  let root: string;
  let id: string;
  const keel = (args: string[], input?: string) => {
    const r = spawnSync(KEEL, [args[0], '--root', root, ...args.slice(1)], {
      encoding: 'utf8',
      timeout: 45_000,
      ...(input !== undefined ? { input } : {}),
    });
    return { code: r.status, out: r.stdout, err: r.stderr };
  };
  const exec = (...args: string[]) => keel(['exec', ...args]);
  const box = () => new ContainerDb(root).resolve('box');

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'keel-exec-'));
    root = join(dir, 'root');
    await addBusybox(new ImageStore(root), '/bin/busybox', 1700000000);
    const r = keel(['run', '-d', '--name', 'box', 'busybox', 'sleep', '300']);
    assert.equal(r.code, 0, r.err);
    id = r.out.trim();
    assert.equal(box().state.status, 'running');
  });
  after(() => {
    spawnSync(KEEL, ['rm', '-f', '--root', root, ...keel(['ps', '-aq']).out.split('\n').filter(Boolean)]);
    rmSync(dir, { recursive: true, force: true });
  });

  it("sees the container's hostname, not the host's", () => {
    const r = exec('box', 'hostname');
    assert.equal(r.code, 0, r.err);
    assert.equal(r.out, `${id.slice(0, 12)}\n`);
    assert.notEqual(r.out.trim(), hostname());
  });

  it("sees only the container's processes: PID 1 sleep 300, and itself with a small pid", () => {
    const ps = exec('box', 'ps', '-o', 'pid,args');
    assert.equal(ps.code, 0, ps.err);
    const rows = ps.out
      .trim()
      .split('\n')
      .slice(1)
      .map((l) => l.trim().split(/\s+/));
    assert.deepEqual(rows[0], ['1', 'sleep', '300']);
    const self = rows.find((r) => r[1] === 'ps');
    assert.ok(self && Number(self[0]) > 1 && Number(self[0]) < 100, ps.out);
    const pids = exec('box', 'sh', '-c', 'ls /proc | grep -E "^[0-9]+$"; true').out.trim().split('\n').map(Number);
    assert.ok(pids.includes(1));
    assert.ok(
      pids.every((p) => p < 100),
      `pids seen inside: ${pids.join(' ')}`,
    );
  });

  it("shares the container's filesystem: a file one exec writes, the next reads; the host's /tmp has none", () => {
    const name = `keel-exec-test-${process.pid}`;
    assert.equal(exec('box', 'sh', '-c', `echo hi > /tmp/${name}`).code, 0);
    const r = exec('box', 'cat', `/tmp/${name}`);
    assert.deepEqual([r.code, r.out], [0, 'hi\n']);
    assert.equal(existsSync(`/tmp/${name}`), false);
    assert.ok(existsSync(join(root, 'containers', id, 'upper', 'tmp', name)), "in the container's upper layer");
  });

  it('is confined as the container: its capabilities, no_new_privs, the seccomp filter; unshare fails', () => {
    const r = exec('box', 'grep', '-E', '^(CapEff|CapBnd|NoNewPrivs|Seccomp):', '/proc/self/status');
    assert.equal(
      r.out,
      `CapEff:\t${hex(DOCKER_DEFAULT_MASK)}\nCapBnd:\t${hex(DOCKER_DEFAULT_MASK)}\nNoNewPrivs:\t1\nSeccomp:\t2\n`,
    );
    const u = exec('box', 'unshare', '-m', 'true');
    assert.notEqual(u.code, 0);
    assert.match(u.err, /unshare.*Operation not permitted/);
    // In the container's cgroup namespace, rooted at the container's cgroup.
    assert.match(exec('box', 'cat', '/proc/self/cgroup').out, /^0::\/$/m);
  });

  it("passes -e, -w and -u, keeps the container's environment, and passes the exit status through", () => {
    const r = exec(
      '-e',
      'A=1',
      '-w',
      '/tmp',
      '-u',
      'nobody',
      'box',
      'sh',
      '-c',
      'echo $A $(pwd) $(id -u):$(id -g) $HOSTNAME $HOME $PATH',
    );
    assert.equal(r.code, 0, r.err);
    assert.equal(
      r.out,
      `1 /tmp 65534:65534 ${id.slice(0, 12)} / /usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin\n`,
    );
    assert.equal(exec('box', 'sh', '-c', 'exit 7').code, 7);
    assert.equal(exec('box', 'sh', '-c', 'kill -TERM $$').code, 143, 'a signal as 128+N');
    // The command's own options stay its own.
    assert.equal(exec('box', 'ls', '-d', '/tmp').out, '/tmp\n');
  });

  it('-i passes our stdin; without it the command reads /dev/null', () => {
    assert.equal(keel(['exec', '-i', 'box', 'cat'], 'piped\n').out, 'piped\n');
    assert.equal(keel(['exec', 'box', 'cat'], 'not read\n').out, '');
    const t = exec('-t', 'box', 'true');
    assert.equal(t.code, 0);
  });

  it('fails clearly for a missing command (127), a bad -w, a stopped and a missing container', () => {
    const nf = exec('box', 'no-such-command');
    assert.equal(nf.code, 127);
    assert.match(nf.err, /execve\(no-such-command\): ENOENT/);
    const w = exec('-w', '/nowhere', 'box', 'true');
    assert.equal(w.code, 1);
    assert.match(w.err, /chdir\(\/nowhere\): ENOENT/);
    assert.equal(keel(['run', '--name', 'done', 'busybox', 'true']).code, 0);
    const stopped = exec('done', 'true');
    assert.equal(stopped.code, 1);
    assert.match(stopped.err, /container done is not running/);
    const missing = exec('nosuch', 'true');
    assert.equal(missing.code, 1);
    assert.match(missing.err, /no such container: nosuch/);
  });

  it('passes SIGTERM on to the command, which ends its own way', async () => {
    const child = spawn(
      KEEL,
      [
        'exec',
        '--root',
        root,
        'box',
        'sh',
        '-c',
        'trap "echo got TERM; exit 3" TERM; echo ready; while :; do sleep 0.05; done',
      ],
      { stdio: ['ignore', 'pipe', 'pipe'] },
    );
    let out = '';
    child.stdout.on('data', (d) => {
      out += d;
    });
    const exited = new Promise<number | null>((r) => child.on('exit', (code) => r(code)));
    for (const end = Date.now() + 10_000; !out.includes('ready'); await new Promise((r) => setTimeout(r, 20))) {
      assert.ok(Date.now() < end, 'the command started');
    }
    child.kill('SIGTERM');
    assert.equal(await exited, 3);
    assert.equal(out, 'ready\ngot TERM\n');
  });

  it(
    'throws failures of the grandchild (cwd, execve) and of the intermediate ' +
      'child (cgroup) with syscall and path, leaving no zombie',
    () => {
      const db = new ContainerDb(root),
        store = new ImageStore(root);
      expectNativeError(() => execInContainer(db, store, 'box', { argv: ['true'], cwd: '/nowhere' }), {
        code: 'ENOENT',
        syscall: 'chdir',
        path: '/nowhere',
      });
      expectNativeError(() => execInContainer(db, store, 'box', { argv: ['/no/such'] }), {
        code: 'ENOENT',
        syscall: 'execve',
        path: '/no/such',
      });
      const { state } = box();
      expectNativeError(
        () =>
          native.spawn({
            file: 'true',
            argv: ['true'],
            env: [],
            cgroup: join(dir, 'no-cgroup'),
            join: { pid: state.pid, namespaces: ['mnt'] },
          }),
        { code: 'ENOENT', syscall: 'open', path: join(dir, 'no-cgroup', 'cgroup.procs') },
      );
      assert.deepEqual(zombiesOf(process.pid), []);
      assert.throws(
        () => execInContainer(db, store, 'done', { argv: ['true'] }),
        (e) => isContainerError(e, 'ENOTRUNNING'),
      );
    },
  );

  it('refuses a process that is not the one asked for (start time), and bad options', () => {
    const { state } = box();
    expectNativeError(
      () =>
        native.spawn({
          file: 'true',
          argv: ['true'],
          env: [],
          join: { pid: state.pid, startTime: '1', namespaces: ['pid'] },
        }),
      { code: 'ESRCH', syscall: 'open', path: `/proc/${state.pid}` },
    );
    expectNativeError(
      () => native.spawn({ file: 'true', argv: ['true'], env: [], join: { pid: 2 ** 31 - 1, namespaces: ['net'] } }),
      { code: 'ENOENT', syscall: 'open', path: `/proc/${2 ** 31 - 1}/ns/net` },
    );
    assert.throws(
      () =>
        native.spawn({
          file: 'true',
          argv: ['true'],
          env: [],
          join: { pid: state.pid, namespaces: ['time' as 'mnt'] },
        }),
      /join\.namespaces\[\] must be one of mnt, uts, ipc, net, pid, cgroup, user/,
    );
    assert.throws(
      () =>
        native.spawn({ file: 'true', argv: ['true'], env: [], join: { pid: state.pid, namespaces: ['mnt', 'mnt'] } }),
      /twice/,
    );
    assert.throws(
      () => native.spawn({ file: 'true', argv: ['true'], env: [], join: { pid: 0, namespaces: [] } }),
      /join\.pid/,
    );
    assert.throws(
      () =>
        native.spawn({
          file: 'true',
          argv: ['true'],
          env: [],
          join: { pid: state.pid, namespaces: [] },
          container: { root: '/', rootMount: { source: null, fstype: null, flags: 0, data: null } },
        }),
      /container and join exclude each other/,
    );
  });

  it('builds the options from the stored config: security as the container, env with -e over it', () => {
    const { config, state } = box();
    const o = execSpawnOptions(
      { config, state, layerDirs: [], cgroup: '/sys/fs/cgroup/x', host: { capabilities: (1n << 41n) - 1n } },
      { argv: ['id'], env: ['B=2', 'HOME=/h'] },
    );
    assert.equal(o.capabilities, DOCKER_DEFAULT_MASK);
    assert.ok(o.seccomp && o.seccomp.length > 0);
    assert.equal(o.noNewPrivs, true);
    assert.deepEqual(o.join, {
      pid: state.pid,
      startTime: state.startTime,
      namespaces: ['mnt', 'uts', 'ipc', 'net', 'pid', 'cgroup'],
    });
    assert.deepEqual([o.cwd, o.uid, o.gid, o.cgroup, o.setsid], ['/', 0, 0, '/sys/fs/cgroup/x', true]);
    assert.ok(o.env.includes('B=2') && o.env.includes('HOME=/h') && o.env.includes(`HOSTNAME=${id.slice(0, 12)}`));
    const p = execSpawnOptions(
      { config: { ...config, privileged: true }, state, layerDirs: [], cgroup: null, host: { capabilities: 7n } },
      { argv: ['id'] },
    );
    assert.deepEqual([p.capabilities, p.seccomp, p.noNewPrivs, p.cgroup], [7n, undefined, false, undefined]);
    assert.deepEqual(execEnvironment(['A=1', 'B=x=y'], ['A=2', 'C', 'D'], { C: 'c' }), ['A=2', 'B=x=y', 'C=c']);
  });

  it('ends with the container: stopping it kills a running exec (137)', async () => {
    const child = spawn(KEEL, ['exec', '--root', root, 'box', 'sleep', '30'], { stdio: 'ignore' });
    const exited = new Promise<number | null>((r) => child.on('exit', (code) => r(code)));
    // Started once the intermediate child has its child (the command).
    const children = (pid: number) => {
      try {
        return readFileSync(`/proc/${pid}/task/${pid}/children`, 'utf8').trim().split(' ').filter(Boolean).map(Number);
      } catch {
        return [];
      }
    };
    for (
      const end = Date.now() + 10_000;
      !children(child.pid!).some((p) => children(p).length > 0);
      await new Promise((r) => setTimeout(r, 20))
    ) {
      assert.ok(Date.now() < end, 'the command started');
    }
    assert.equal(keel(['stop', '-t', '1', 'box']).code, 0);
    assert.equal(await exited, 137);
  });
});
