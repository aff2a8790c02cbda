// Condition*= and Assert*= in a real init: a failed condition skips the unit (inactive, not
// failed), a failed assert fails the start job with result "assert".
import assert from 'node:assert/strict';
import { statSync } from 'node:fs';
import { join } from 'node:path';
import { ContainedInit, testTarget } from './contained-init.js';
import { describeAsRoot } from '../needs.js';

describeAsRoot('init as PID 1: conditions and asserts', function () {
  this.timeout(60_000);
  let init: ContainedInit | undefined;
  afterEach(async () => {
    await init?.stop();
    init = undefined;
  });

  it(
    'skips a unit whose condition fails, and fails the start of one ' + 'whose assert fails with result "assert"',
    async () => {
      init = await ContainedInit.start({
        'test.target': testTarget('ran.service'),
        'ran.service':
          '[Unit]\nConditionEnvironment=KEEL_CONTAINED=1\nConditionPathExists=|/nope\nConditionPathExists=|!/nope\n' +
          '[Service]\nType=oneshot\nRemainAfterExit=yes\nExecStart=/bin/true\n',
        'skipped.service':
          '[Unit]\nConditionKernelVersion=<2.0\n[Service]\nType=oneshot\nRemainAfterExit=yes\nExecStart=/bin/true\n',
        'asserted.service':
          '[Unit]\nAssertPathIsDirectory=/nonexistent-keel\n[Service]\nType=oneshot\nExecStart=/bin/true\n',
      });
      assert.equal((await init.until('ran.service', (s) => s.activeState !== 'inactive')).activeState, 'active');
      assert.equal((await init.ctl('job', { unit: 'skipped.service', job: 'start' })).result, 'skipped');
      const skipped = await init.ctl('status', { unit: 'skipped.service', lines: 20 });
      assert.deepEqual([skipped.activeState, skipped.result], ['inactive', 'success']);
      assert.equal(skipped.condition, 'start condition failed: ConditionKernelVersion=<2.0 was not met');
      assert.ok(
        skipped.logs.some((e: any) => /being skipped \(ConditionKernelVersion=<2\.0\)/.test(e.message)),
        JSON.stringify(skipped.logs),
      );
      assert.equal((await init.ctl('job', { unit: 'asserted.service', job: 'start' })).result, 'assert');
      const asserted = await init.ctl('status', { unit: 'asserted.service' });
      assert.deepEqual([asserted.activeState, asserted.result], ['failed', 'assert']);
      assert.equal(asserted.condition, 'start assertion failed: AssertPathIsDirectory=/nonexistent-keel was not met');
    },
  );
});

describeAsRoot('init as PID 1: OOMScoreAdjust= and Delegate=', function () {
  this.timeout(60_000);
  let init: ContainedInit | undefined;
  afterEach(async () => {
    await init?.stop();
    init = undefined;
  });

  it("writes OOMScoreAdjust= to the started process and gives a Delegate= unit's cgroup to its User=", async () => {
    init = await ContainedInit.start({
      'test.target': testTarget('deleg.service'),
      // The shell waits until its own oom_score_adj is the unit's (the manager writes it after the fork).
      'deleg.service':
        '[Service]\nUser=nobody\nOOMScoreAdjust=500\nDelegate=yes\n' +
        'ExecStart=/bin/sh -c \'until [ "$$(cat /proc/$$$$/oom_score_adj)" = 500 ' +
        "]; do :; done; echo oom=500; exec sleep 1000'\n",
    });
    await init.until('deleg.service', (s) => s.logs.some((e: any) => e.message === 'oom=500'));
    assert.ok(init.cgroupRoot, 'these tests need a cgroup2 mount (/sys/fs/cgroup or /sys/fs/cgroup/unified)');
    const dir = join(init.cgroupRoot, 'system.slice/deleg.service');
    assert.deepEqual(
      [statSync(dir).uid, statSync(join(dir, 'cgroup.procs')).uid, statSync(join(dir, 'cgroup.subtree_control')).uid],
      [65534, 65534, 65534],
    );
  });
});
