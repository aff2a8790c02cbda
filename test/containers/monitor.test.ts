// keel container-monitor (what keel run -d starts) against stops at every moment of its loop, for
// real as root: the monitor runs as its own process on a busybox container, stopped at each point
// of its loop by its test seam (KEEL_MONITOR_HOOKS, cli/monitor-hooks.ts) while the test stops
// the container there (SIGTERM to the monitor, or keel stop), then let go.
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type Server, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { addBusybox } from './busybox-fixture.js';
import { ContainerDb, type ContainerConfig } from '../../containers/db.js';
import { ImageStore } from '../../containers/store.js';
import { KEEL, keelAt } from './helpers.js';
import { describeAsRoot } from '../needs.js';

// Each run appends to /ctl/runs; it exits 3, or with /ctl/hold there it waits for a SIGTERM (exit 143).
const COMMAND =
  'echo run >> /ctl/runs; if [ -e /ctl/hold ]; then trap "exit 143" TERM; sleep 300 & wait $!; fi; exit 3';

/** A monitor under test: the points it says, in order, and its exit. */
interface Monitored {
  config: ContainerConfig;
  ctl: string;
  child: ChildProcess;
  /** The next line it said; fails after 30 s of silence (it went on past where it should have stopped, or hangs). */
  next(): Promise<string>;
  /** Lets it go on from the point it waits at. */
  go(): void;
  stderr(): string;
  exited: Promise<[number | null, NodeJS.Signals | null]>;
  close(): void;
}

