// Host integration: the init as PID 1 in its own namespaces, with real unit files and processes.
import assert from 'node:assert/strict';
import { connect } from 'node:net';
import { ContainedInit, testTarget } from './contained-init.js';
import { describeAsRoot } from '../needs.js';

describeAsRoot('init as PID 1 (namespaces, real processes)', function () {
  this.timeout(60_000);
  let init: ContainedInit | undefined;
  afterEach(async () => {
    await init?.stop();
    init = undefined;
  });

  it('boots a target: simple and oneshot services start, ordered, with their output in the journal', async () => {
    init = await ContainedInit.start({
      'test.target': testTarget('a.service', 'b.service'),
      'a.service':
        '[Service]\nType=oneshot\nRemainAfterExit=yes\n' +
        'ExecStart=/bin/sh -c "echo a-ran; date +%s%N > /tmp/keel-a-$$"\n',
      'b.service': '[Unit]\nAfter=a.service\n[Service]\nExecStart=/bin/sh -c "echo b-running; exec sleep 1000"\n',
    });
    const a = await init.until('a.service', (s) => s.activeState === 'active');
    assert.equal(a.subState, 'exited');
    const b = await init.until('b.service', (s) => s.activeState === 'active');
    assert.equal(b.subState, 'running');
    assert.ok(b.mainPid > 1, 'b has a main pid');
    const logs = await init.until('b.service', (s) => s.logs.some((e: any) => e.message === 'b-running'));
    assert.ok(logs.logs.length > 0);
    const alog = await init.ctl('logs', { unit: 'a.service' });
    assert.ok(
      alog.some((e: any) => e.message === 'a-ran'),
      JSON.stringify(alog),
    );
    // The boot timeline: b waited for a, so the critical chain of the target runs through both.
    const chain = init.keel('analyze', 'critical-chain', 'test.target');
    assert.equal(chain.code, 0, chain.stderr);
    assert.match(chain.stdout, /^test\.target @/);
    assert.match(chain.stdout, /b\.service @[\d.]+m?s/);
    assert.ok(chain.stdout.indexOf('b.service') < chain.stdout.indexOf('a.service'), chain.stdout);
    assert.match(init.keel('analyze', 'blame').stdout, /a\.service/);
  });

  it('stops a service with SIGTERM and records why it failed', async () => {
    init = await ContainedInit.start({
      'test.target': testTarget('svc.service', 'bad.service'),
      'svc.service': '[Service]\nExecStart=/bin/sleep 1000\n',
      'bad.service': '[Service]\nExecStart=/bin/sh -c "echo dying >&2; exit 3"\n',
    });
    await init.until('svc.service', (s) => s.activeState === 'active');
    const r = await init.ctl('job', { unit: 'svc.service', job: 'stop' });
    assert.equal(r.result, 'done');
    const s = await init.until('svc.service', (x) => x.activeState === 'inactive');
    assert.equal(s.subState, 'dead');
    const bad = await init.until('bad.service', (x) => x.activeState === 'failed');
    assert.equal(bad.result, 'exit-code');
    assert.ok(bad.logs.some((e: any) => e.message === 'dying'));
    const st = init.keel('status', 'bad.service');
    assert.equal(st.code, 3);
    assert.match(st.stdout, /Active: failed \(failed\) \(Result: exit-code\)/);
  });

  it('restarts on failure with RestartSec and gives up at the start limit', async () => {
    init = await ContainedInit.start({
      'test.target': testTarget('flaky.service'),
      'flaky.service':
        '[Unit]\nStartLimitIntervalSec=10s\nStartLimitBurst=3\n[Service]\n' +
        'ExecStart=/bin/sh -c "echo try; exit 1"\nRestart=on-failure\nRestartSec=100ms\n',
    });
    // The event: the start limit refused the next restart (systemd keeps the last run's result, exit-code).
    const s = await init.until(
      'flaky.service',
      (x) => x.activeState === 'failed' && x.logs.some((e: any) => /repeated too quickly/.test(e.message)),
    );
    // The start limit ends the restarts: the unit is failed with that result, so none is scheduled.
    const again = await init.ctl('status', { unit: 'flaky.service', lines: 100 });
    assert.equal(again.activeState, 'failed');
    assert.equal(s.logs.filter((e: any) => e.message === 'try').length, 3);
    assert.equal(
      again.logs.filter((e: any) => e.message === 'try').length,
      s.logs.filter((e: any) => e.message === 'try').length,
      'no more restarts after the limit',
    );
    assert.ok(again.logs.some((e: any) => /repeated too quickly/.test(e.message)));
  });

  it('fails dependents of a failed Requires= but not of Wants=', async () => {
    init = await ContainedInit.start({
      'test.target': testTarget('needs.service', 'wants.service'),
      'broken.service': '[Service]\nType=oneshot\nExecStart=/bin/false\n',
      'needs.service': '[Unit]\nRequires=broken.service\nAfter=broken.service\n[Service]\nExecStart=/bin/sleep 1000\n',
      'wants.service': '[Unit]\nWants=broken.service\nAfter=broken.service\n[Service]\nExecStart=/bin/sleep 1000\n',
    });
    await init.until('wants.service', (s) => s.activeState === 'active');
    const needs = await init.ctl('status', { unit: 'needs.service' });
    assert.equal(needs.activeState, 'inactive');
    assert.equal((await init.ctl('status', { unit: 'broken.service' })).activeState, 'failed');
  });

  it('runs a timer with a short OnActiveSec and a socket-activated service', async () => {
    const sockPath = `/tmp/keel-sock-${process.pid}/echo.sock`;
    init = await ContainedInit.start({
      'test.target': testTarget('tick.timer', 'echo.socket'),
      'tick.timer': '[Timer]\nOnActiveSec=300ms\n',
      'tick.service': '[Service]\nType=oneshot\nExecStart=/bin/sh -c "echo tick"\n',
      'echo.socket': `[Socket]\nListenStream=${sockPath}\n`,
      // ($$$$ is how a unit file says the shell's $$: systemd turns $$ into $.)
      'echo.service':
        '[Service]\nExecStart=/bin/sh -c \'echo "fds=$LISTEN_FDS pid-matches=$([ ' +
        '"$LISTEN_PID" = "$$$$" ] && echo yes)"; exec sleep 1000\'\n',
    });
    const tick = await init.until('tick.service', (s) => s.logs.some((e: any) => e.message === 'tick'));
    assert.ok(tick);
    const sock = await init.ctl('status', { unit: 'echo.socket' });
    assert.equal(sock.activeState, 'active');
    assert.equal(sock.subState, 'listening');
    assert.equal(
      (await init.ctl('status', { unit: 'echo.service' })).activeState,
      'inactive',
      'not started before traffic',
    );
    // Traffic starts the service, which gets the listening socket as fd 3 and its own LISTEN_PID.
    const c = connect(sockPath);
    c.on('error', () => {});
    const svc = await init.until('echo.service', (s) => s.logs.some((e: any) => e.message.startsWith('fds=')));
    c.destroy();
    assert.ok(
      svc.logs.some((e: any) => e.message === 'fds=1 pid-matches=yes'),
      JSON.stringify(svc.logs),
    );
  });
});
