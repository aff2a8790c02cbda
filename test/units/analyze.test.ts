// `keel analyze verify` run as a real process (bin/keel over the compiled CLI): exit codes,
// FILE:LINE: message lines on stderr, program checks and the usage error.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const KEEL = fileURLToPath(new URL('../../../bin/keel', import.meta.url));
const keel = (...args: string[]) => spawnSync(process.execPath, [KEEL, ...args], { encoding: 'utf8', timeout: 20_000 });

describe('cli/analyze verify', () => {
  let dir: string;
  const file = (name: string, text: string) => { const p = join(dir, name); writeFileSync(p, text); return p; };
  before(() => { dir = mkdtempSync(join(tmpdir(), 'keel-analyze-')); });
  after(() => rmSync(dir, { recursive: true, force: true }));

  it('exits 0 for a good unit, printing its warnings as FILE:LINE: message', () => {
    const good = file('good.service', '[Unit]\nDescription=Good\nFrobnicate=yes\n[Service]\nExecStart=/bin/sh -c "exit 0"\nPrivateTmp=yes\n');
    const r = keel('analyze', 'verify', good);
    assert.equal(r.status, 0, r.stderr);
    assert.equal(r.stderr, `${good}:3: Unknown key name 'Frobnicate' in section 'Unit', ignoring.\n${good}:6: PrivateTmp= is unsupported by keel, ignoring.\n`);
  });

  it('exits 1 for a bad value, a refused unit or a missing program, naming file and line', () => {
    const bad = file('bad.service', '[Service]\nExecStart=/bin/true\nRestartSec=soon\nExecStart=/bin/false\n');
    const r = keel('analyze', 'verify', bad);
    assert.equal(r.status, 1);
    assert.match(r.stderr, new RegExp(`^${bad}:3: Failed to parse RestartSec= value, ignoring: soon$`, 'm'));
    assert.match(r.stderr, new RegExp(`^${bad}:4: Service has more than one ExecStart= setting`, 'm'));
    const missing = file('missing.service', '[Service]\nExecStart=/nonexistent/keel-test\nExecStartPre=-/nonexistent/ignored\n');
    const m = keel('analyze', 'verify', missing);
    assert.equal(m.status, 1);
    assert.equal(m.stderr, 'missing.service: Command /nonexistent/keel-test is not executable: No such file or directory\n');
  });

  it('checks a template as an instance, and only warns about referenced units it cannot find', () => {
    const tpl = file('keel-test@.service', '[Unit]\nDescription=Test %i\nWants=keel-no-such-unit.service\n[Service]\nExecStart=/bin/echo %i\n');
    const r = keel('analyze', 'verify', tpl);
    assert.equal(r.status, 0, r.stderr);
    assert.equal(r.stderr, 'keel-test@i.service: Unit keel-no-such-unit.service (Wants=) not found.\n');
  });

  it('fails for a file that is not a unit, and one of several failing fails all', () => {
    const good = file('ok.service', '[Service]\nExecStart=/bin/true\n');
    const r = keel('analyze', 'verify', good, join(dir, 'absent.service'));
    assert.equal(r.status, 1);
    assert.match(r.stderr, /absent.service: cannot load unit absent.service: no unit file/);
  });

  it('answers an unknown subcommand with a usage error listing the subcommands', () => {
    const r = keel('analyze', 'frobnicate');
    assert.equal(r.status, 2);
    assert.match(r.stderr, /unknown subcommand "frobnicate"; available: verify, blame, critical-chain, time/);
    assert.equal(keel('analyze', 'verify').status, 2);
  });
});