describeAsRoot('keel container-monitor: a stopped container stays stopped (as root)', function () {
  this.timeout(60_000);
  let dir: string;
  let root: string;
  let imageId: string;
  let n = 0;
  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'keel-monitor-'));
    root = join(dir, 'root');
    imageId = (await addBusybox(new ImageStore(root), '/bin/busybox', 1700000000)).id;
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  async function monitor(beforeMonitor?: (id: string) => void): Promise<Monitored> {
    const name = `m${++n}`;
    const ctl = join(dir, `ctl-${name}`);
    mkdirSync(ctl);
    const config = new ContainerDb(root).create({
      name,
      image: 'busybox',
      imageId,
      argv: ['sh', '-c', COMMAND],
      env: [],
      cwd: '/',
      user: '',
      hostname: '',
      network: 'none',
      volumes: [{ host: ctl, container: '/ctl', ro: false }],
      ports: [],
      restart: { policy: 'always', max: 0 },
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
    });
    beforeMonitor?.(config.id);
    const sockPath = join(dir, `${name}.sock`);
    const server: Server = createServer();
    server.listen(sockPath);
    await once(server, 'listening');
    const child = spawn(KEEL, ['container-monitor', '--root', root, config.id], {
      stdio: ['ignore', 'ignore', 'pipe'],
      env: { ...process.env, KEEL_PROGRAM: 'keel', KEEL_MONITOR_HOOKS: sockPath },
    });
    let err = '';
    child.stderr!.on('data', (b: Buffer) => {
      err += b;
    });
    const exited = once(child, 'exit') as Promise<[number | null, NodeJS.Signals | null]>;
    const [conn] = (await Promise.race([
      once(server, 'connection'),
      exited.then(() => {
        throw new Error(`the monitor ended: ${err}`);
      }),
    ])) as [Socket];
    const lines: string[] = [];
    const waiters: ((l: string) => void)[] = [];
    let buf = '';
    conn.on('data', (d: Buffer) => {
      buf += d;
      for (let nl = buf.indexOf('\n'); nl >= 0; nl = buf.indexOf('\n')) {
        const line = buf.slice(0, nl);
        buf = buf.slice(nl + 1);
        const w = waiters.shift();
        if (w) w(line);
        else lines.push(line);
      }
    });
    conn.on('error', () => {});
    return {
      config,
      ctl,
      child,
      exited,
      next() {
        if (lines.length) return Promise.resolve(lines.shift()!);
        let timer: NodeJS.Timeout;
        return new Promise<string>((ok, fail) => {
          waiters.push((l) => {
            clearTimeout(timer);
            ok(l);
          });
          timer = setTimeout(() => fail(new Error(`the monitor said nothing more in 30 s (stderr: ${err})`)), 30_000);
        });
      },
      go() {
        conn.write('go\n');
      },
      stderr: () => err,
      close() {
        if (child.exitCode === null) child.kill('SIGKILL');
        conn.destroy();
        server.close();
      },
    };
  }

  /** Lets it go on from each point until it says `point`. */
  async function until(m: Monitored, point: string): Promise<void> {
    for (let line = await m.next(); line !== point; line = await m.next()) {
      assert.match(line, /^(start|running|exited|sleep) \d+$/, `before ${point}`);
      m.go();
    }
  }

  const runs = (m: Monitored) => readFileSync(join(m.ctl, 'runs'), 'utf8').split('\n').filter(Boolean).length;
  const state = (m: Monitored) => new ContainerDb(root).state(m.config.id);
  const keel = async (...args: string[]) => {
    const p = spawn(KEEL, [args[0], '--root', root, ...args.slice(1)], { stdio: 'ignore' });
    const [code] = await once(p, 'exit');
    return code as number | null;
  };

  it("a SIGTERM to the monitor during a restart's wait is not followed by another start", async () => {
    const m = await monitor();
    try {
      await until(m, 'sleep 1');
      m.child.kill('SIGTERM');
      assert.equal(await m.next(), 'SIGTERM');
      m.go();
      assert.equal(await m.next(), 'end');
      assert.deepEqual(await m.exited, [0, null], m.stderr());
      assert.equal(runs(m), 1);
      assert.deepEqual([state(m).status, state(m).exitCode], ['exited', 3]);
    } finally {
      m.close();
    }
  });

  it("keel stop during a restart's wait: no other start, and the wait ends without waiting it out", async () => {
    const m = await monitor();
    try {
      await until(m, 'sleep 1');
      assert.equal(await keel('stop', m.config.name), 0);
      // Not let go: keel stop's request ends the wait itself.
      assert.equal(await m.next(), 'end');
      assert.deepEqual(await m.exited, [0, null], m.stderr());
      assert.equal(runs(m), 1);
      assert.deepEqual([state(m).status, state(m).exitCode], ['exited', 3]);
    } finally {
      m.close();
    }
  });

  it('a SIGTERM to the monitor while it starts a run stops that run at once, and no other comes', async () => {
    const m = await monitor();
    try {
      await until(m, 'start 1');
      writeFileSync(join(m.ctl, 'hold'), '');
      m.child.kill('SIGTERM');
      assert.equal(await m.next(), 'SIGTERM');
      m.go();
      await until(m, 'end');
      assert.deepEqual(await m.exited, [0, null], m.stderr());
      assert.equal(state(m).status, 'exited');
      assert.equal(state(m).restartCount, 1);
    } finally {
      m.close();
    }
  });

  it('keel stop while the monitor starts a run (keel stop found nothing running) stops that run at once', async () => {
    const m = await monitor();
    try {
      await until(m, 'start 1');
      writeFileSync(join(m.ctl, 'hold'), '');
      assert.equal(await keel('stop', m.config.name), 0);
      m.go();
      await until(m, 'end');
      assert.deepEqual(await m.exited, [0, null], m.stderr());
      assert.equal(state(m).status, 'exited');
      assert.equal(state(m).restartCount, 1);
    } finally {
      m.close();
    }
  });

  it(
    'a SIGTERM to the monitor while it starts the first run (before its ' +
      'own handler was in place, it killed the monitor)',
    async () => {
      const m = await monitor();
      try {
        // Its first point comes once the handler is in place, just before the first start.
        assert.equal(await m.next(), 'start 0');
        writeFileSync(join(m.ctl, 'hold'), '');
        m.child.kill('SIGTERM');
        assert.equal(await m.next(), 'SIGTERM');
        m.go();
        await until(m, 'end');
        assert.deepEqual(await m.exited, [0, null], m.stderr());
        assert.deepEqual([state(m).status, state(m).restartCount], ['exited', 0]);
      } finally {
        m.close();
      }
    },
  );

  it('a SIGTERM to the monitor during a later run ends it for good', async () => {
    const m = await monitor();
    try {
      await until(m, 'start 2');
      writeFileSync(join(m.ctl, 'hold'), '');
      m.go();
      assert.equal(await m.next(), 'running 2');
      m.child.kill('SIGTERM');
      assert.equal(await m.next(), 'SIGTERM');
      m.go();
      await until(m, 'end');
      assert.deepEqual(await m.exited, [0, null], m.stderr());
      assert.deepEqual([state(m).status, state(m).exitCode, state(m).restartCount], ['exited', 143, 2]);
      assert.equal(runs(m), 3);
    } finally {
      m.close();
    }
  });

  it("a SIGTERM to the monitor while it handles a later run's exit: no restart", async () => {
    const m = await monitor();
    try {
      await until(m, 'exited 2');
      m.child.kill('SIGTERM');
      assert.equal(await m.next(), 'SIGTERM');
      m.go();
      assert.equal(await m.next(), 'end');
      assert.deepEqual(await m.exited, [0, null], m.stderr());
      assert.deepEqual([state(m).status, state(m).exitCode, state(m).restartCount], ['exited', 3, 2]);
      assert.equal(runs(m), 3);
    } finally {
      m.close();
    }
  });

  it(
    'keel stop before the first start: the monitor does not start ' + 'it, and says why (keel run -d reports it)',
    async () => {
      const db = new ContainerDb(root);
      const m = await monitor((id) => db.requestStop(id));
      try {
        assert.equal(await m.next(), 'end');
        assert.deepEqual(await m.exited, [0, null], m.stderr());
        assert.equal(existsSync(join(m.ctl, 'runs')), false);
        assert.deepEqual(
          [state(m).status, state(m).startedAt, state(m).error],
          ['exited', null, 'stopped before it started'],
        );
      } finally {
        m.close();
      }
    },
  );

  it(
    'one SIGTERM handler for all runs: eleven restarts add no listener ' +
      'each (node warned of a leak at the eleventh)',
    async () => {
      const m = await monitor();
      try {
        await until(m, 'sleep 11');
        m.child.kill('SIGTERM');
        assert.equal(await m.next(), 'SIGTERM');
        m.go();
        assert.equal(await m.next(), 'end');
        assert.deepEqual(await m.exited, [0, null], m.stderr());
        assert.doesNotMatch(m.stderr(), /MaxListenersExceededWarning/);
        assert.equal(runs(m), 11);
      } finally {
        m.close();
      }
    },
  );

  it(
    'keel ps shows a container waiting to restart as docker does: ' +
      'Restarting (CODE) N ago; inspect says restarting',
    async () => {
      const m = await monitor();
      try {
        await until(m, 'sleep 1');
        const id = m.config.id.slice(0, 12);
        for (const args of [['ps'], ['ps', '-a']]) {
          assert.match(
            keelAt(root, args).out,
            new RegExp(`^${id} .* Restarting \\(3\\) (Less than a second|\\d+ seconds) ago +${m.config.name}$`, 'm'),
          );
        }
        const [info] = JSON.parse(keelAt(root, ['inspect', m.config.name]).out);
        assert.deepEqual([info.state.status, info.state.exitCode], ['restarting', 3]);
        const [listed] = JSON.parse(keelAt(root, ['ps', '--format', 'json']).out).filter(
          (c: ContainerConfig) => c.id === m.config.id,
        );
        assert.equal(listed.state.status, 'restarting');
        const rm = keelAt(root, ['rm', m.config.name]);
        assert.deepEqual(
          [rm.code, rm.err],
          [1, `keel rm: cannot remove restarting container ${m.config.name}: stop it first, or use keel rm -f\n`],
        );
        // A monitor killed while it waits leaves no container that says it is restarting.
        m.child.kill('SIGKILL');
        await m.exited;
        assert.match(keelAt(root, ['ps', '-a']).out, new RegExp(`^${id} .* Exited \\(3\\) .* ${m.config.name}$`, 'm'));
        assert.equal(existsSync(join(m.ctl, 'hold')), false);
      } finally {
        m.close();
      }
    },
  );
});
