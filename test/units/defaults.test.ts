// Implicit and default dependencies per unit type, the target ordering rule and RequiresMountsFor=.
import assert from 'node:assert/strict';
import { withDefaultDependencies } from '../../units/defaults.js';
import type { MountConfig, UnitConfig } from '../../units/types.js';
import { unit } from './unit-fixture.js';

const mount = (name: string, m: Partial<MountConfig>, extra: Partial<UnitConfig> = {}) =>
  unit(name, {}, { mount: { what: '/dev/vdb1', where: '/', type: 'ext4', options: null, ...m }, ...extra });
const timer = (name: string, onCalendar: string[] = []) =>
  unit(
    name,
    {},
    {
      timer: {
        onBootSec: [],
        onStartupSec: [],
        onActiveSec: [],
        onUnitActiveSec: [],
        onUnitInactiveSec: [],
        onCalendar,
        persistent: false,
        randomizedDelaySec: 0,
        accuracySec: 60_000,
        unit: '',
      },
    },
  );
/** Runs the loader step and returns the deps of `name`, lists sorted. */
function depsOf(name: string, ...us: UnitConfig[]): Record<string, string[]> {
  const out = withDefaultDependencies(new Map(us.map((u) => [u.name, u])));
  const d = out.get(name)!.deps;
  return Object.fromEntries(
    Object.entries(d)
      .filter(([, v]) => Array.isArray(v) && v.length)
      .map(([k, v]) => [k, [...v].sort()]),
  );
}

