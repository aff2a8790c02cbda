// The service machine's tables: active states, clean exits, Restart= and the start rate limiter.
import assert from 'node:assert/strict';
import {
  ACTIVE_STATE,
  activeStateOf,
  exitResult,
  isCleanExit,
  restartWanted,
  startAllowed,
  startLimitsOf,
  type ServiceResult,
  type ServiceSubState,
} from '../../init/service-machine.js';
import type { ServiceConfig } from '../../units/types.js';

const NONE = { codes: [], signals: [] };

describe('service machine policy', () => {
  it("maps every sub-state to systemd's active state, and idle start phases to active", () => {
    const expected: Record<ServiceSubState, string> = {
      dead: 'inactive',
      condition: 'activating',
      'start-pre': 'activating',
      start: 'activating',
      'start-post': 'activating',
      running: 'active',
      exited: 'active',
      reload: 'reloading',
      'reload-notify': 'reloading',
      stop: 'deactivating',
      'stop-sigterm': 'deactivating',
      'stop-sigkill': 'deactivating',
      'stop-post': 'deactivating',
      'final-sigterm': 'deactivating',
      'final-sigkill': 'deactivating',
      failed: 'failed',
      'auto-restart': 'activating',
    };
    assert.deepEqual(ACTIVE_STATE, expected);
    for (const sub of ['condition', 'start-pre', 'start', 'start-post'] as const) {
      assert.equal(activeStateOf(sub, 'idle'), 'active');
      assert.equal(activeStateOf(sub, 'simple'), 'activating');
    }
    assert.equal(activeStateOf('stop', 'idle'), 'deactivating');
  });

  describe('clean exits (is_clean_exit)', () => {
    const rows: Array<
      [
        string,
        { code: number | null; signal: string | null; coreDumped?: boolean },
        boolean,
        ServiceConfig['successExitStatus'],
        ServiceResult,
      ]
    > = [
      ['exit 0', { code: 0, signal: null }, true, NONE, 'success'],
      ['exit 1', { code: 1, signal: null }, true, NONE, 'exit-code'],
      ['exit 42 listed', { code: 42, signal: null }, false, { codes: [42], signals: [] }, 'success'],
      ['daemon SIGTERM', { code: null, signal: 'SIGTERM' }, true, NONE, 'success'],
      ['daemon SIGHUP', { code: null, signal: 'SIGHUP' }, true, NONE, 'success'],
      ['daemon SIGINT', { code: null, signal: 'SIGINT' }, true, NONE, 'success'],
      ['daemon SIGPIPE', { code: null, signal: 'SIGPIPE' }, true, NONE, 'success'],
      ['command SIGTERM', { code: null, signal: 'SIGTERM' }, false, NONE, 'signal'],
      ['daemon SIGKILL', { code: null, signal: 'SIGKILL' }, true, NONE, 'signal'],
      ['daemon SIGSEGV dumped', { code: null, signal: 'SIGSEGV', coreDumped: true }, true, NONE, 'core-dump'],
      [
        'listed signal without SIG prefix',
        { code: null, signal: 'SIGUSR1' },
        false,
        { codes: [], signals: ['USR1'] },
        'success',
      ],
      [
        'listed signal, lower case',
        { code: null, signal: 'SIGUSR2' },
        false,
        { codes: [], signals: ['sigusr2'] },
        'success',
      ],
    ];
    for (const [name, exit, daemon, ok, result] of rows) {
      it(name, () => {
        assert.equal(exitResult(exit, daemon, ok), result);
        assert.equal(isCleanExit(exit, daemon, ok), result === 'success');
      });
    }
  });

  it('follows the Restart= table of systemd.service(5)', () => {
    // Columns: no, always, on-success, on-failure, on-abnormal, on-abort, on-watchdog.
    const policies = ['no', 'always', 'on-success', 'on-failure', 'on-abnormal', 'on-abort', 'on-watchdog'] as const;
    const table: Array<[ServiceResult, string]> = [
      ['success', '.XX....'],
      ['exit-code', '.X.X...'],
      ['signal', '.X.XXX.'],
      ['core-dump', '.X.XXX.'],
      ['timeout', '.X.XX..'],
      ['watchdog', '.X.XX.X'],
      ['exec-condition', '.......'],
    ];
    for (const [result, row] of table) {
      const got = policies.map((p) => (restartWanted(p, result) ? 'X' : '.')).join('');
      assert.equal(got, row, `Restart= row for ${result}`);
    }
  });

  it('rate-limits starts in a fixed window like ratelimit_below()', () => {
    const limits = { intervalMs: 1000, burst: 2 };
    let limit = { windowStart: null as number | null, count: 0 };
    const verdicts: boolean[] = [];
    for (const now of [0, 10, 20, 999, 1000, 1001, 1002]) {
      const v = startAllowed(limit, limits, now);
      verdicts.push(v.allowed);
      limit = v.limit;
    }
    // Window opens at 0; 1000 - 0 is not past the interval; 1001 opens a new window.
    assert.deepEqual(verdicts, [true, true, false, false, false, true, true]);
    assert.equal(
      startAllowed({ windowStart: 0, count: 99 }, { intervalMs: 0, burst: 5 }, 1).allowed,
      true,
      'interval 0 disables',
    );
    assert.equal(
      startAllowed({ windowStart: 0, count: 99 }, { intervalMs: 10, burst: 0 }, 1).allowed,
      true,
      'burst 0 disables',
    );
    assert.deepEqual(startLimitsOf({ startLimitIntervalMs: 10_000, startLimitBurst: 5 }), {
      intervalMs: 10_000,
      burst: 5,
    });
  });
});
