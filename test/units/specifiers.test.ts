// %-specifiers for the system manager, per systemd.unit(5).
import assert from 'node:assert/strict';
import { expandSpecifiers, type SpecifierContext } from '../../units/specifiers.js';

const host = { hostname: 'node1.example.com', machineId: 'c0ffee', bootId: 'b007', runtimeDir: '/run' };
const ctx = (unitName: string, extra: Partial<SpecifierContext> = {}): SpecifierContext => ({
  ...host,
  unitName,
  ...extra,
});

describe('units/specifiers', () => {
  const TABLE: [string, string, string][] = [
    // unit, text, expansion
    ['getty@tty1.service', '%n|%N|%p|%P|%i|%I|%f', 'getty@tty1.service|getty@tty1|getty|getty|tty1|tty1|/tty1'],
    [
      'systemd-fsck@dev-disk-by\\x2duuid-12.service',
      '%i|%I|%f',
      'dev-disk-by\\x2duuid-12|dev/disk/by-uuid/12|/dev/disk/by-uuid/12',
    ],
    ['foo\\x2dbar-baz.mount', '%p|%P|%f|%j|%J', 'foo\\x2dbar-baz|foo-bar/baz|/foo-bar/baz|baz|baz'],
    ['user-1000.slice', '%j|%J', '1000|1000'],
    ['foo@.service', '[%i][%I]|%p', '[][]|foo'],
    [
      'a.service',
      '%H|%l|%m|%b|%t|%T|%V|%S|%C|%L|%E',
      'node1.example.com|node1|c0ffee|b007|/run|/tmp|/var/tmp|/var/lib|/var/cache|/var/log|/etc',
    ],
    ['a.service', '%u %U %h %s %g %G', 'root 0 /root /bin/sh root 0'],
    ['a.service', '100%% sure, stray %', '100% sure, stray %'],
    ['a.service', '%d', '/run/credentials/a.service'],
  ];
  for (const [unit, text, want] of TABLE) {
    it(`${unit}: ${text}`, () => assert.equal(expandSpecifiers(text, ctx(unit)), want));
  }
  it('uses the user and host facts it is given', () => {
    const c = ctx('a.service', {
      user: { name: 'core', uid: 500, home: '/home/core' },
      kernelRelease: '6.1.0',
      architecture: 'x86-64',
      fragmentPath: '/etc/systemd/system/a.service',
    });
    assert.equal(
      expandSpecifiers('%u:%U:%h:%v:%a:%y:%Y', c),
      'core:500:/home/core:6.1.0:x86-64:/etc/systemd/system/a.service:/etc/systemd/system',
    );
  });
  it('throws a TypeError naming an unknown specifier', () => {
    assert.throws(
      () => expandSpecifiers('x%z', ctx('a.service')),
      (e: Error) => e instanceof TypeError && /unknown specifier %z/.test(e.message),
    );
  });
  it('throws when the context lacks what a specifier needs', () => {
    assert.throws(() => expandSpecifiers('%v', ctx('a.service')), /%v is not known here/);
  });
});
