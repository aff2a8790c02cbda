// Regression: jobs nobody waited for (OnFailure=, timers, paths, sockets, `--no-block` requests)
// were run with `.catch(() => {})`, so a failed one vanished without a word. Each now leaves a
// journal line on the unit that triggered it, naming the job and why it failed.
import assert from 'node:assert/strict';
import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { ContainedInit, testTarget } from './contained-init.js';
import { describeAsRoot } from '../needs.js';

const line = (s: { logs: { message: string }[] }, re: RegExp) => s.logs.some((e) => re.test(e.message));

describeAsRoot('init: dropped jobs leave a journal line', function () {
  this.timeout(60_000);
  let init: ContainedInit | undefined;
  afterEach(async () => {
    await init?.stop();
    init = undefined;
  });

  it('a failed OnFailure= job was dropped silently: it is logged with its trigger and reason', async () => {
    init = await ContainedInit.start({
      'test.target': testTarget('bad.service'),
      'bad.service': '[Unit]\nOnFailure=rescue.service\n[Service]\nType=oneshot\nExecStart=/bin/false\n',
      'rescue.service': '[Service]\nType=oneshot\nExecStart=/bin/sh -c "exit 7"\n',
    });
    const s = await init.until('bad.service', (x) => line(x, /^Job rescue\.service\/start/));
    assert.ok(
      line(
        s,
        /^Job rescue\.service\/start triggered by OnFailure= of bad\.service failed: result failed, unit result exit-code\.$/,
      ),
      JSON.stringify(s.logs),
    );
  });

  it('a failed job started by a timer was dropped silently: it is logged on the timer', async () => {
    init = await ContainedInit.start({
      'test.target': testTarget('tick.timer'),
      'tick.timer': '[Timer]\nOnActiveSec=100ms\n',
      'tick.service': '[Service]\nType=oneshot\nExecStart=/bin/false\n',
    });
    const s = await init.until('tick.timer', (x) => line(x, /^Job tick\.service\/start/));
    assert.ok(
      line(
        s,
        /^Job tick\.service\/start triggered by the timer of tick\.timer failed: result failed, unit result exit-code\.$/,
      ),
      JSON.stringify(s.logs),
    );
  });

  it('a failed job started by a path unit was dropped silently: it is logged on the path unit', async () => {
    const dir = `/tmp/keel-dropped-${process.pid}`;
    mkdirSync(dir, { recursive: true });
    writeFileSync(join(dir, 'flag'), '');
    init = await ContainedInit.start({
      'test.target': testTarget('flag.path'),
      'flag.path': `[Path]\nPathExists=${dir}/flag\n`,
      'flag.service': '[Service]\nType=oneshot\nExecStart=/bin/sh -c "exit 3"\n',
    });
    const s = await init.until('flag.path', (x) => line(x, /^Job flag\.service\/start/));
    assert.ok(
      line(
        s,
        /^Job flag\.service\/start triggered by the path of flag\.path failed: result failed, unit result exit-code\.$/,
      ),
      JSON.stringify(s.logs),
    );
    rmSync(dir, { recursive: true, force: true });
  });

  it('a failed job queued without waiting (--no-block) was dropped silently: it is logged', async () => {
    init = await ContainedInit.start({
      'test.target': testTarget(),
      'later.service': '[Service]\nType=oneshot\nExecStart=/bin/false\n',
    });
    const r = await init.ctl('job', { unit: 'later.service', job: 'start', wait: false });
    assert.equal(r.result, 'queued');
    await init.waitFor(
      /Job later\.service\/start triggered by a control request of keel failed: result failed, unit result exit-code\./,
    );
  });
});
