// `keel analyze verify` run as a real process (bin/keel over the compiled CLI): exit codes,
// FILE:LINE: message lines on stderr, program checks, Quadlet .container units and the usage error.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const KEEL = fileURLToPath(new URL('../../../bin/keel', import.meta.url));
const keel = (...args: string[]) => spawnSync(process.execPath, [KEEL, ...args], { encoding: 'utf8', timeout: 20_000 });
/** keel with the generated lines of .container units calling this checkout's CLI (the host has no /usr/bin/keel). */
const keelWithBin = (...args: string[]) =>
  spawnSync(process.execPath, [KEEL, ...args], {
    encoding: 'utf8',
    timeout: 20_000,
    env: { ...process.env, KEEL_BIN: KEEL },
  });
/** stderr without the warning about network-online.target, which a .container wants and a build host may lack. */
const withoutNetworkOnline = (stderr: string) =>
  stderr
    .split('\n')
    .filter((l) => l && !/Unit network-online\.target \(Wants=\) not found/.test(l))
    .join('\n');

describe('cli/analyze verify', () => {
  let dir: string;
  const file = (name: string, text: string) => {
    const p = join(dir, name);
    writeFileSync(p, text);
    return p;
  };
  before(() => {
    dir = mkdtempSync(join(tmpdir(), 'keel-analyze-'));
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  it('exits 0 for a good unit, printing its warnings as FILE:LINE: message', () => {
    const good = file(
      'good.service',
      '[Unit]\nDescription=Good\nFrobnicate=yes\n[Service]\nExecStart=/bin/sh -c "exit 0"\nProtectClock=yes\n',
    );
    const r = keel('analyze', 'verify', good);
    assert.equal(r.status, 0, r.stderr);
    assert.equal(
      r.stderr,
      `${good}:3: Unknown key name 'Frobnicate' in section 'Unit', ignoring.\n` +
        `${good}:6: ProtectClock= is unsupported by keel, ignoring.\n`,
    );
  });

  it('exits 1 for a bad value, a refused unit or a missing program, naming file and line', () => {
    const bad = file('bad.service', '[Service]\nExecStart=/bin/true\nRestartSec=soon\nExecStart=/bin/false\n');
    const r = keel('analyze', 'verify', bad);
    assert.equal(r.status, 1);
    assert.match(r.stderr, new RegExp(`^${bad}:3: Failed to parse RestartSec= value, ignoring: soon$`, 'm'));
    assert.match(r.stderr, new RegExp(`^${bad}:4: Service has more than one ExecStart= setting`, 'm'));
    const missing = file(
      'missing.service',
      '[Service]\nExecStart=/nonexistent/keel-test\nExecStartPre=-/nonexistent/ignored\n',
    );
    const m = keel('analyze', 'verify', missing);
    assert.equal(m.status, 1);
    assert.equal(
      m.stderr,
      'missing.service: Command /nonexistent/keel-test is not executable: No such file or directory\n',
    );
  });

  it('checks a template as an instance, and only warns about referenced units it cannot find', () => {
    const tpl = file(
      'keel-test@.service',
      '[Unit]\nDescription=Test %i\nWants=keel-no-such-unit.service\n[Service]\nExecStart=/bin/echo %i\n',
    );
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

  it('verifies web.container as the web.service it translates to (it used to say "not found")', () => {
    const web = file(
      'web.container',
      '[Unit]\nDescription=Web\n[Container]\nImage=busybox\nExec=httpd -f -p 8080\n' +
        'PublishPort=8080:8080\n[Install]\nWantedBy=multi-user.target\n',
    );
    const r = keelWithBin('analyze', 'verify', web);
    assert.equal(r.status, 0, r.stderr);
    assert.equal(withoutNetworkOnline(r.stderr), '');
    // The generated ExecStart= and ExecStop= run the keel CLI: a missing one is reported like any program.
    const missing = spawnSync(process.execPath, [KEEL, 'analyze', 'verify', web], {
      encoding: 'utf8',
      timeout: 20_000,
      env: { ...process.env, KEEL_BIN: '/nonexistent/keel' },
    });
    assert.equal(missing.status, 1);
    assert.match(
      missing.stderr,
      /^web\.service: Command \/nonexistent\/keel is not executable: No such file or directory$/m,
    );
  });

  it("reports a .container's errors and warnings with file, line and value", () => {
    const bad = file(
      'broken.container',
      '[Container]\nImage=busybox\nMemory=lots\nVolume=data:/data\n' +
        'Frobnicate=yes\nNotify=true\n[Service]\nExecStart=/bin/true\n',
    );
    const r = keelWithBin('analyze', 'verify', bad);
    assert.equal(r.status, 1);
    assert.match(
      r.stderr,
      new RegExp(
        `^${bad}:3: Invalid Memory=lots: invalid --memory "lots" \\(use e\\.g\\. 512m or 1g\\)\\. Refusing\\.$`,
        'm',
      ),
    );
    assert.match(r.stderr, new RegExp(`^${bad}:4: Invalid Volume=data:/data: "data" is not a path`, 'm'));
    assert.match(
      r.stderr,
      new RegExp(`^${bad}:5: Unknown key name 'Frobnicate' in section 'Container', ignoring\\.$`, 'm'),
    );
    assert.match(r.stderr, new RegExp(`^${bad}:6: Notify= is a Quadlet key keel does not support, ignoring\\.$`, 'm'));
    assert.match(r.stderr, new RegExp(`^${bad}:8: ExecStart= cannot be set for a \\.container unit`, 'm'));
    const noImage = file('noimage.container', '[Unit]\nDescription=x\n[Container]\nExec=true\n');
    const n = keelWithBin('analyze', 'verify', noImage);
    assert.equal(n.status, 1);
    assert.match(n.stderr, new RegExp(`^${noImage}:3: ${noImage} has no Image= in \\[Container\\]`, 'm'));
  });

  it('checks a template .container as its instance i, and refuses one a .service beside it replaces', () => {
    const tpl = file('job@.container', '[Container]\nImage=busybox\nExec=echo %i\n[Service]\nFrobnicate=yes\n');
    const r = keelWithBin('analyze', 'verify', tpl);
    assert.equal(r.status, 0, r.stderr);
    assert.equal(
      withoutNetworkOnline(r.stderr),
      `${tpl}:5: Unknown key name 'Frobnicate' in section 'Service', ignoring.`,
    );
    const shadowed = file('both.container', '[Container]\nImage=busybox\n');
    const service = file('both.service', '[Service]\nExecStart=/bin/true\n');
    const s = keelWithBin('analyze', 'verify', shadowed);
    assert.equal(s.status, 1);
    assert.equal(s.stderr, `${shadowed}: not used: ${service} takes the place of both.service.\n`);
  });

  it('answers an unknown subcommand with a usage error listing the subcommands', () => {
    const r = keel('analyze', 'frobnicate');
    assert.equal(r.status, 2);
    assert.match(r.stderr, /unknown subcommand "frobnicate"; available: verify, blame, critical-chain, time/);
    assert.equal(keel('analyze', 'verify').status, 2);
  });
});