describe('units/defaults', () => {
  it('gives a service Requires=/After= sysinit.target, After= basic.target, Conflicts=/Before= shutdown.target', () => {
    assert.deepEqual(depsOf('a.service', unit('a.service', { after: ['x.service'] })), {
      requires: ['sysinit.target'],
      after: ['basic.target', 'sysinit.target', 'x.service'],
      before: ['shutdown.target'],
      conflicts: ['shutdown.target'],
    });
  });

  it('adds nothing for DefaultDependencies=no', () => {
    assert.deepEqual(depsOf('a.service', unit('a.service', { wants: ['b.service'] }, { defaultDependencies: false })), {
      wants: ['b.service'],
    });
  });

  it(
    'orders a target after what it wants or requires, unless that unit ' +
      'opts out or ordered itself after the target',
    () => {
      const d = depsOf(
        'multi-user.target',
        unit('multi-user.target', {
          wants: ['foo.service', 'early.service', 'late.service'],
          requires: ['basic.target'],
          wantedByLinks: ['linked.service'],
        }),
        unit('foo.service'),
        unit('basic.target'),
        unit('linked.service'),
        unit('early.service', {}, { defaultDependencies: false }),
        unit('late.service', { after: ['multi-user.target'] }),
      );
      assert.deepEqual(d.after, ['basic.target', 'foo.service', 'linked.service']);
      assert.deepEqual(d.conflicts, ['shutdown.target']);
      assert.deepEqual(d.before, ['shutdown.target']);
      assert.equal(d.requires.length, 1);
    },
  );

  it('does not order a target after units when it has DefaultDependencies=no itself', () => {
    assert.deepEqual(
      depsOf(
        't.target',
        unit('t.target', { wants: ['foo.service'] }, { defaultDependencies: false }),
        unit('foo.service'),
      ),
      { wants: ['foo.service'] },
    );
  });

  it(
    'gives a timer Before= timers.target and its service, and After= ' + 'time-set/time-sync.target for OnCalendar=',
    () => {
      assert.deepEqual(depsOf('foo.timer', timer('foo.timer')), {
        requires: ['sysinit.target'],
        after: ['sysinit.target'],
        conflicts: ['shutdown.target'],
        before: ['foo.service', 'shutdown.target', 'timers.target'],
      });
      assert.deepEqual(depsOf('cal@x.timer', timer('cal@x.timer', ['daily'])).after, [
        'sysinit.target',
        'time-set.target',
        'time-sync.target',
      ]);
      assert.deepEqual(depsOf('cal@x.timer', timer('cal@x.timer', ['daily'])).before, [
        'cal@x.service',
        'shutdown.target',
        'timers.target',
      ]);
    },
  );

  it('gives a socket Before= sockets.target and its service, and the mounts of its socket path', () => {
    const sock = unit(
      'web.socket',
      {},
      {
        socket: {
          listenStream: ['/var/run/web.sock', '8080'],
          listenDatagram: [],
          socketMode: 0o666,
          accept: false,
          service: 'httpd.service',
        },
      },
    );
    assert.deepEqual(depsOf('web.socket', sock, mount('var.mount', { where: '/var' })), {
      requires: ['sysinit.target', 'var.mount'],
      after: ['sysinit.target', 'var.mount'],
      conflicts: ['shutdown.target'],
      before: ['httpd.service', 'shutdown.target', 'sockets.target'],
    });
  });

  it('gives a path unit Before= paths.target and the unit it activates', () => {
    const p = unit(
      'spool.path',
      {},
      { path: { pathExists: [], pathChanged: ['/etc/spool'], directoryNotEmpty: [], unit: '' } },
    );
    assert.deepEqual(depsOf('spool.path', p).before, ['paths.target', 'shutdown.target', 'spool.service']);
  });

  it(
    'orders a local mount before local-fs.target and after its parent ' +
      'mount, a network one around remote-fs.target',
    () => {
      const parent = mount('var.mount', { where: '/var' });
      assert.deepEqual(depsOf('var-lib.mount', mount('var-lib.mount', { where: '/var/lib' }), parent), {
        requires: ['var.mount'],
        after: ['local-fs-pre.target', 'var.mount'],
        before: ['local-fs.target', 'umount.target'],
        conflicts: ['umount.target'],
      });
      assert.deepEqual(depsOf('data.mount', mount('data.mount', { where: '/data', options: 'rw,nofail' })).before, [
        'umount.target',
      ]);
      assert.deepEqual(depsOf('nfs.mount', mount('nfs.mount', { where: '/nfs', what: 'srv:/x', type: 'nfs' })), {
        wants: ['network-online.target'],
        after: ['network-online.target', 'network.target', 'remote-fs-pre.target'],
        before: ['remote-fs.target', 'umount.target'],
        conflicts: ['umount.target'],
      });
      assert.deepEqual(depsOf('-.mount', mount('-.mount', { where: '/' })), {});
    },
  );

  it('turns RequiresMountsFor= and WorkingDirectory= into Requires=/After= on the mount units that exist', () => {
    const svc = unit(
      'db.service',
      {},
      {
        defaultDependencies: false,
        requiresMountsFor: ['/var/lib/db'],
        service: { workingDirectory: '-/srv/my-app' } as UnitConfig['service'],
      },
    );
    const d = depsOf(
      'db.service',
      svc,
      mount('var.mount', { where: '/var' }),
      mount('var-lib.mount', { where: '/var/lib' }),
      mount('srv-my\\x2dapp.mount', { where: '/srv/my-app' }),
      mount('-.mount', { where: '/' }),
    );
    assert.deepEqual(d, {
      requires: ['-.mount', 'srv-my\\x2dapp.mount', 'var-lib.mount', 'var.mount'],
      after: ['-.mount', 'srv-my\\x2dapp.mount', 'var-lib.mount', 'var.mount'],
    });
  });

  it('orders an automount before its mount and local-fs.target, after its parent mount', () => {
    assert.deepEqual(
      depsOf('var-lib-nfs.automount', unit('var-lib-nfs.automount'), mount('var.mount', { where: '/var' })),
      {
        requires: ['var.mount'],
        after: ['local-fs-pre.target', 'var.mount'],
        conflicts: ['umount.target'],
        before: ['local-fs.target', 'umount.target', 'var-lib-nfs.mount'],
      },
    );
  });

  it('ties a slice to its parent slice', () => {
    assert.deepEqual(depsOf('a-b.slice', unit('a-b.slice'), unit('a.slice')).requires, ['a.slice']);
  });

  it('leaves the input untouched and keeps aliases sharing one unit', () => {
    const a = unit('a.service');
    const input = new Map([
      ['a.service', a],
      ['alias.service', a],
    ]);
    const out = withDefaultDependencies(input);
    assert.deepEqual(a.deps.requires, []);
    assert.equal(out.get('a.service'), out.get('alias.service'));
    assert.deepEqual(out.get('alias.service')!.deps.requires, ['sysinit.target']);
  });
});
