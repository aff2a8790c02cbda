// Host integration, as root: .container units under the real init (PID 1 of its own pid and mount
// namespaces) running real busybox containers through the repo's keel CLI (KEEL_BIN) in a temp
// store (KEEL_CONTAINERS_ROOT).
import assert from 'node:assert/strict';
import { spawnSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ContainedInit, testTarget } from './contained-init.js';
import { repoRoot } from '../../builder/bundle.js';
import { addBusybox } from '../containers/busybox-fixture.js';
import { ImageStore } from '../../containers/store.js';
import { describeAsRoot } from '../needs.js';

const KEEL = join(repoRoot(), 'bin/keel');

describeAsRoot('.container units as services (as root: the init, keel run, busybox)', function () {
  this.timeout(60_000);
  let init: ContainedInit | undefined;
  let dir: string;
  let root: string;

  /** The keel CLI inside the init's namespaces: `keel ps` checks container pids in its own /proc. */
  const keelInside = (...args: string[]) => {
    const unshare = (init as unknown as { child: ChildProcess }).child.pid!;
    const pid1 = readFileSync(`/proc/${unshare}/task/${unshare}/children`, 'utf8').trim().split(/\s+/)[0];
    const r = spawnSync(
      'nsenter',
      ['-t', pid1, '-p', '-m', '--', process.execPath, KEEL, args[0], '--root', root, ...args.slice(1)],
      { encoding: 'utf8', timeout: 20_000 },
    );
    return { code: r.status, out: r.stdout, err: r.stderr };
  };
  const logs = async (unit: string): Promise<string[]> =>
    (await init!.ctl('logs', { unit })).map((e: { message: string }) => e.message);

  before(async function () {
    dir = mkdtempSync(join(tmpdir(), 'keel-ct-unit-'));
    root = join(dir, 'root');
    await addBusybox(new ImageStore(root), '/bin/busybox', 1700000000);
    init = await ContainedInit.start(
      {
        'test.target': testTarget(),
        // busybox sh as the container's PID 1 ignores SIGTERM: StopTimeout=1 keeps keel stop's SIGKILL close.
        'hello.container':
          '[Unit]\nDescription=Hello container\n\n[Container]\nImage=busybox\n' +
          'Exec=/bin/sh -c "echo hello from a container; sleep 300"\nStopTimeout=1\n' +
          '\n[Install]\nWantedBy=multi-user.target\n',
        'crash.container':
          '[Container]\nImage=busybox\nExec=/bin/sh -c "exit 3"\n\n[Service]\nRestart=on-failure\nRestartSec=0.2\n',
      },
      { env: { KEEL_BIN: KEEL, KEEL_CONTAINERS_ROOT: root } },
    );
  });

  after(async () => {
    await init?.stop();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it(
    'starts hello.service from hello.container: active, its output in the ' +
      'journal, the container running; stop removes it',
    async () => {
      const started = await init!.ctl('job', { unit: 'hello.service', job: 'start' });
      assert.equal(started.result, 'done', init!.output);
      const s = await init!.until(
        'hello.service',
        (x) =>
          x.activeState === 'active' && x.logs.some((e: { message: string }) => e.message === 'hello from a container'),
      );
      assert.equal(s.loadState, 'loaded');
      assert.equal(s.fragmentPath, join(init!.unitDir, 'hello.container'));
      assert.equal(s.description, 'Hello container');
      assert.match(init!.keel('status', 'hello.service').stdout, /Loaded: loaded \(.*\/hello\.container; disabled\)/);

      const ps = keelInside('ps');
      assert.equal(ps.code, 0, ps.err);
      assert.match(ps.out, /^[0-9a-f]{12} +busybox +"\/bin\/sh -c echo hel.* Up .* systemd-hello$/m);

      const stopped = await init!.ctl('job', { unit: 'hello.service', job: 'stop' });
      assert.equal(stopped.result, 'done');
      const after = await init!.until(
        'hello.service',
        (x) => x.activeState === 'inactive' || x.activeState === 'failed',
      );
      // The stop ends the same way every time, as a service stopped on SIGTERM: keel stop (ExecStop=)
      // returns once keel run has ended, and --sigterm-on-stop ends it by SIGTERM though the container
      // needed SIGKILL (137). It once ended by exit-code 137, or 1 run in 8 success (the manager's own
      // SIGTERM reaching a keel run still exiting after keel stop had returned).
      assert.deepEqual([after.activeState, after.result], ['inactive', 'success']);
      const all = keelInside('ps', '-a');
      assert.equal(all.code, 0, all.err);
      assert.doesNotMatch(all.out, /systemd-hello/);
      assert.ok((await logs('hello.service')).includes('Stopped Hello container.'));
    },
  );

  it("restarts a failing container with the file's Restart=on-failure RestartSec=0.2", async () => {
    const started = await init!.ctl('job', { unit: 'crash.service', job: 'start' });
    assert.equal(started.result, 'done');
    await init!.until(
      'crash.service',
      (x) => x.logs.some((e: { message: string }) => e.message === 'Scheduled restart job, restart counter is at 2.'),
      20_000,
    );
    const lines = await logs('crash.service');
    assert.ok(lines.filter((m) => m === 'Main process exited, code=exited, status=3').length >= 2, lines.join('\n'));
    const stopped = await init!.ctl('job', { unit: 'crash.service', job: 'stop' });
    assert.equal(stopped.result, 'done');
    await init!.until('crash.service', (x) => x.activeState === 'inactive' || x.activeState === 'failed');
    assert.doesNotMatch(keelInside('ps', '-a').out, /systemd-crash/);
  });
});
