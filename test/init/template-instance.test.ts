// Regression: `keel start greet@alice.service` of a template that no unit named before was "not
// found" (instances were loaded only when a dependency or a .wants link named them).
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { ContainedInit } from './contained-init.js';
import { describeAsRoot } from '../needs.js';

describeAsRoot('init: template instances named at run time', function () {
  this.timeout(60_000);
  let init: ContainedInit | undefined;
  afterEach(async () => {
    await init?.stop();
    init = undefined;
  });

  it('starts greet@alice.service from greet@.service, present at boot or added before a daemon-reload', async () => {
    init = await ContainedInit.start({ 'hi@.service': '[Service]\nType=oneshot\nExecStart=/bin/echo hi %i\n' });
    assert.deepEqual(await init.ctl('job', { unit: 'hi@bob.service', job: 'start' }), {
      unit: 'hi@bob.service',
      result: 'done',
    });
    await init.until('hi@bob.service', (s) => s.logs.some((e: { message: string }) => e.message === 'hi bob'));
    writeFileSync(
      join(init.unitDir, 'greet@.service'),
      '[Service]\nType=oneshot\nRemainAfterExit=yes\nExecStart=/bin/echo hello %i\n',
    );
    await init.ctl('daemon-reload', {});
    assert.equal((await init.ctl('job', { unit: 'greet@alice.service', job: 'start' })).result, 'done');
    const st = await init.until('greet@alice.service', (s) =>
      s.logs.some((e: { message: string }) => e.message === 'hello alice'),
    );
    assert.equal(st.loadState, 'loaded');
    assert.equal(st.activeState, 'active');
    assert.equal(st.fragmentPath, join(init.unitDir, 'greet@.service'));
  });

  it('a name that is no instance of any template is still not found', async () => {
    init = await ContainedInit.start({});
    assert.equal((await init.ctl('job', { unit: 'nosuch@x.service', job: 'start' })).result, 'failed');
    assert.equal((await init.ctl('status', { unit: 'nosuch@x.service' })).loadState, 'not-found');
  });
});
