// The sandbox's mount plan as data (init/sandbox.ts) and the unit settings behind it
// (units/interpret-sandbox.ts): pure, no root needed.
import assert from 'node:assert/strict';
import { needsMountNamespace, sandboxPlan, sandboxSpawnOptions } from '../../init/sandbox.js';
import { defaultSandbox } from '../../units/interpret-sandbox.js';
import { interpretUnit } from '../../units/interpret.js';
import { parseUnitText } from '../../units/parse.js';
import type { SandboxConfig } from '../../units/types.js';

const DIRS = {
  tmp: '/tmp/systemd-private-a-X/tmp',
  varTmp: '/var/tmp/systemd-private-a-Y/tmp',
  inaccessibleFile: '/run/keel/inaccessible-file',
};
const cfg = (over: Partial<SandboxConfig>): SandboxConfig => ({ ...defaultSandbox(), ...over });
const service = (text: string) => {
  const u = interpretUnit(parseUnitText(`[Service]\nExecStart=/bin/a\n${text}`, '/u/a.service').assignments, {
    hostname: 'h',
    machineId: 'm',
    bootId: 'b',
    runtimeDir: '/run',
    unitName: 'a.service',
    fragmentPath: '/u/a.service',
  });
  return u;
};

describe('init/sandbox: the mount plan', () => {
  it('plans nothing without settings', () => {
    assert.equal(needsMountNamespace(undefined), false);
    assert.equal(needsMountNamespace(cfg({ noNewPrivileges: true })), false);
    assert.deepEqual(sandboxSpawnOptions(cfg({ noNewPrivileges: true }), DIRS), { noNewPrivs: true });
  });

  it(
    'ProtectSystem=yes and full make /usr, /boot, /efi (and /etc) ' +
      'read-only, the optional ones skipped when missing',
    () => {
      assert.deepEqual(sandboxPlan(cfg({ protectSystem: 'yes' }), DIRS), [
        { op: 'readonly', target: '/boot', optional: true },
        { op: 'readonly', target: '/efi', optional: true },
        { op: 'readonly', target: '/usr' },
      ]);
      assert.ok(
        sandboxPlan(cfg({ protectSystem: 'full' }), DIRS).some((o) => o.op === 'readonly' && o.target === '/etc'),
      );
    },
  );

  it('ProtectSystem=strict clones the writable trees before / turns read-only and attaches them in path order', () => {
    const plan = sandboxPlan(
      cfg({ protectSystem: 'strict', privateTmp: true, readWritePaths: [{ path: '/var/lib/x/', optional: false }] }),
      DIRS,
    );
    assert.deepEqual(plan, [
      { op: 'clone', path: '/dev', slot: 0, optional: true },
      { op: 'clone', path: '/proc', slot: 1, optional: true },
      { op: 'clone', path: '/sys', slot: 2, optional: true },
      { op: 'clone', path: DIRS.tmp, slot: 3 },
      { op: 'clone', path: '/var/lib/x', slot: 4 },
      { op: 'clone', path: DIRS.varTmp, slot: 5 },
      { op: 'readonly', target: '/' },
      { op: 'attach', slot: 0, target: '/dev', optional: true },
      { op: 'attach', slot: 1, target: '/proc', optional: true },
      { op: 'attach', slot: 2, target: '/sys', optional: true },
      { op: 'attach', slot: 3, target: '/tmp', mkdir: 'dir' },
      { op: 'attach', slot: 4, target: '/var/lib/x' },
      { op: 'attach', slot: 5, target: '/var/tmp', mkdir: 'dir' },
    ]);
  });

  it(
    'a deeper ReadOnlyPaths= inside a ReadWritePaths= comes after it, and an ' +
      'explicit setting beats ProtectSystem= on the same path',
    () => {
      const plan = sandboxPlan(
        cfg({
          protectSystem: 'full',
          readWritePaths: [{ path: '/etc', optional: false }],
          readOnlyPaths: [{ path: '/etc/ssl', optional: true }],
        }),
        DIRS,
      );
      const body = plan.filter((o) => o.op !== 'clone').map((o) => `${o.op} ${'target' in o ? o.target : ''}`);
      assert.deepEqual(body, ['readonly /boot', 'readonly /efi', 'attach /etc', 'readonly /etc/ssl', 'readonly /usr']);
    },
  );

  it('ProtectHome= masks, binds read-only or covers with a read-only tmpfs /home, /root and /run/user', () => {
    assert.deepEqual(
      sandboxPlan(cfg({ protectHome: 'yes' }), DIRS).map((o) => [o.op, 'target' in o ? o.target : '']),
      [
        ['mask', '/home'],
        ['mask', '/root'],
        ['mask', '/run/user'],
      ],
    );
    assert.ok(sandboxPlan(cfg({ protectHome: 'read-only' }), DIRS).every((o) => o.op === 'readonly' && o.optional));
    const t = sandboxPlan(cfg({ protectHome: 'tmpfs' }), DIRS)[0];
    assert.deepEqual(t, {
      op: 'mount',
      source: 'tmpfs',
      target: '/home',
      fstype: 'tmpfs',
      flags: 1 | 2 | 4,
      data: 'mode=0755',
      optional: true,
    });
  });

  it(
    'PrivateDevices= mounts a tmpfs /dev with the host nodes, pts and shm ' +
      'attached, and drops CAP_MKNOD and CAP_SYS_RAWIO',
    () => {
      const opts = sandboxSpawnOptions(cfg({ privateDevices: true }), DIRS);
      const plan = opts.sandbox!;
      const mount = plan.findIndex((o) => o.op === 'mount' && o.target === '/dev');
      assert.ok(
        plan.slice(0, mount).every((o) => o.op === 'clone'),
        'the nodes are cloned before /dev is covered',
      );
      const attached = plan.filter((o) => o.op === 'attach').map((o) => 'target' in o && o.target);
      assert.deepEqual(attached, [
        '/dev/null',
        '/dev/zero',
        '/dev/full',
        '/dev/random',
        '/dev/urandom',
        '/dev/tty',
        '/dev/ptmx',
        '/dev/pts',
        '/dev/shm',
        '/dev/mqueue',
        '/dev/hugepages',
      ]);
      assert.ok(plan.some((o) => o.op === 'symlink' && o.target === '/dev/fd' && o.source === '/proc/self/fd'));
      assert.equal(opts.capabilities! & (1n << 27n), 0n);
      assert.equal(opts.capabilities! & (1n << 17n), 0n);
      assert.equal(opts.capabilities! | (1n << 27n) | (1n << 17n), (1n << 64n) - 1n);
    },
  );

  it('PrivateTmp= needs its directories', () => {
    assert.throws(
      () => sandboxPlan(cfg({ privateTmp: true }), { tmp: null, varTmp: null, inaccessibleFile: '' }),
      /cannot plan PrivateTmp=/,
    );
  });
});

