// interpretUnit: typed values and systemd's defaults, resets, specifiers, diagnostics and the
// per-type refusal rules (messages as systemd 252 prints them).
import assert from 'node:assert/strict';
import { interpretUnit } from '../../units/interpret.js';
import { parseUnitText } from '../../units/parse.js';
import type { UnitConfig } from '../../units/types.js';

const HOST = { hostname: 'node1', machineId: 'm1', bootId: 'b1', runtimeDir: '/run' };
/** Parses and interprets `text` as unit `name` from file "/u/NAME". */
function unit(name: string, text: string): UnitConfig {
  const file = `/u/${name}`;
  return interpretUnit(parseUnitText(text, file).assignments, { ...HOST, unitName: name, fragmentPath: file });
}
const errors = (u: UnitConfig) => u.diagnostics.filter((d) => d.severity === 'error');

describe('units/interpret', () => {
  it("has systemd's defaults", () => {
    const u = unit('a.service', '[Service]\nExecStart=/bin/a\n');
    const s = u.service!;
    assert.deepEqual(u.diagnostics, []);
    assert.equal(s.type, 'simple');
    assert.deepEqual([s.restart, s.restartSec, s.timeoutStartSec, s.timeoutStopSec], ['no', 100, 90_000, 90_000]);
    assert.deepEqual([s.killMode, s.killSignal, s.sendSIGKILL], ['control-group', 'SIGTERM', true]);
    assert.deepEqual([s.standardInput, s.standardOutput, s.standardError], ['null', 'journal', 'inherit']);
    assert.deepEqual([u.startLimitIntervalMs, u.startLimitBurst, u.defaultDependencies], [10_000, 5, true]);
  });

  it('types the [Service] settings', () => {
    const u = unit(
      'pg@main.service',
      `[Service]
Type=forking
ExecStart=-/usr/bin/pg_ctlcluster %i start
PIDFile=postgresql/main.pid
Restart=on-failure
RestartSec=1min
TimeoutStartSec=0
TimeoutStopSec=1h
KillMode=mixed
KillSignal=INT
SendSIGKILL=no
SuccessExitStatus=DATAERR 3 SIGUSR1
Environment="A=1 B" 'C=x y' D=3
Environment=A=2 HOST=%H
EnvironmentFile=-/etc/default/a
EnvironmentFile=/etc/a.env
User=%i
Group=mail
WorkingDirectory=-/root
UMask=0027
Nice=19
LimitNOFILE=1024:524288
LimitNPROC=infinity
LimitCORE=64M
StandardInput=tty-force
TTYPath=/dev/tty1
MemoryMax=1.5G
CPUQuota=150%
TasksMax=33%
RemainAfterExit=yes
`,
    );
    assert.deepEqual(u.diagnostics, []);
    const s = u.service!;
    assert.equal(s.type, 'forking');
    assert.deepEqual(s.execStart[0].argv, ['/usr/bin/pg_ctlcluster', 'main', 'start']);
    assert.equal(s.pidFile, '/run/postgresql/main.pid');
    assert.deepEqual(
      [s.restart, s.restartSec, s.timeoutStartSec, s.timeoutStopSec],
      ['on-failure', 60_000, Infinity, 3_600_000],
    );
    assert.deepEqual([s.killMode, s.killSignal, s.sendSIGKILL], ['mixed', 'SIGINT', false]);
    assert.deepEqual(s.successExitStatus, { codes: [65, 3], signals: ['SIGUSR1'] });
    assert.deepEqual(s.environment, [
      ['A', '2'],
      ['C', 'x y'],
      ['D', '3'],
      ['HOST', 'node1'],
    ]);
    assert.deepEqual(s.environmentFiles, [
      { path: '/etc/default/a', optional: true },
      { path: '/etc/a.env', optional: false },
    ]);
    assert.deepEqual(
      [s.user, s.group, s.workingDirectory, s.workingDirectoryMissingOk],
      ['main', 'mail', '/root', true],
    );
    assert.deepEqual([s.umask, s.nice], [0o027, 19]);
    assert.deepEqual(s.limits, {
      nofile: [1024, 524288],
      nproc: [Infinity, Infinity],
      core: [64 * 2 ** 20, 64 * 2 ** 20],
    });
    assert.deepEqual([s.standardInput, s.standardOutput, s.ttyPath], ['tty-force', 'inherit', '/dev/tty1']);
    assert.deepEqual(
      [s.memoryMax, s.cpuQuota, s.tasksMax, s.tasksMaxPercent, s.remainAfterExit],
      [1.5 * 2 ** 30, 150, null, 33, true],
    );
  });

  it('reports a user name that %i leaves empty as an error, keeping the default', () => {
    const u = unit('a@.service', '[Service]\nExecStart=/bin/a\nUser=%i\n');
    assert.equal(u.service!.user, null);
    assert.match(errors(u)[0].message, /Invalid user\/group name/);
  });

  it('resets lists on an empty assignment, but not dependencies (as systemd)', () => {
    const u = unit(
      'a.service',
      `[Unit]
Documentation=man:a(8)
Documentation=
Documentation=https://example.com/a
After=x.service
After=
After=y.service
ConditionPathExists=/a
ConditionPathExists=
ConditionPathExists=!/b
AssertPathExists=/c
[Service]
Type=oneshot
ExecStart=/bin/a
ExecStart=
ExecStart=/bin/b
ExecStart=/bin/c
SuccessExitStatus=1
SuccessExitStatus=
`,
    );
    assert.deepEqual(u.documentation, ['https://example.com/a']);
    assert.deepEqual(u.deps.after, ['x.service', 'y.service']);
    assert.deepEqual(
      u.conditions.map((c) => [c.kind, c.assert, c.negate, c.value]),
      [
        ['PathExists', false, true, '/b'],
        ['PathExists', true, false, '/c'],
      ],
    );
    assert.deepEqual(
      u.service!.execStart.map((c) => c.path),
      ['/bin/b', '/bin/c'],
    );
    assert.deepEqual(u.service!.successExitStatus, { codes: [], signals: [] });
    assert.deepEqual(u.diagnostics, []);
  });

  it('parses condition prefixes and expands specifiers in them', () => {
    const u = unit(
      'pg@main.service',
      '[Unit]\nConditionPathExists=|!/etc/%i.conf\nConditionACPower=true\n' +
        'ConditionHost=| node1\n[Service]\nExecStart=/bin/a\n',
    );
    assert.deepEqual(
      u.conditions.map((c) => [c.kind, c.trigger, c.negate, c.value, c.line]),
      [
        ['PathExists', true, true, '/etc/main.conf', 2],
        ['ACPower', false, false, 'true', 3],
        ['Host', true, false, 'node1', 4],
      ],
    );
    assert.deepEqual(u.diagnostics, []); // every condition kind of systemd 252 is evaluated
    const odd = unit('a.service', '[Unit]\nConditionFrobnicated=yes\n[Service]\nExecStart=/bin/a\n');
    assert.deepEqual(
      odd.diagnostics.map((d) => [d.line, d.message]),
      [[2, 'Unknown condition ConditionFrobnicated=, kept unevaluated.']],
    );
  });

  it('warns about unknown keys and sections with file and line, and about unsupported ones', () => {
    const u = unit(
      'a.service',
      '[Unit]\nFoo=1\nX-Custom=ok\n[Service]\nExecStart=/bin/a\nProtectClock=yes\n[Bogus]\nA=1\nB=2\n[X-Vendor]\nC=3\n',
    );
    assert.deepEqual(u.diagnostics, [
      {
        file: '/u/a.service',
        line: 2,
        severity: 'warning',
        message: "Unknown key name 'Foo' in section 'Unit', ignoring.",
      },
      {
        file: '/u/a.service',
        line: 6,
        severity: 'warning',
        message: 'ProtectClock= is unsupported by keel, ignoring.',
      },
      { file: '/u/a.service', line: 8, severity: 'warning', message: "Unknown section 'Bogus'. Ignoring." },
    ]);
  });

  it('reports bad values as errors with file, line and value, keeping the default', () => {
    const u = unit(
      'a.service',
      '[Service]\nExecStart=/bin/a\nRestartSec=abc\nNice=40\nRestart=sometimes\n' +
        'Environment=1BAD=x\nExecStartPre=/bin/echo "open\n',
    );
    assert.deepEqual(
      errors(u).map((d) => [d.line, d.message]),
      [
        [3, 'Failed to parse RestartSec= value, ignoring: abc'],
        [4, 'Failed to parse nice priority, ignoring: 40'],
        [5, 'Failed to parse Restart= value, ignoring: sometimes'],
        [6, 'Invalid environment assignment, ignoring: 1BAD=x'],
        [7, 'cannot parse command line "/bin/echo \\"open": unterminated quote'],
      ],
    );
    assert.deepEqual([u.service!.restartSec, u.service!.nice, u.service!.restart], [100, null, 'no']);
  });

  it('applies the ExecStart= rules of service_verify', () => {
    const two = unit('a.service', '[Service]\nExecStart=/bin/a\nExecStart=/bin/b\n');
    assert.deepEqual(
      errors(two).map((d) => [d.line, d.message]),
      [[3, 'Service has more than one ExecStart= setting, which is only allowed for Type=oneshot services. Refusing.']],
    );
    assert.deepEqual(errors(unit('a.service', '[Service]\nType=oneshot\nExecStart=/bin/a\nExecStart=/bin/b\n')), []);
    assert.equal(
      errors(unit('a.service', '[Unit]\nDescription=x\n'))[0].message,
      'Service has no ExecStart=, ExecStop=, or SuccessAction=. Refusing.',
    );
    assert.equal(
      errors(unit('a.service', '[Service]\nType=simple\nExecStop=/bin/a\n'))[0].message,
      'Service has no ExecStart= setting, which is only allowed for Type=oneshot services. Refusing.',
    );
    assert.deepEqual(
      errors(unit('a.service', '[Service]\nExecStop=/bin/a\nRemainAfterExit=yes\n')),
      [],
      'oneshot by default without ExecStart=',
    );
    assert.match(
      errors(unit('a.service', '[Service]\nType=oneshot\nExecStart=/bin/a\nRestart=always\n'))[0].message,
      /Restart= set to either always or on-success/,
    );
  });

  it('gives oneshot services no start timeout unless one is set', () => {
    assert.equal(unit('a.service', '[Service]\nType=oneshot\nExecStart=/bin/a\n').service!.timeoutStartSec, Infinity);
    assert.equal(
      unit('a.service', '[Service]\nType=oneshot\nExecStart=/bin/a\nTimeoutSec=5\n').service!.timeoutStartSec,
      5000,
    );
  });

  it('expands specifiers in dependencies, exec lines and descriptions', () => {
    const u = unit(
      'e2scrub@dev-sda1.service',
      '[Unit]\nDescription=Check %I on %H\nOnFailure=fail@%i.service\n[Service]\nExecStart=/sbin/e2scrub -t "%I"\n',
    );
    assert.equal(u.description, 'Check dev/sda1 on node1');
    assert.deepEqual(u.deps.onFailure, ['fail@dev-sda1.service']);
    assert.deepEqual(u.service!.execStart[0].argv, ['/sbin/e2scrub', '-t', 'dev/sda1']);
    assert.match(
      errors(unit('a.service', '[Unit]\nAfter=%z.service\n[Service]\nExecStart=/bin/a\n'))[0].message,
      /unknown specifier %z/,
    );
  });

  it('types timers, sockets, mounts and paths with their defaults and refusals', () => {
    const t = unit(
      'fstrim.timer',
      '[Timer]\nOnCalendar=weekly\nOnBootSec=15min\nAccuracySec=1h\nPersistent=true\nRandomizedDelaySec=6000\n',
    );
    assert.deepEqual(t.timer, {
      onBootSec: [900_000],
      onStartupSec: [],
      onActiveSec: [],
      onUnitActiveSec: [],
      onUnitInactiveSec: [],
      onCalendar: ['weekly'],
      persistent: true,
      randomizedDelaySec: 6_000_000,
      accuracySec: 3_600_000,
      unit: 'fstrim.service',
    });
    assert.equal(
      errors(unit('a.timer', '[Timer]\nOnCalendar=daily\nOnCalendar=\n'))[0].message,
      'Timer unit lacks value setting. Refusing.',
    );
    const s = unit('dbus.socket', '[Socket]\nListenStream=/run/dbus/system_bus_socket\nSocketMode=0600\n');
    assert.deepEqual(s.socket, {
      listenStream: ['/run/dbus/system_bus_socket'],
      listenDatagram: [],
      socketMode: 0o600,
      accept: false,
      service: 'dbus.service',
    });
    assert.match(errors(unit('a.socket', '[Socket]\nAccept=yes\n'))[0].message, /no Listen setting/);
    assert.equal(unit('sshd.socket', '[Socket]\nListenStream=22\nAccept=yes\n').socket!.service, 'sshd@.service');
    const m = unit('run-qemu.mount', '[Mount]\nWhat=tmpfs\nWhere=/run/qemu\nType=tmpfs\nOptions=mode=0755\n');
    assert.deepEqual(m.mount, { what: 'tmpfs', where: '/run/qemu', type: 'tmpfs', options: 'mode=0755' });
    assert.equal(
      errors(unit('run-x.mount', '[Mount]\nWhat=tmpfs\nWhere=/run/y\n'))[0].message,
      "Where= setting doesn't match unit name. Refusing.",
    );
    const p = unit('a.path', '[Path]\nDirectoryNotEmpty=/run/x\nUnit=b.service\n');
    assert.deepEqual(p.path, { pathExists: [], pathChanged: [], directoryNotEmpty: ['/run/x'], unit: 'b.service' });
    assert.equal(
      errors(unit('a.path', '[Path]\nUnit=b.service\n'))[0].message,
      'Path unit lacks path setting. Refusing.',
    );
  });

  it('reads [Install] with specifiers', () => {
    const u = unit(
      'pg_dump@main.timer',
      '[Timer]\nOnCalendar=weekly\n[Install]\nWantedBy=postgresql@%i.service\n' +
        'Alias=x.timer\nAlso=y.service\nDefaultInstance=tty1\n',
    );
    assert.deepEqual(u.install, {
      wantedBy: ['postgresql@main.service'],
      requiredBy: [],
      alias: ['x.timer'],
      also: ['y.service'],
      defaultInstance: 'tty1',
    });
  });
});
