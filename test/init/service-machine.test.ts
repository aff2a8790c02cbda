// The service state machine, driven event by event: each test feeds what a runner would report
// and checks the effects asked for and the states reached, against systemd's service.c behaviour.
import assert from 'node:assert/strict';
import {
  NO_START_LIMIT,
  initialServiceState,
  transition,
  type ServiceEffect,
  type ServiceEvent,
  type ServiceState,
  type StartLimits,
} from '../../init/service-machine.js';
import type { ExecCommand, ServiceConfig } from '../../units/types.js';

const cmd = (path: string, ignoreFailure = false): ExecCommand => ({
  argv: [path],
  path,
  ignoreFailure,
  argv0Override: false,
  noSubstitution: false,
  privileged: false,
});

/** A [Service] section with systemd's defaults, overridden by `over`. */
function service(over: Partial<ServiceConfig> = {}): ServiceConfig {
  return {
    type: 'simple',
    execCondition: [],
    execStartPre: [],
    execStart: [cmd('/usr/bin/daemon')],
    execStartPost: [],
    execReload: [],
    execStop: [],
    execStopPost: [],
    remainAfterExit: false,
    restart: 'no',
    restartSec: 100,
    timeoutStartSec: 90_000,
    timeoutStopSec: 90_000,
    killMode: 'control-group',
    killSignal: 'SIGTERM',
    sendSIGKILL: true,
    successExitStatus: { codes: [], signals: [] },
    pidFile: null,
    environment: [],
    environmentFiles: [],
    user: null,
    group: null,
    workingDirectory: null,
    umask: null,
    nice: null,
    limits: {},
    standardInput: 'null',
    standardOutput: 'journal',
    standardError: 'inherit',
    ttyPath: null,
    memoryMax: null,
    cpuQuota: null,
    tasksMax: null,
    ...over,
  };
}

type Body = ServiceEvent extends infer E ? (E extends unknown ? Omit<E, 'now'> : never) : never;

function deepFreeze<T>(o: T): T {
  if (o && typeof o === 'object' && !Object.isFrozen(o)) {
    Object.freeze(o);
    for (const v of Object.values(o)) deepFreeze(v);
  }
  return o;
}

/** Effects in a compact form for table comparisons (logs left out). */
function brief(fx: ServiceEffect[]): string[] {
  return fx.flatMap((e): string[] => {
    switch (e.type) {
      case 'log':
        return [];
      case 'spawn':
        return [`spawn ${e.kind}#${e.index}`];
      case 'kill':
        return [`kill ${e.who}${e.pid === null ? '' : ` ${e.pid}`} ${e.signal}`];
      case 'arm-timer':
        return [`arm ${e.reason} ${e.ms}`];
      case 'disarm-timer':
        return ['disarm'];
      case 'read-pidfile':
      case 'watch-pidfile':
      case 'remove-pidfile':
        return [`${e.type} ${e.path}`];
      case 'state-changed':
        return [`${e.from}->${e.to} ${e.result}${e.autoRestart ? ' (auto-restart)' : ''}`];
      case 'start-limit-hit':
      case 'cleanup-cgroup':
        return [e.type];
    }
  });
}

/** Drives one service through transition(), checking purity and the spawn contract on every step. */
class Svc {
  state: ServiceState = initialServiceState(0);
  effects: ServiceEffect[] = [];
  t = 0;
  constructor(
    readonly cfg: ServiceConfig,
    readonly limits: StartLimits = NO_START_LIMIT,
  ) {}

  /** Feeds `ev` at time `at` (default: unchanged) and returns the brief effects. */
  send(ev: Body, at = this.t): string[] {
    this.t = at;
    const before = deepFreeze(this.state); // transition() must not write to its input
    const r = transition(before, { ...ev, now: at } as ServiceEvent, this.cfg, this.limits);
    const spawns = r.effects.filter((e) => e.type === 'spawn');
    assert.ok(spawns.length <= 1, 'at most one spawn per step');
    if (spawns.length) assert.equal(r.effects.at(-1), spawns[0], 'a spawn is the last effect');
    assert.equal(r.state.spawning !== null, spawns.length === 1, 'spawning is pending exactly when a spawn was asked');
    this.state = r.state;
    this.effects = r.effects;
    return brief(r.effects);
  }

  logs(): string[] {
    return this.effects.flatMap((e) => (e.type === 'log' ? [e.text] : []));
  }

  spawnEnv(): Record<string, string> {
    const s = this.effects.at(-1);
    assert.ok(s?.type === 'spawn');
    return s.env;
  }

  /** Starts a simple-like service up to running with main pid `pid`. */
  up(pid = 100): this {
    this.send({ type: 'start' });
    this.send({ type: 'spawned', pid });
    assert.equal(this.state.sub, 'running');
    return this;
  }
}