describe('units/interpret-sandbox: the settings', () => {
  it('reads booleans, the named levels, path lists with "-" and the old *Directories= names', () => {
    const u = service(
      'PrivateTmp=yes\nPrivateDevices=true\nProtectSystem=strict\nProtectHome=read-only\nNoNewPrivileges=1\n' +
        'ReadWritePaths=/var/lib/a -/var/lib/b\nReadOnlyDirectories=/srv//x/\nInaccessiblePaths=-/secret\n',
    );
    assert.deepEqual(u.diagnostics, []);
    assert.deepEqual(u.service!.sandbox, {
      privateTmp: true,
      privateDevices: true,
      protectSystem: 'strict',
      protectHome: 'read-only',
      noNewPrivileges: true,
      readWritePaths: [
        { path: '/var/lib/a', optional: false },
        { path: '/var/lib/b', optional: true },
      ],
      readOnlyPaths: [{ path: '/srv/x', optional: false }],
      inaccessiblePaths: [{ path: '/secret', optional: true }],
    });
    assert.equal(service('').service!.sandbox, undefined);
  });

  it(
    'ProtectSystem=no and ProtectHome=false turn them off; an empty path ' +
      'list resets it; bad values are errors with the line',
    () => {
      const u = service(
        'ProtectSystem=full\nProtectSystem=no\nProtectHome=false\nReadOnlyPaths=/a\n' +
          'ReadOnlyPaths=\nProtectSystem=sometimes\nReadWritePaths=relative\n',
      );
      const s = u.service!.sandbox!;
      assert.deepEqual([s.protectSystem, s.protectHome, s.readOnlyPaths], ['no', 'no', []]);
      assert.deepEqual(
        u.diagnostics.map((d) => [d.line, d.severity, d.message]),
        [
          [8, 'error', 'Failed to parse ProtectSystem= value, ignoring: sometimes'],
          [9, 'error', 'Not an absolute path, ignoring: relative'],
        ],
      );
    },
  );
});
