// Regression: every exit the monitor recorded carried the error "its process is gone (killed with
// its monitor, or the machine restarted)": finished() copied db.state(), which calls a reaped
// process gone, instead of the state as written.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { ContainerDb, processStartTime } from '../../containers/db.js';
import { finished } from '../../containers/engine.js';
import { containerFields, removeDir, tempDir } from './helpers.js';

describe('containers/engine: finished()', () => {
  let root: string;
  before(() => {
    root = tempDir('keel-engine-');
  });
  after(() => removeDir(root));

  it('records the exit of a reaped process without a "process is gone" error', () => {
    const db = new ContainerDb(root);
    const c = db.create(containerFields({ argv: ['true'] }));
    // A process that ran and was reaped, as the monitor's container is when finished() is called.
    const pid = spawnSync('sh', ['-c', 'echo $$'], { encoding: 'utf8' }).stdout.trim();
    const startTime = '1';
    assert.equal(processStartTime(Number(pid)), null, 'the process is gone');
    db.setState(c.id, {
      status: 'running',
      pid: Number(pid),
      startTime,
      startedAt: new Date().toISOString(),
      finishedAt: null,
      exitCode: null,
      signal: null,
      restartCount: 0,
      error: null,
    });
    const s = finished(db, c.id, { code: 3, signal: null });
    assert.equal(s.error, null);
    assert.deepEqual([db.state(c.id).status, db.state(c.id).exitCode, db.state(c.id).error], ['exited', 3, null]);
  });
});