const exit = (pid: number, code: number, cgroupEmpty = true): Body => ({
  type: 'exited',
  pid,
  code,
  signal: null,
  cgroupEmpty,
});
const killed = (pid: number, signal: string, cgroupEmpty = true): Body => ({
  type: 'exited',
  pid,
  code: null,
  signal,
  cgroupEmpty,
});

describe('service machine', () => {
  describe('Type=simple', () => {
    it('is active once spawned and stops with KillSignal= to main and cgroup', () => {
      const s = new Svc(service());
      assert.deepEqual(s.send({ type: 'start' }), ['spawn start#0']);
      assert.equal(s.state.sub, 'dead', 'the sub-state follows the spawn answer, as systemd sets it after fork');
      assert.deepEqual(s.send({ type: 'spawned', pid: 100 }, 5), ['inactive->active success']);
      assert.deepEqual([s.state.sub, s.state.mainPid, s.state.since], ['running', 100, 5]);

      assert.deepEqual(s.send({ type: 'start' }), [], 'start while active is a no-op');
      assert.equal(s.state.sub, 'running');

      assert.deepEqual(s.send({ type: 'stop' }, 10), [
        'kill main 100 SIGTERM',
        'kill cgroup SIGTERM',
        'arm stop 90000',
        'active->deactivating success',
      ]);
      assert.equal(s.state.sub, 'stop-sigterm');
      assert.deepEqual(s.send(killed(100, 'SIGTERM'), 20), [
        'disarm',
        'cleanup-cgroup',
        'deactivating->inactive success',
      ]);
      assert.deepEqual([s.state.sub, s.state.result, s.state.mainPid], ['dead', 'success', null]);
      assert.deepEqual(s.state.execMainStatus, { pid: 100, code: null, signal: 'SIGTERM', coreDumped: false, at: 20 });
    });

    it('runs ExecStop= with $MAINPID when stopping an active service, then kills what is left', () => {
      const s = new Svc(service({ execStop: [cmd('/bin/stop')], execStopPost: [cmd('/bin/post')] })).up();
      assert.deepEqual(s.send({ type: 'stop' }), ['arm stop 90000', 'spawn stop#0']);
      assert.deepEqual(s.spawnEnv(), { MAINPID: '100', SERVICE_RESULT: 'success' });
      assert.deepEqual(s.send({ type: 'spawned', pid: 7 }), ['active->deactivating success']);
      assert.deepEqual(s.send(exit(7, 0, false)), ['kill main 100 SIGTERM', 'kill cgroup SIGTERM', 'arm stop 90000']);
      assert.equal(s.state.sub, 'stop-sigterm');
      assert.deepEqual(s.send(killed(100, 'SIGTERM')), ['arm stop 90000', 'spawn stop-post#0']);
      assert.deepEqual(s.spawnEnv(), { SERVICE_RESULT: 'success', EXIT_CODE: 'killed', EXIT_STATUS: 'TERM' });
      s.send({ type: 'spawned', pid: 8 });
      assert.equal(s.state.sub, 'stop-post');
      assert.deepEqual(s.send(exit(8, 0)), ['disarm', 'cleanup-cgroup', 'deactivating->inactive success']);
    });

    it('a main process exiting while running stops the service per its exit status', () => {
      const ok = new Svc(service()).up();
      assert.deepEqual(ok.send(exit(100, 0)), ['cleanup-cgroup', 'active->inactive success']);
      const bad = new Svc(service()).up();
      assert.deepEqual(bad.send(exit(100, 3)), ['cleanup-cgroup', 'active->failed exit-code']);
      assert.deepEqual(bad.logs(), ['Main process exited, code=exited, status=3', "Failed with result 'exit-code'."]);
      assert.equal(bad.state.result, 'exit-code', 'the failure result is kept until the next start');
      bad.send({ type: 'start' });
      bad.send({ type: 'spawned', pid: 101 });
      assert.equal(bad.state.result, 'success');
    });

    it('Type=exec and Type=idle behave like simple once the spawn is reported', () => {
      // exec keeps TimeoutStartSec= until execve() is reported; simple and idle have none on the main process.
      for (const [type, fx] of [
        ['exec', ['disarm', 'inactive->active success']],
        ['idle', ['inactive->active success']],
      ] as const) {
        const s = new Svc(service({ type }));
        s.send({ type: 'start' });
        assert.deepEqual(s.send({ type: 'spawned', pid: 100 }), fx, type);
      }
      // Type=idle counts its start phases as active already (systemd's idle translation table).
      const idle = new Svc(service({ type: 'idle', execStartPre: [cmd('/bin/pre')] }));
      assert.deepEqual(idle.send({ type: 'start' }), ['arm start 90000', 'spawn start-pre#0']);
      assert.deepEqual(idle.send({ type: 'spawned', pid: 50 }), ['inactive->active success']);
    });

    it('a failed spawn of ExecStart= fails the start with result resources', () => {
      const s = new Svc(service());
      s.send({ type: 'start' });
      assert.deepEqual(s.send({ type: 'spawn-failed', kind: 'start', error: 'ENOENT' }), [
        'inactive->failed resources',
      ]);
      assert.match(s.logs()[0]!, /Failed to spawn 'start' task: ENOENT/);
    });
  });

  describe('Type=oneshot', () => {
    const oneshot = (over: Partial<ServiceConfig> = {}) =>
      service({ type: 'oneshot', execStart: [cmd('/bin/a'), cmd('/bin/b')], ...over });

    it('runs every ExecStart= in turn, then goes back to dead with success', () => {
      const s = new Svc(oneshot());
      assert.deepEqual(s.send({ type: 'start' }), ['arm start 90000', 'spawn start#0']);
      assert.deepEqual(s.send({ type: 'spawned', pid: 100 }), ['inactive->activating success']);
      assert.deepEqual(s.send(exit(100, 0)), ['arm start 90000', 'spawn start#1']);
      assert.deepEqual(s.send({ type: 'spawned', pid: 101 }), []);
      assert.deepEqual([s.state.sub, s.state.mainPid, s.state.mainCommand], ['start', 101, { index: 1 }]);
      assert.deepEqual(s.send(exit(101, 0)), ['disarm', 'cleanup-cgroup', 'activating->inactive success']);
    });

    it('with RemainAfterExit= stays active (exited) until stopped', () => {
      const s = new Svc(oneshot({ remainAfterExit: true, execStop: [cmd('/bin/undo')] }));
      s.send({ type: 'start' });
      s.send({ type: 'spawned', pid: 100 });
      s.send(exit(100, 0));
      s.send({ type: 'spawned', pid: 101 });
      assert.deepEqual(s.send(exit(101, 0)), ['disarm', 'cleanup-cgroup', 'activating->active success']);
      assert.equal(s.state.sub, 'exited');
      assert.deepEqual(s.send({ type: 'start' }), [], 'already active');
      assert.deepEqual(s.send({ type: 'stop' }), ['arm stop 90000', 'spawn stop#0']);
      assert.deepEqual(s.send({ type: 'spawned', pid: 9 }), ['active->deactivating success']);
      assert.deepEqual(s.send(exit(9, 0)), ['disarm', 'cleanup-cgroup', 'deactivating->inactive success']);
    });

    it('a failing ExecStart= fails the unit and skips the rest', () => {
      const s = new Svc(oneshot());
      s.send({ type: 'start' });
      s.send({ type: 'spawned', pid: 100 });
      assert.deepEqual(s.send(exit(100, 2)), ['disarm', 'cleanup-cgroup', 'activating->failed exit-code']);
    });

    it('judges a main process killed by SIGTERM as a command: failed', () => {
      const s = new Svc(oneshot());
      s.send({ type: 'start' });
      s.send({ type: 'spawned', pid: 100 });
      s.send({ type: 'stop' });
      assert.deepEqual(s.send(killed(100, 'SIGTERM')), ['disarm', 'cleanup-cgroup', 'deactivating->failed signal']);
    });
  });

  describe('ExecCondition=', () => {
    const rows: Array<[string, Body, string[], string]> = [
      ['exit 0 goes on to start', exit(40, 0), ['disarm', 'spawn start#0'], 'condition'], // until 'spawned'
      ['exit 1 skips', exit(40, 1), ['disarm', 'cleanup-cgroup', 'activating->inactive exec-condition'], 'dead'],
      ['exit 254 skips', exit(40, 254), ['disarm', 'cleanup-cgroup', 'activating->inactive exec-condition'], 'dead'],
      [
        'exit 255 fails',
        exit(40, 255),
        ['disarm', 'cleanup-cgroup', 'activating->failed exit-code (auto-restart)'],
        'failed',
      ],
      [
        'a signal fails',
        killed(40, 'SIGKILL'),
        ['disarm', 'cleanup-cgroup', 'activating->failed signal (auto-restart)'],
        'failed',
      ],
    ];
    for (const [name, ev, effects, sub] of rows) {
      it(name, () => {
        // Restart=always: even so, a skipped start is never restarted.
        const s = new Svc(service({ execCondition: [cmd('/bin/check')], restart: 'always' }));
        assert.deepEqual(s.send({ type: 'start' }), ['arm start 90000', 'spawn condition#0']);
        assert.deepEqual(s.send({ type: 'spawned', pid: 40 }), ['inactive->activating success']);
        assert.equal(s.state.sub, 'condition');
        const got = s.send(ev);
        if (sub === 'failed') {
          // A failure (not a skip) does auto-restart under Restart=always.
          assert.deepEqual(got.slice(0, 3), effects);
          assert.equal(s.state.sub, 'auto-restart');
        } else {
          assert.deepEqual(got, effects);
          assert.equal(s.state.sub, sub);
        }
      });
    }
  });

  describe('ExecStartPre=', () => {
    it('a failure fails the start; ExecStart= never runs', () => {
      const s = new Svc(service({ execStartPre: [cmd('/bin/pre1'), cmd('/bin/pre2')] }));
      assert.deepEqual(s.send({ type: 'start' }), ['arm start 90000', 'spawn start-pre#0']);
      s.send({ type: 'spawned', pid: 50 });
      assert.deepEqual(s.send(exit(50, 1)), ['disarm', 'cleanup-cgroup', 'activating->failed exit-code']);
      assert.deepEqual(s.logs()[0], 'Control process exited, code=exited, status=1');
    });

    it("a '-' prefix ignores the failure and goes on", () => {
      const s = new Svc(service({ execStartPre: [cmd('/bin/pre1', true), cmd('/bin/pre2')] }));
      s.send({ type: 'start' });
      s.send({ type: 'spawned', pid: 50 });
      assert.deepEqual(s.send(exit(50, 1)), ['arm start 90000', 'spawn start-pre#1']);
      s.send({ type: 'spawned', pid: 51 });
      assert.deepEqual(
        s.send(exit(51, 0, false)),
        ['disarm', 'spawn start#0'],
        'simple: no start timeout on the main process',
      );
      assert.deepEqual(s.send({ type: 'spawned', pid: 100 }), ['activating->active success']);
    });

    it('a stop request cancels the start: the killed ExecStartPre= makes it failed (signal), no restart', () => {
      const s = new Svc(
        service({ execStartPre: [cmd('/bin/pre')], execStopPost: [cmd('/bin/post')], restart: 'on-failure' }),
      );
      s.send({ type: 'start' });
      s.send({ type: 'spawned', pid: 50 });
      assert.deepEqual(s.send({ type: 'stop' }), [
        'kill control 50 SIGTERM',
        'kill cgroup SIGTERM',
        'arm stop 90000',
        'activating->deactivating success',
      ]);
      assert.deepEqual(s.send(killed(50, 'SIGTERM')), ['arm stop 90000', 'spawn stop-post#0']);
      assert.equal(s.spawnEnv().SERVICE_RESULT, 'signal');
      s.send({ type: 'spawned', pid: 60 });
      assert.deepEqual(s.send(exit(60, 0)), ['disarm', 'cleanup-cgroup', 'deactivating->failed signal']);
      assert.equal(s.state.sub, 'failed', 'an explicit stop never auto-restarts');
    });

    it('a stopped ExecStartPre= that exits cleanly leaves the unit inactive', () => {
      const s = new Svc(service({ execStartPre: [cmd('/bin/pre')] }));
      s.send({ type: 'start' });
      s.send({ type: 'spawned', pid: 50 });
      s.send({ type: 'stop' });
      assert.deepEqual(s.send(exit(50, 0)), ['disarm', 'cleanup-cgroup', 'deactivating->inactive success']);
    });
  });

  describe('Type=forking', () => {
    const forking = (over: Partial<ServiceConfig> = {}) => service({ type: 'forking', pidFile: '/run/d.pid', ...over });

    it('is active when the parent exits 0 and the PID file names the daemon', () => {
      const s = new Svc(forking());
      assert.deepEqual(s.send({ type: 'start' }), ['arm start 90000', 'spawn start#0']);
      assert.equal((s.effects.at(-1) as { main: boolean }).main, false, 'the parent is a control process');
      assert.deepEqual(s.spawnEnv(), { PIDFILE: '/run/d.pid' });
      assert.deepEqual(s.send({ type: 'spawned', pid: 200 }), ['inactive->activating success']);
      assert.deepEqual([s.state.controlPid, s.state.mainPid], [200, null]);
      assert.deepEqual(s.send(exit(200, 0, false)), ['read-pidfile /run/d.pid']);
      assert.deepEqual(s.send({ type: 'pidfile', pid: 201 }), ['disarm', 'activating->active success']);
      assert.deepEqual([s.state.sub, s.state.mainPid], ['running', 201]);
      assert.deepEqual(s.send(exit(201, 1)), [
        'cleanup-cgroup',
        'active->failed exit-code',
        'remove-pidfile /run/d.pid',
      ]);
      assert.deepEqual(s.send({ type: 'stop' }), [], 'already failed: stop is a no-op');
    });

    it('waits for a PID file written late, and fails (protocol) if the daemon never writes it', () => {
      const s = new Svc(forking());
      s.send({ type: 'start' });
      s.send({ type: 'spawned', pid: 200 });
      s.send(exit(200, 0, false));
      assert.deepEqual(s.send({ type: 'pidfile', pid: null }), ['watch-pidfile /run/d.pid']);
      assert.deepEqual(s.send({ type: 'pidfile', pid: 202 }), ['disarm', 'activating->active success']);

      const never = new Svc(forking());
      never.send({ type: 'start' });
      never.send({ type: 'spawned', pid: 200 });
      never.send(exit(200, 0, false));
      never.send({ type: 'pidfile', pid: null });
      assert.deepEqual(never.send({ type: 'cgroup-empty' }), [
        'disarm',
        'cleanup-cgroup',
        'activating->failed protocol',
        'remove-pidfile /run/d.pid',
      ]);
      assert.ok(never.logs().includes('Daemon never wrote its PID file. Failing.'));
    });

    it('without PIDFile= guesses the main pid, or relies on the cgroup', () => {
      const s = new Svc(forking({ pidFile: null }));
      s.send({ type: 'start' });
      s.send({ type: 'spawned', pid: 200 });
      assert.deepEqual(s.send(exit(200, 0, false)), ['read-pidfile null']);
      assert.deepEqual(s.send({ type: 'pidfile', pid: null }), ['disarm', 'activating->active success']);
      assert.deepEqual([s.state.mainPid, s.state.mainPidKnown], [null, false]);
      assert.deepEqual(
        s.send({ type: 'cgroup-empty' }),
        ['cleanup-cgroup', 'active->inactive success'],
        'an empty cgroup ends it',
      );
    });

    it('a failing parent fails the start', () => {
      const s = new Svc(forking());
      s.send({ type: 'start' });
      s.send({ type: 'spawned', pid: 200 });
      assert.deepEqual(s.send(exit(200, 1)), [
        'disarm',
        'cleanup-cgroup',
        'activating->failed exit-code',
        'remove-pidfile /run/d.pid',
      ]);
    });
  });

  describe('Type=notify', () => {
    const notify = (over: Partial<ServiceConfig> = {}) => service({ type: 'notify', ...over });
    const started = (over: Partial<ServiceConfig> = {}): Svc => {
      const s = new Svc(notify(over));
      assert.deepEqual(s.send({ type: 'start' }), ['arm start 90000', 'spawn start#0']);
      assert.deepEqual(s.send({ type: 'spawned', pid: 300 }), ['inactive->activating success']);
      return s;
    };

    it('is active on READY=1 from the main pid only, and keeps STATUS=', () => {
      const s = started();
      assert.deepEqual(s.send({ type: 'notify', pid: 999, fields: { READY: '1' } }), []);
      assert.equal(s.state.sub, 'start');
      assert.deepEqual(s.send({ type: 'notify', pid: 300, fields: { READY: '1', STATUS: 'Serving' } }), [
        'disarm',
        'activating->active success',
      ]);
      assert.deepEqual([s.state.sub, s.state.statusText, s.state.notifyState], ['running', 'Serving', 'ready']);
      s.send({ type: 'notify', pid: 300, fields: { STATUS: '', ERRNO: '5' } });
      assert.deepEqual([s.state.statusText, s.state.statusErrno], [null, 5]);
    });

    it('MAINPID= hands the main role to another process', () => {
      const s = started();
      s.send({ type: 'notify', pid: 300, fields: { MAINPID: '301', READY: '1' } });
      assert.deepEqual([s.state.sub, s.state.mainPid], ['running', 301]);
      assert.deepEqual(s.send(exit(300, 0, false)), [], 'the old main is nobody now');
    });

    it('exiting before READY=1 is a protocol failure', () => {
      const s = started();
      assert.deepEqual(s.send(exit(300, 0)), ['disarm', 'cleanup-cgroup', 'activating->failed protocol']);
    });

    it('RELOADING=1 ... READY=1 is a reload; STOPPING=1 is a stop', () => {
      const s = started();
      s.send({ type: 'notify', pid: 300, fields: { READY: '1' } });
      assert.deepEqual(s.send({ type: 'notify', pid: 300, fields: { RELOADING: '1' } }), [
        'arm reload 90000',
        'active->reloading success',
      ]);
      assert.deepEqual(s.send({ type: 'notify', pid: 300, fields: { READY: '1' } }), [
        'disarm',
        'reloading->active success',
      ]);
      assert.deepEqual(s.send({ type: 'notify', pid: 300, fields: { STOPPING: '1' } }), [
        'arm stop 90000',
        'active->deactivating success',
      ]);
      assert.deepEqual(
        s.send({ type: 'notify', pid: 300, fields: { READY: '1' } }),
        [],
        'a stopping service cannot come back',
      );
      assert.deepEqual(s.send(exit(300, 0)), ['disarm', 'cleanup-cgroup', 'deactivating->inactive success']);
    });
  });

  describe('timeouts', () => {
    it('a start timeout sends KillSignal=, then SIGKILL after TimeoutStopSec=, then fails (timeout)', () => {
      const s = new Svc(
        service({ type: 'notify', timeoutStartSec: 5000, timeoutStopSec: 3000, execStopPost: [cmd('/bin/post')] }),
      );
      s.send({ type: 'start' });
      s.send({ type: 'spawned', pid: 300 });
      assert.deepEqual(s.state.timer, { reason: 'start', due: 5000 });
      assert.deepEqual(s.send({ type: 'timeout' }, 5000), [
        'kill main 300 SIGTERM',
        'kill cgroup SIGTERM',
        'arm stop 3000',
        'activating->deactivating timeout',
      ]);
      assert.deepEqual(s.logs()[0], 'start operation timed out. Terminating.');
      assert.deepEqual(s.send({ type: 'timeout' }, 8000), [
        'kill main 300 SIGKILL',
        'kill cgroup SIGKILL',
        'arm stop 3000',
      ]);
      assert.equal(s.state.sub, 'stop-sigkill');
      assert.deepEqual(s.send(killed(300, 'SIGKILL'), 8001), ['arm stop 3000', 'spawn stop-post#0']);
      s.send({ type: 'spawned', pid: 301 });
      assert.deepEqual(s.send(exit(301, 0)), ['disarm', 'cleanup-cgroup', 'deactivating->failed timeout']);
    });

    it('with SendSIGKILL=no a stuck process is abandoned after the final SIGTERM round', () => {
      const s = new Svc(service({ sendSIGKILL: false, timeoutStopSec: 1000 })).up();
      s.send({ type: 'stop' });
      assert.deepEqual(s.send({ type: 'timeout' }), ['kill main 100 SIGTERM', 'kill cgroup SIGTERM', 'arm stop 1000']);
      assert.equal(s.state.sub, 'final-sigterm');
      assert.deepEqual(s.send({ type: 'timeout' }), ['cleanup-cgroup', 'deactivating->failed timeout']);
    });

    it('ignores a timeout when no timer is armed', () => {
      const s = new Svc(service()).up();
      assert.deepEqual(s.send({ type: 'timeout' }), []);
      assert.equal(s.state.sub, 'running');
    });

    it('treats TimeoutStartSec=0 as no timeout', () => {
      const s = new Svc(service({ type: 'oneshot', timeoutStartSec: 0 }));
      assert.deepEqual(s.send({ type: 'start' }), ['spawn start#0']);
    });
  });

  describe('KillMode=', () => {
    // Stop a running simple service whose cgroup holds more than the main process.
    const rows: Array<[ServiceConfig['killMode'], string[], string[], string[]]> = [
      [
        'control-group',
        ['kill main 100 SIGTERM', 'kill cgroup SIGTERM', 'arm stop 90000', 'active->deactivating success'],
        ['kill cgroup SIGTERM', 'arm stop 90000'],
        ['disarm', 'cleanup-cgroup', 'deactivating->inactive success'],
      ],
      [
        'mixed',
        ['kill main 100 SIGTERM', 'arm stop 90000', 'active->deactivating success'],
        ['kill cgroup SIGKILL', 'arm stop 90000'],
        ['disarm', 'cleanup-cgroup', 'deactivating->inactive success'],
      ],
      [
        'process',
        ['kill main 100 SIGTERM', 'arm stop 90000', 'active->deactivating success'],
        ['disarm', 'cleanup-cgroup', 'deactivating->inactive success'],
        [],
      ],
      ['none', ['cleanup-cgroup', 'active->inactive success'], [], []],
    ];
    for (const [killMode, onStop, onMainExit, onEmpty] of rows) {
      it(killMode, () => {
        const s = new Svc(service({ killMode, killSignal: 'SIGTERM' })).up();
        assert.deepEqual(s.send({ type: 'stop' }), onStop, 'stop');
        assert.deepEqual(s.send(killed(100, 'SIGTERM', false)), onMainExit, 'main exits, other processes remain');
        assert.deepEqual(s.send({ type: 'cgroup-empty' }), onEmpty, 'the rest are gone');
        assert.deepEqual([s.state.sub, s.state.result], ['dead', 'success']);
      });
    }

    it('uses KillSignal= for the first round', () => {
      const s = new Svc(service({ killSignal: 'SIGINT' })).up();
      assert.deepEqual(s.send({ type: 'stop' }).slice(0, 2), ['kill main 100 SIGINT', 'kill cgroup SIGINT']);
    });
  });

  describe('Restart=', () => {
    it('on-failure restarts after RestartSec=, passing through failed, and counts restarts', () => {
      const s = new Svc(service({ restart: 'on-failure', restartSec: 5000 })).up();
      assert.deepEqual(s.send(exit(100, 1), 1000), [
        'cleanup-cgroup',
        'active->failed exit-code (auto-restart)',
        'arm restart 5000',
        'failed->activating exit-code (auto-restart)',
      ]);
      assert.equal(s.state.sub, 'auto-restart');
      assert.deepEqual(s.send({ type: 'restart-timer' }, 6000), ['spawn start#0']);
      assert.ok(s.logs().includes('Scheduled restart job, restart counter is at 1.'));
      assert.deepEqual(s.send({ type: 'spawned', pid: 101 }), ['activating->active success']);
      assert.equal(s.state.nRestarts, 1);
      s.send({ type: 'stop' });
      s.send(killed(101, 'SIGTERM'));
      s.send({ type: 'start' });
      assert.equal(s.state.nRestarts, 0, 'an explicit start resets the counter');
    });

    it('on-failure does not restart after a clean exit, nor after an explicit stop', () => {
      const clean = new Svc(service({ restart: 'on-failure' })).up();
      clean.send(exit(100, 0));
      assert.equal(clean.state.sub, 'dead');
      const stopped = new Svc(service({ restart: 'always' })).up();
      stopped.send({ type: 'stop' });
      stopped.send(killed(100, 'SIGKILL'));
      assert.deepEqual([stopped.state.sub, stopped.state.result], ['failed', 'signal']);
    });

    it('a stop during auto-restart gives up the restart; a start hurries it', () => {
      const s = new Svc(service({ restart: 'always', restartSec: 5000 })).up();
      s.send(exit(100, 0));
      assert.deepEqual(s.send({ type: 'stop' }), ['disarm', 'cleanup-cgroup', 'activating->inactive success']);
      const t = new Svc(service({ restart: 'always', restartSec: 5000 })).up();
      t.send(exit(100, 0));
      assert.deepEqual(t.send({ type: 'start' }), ['disarm', 'spawn start#0']);
      assert.equal(t.state.nRestarts, 1);
    });
  });

  describe('start rate limiting', () => {
    const limits = { intervalMs: 10_000, burst: 3 };

    it('fails with start-limit-hit after the burst and refuses starts until the interval is over', () => {
      const s = new Svc(service({ restart: 'always', restartSec: 100 }), limits);
      s.send({ type: 'start' }, 0);
      s.send({ type: 'spawned', pid: 100 });
      for (const [i, at] of [
        [1, 200],
        [2, 400],
      ] as const) {
        s.send(exit(100 + i - 1, 0), at - 100);
        assert.equal(s.state.sub, 'auto-restart');
        s.send({ type: 'restart-timer' }, at);
        s.send({ type: 'spawned', pid: 100 + i });
      }
      s.send(exit(102, 0), 500);
      assert.deepEqual(s.send({ type: 'restart-timer' }, 600), [
        'start-limit-hit',
        'cleanup-cgroup',
        'activating->failed start-limit-hit',
      ]);
      assert.deepEqual([s.state.sub, s.state.result, s.state.nRestarts], ['failed', 'start-limit-hit', 3]);
      assert.ok(s.logs().includes('Start request repeated too quickly.'));

      assert.deepEqual(s.send({ type: 'start' }, 5000), ['start-limit-hit'], 'still within the window');
      assert.equal(s.state.sub, 'failed');
      assert.deepEqual(s.send({ type: 'start' }, 10_001), ['spawn start#0'], 'a new window');
    });

    it('reset-failed clears the limiter', () => {
      const s = new Svc(service(), { intervalMs: 10_000, burst: 1 });
      s.up();
      s.send(exit(100, 1));
      assert.deepEqual(s.send({ type: 'start' }), ['start-limit-hit']);
      assert.equal(s.state.result, 'exit-code', "an earlier failure's result is kept, as systemd does");
      assert.deepEqual(s.send({ type: 'reset-failed' }), ['failed->inactive exit-code']);
      assert.deepEqual([s.state.sub, s.state.result], ['dead', 'success']);
      assert.deepEqual(s.send({ type: 'start' }), ['spawn start#0']);
    });
  });

  describe('SuccessExitStatus= and clean signals', () => {
    const ok = { codes: [42], signals: ['SIGUSR1'] };
    const rows: Array<[string, Partial<ServiceConfig>, Body, string]> = [
      ['listed exit code', { successExitStatus: ok }, exit(100, 42), 'inactive success'],
      ['listed signal', { successExitStatus: ok }, killed(100, 'SIGUSR1'), 'inactive success'],
      ['unlisted exit code', { successExitStatus: ok }, exit(100, 43), 'failed exit-code'],
      ['SIGTERM', {}, killed(100, 'SIGTERM'), 'inactive success'],
      ['SIGHUP', {}, killed(100, 'SIGHUP'), 'inactive success'],
      ['SIGINT', {}, killed(100, 'SIGINT'), 'inactive success'],
      ['SIGPIPE', {}, killed(100, 'SIGPIPE'), 'inactive success'],
      ['SIGKILL', {}, killed(100, 'SIGKILL'), 'failed signal'],
      [
        'SIGSEGV with core',
        {},
        { type: 'exited', pid: 100, code: null, signal: 'SIGSEGV', coreDumped: true, cgroupEmpty: true },
        'failed core-dump',
      ],
    ];
    for (const [name, over, ev, end] of rows) {
      it(`main process: ${name} -> ${end}`, () => {
        const s = new Svc(service({ restart: 'on-failure', ...over })).up();
        const fx = s.send(ev);
        assert.equal(fx.at(end.startsWith('failed') ? -3 : -1)?.replace(' (auto-restart)', ''), `active->${end}`);
        assert.equal(
          s.state.sub,
          end.startsWith('failed') ? 'auto-restart' : 'dead',
          'Restart=on-failure follows the verdict',
        );
      });
    }

    it('applies to control processes too', () => {
      const s = new Svc(service({ execStartPre: [cmd('/bin/pre')], successExitStatus: ok }));
      s.send({ type: 'start' });
      s.send({ type: 'spawned', pid: 50 });
      assert.deepEqual(s.send(exit(50, 42, false)), ['disarm', 'spawn start#0']);
    });
  });

  describe('reload', () => {
    const reloadable = () => service({ execReload: [cmd('/bin/kill -HUP $MAINPID')] });

    it('runs ExecReload= with $MAINPID and returns to running', () => {
      const s = new Svc(reloadable()).up();
      assert.deepEqual(s.send({ type: 'reload' }), ['arm reload 90000', 'spawn reload#0']);
      assert.deepEqual(s.spawnEnv(), { MAINPID: '100' });
      assert.deepEqual(s.send({ type: 'spawned', pid: 70 }), ['active->reloading success']);
      assert.deepEqual(s.send(exit(70, 0, false)), ['disarm', 'reloading->active success']);
      assert.deepEqual([s.state.sub, s.state.reloadResult], ['running', 'success']);
    });

    it('a failing ExecReload= keeps the service running and notes the result', () => {
      const s = new Svc(reloadable()).up();
      s.send({ type: 'reload' });
      s.send({ type: 'spawned', pid: 70 });
      const fx = s.send(exit(70, 1, false));
      assert.deepEqual(fx, ['disarm', 'reloading->active success']);
      assert.equal(
        (s.effects.find((e) => e.type === 'state-changed') as { reloadResult: string }).reloadResult,
        'exit-code',
      );
      assert.deepEqual([s.state.sub, s.state.result, s.state.reloadResult], ['running', 'success', 'exit-code']);
    });

    it('a reload timeout kills ExecReload= and notes timeout', () => {
      const s = new Svc(reloadable()).up();
      s.send({ type: 'reload' });
      s.send({ type: 'spawned', pid: 70 });
      assert.deepEqual(s.send({ type: 'timeout' }), ['kill control 70 SIGKILL', 'reloading->active success']);
      assert.equal(s.state.reloadResult, 'timeout');
      assert.deepEqual(s.send(killed(70, 'SIGKILL', false)), [], "the late exit of the killed reload is nobody's");
    });

    it('is ignored without ExecReload= or when not active', () => {
      assert.deepEqual(new Svc(service()).up().send({ type: 'reload' }), []);
      assert.deepEqual(new Svc(reloadable()).send({ type: 'reload' }), []);
    });
  });

  describe('restart requests', () => {
    it('restart = stop, then start once inactive', () => {
      const s = new Svc(service()).up();
      assert.deepEqual(s.send({ type: 'restart' }), [
        'kill main 100 SIGTERM',
        'kill cgroup SIGTERM',
        'arm stop 90000',
        'active->deactivating success',
      ]);
      assert.deepEqual(s.send(killed(100, 'SIGTERM')), [
        'disarm',
        'cleanup-cgroup',
        'deactivating->inactive success',
        'spawn start#0',
      ]);
      assert.deepEqual(s.send({ type: 'spawned', pid: 101 }), ['inactive->active success']);
    });

    it('a start while stopping waits for the stop to finish; a stop cancels it again', () => {
      const s = new Svc(service()).up();
      s.send({ type: 'stop' });
      assert.deepEqual(s.send({ type: 'start' }), []);
      assert.equal(s.state.pendingStart, true);
      assert.deepEqual(s.send(killed(100, 'SIGTERM')).at(-1), 'spawn start#0');
      s.send({ type: 'spawned', pid: 101 });
      s.send({ type: 'stop' });
      s.send({ type: 'start' });
      s.send({ type: 'stop' });
      assert.deepEqual(s.send(killed(101, 'SIGTERM')), ['disarm', 'cleanup-cgroup', 'deactivating->inactive success']);
    });

    it('restart of an inactive service is a start', () => {
      assert.deepEqual(new Svc(service()).send({ type: 'restart' }), ['spawn start#0']);
    });
  });

  describe('the spawn contract', () => {
    it('throws BUG: on an event while a spawn awaits its answer, or an answer to nothing', () => {
      const s = new Svc(service());
      s.send({ type: 'start' });
      assert.throws(() => s.send({ type: 'stop' }), /^Error: BUG: service event 'stop' arrived while spawning 'start'/);
      assert.throws(
        () => new Svc(service()).send({ type: 'spawned', pid: 1 }),
        /^Error: BUG: 'spawned' arrived but no spawn was pending/,
      );
    });

    it('ignores exits of processes that are not ours', () => {
      const s = new Svc(service()).up();
      assert.deepEqual(s.send(exit(4242, 1, false)), []);
      assert.equal(s.state.sub, 'running');
    });
  });
});
