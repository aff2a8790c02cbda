// The process table: dispatch logic against a scripted fake, then tini-style reaping of real orphans.
import assert from 'node:assert/strict';
import { native, type WaitStatus } from '../../native/native.js';
import { ProcessTable, signalName, type ExitStatus, type ProcessSys } from '../../native/process-table.js';
import { zombiesOf } from './helpers.js';

const exited = (pid: number, code: number): WaitStatus => ({
  pid,
  status: code << 8,
  exited: true,
  code,
  signaled: false,
  signal: null,
});
const killed = (pid: number, signal: number): WaitStatus => ({
  pid,
  status: signal,
  exited: false,
  code: null,
  signaled: true,
  signal,
});
const echild = () =>
  Object.assign(new Error('waitpid(-1): ECHILD (No child processes)'), {
    code: 'ECHILD',
    errno: 10,
    syscall: 'waitpid',
  });

/** A fake system: spawn hands out pids from 100; each waitpid call takes the next scripted answer. */
function fakeSys(script: Array<WaitStatus | null | Error>): ProcessSys & { calls: number } {
  let next = 100;
  const sys = {
    calls: 0,
    constants: { WNOHANG: 1 },
    spawn: () => next++,
    waitpid: (pid: number, options: number) => {
      sys.calls++;
      assert.deepEqual([pid, options], [-1, 1], 'reap must poll any child without blocking');
      const answer = script.shift() ?? echild();
      if (answer instanceof Error) throw answer;
      return answer;
    },
  };
  return sys;
}

