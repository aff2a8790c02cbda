// The docker demo commands with `keel` in place of `docker`, run for real as root on this host:
// the CLI binary, a store under a temp --root holding the busybox image Keel bakes in.
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { once } from 'node:events';
import { appendFileSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { addBusybox } from './busybox-fixture.js';
import { ContainerDb, processStartTime } from '../../containers/db.js';
import { ImageStore } from '../../containers/store.js';
import { splitAtPositional } from '../../cli/main.js';
import { waitForStart } from '../../cli/run.js';
import { containerFields, eventually, KEEL, keelAt, monitorRunning, outputIncludes } from './helpers.js';
import { OPTION_TABLE } from './options-table.js';
import { describeAsRoot } from '../needs.js';

describeAsRoot('keel run, ps, logs, stop, rm (the CLI, as root)', function () {
  this.timeout(60_000);
  let root: string;
  let dir: string;
  const keel = (...args: string[]) => keelAt(root, args);
  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'keel-cli-ct-'));
    root = join(dir, 'root');
    await addBusybox(new ImageStore(root), '/bin/busybox', 1700000000);
  });
  after(() => {
    spawnSync(KEEL, ['rm', '-f', '--root', root, ...keel('ps', '-aq').out.split('\n').filter(Boolean)]);
    rmSync(dir, { recursive: true, force: true });
  });

  it('keel run busybox /bin/echo hello world', () => {
    const r = keel('run', 'busybox', '/bin/echo', 'hello', 'world');
    assert.equal(r.code, 0, r.err);
    assert.equal(r.out, 'hello world\n');
  });

  it('reports exit codes exactly (a signal from outside as 128+N: see stop below)', () => {
    for (const code of [0, 1, 42, 255])
      assert.equal(keel('run', '--rm', 'busybox', 'sh', '-c', `exit ${code}`).code, code);
    // As PID 1 of its namespace, a process cannot be killed from inside by a signal it has no
    // handler for (the kernel drops it), as under docker.
    assert.equal(keel('run', '--rm', 'busybox', 'sh', '-c', 'kill -9 $$; echo survived').out, 'survived\n');
  });

  it('keel run -d, then ps, logs, stop, ps -a, rm', async () => {
    const r = keel(
      'run',
      '-d',
      '--name',
      'pinger',
      'busybox',
      '/bin/sh',
      '-c',
      'while true; do echo ping; sleep 1; done',
    );
    assert.equal(r.code, 0, r.err);
    const id = r.out.trim();
    assert.match(id, /^[0-9a-f]{64}$/);
    await eventually('two pings in the log', () =>
      /^ping\nping\n/.test(keel('logs', 'pinger').out) ? true : undefined,
    );
    assert.match(
      keel('ps').out,
      new RegExp(`^${id.slice(0, 12)} +busybox +"/bin/sh -c while tr…" .* Up .* pinger$`, 'm'),
    );
    const logs = keel('logs', id.slice(0, 6)).out;
    assert.match(logs, /^ping\nping\n/);
    const stopped = keel('stop', '-t', '1', 'pinger');
    assert.equal(stopped.code, 0, stopped.err);
    assert.doesNotMatch(keel('ps').out, /pinger/);
    // sh as PID 1 ignores SIGTERM: docker's SIGKILL after the grace time, exit 137.
    assert.match(keel('ps', '-a').out, /Exited \(137\).* pinger$/m);
    assert.equal(keel('rm', 'pinger').code, 0);
    assert.doesNotMatch(keel('ps', '-a').out, /pinger/);
  });

  // A .container service's ExecStop= is keel stop and its main process keel run: keel stop used to
  // return once the exit was recorded, with keel run still exiting, and the manager then sent that
  // keel run its own SIGTERM (the service ended failed, exit-code 137, or 1 run in 8 by the signal).
  for (const flag of [false, true]) {
    const how = flag ? 'and --sigterm-on-stop ends it by SIGTERM' : 'which exits 137 as docker run';
    it(`keel stop returns once the foreground keel run has ended too, ${how}`, async () => {
      const name = flag ? 'fg-term' : 'fg-plain';
      const args = [
        'run',
        '--root',
        root,
        '--rm',
        ...(flag ? ['--sigterm-on-stop'] : []),
        '--name',
        name,
        '--network',
        'none',
        'busybox',
        'sh',
        '-c',
        'echo ready; sleep 300',
      ];
      const run = spawn(KEEL, args, { stdio: ['ignore', 'pipe', 'pipe'] });
      let err = '';
      run.stderr.on('data', (b: Buffer) => {
        err += b;
      });
      const ended = once(run, 'exit');
      await new Promise<void>((res, rej) => {
        run.stdout.on('data', (b: Buffer) => {
          if (String(b).includes('ready')) res();
        });
        run.once('exit', () => rej(new Error(`keel run ended before the container was ready: ${err}`)));
      });
      // spawnSync blocks our event loop, so keel run, once ended, stays a zombie until we reap it.
      const stop = keel('stop', '-t', '0', name);
      assert.equal(stop.code, 0, stop.err);
      const stat = readFileSync(`/proc/${run.pid}/stat`, 'utf8');
      const state = stat.slice(stat.lastIndexOf(')') + 2)[0];
      assert.equal(state, 'Z', `keel run still runs after keel stop returned: ${stat}`);
      const [code, signal] = await ended;
      assert.deepEqual([code, signal], flag ? [null, 'SIGTERM'] : [137, null], err);
      assert.doesNotMatch(keel('ps', '-a').out, new RegExp(name));
    });
  }

  // The same table as units/quadlet's test: a .container unit and keel run take exactly the same values.
  it('takes and refuses the option values a .container unit does (the shared table)', () => {
    for (const { key, option, value, ok } of OPTION_TABLE) {
      // --userns remap prepares the layers anew (test/containers/userns.test.ts); -p needs the bridge.
      if (option === '--userns' && value === 'remap') continue;
      const net = option === '--network' || option === '-p' ? [] : ['--network', 'none'];
      const opt = value.startsWith('-') ? [`${option}=${value}`] : [option, value];
      const r = keel('run', '--rm', ...net, ...opt, 'busybox', 'true');
      const what = `${key}=${value} / keel run ${option} ${value}: ${r.err}`;
      // A taken value may still fail at start for the host's sake (a hybrid cgroup host cannot
      // enforce --cpus): what counts is that keel run did not refuse the value itself.
      // A refusal names the value, quoted.
      if (ok) assert.equal(r.err.includes(JSON.stringify(value)), false, what);
      else assert.deepEqual([r.code, r.err.includes(JSON.stringify(value))], [1, true], what);
    }
  });

  it("keel attach follows a running container's output until it exits, with its exit status", async () => {
    keel(
      'run',
      '-d',
      '--name',
      'counter',
      'busybox',
      'sh',
      '-c',
      'sleep 1; for i in 1 2 3; do echo n$i; sleep 0.3; done; exit 5',
    );
    const r = keel('attach', 'counter');
    assert.equal(r.out, 'n1\nn2\nn3\n', r.err);
    assert.equal(r.code, 5);
    const gone = keel('attach', 'counter');
    assert.notEqual(gone.code, 0);
    assert.match(gone.err, /container counter is not running/);
    keel('rm', 'counter');
    // --rm removes it (state and all) as it exits: the status comes from its monitor over attach.sock.
    keel(
      'run',
      '-d',
      '--rm',
      '--name',
      'brief',
      '--network',
      'none',
      'busybox',
      'sh',
      '-c',
      'sleep 1; echo bye; exit 7',
    );
    const brief = keel('attach', 'brief');
    assert.deepEqual([brief.code, brief.out], [7, 'bye\n'], brief.err);
    assert.doesNotMatch(keel('ps', '-a').out, /brief/);
  });

  it("keel attach passes our SIGINT to a container without a terminal (docker's --sig-proxy)", async () => {
    keel(
      'run',
      '-d',
      '--name',
      'trapper',
      '--network',
      'none',
      'busybox',
      'sh',
      '-c',
      'trap "echo got INT; exit 3" INT; while true; do echo tick; sleep 0.1; done',
    );
    const attach = spawn(KEEL, ['attach', '--root', root, 'trapper'], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    attach.stdout.on('data', (c: Buffer) => {
      out += c;
    });
    const ended = new Promise<number | null>((r) => attach.on('exit', (code) => r(code)));
    // Attached (its signal handlers in place) once it copies output; then the signal goes to the container, not to us.
    await outputIncludes(attach, () => out, 'tick\n');
    attach.kill('SIGINT');
    assert.equal(await ended, 3);
    assert.match(out, /got INT\n$/);
    assert.match(keel('ps', '-a').out, /Exited \(3\).* trapper$/m);
    keel('rm', 'trapper');
  });

  // The monitor records the exit once the container's last output is in its log; a process that
  // is gone is not yet an exit (db.state() then says exited, with no status).
  it(
    'keel attach waits for the exit to be recorded, not just the ' + 'process gone (it once said 0 for an exit 5)',
    async () => {
      const db = new ContainerDb(root);
      const c = db.create(containerFields({ name: 'late', imageId: 'none', argv: ['sleep', '30'] }));
      // The container's process is a sleep of ours; this test plays its monitor.
      const sleeper = spawn('sleep', ['30']);
      await once(sleeper, 'spawn');
      const log = db.path(c.id, 'container.log');
      writeFileSync(log, 'before attach\n');
      db.setState(c.id, {
        status: 'running',
        pid: sleeper.pid!,
        startTime: processStartTime(sleeper.pid!)!,
        startedAt: new Date().toISOString(),
        finishedAt: null,
        exitCode: null,
        signal: null,
        restartCount: 0,
        error: null,
      });
      const attach = spawn(KEEL, ['attach', '--root', root, 'late'], { stdio: ['ignore', 'pipe', 'pipe'] });
      let out = '';
      attach.stdout.on('data', (b: Buffer) => {
        out += b;
      });
      const exited = once(attach, 'exit');
      // Attached once it copies what is appended to the log (it starts at the end of the log).
      const feed = setInterval(() => appendFileSync(log, 'during attach\n'), 50);
      try {
        await outputIncludes(attach, () => out, 'during attach\n');
      } finally {
        clearInterval(feed);
      }
      sleeper.kill('SIGKILL');
      await once(sleeper, 'exit');
      // Still following with the process gone and no exit recorded: it prints what comes next.
      appendFileSync(log, 'process gone\n');
      await outputIncludes(attach, () => out, 'process gone\n');
      appendFileSync(log, 'last words\n');
      db.setState(c.id, {
        ...db.state(c.id),
        status: 'exited',
        exitCode: 5,
        finishedAt: new Date().toISOString(),
        error: null,
      });
      const [code] = await exited;
      assert.match(out, /^(during attach\n)+process gone\nlast words\n$/);
      assert.equal(code, 5);
    },
  );

  it('removes a --rm container, and refuses to remove a running one without -f', async () => {
    keel('run', '--rm', '--name', 'gone', 'busybox', 'true');
    assert.doesNotMatch(keel('ps', '-a').out, / gone$/m);
    const id = keel('run', '-d', '--name', 'busy', 'busybox', 'sleep', '60').out.trim();
    const r = keel('rm', 'busy');
    assert.equal(r.code, 1);
    assert.match(r.err, /cannot remove running container busy: stop it first, or use keel rm -f/);
    assert.equal(keel('rm', '-f', id).code, 0);
    assert.doesNotMatch(keel('ps', '-a').out, / busy$/m);
  });

  it('passes -e, --env-file, -w, -u, --hostname and --entrypoint through', () => {
    const envFile = join(dir, 'env');
    writeFileSync(envFile, '# comment\nFROM_FILE=yes\n');
    const r = keel(
      'run',
      '--rm',
      '-e',
      'A=1',
      '--env-file',
      envFile,
      '-w',
      '/tmp',
      '-u',
      'nobody',
      '--hostname',
      'box',
      '--entrypoint',
      '/bin/sh',
      'busybox',
      '-c',
      'echo $A $FROM_FILE $(pwd) $(id -u):$(id -g) $(hostname)',
    );
    assert.equal(r.code, 0, r.err);
    assert.equal(r.out, '1 yes /tmp 65534:65534 box\n');
  });

  it('mounts volumes read-write and :ro, and --read-only makes the root read-only', () => {
    const vol = join(dir, 'vol');
    mkdirSync(vol);
    assert.equal(keel('run', '--rm', '-v', `${vol}:/data`, 'busybox', 'sh', '-c', 'echo hi > /data/f').code, 0);
    assert.equal(readFileSync(join(vol, 'f'), 'utf8'), 'hi\n');
    const ro = keel('run', '--rm', '-v', `${vol}:/data:ro`, 'busybox', 'sh', '-c', 'echo no > /data/g');
    assert.notEqual(ro.code, 0);
    assert.match(ro.err, /Read-only file system/);
    assert.equal(existsSync(join(vol, 'g')), false);
    const root2 = keel('run', '--rm', '--read-only', 'busybox', 'touch', '/x');
    assert.notEqual(root2.code, 0);
    assert.match(root2.err, /Read-only file system/);
  });

  it('restarts on failure up to N times, and names clash clearly', async () => {
    keel('run', '-d', '--name', 'flaky', '--restart', 'on-failure:2', 'busybox', 'sh', '-c', 'echo try; exit 3');
    const inspect = () => JSON.parse(keel('inspect', 'flaky').out)[0];
    // Done when it has exited after its second restart (or give up after 15 s and let the asserts say why).
    for (let i = 0; i < 150; i++) {
      const st = inspect().state;
      if (st.status === 'exited' && st.restartCount >= 2) break;
      await new Promise((r) => setTimeout(r, 100));
    }
    // No third restart comes: its monitor has given up and ended.
    await eventually('the monitor of flaky to end', () => (monitorRunning(inspect().id) ? undefined : true));
    const info = inspect();
    assert.equal(info.state.restartCount, 2);
    assert.equal(info.state.exitCode, 3);
    assert.equal(keel('logs', 'flaky').out, 'try\ntry\ntry\n');
    const clash = keel('run', '--name', 'flaky', 'busybox', 'true');
    assert.notEqual(clash.code, 0);
    assert.match(clash.err, /the container name "flaky" is already in use/);
  });

  it(
    'refuses bad --cpus, --pids-limit, --memory, --restart and ' +
      '--hostname values by name and value, creating nothing',
    () => {
      const before = keel('ps', '-aq').out;
      for (const [args, message] of [
        [
          ['--cpus', 'abc'],
          /invalid --cpus "abc" \(use a number of CPUs such as 0.5 or 2, at least 0.01; 0 for no limit\)/,
        ],
        [['--cpus', '0.001'], /invalid --cpus "0.001"/],
        [['--pids-limit', 'x'], /invalid --pids-limit "x" \(use a number of processes; 0 or -1 for no limit\)/],
        [['--memory', 'lots'], /invalid --memory "lots"/],
        [['--restart', 'sometimes'], /invalid --restart "sometimes"/],
        [['--hostname', 'bad host!'], /invalid --hostname "bad host!" \(use letters, digits and '-'/],
        [['--hostname', `${'a'.repeat(60)}.example`], /invalid --hostname "a{60}\.example"/],
      ] as const) {
        const r = keel('run', '--rm', '--network', 'none', ...args, 'busybox', 'true');
        assert.equal(r.code, 1, args.join(' '));
        assert.match(r.err, message);
      }
      assert.equal(keel('ps', '-aq').out, before);
      // docker's "no limit" spellings.
      const free = keel(
        'run',
        '-d',
        '--name',
        'unlimited',
        '--network',
        'none',
        '--cpus',
        '0',
        '--pids-limit=-1',
        'busybox',
        'sleep',
        '5',
      );
      assert.equal(free.code, 0, free.err);
      const { config } = new ContainerDb(root).resolve('unlimited');
      assert.deepEqual([config.cpus, config.pidsLimit], [null, null]);
      assert.equal(keel('rm', '-f', 'unlimited').code, 0);
    },
  );

  it(
    'keel run -d says when its monitor ends before starting the ' + 'container, instead of waiting and printing the id',
    async () => {
      const db = new ContainerDb(root);
      const config = db.create(containerFields({ name: 'orphan', argv: ['true'] }));
      await assert.rejects(waitForStart(db, config, spawn('sh', ['-c', 'exit 3'])), {
        message:
          'keel run: the monitor of container orphan ended (exit status 3) before ' +
          'starting it; the container is left created (keel rm orphan)',
      });
      assert.equal(db.state(config.id).status, 'created');
      db.remove(config.id);
    },
  );

  it(
    "reads --env-file itself: a missing one is keel's error, not node's " +
      '(node takes --env-file anywhere on its command line)',
    () => {
      const r = keel('run', '--rm', '--network', 'none', '--env-file', join(dir, 'missing.env'), 'busybox', 'true');
      assert.deepEqual(
        [r.code, r.err],
        [1, `keel: cannot read --env-file ${join(dir, 'missing.env')}: no such file\n`],
      );
    },
  );

  it('refuses bad numbers for logs -n/--tail and stop -t, and names what inspect cannot find', () => {
    assert.equal(
      keel(
        'run',
        '-d',
        '--name',
        'talker',
        '--network',
        'none',
        'busybox',
        'sh',
        '-c',
        'echo a; echo b; echo c; sleep 60',
      ).code,
      0,
    );
    for (let i = 0; i < 50 && !keel('logs', 'talker').out.includes('c'); i++) spawnSync('sleep', ['0.1']);
    assert.equal(keel('logs', '--tail', '1', 'talker').out, 'c\n');
    assert.equal(keel('logs', '-n', 'all', 'talker').out, 'a\nb\nc\n');
    const tail = keel('logs', '--tail', 'abc', 'talker');
    assert.deepEqual([tail.code, tail.err], [1, 'keel: keel logs: invalid --tail "abc" (use a whole number or all)\n']);
    const stop = keel('stop', '-t', 'soon', 'talker');
    assert.deepEqual([stop.code, stop.err], [1, 'keel: keel stop: invalid -t "soon" (use a whole number)\n']);
    assert.match(keel('ps').out, /talker/, 'a refused stop leaves it running');
    const inspect = keel('inspect', 'nosuch');
    assert.deepEqual([inspect.code, inspect.err], [1, 'keel: keel inspect: no such container or image: nosuch\n']);
    assert.equal(keel('rm', '-f', 'talker').code, 0);
  });

  it('lists images, saves and loads them, and removes them', () => {
    const images = keel('images');
    assert.match(images.out, /^REPOSITORY +TAG +IMAGE ID +CREATED +SIZE\nbusybox +latest +[0-9a-f]{12} /);
    assert.equal(JSON.parse(keel('images', '--format', 'json').out)[0].refs[0], 'docker.io/library/busybox:latest');
    const archive = join(dir, 'bb.tar');
    assert.equal(keel('save', '-o', archive, 'busybox').code, 0);
    const other = join(dir, 'other');
    const r = spawnSync(KEEL, ['load', '--root', other, '-i', archive], { encoding: 'utf8' });
    assert.equal(r.stdout, 'Loaded image: busybox:latest\n', r.stderr);
    const run = spawnSync(KEEL, ['run', '--root', other, '--rm', 'busybox', 'echo', 'loaded'], { encoding: 'utf8' });
    assert.equal(run.stdout, 'loaded\n', run.stderr);
    const rmi = spawnSync(KEEL, ['rmi', '--root', other, 'busybox'], { encoding: 'utf8' });
    assert.match(rmi.stdout, /^Untagged: busybox:latest\nDeleted: sha256:/);
    assert.match(
      spawnSync(KEEL, ['images', '--root', other], { encoding: 'utf8' }).stdout,
      /^REPOSITORY +TAG +IMAGE ID +CREATED +SIZE\n$/,
    );
  });
});

describe('cli/main splitAtPositional (options stop at the image)', () => {
  const opts = {
    detach: { type: 'boolean' as const, short: 'd' },
    name: { type: 'string' as const },
    env: { type: 'string' as const, short: 'e', multiple: true as const },
  };
  it("keeps the command's own options for the command", () => {
    assert.deepEqual(splitAtPositional(['-d', '--name', 'x', 'busybox', '/bin/sh', '-c', 'echo'], opts, 1), [
      ['-d', '--name', 'x', 'busybox'],
      ['/bin/sh', '-c', 'echo'],
    ]);
    assert.deepEqual(splitAtPositional(['-e', 'A=1', '-dexy', 'img', '-d'], opts, 1), [
      ['-e', 'A=1', '-dexy', 'img'],
      ['-d'],
    ]);
    assert.deepEqual(splitAtPositional(['--name=x', 'img'], opts, 1), [['--name=x', 'img'], []]);
    assert.deepEqual(splitAtPositional(['-d', '--', 'img', '-x'], opts, 1), [['-d'], ['img', '-x']]);
  });
});
