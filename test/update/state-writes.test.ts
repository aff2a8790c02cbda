// The update agent's state files (status.json, checkpoint.json) go through lib/atomic: a temp file
// of their own per write, and the directory fsynced after the rename. Before, both used a fixed
// "FILE.tmp" and status.json's rename was never made durable by a directory fsync.
import assert from 'node:assert/strict';
import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { readStatus, writeStatus, type AgentEnv } from '../../update/agent.js';
import { callsAfterRename, recordingFs } from '../lib/recording-fs.js';

describe('update/agent status writes', () => {
  let dir: string;
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'keel-status-'));
  });
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  const envWith = (fs: AgentEnv['fs']): AgentEnv => ({
    esp: join(dir, 'esp'),
    cmdline: '',
    stateDir: join(dir, 'state'),
    publicKey: '',
    osVersion: '1.0.0',
    partition: () => null,
    log: () => undefined,
    ...(fs ? { fs } : {}),
  });

  it('status.json: the directory is fsynced after the rename (it was not)', () => {
    const { fs, calls } = recordingFs();
    const env = envWith(fs);
    writeStatus(env, { phase: 'checking' });
    const after = callsAfterRename(calls, join(env.stateDir, 'status.json'));
    assert.equal(after.length, 1);
    assert.deepEqual(
      after[0]!.map((c) => [c.call, c.path]),
      [
        ['open r', env.stateDir],
        ['fsync', env.stateDir],
        ['close', env.stateDir],
      ],
    );
    assert.equal(readStatus(env.stateDir)?.phase, 'checking');
  });

  it(
    'status.json: two writers no longer collide on one status.json.tmp ' +
      "(the second one's rename took the first's file)",
    () => {
      let nested = false;
      const rec = recordingFs(() => {
        if (nested) return;
        nested = true;
        writeStatus(env, { phase: 'error', error: 'the other writer' }); // in the middle of the first write
      });
      const env = envWith(rec.fs);
      writeStatus(env, { phase: 'downloading', version: '1.1.0' });
      const temps = rec.calls.filter((c) => c.call === 'rename').map((c) => c.path);
      assert.equal(temps.length, 2);
      assert.notEqual(temps[0], temps[1]);
      assert.ok(
        temps.every((t) => !t.endsWith('status.json.tmp')),
        temps.join(', '),
      );
      assert.equal(readStatus(env.stateDir)?.phase, 'downloading', 'the last rename wins');
      assert.deepEqual(readdirSync(env.stateDir), ['status.json'], 'no temp file is left');
    },
  );
});