async function waitFor(cond: () => boolean, ms: number, what: string): Promise<void> {
  const until = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > until) assert.fail(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

describe('init/process-table', () => {
  describe('ProcessTable (scripted system)', () => {
    it('delivers exits to their spawner, reports orphans, and stops when nothing is ready', async () => {
      const sys = fakeSys([exited(555, 0), killed(100, 9), exited(101, 3), null, exited(556, 1)]);
      const orphans: ExitStatus[] = [];
      const table = new ProcessTable(sys, { onOrphan: (s) => orphans.push(s) });
      const a = table.spawn({ file: 'a', argv: [], env: [] });
      const b = table.spawn({ file: 'b', argv: [], env: [] });
      assert.deepEqual(table.running(), [100, 101]);
      assert.deepEqual(
        table.reap().map((s) => s.pid),
        [555, 100, 101],
      );
      assert.equal(sys.calls, 4, 'stopped at the first null');
      assert.deepEqual(await a.exited, { pid: 100, code: null, signal: 'SIGKILL' });
      assert.deepEqual(await b.exited, { pid: 101, code: 3, signal: null });
      assert.deepEqual(orphans, [{ pid: 555, code: 0, signal: null }]);
      assert.equal(table.orphans, 1);
      assert.deepEqual(table.running(), []);
      assert.deepEqual(table.reap(), [{ pid: 556, code: 1, signal: null }], 'ECHILD ends the next reap quietly');
    });

    it('throws from reap() but never out of the SIGCHLD handler; a throwing onOrphan is contained too', () => {
      const boom = Object.assign(new Error('waitpid(-1): EINVAL (Invalid argument)'), { code: 'EINVAL' });
      const warnings: string[] = [];
      const table = new ProcessTable(fakeSys([boom, exited(7, 0), boom]), {
        warn: (what, e) => warnings.push(`${what}: ${(e as Error).message}`),
        onOrphan: () => {
          throw new Error('listener broke');
        },
      });
      assert.throws(() => table.reap(), boom);
      table.start(); // reaps once at once: orphan 7, whose listener throws, then boom
      try {
        assert.doesNotThrow(() => process.emit('SIGCHLD', 'SIGCHLD')); // ECHILD: nothing to say
        assert.deepEqual(warnings, [
          'handle the exit of orphan 7: listener broke',
          'reap children: waitpid(-1): EINVAL (Invalid argument)',
        ]);
        assert.equal(table.orphans, 1);
      } finally {
        table.stop();
      }
      assert.equal(process.listenerCount('SIGCHLD'), 0, 'stop() removes the handler');
    });

    it('names signals the way Node does', () => {
      assert.equal(signalName(9), 'SIGKILL');
      assert.equal(signalName(15), 'SIGTERM');
      assert.equal(signalName(40), 'SIG40');
    });
  });

  describe('ProcessTable (real children, as a subreaper)', () => {
    before(() => native.setChildSubreaper());

    it('reaps 100 orphans, leaves no zombie, and still hands sh its own exit', async () => {
      // Like tini's test: the sleeps outlive sh and are re-parented to us, the subreaper.
      const orphans: ExitStatus[] = [];
      const table = new ProcessTable(native, { onOrphan: (s) => orphans.push(s), safetyIntervalMs: 60_000 });
      table.start(); // from here only SIGCHLD drives reaping: the safety net is a minute away
      try {
        const sh = table.spawn({
          file: '/bin/sh',
          argv: ['sh', '-c', 'for i in $(seq 100); do sleep 0.2 & done'],
          env: ['PATH=/usr/bin:/bin'],
        });
        assert.deepEqual(await sh.exited, { pid: sh.pid, code: 0, signal: null });
        await waitFor(() => table.orphans >= 100, 2500, '100 orphans');
        assert.equal(table.orphans, 100);
        assert.equal(new Set(orphans.map((s) => s.pid)).size, 100);
        assert.ok(orphans.every((s) => s.code === 0 && s.pid !== sh.pid));
        assert.deepEqual(zombiesOf(process.pid), []);
      } finally {
        table.stop();
      }
    });

    it('resolves each exit promise exactly once with its own code while orphans exit around it', async () => {
      const seen: number[] = [];
      const sys: ProcessSys = {
        spawn: native.spawn,
        constants: native.constants,
        waitpid: (pid, options) => {
          const w = native.waitpid(pid, options);
          if (w) seen.push(w.pid);
          return w;
        },
      };
      const orphans: number[] = [];
      const table = new ProcessTable(sys, { onOrphan: (s) => orphans.push(s.pid), safetyIntervalMs: 60_000 });
      table.start();
      try {
        // `(sleep &)` orphans each sleep at once (to us, the subreaper); they die before and after sh.
        const sh = table.spawn({
          file: '/bin/sh',
          argv: ['sh', '-c', 'for i in 1 2 3 4 5 6 7 8; do (sleep 0.0$i &); done; sleep 0.035; exit 3'],
          env: [],
        });
        const late = table.spawn({ file: '/bin/sh', argv: ['sh', '-c', 'sleep 0.15; exit 5'], env: [] });
        let resolutions = 0;
        void sh.exited.then(() => resolutions++);
        assert.deepEqual(await sh.exited, { pid: sh.pid, code: 3, signal: null });
        assert.deepEqual(await late.exited, { pid: late.pid, code: 5, signal: null });
        await waitFor(() => table.orphans >= 8, 2000, '8 orphans');
        assert.equal(resolutions, 1);
        assert.equal(seen.filter((p) => p === sh.pid).length, 1);
        assert.equal(seen.filter((p) => p === late.pid).length, 1);
        assert.equal(orphans.length, 8);
        assert.ok(!orphans.includes(sh.pid) && !orphans.includes(late.pid));
        assert.deepEqual(table.running(), []);
      } finally {
        table.stop();
      }
    });

    it('throws a failed spawn synchronously and tracks nothing for it', () => {
      const table = new ProcessTable(native);
      assert.throws(() => table.spawn({ file: '/nonexistent/keel', argv: ['x'], env: [] }), {
        code: 'ENOENT',
        syscall: 'execve',
      });
      assert.deepEqual(table.running(), []);
      assert.deepEqual(zombiesOf(process.pid), []);
    });
  });
});
