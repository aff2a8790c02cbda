// Unit names and systemd-escape: expected strings are the output of systemd-escape 252.
import assert from 'node:assert/strict';
import {
  escapePath,
  escapeUnitName,
  instantiate,
  isValidUnitName,
  splitUnitName,
  templateOf,
  unescapePath,
  unescapeUnitName,
  unitType,
} from '../../units/names.js';

describe('units/names', () => {
  it('knows types, templates and instances', () => {
    assert.equal(unitType('foo.timer'), 'timer');
    assert.equal(unitType('dev-sda.device'), null, 'a systemd type keel does not load');
    assert.equal(unitType('foo'), null);
    assert.deepEqual(splitUnitName('foo@bar.service'), {
      prefix: 'foo',
      instance: 'bar',
      suffix: 'service',
      template: false,
    });
    assert.deepEqual(splitUnitName('foo@.service'), {
      prefix: 'foo',
      instance: null,
      suffix: 'service',
      template: true,
    });
    assert.equal(templateOf('foo@bar.service'), 'foo@.service');
    assert.equal(templateOf('foo@.service'), null);
    assert.equal(templateOf('foo.service'), null);
    assert.equal(instantiate('getty@.service', 'tty1'), 'getty@tty1.service');
    assert.throws(() => instantiate('getty.service', 'tty1'), TypeError);
  });

  it('validates names as unit_name_is_valid does', () => {
    for (const ok of [
      'a.service',
      'a@.service',
      'a@b@c.service',
      'system-systemd\\x2dcryptsetup.slice',
      '-.mount',
      'a:b_c.d.target',
    ]) {
      assert.ok(isValidUnitName(ok), ok);
    }
    for (const bad of [
      '',
      'a',
      '.service',
      '@a.service',
      'a.foo',
      'a b.service',
      'ä.service',
      `${'a'.repeat(250)}.service`,
    ]) {
      assert.ok(!isValidUnitName(bad), bad);
    }
  });

  const ESCAPES: [string, string][] = [
    ['foo-bar/baz', 'foo\\x2dbar-baz'],
    ['.hidden x/ä', '\\x2ehidden\\x20x-\\xc3\\xa4'],
    ['a:b_c.d', 'a:b_c.d'],
    ['/a', '-a'],
    ['', ''],
    ['back\\slash', 'back\\x5cslash'],
  ];
  for (const [plain, escaped] of ESCAPES) {
    it(`systemd-escape ${JSON.stringify(plain)} → ${escaped}, and back`, () => {
      assert.equal(escapeUnitName(plain), escaped);
      assert.equal(unescapeUnitName(escaped), plain);
    });
  }

  const PATHS: [string, string, string][] = [
    // input, systemd-escape --path, systemd-escape --path -u of that
    ['/foo-bar/baz/', 'foo\\x2dbar-baz', '/foo-bar/baz'],
    ['/', '-', '/'],
    ['//a//b', 'a-b', '/a/b'],
    ['/dev/disk/by-uuid/1234', 'dev-disk-by\\x2duuid-1234', '/dev/disk/by-uuid/1234'],
    ['/.a/.b', '\\x2ea-.b', '/.a/.b'],
  ];
  for (const [input, escaped, back] of PATHS) {
    it(`systemd-escape --path ${input} → ${escaped} → ${back}`, () => {
      assert.equal(escapePath(input), escaped);
      assert.equal(unescapePath(escaped), back);
    });
  }

  it('refuses what systemd-escape refuses', () => {
    assert.throws(() => escapePath('/a/../b'), /cannot escape path/);
    assert.throws(() => unescapePath(''), TypeError);
    assert.throws(() => unescapePath('a-'), /leading or trailing slash/);
    assert.throws(() => unescapeUnitName('a\\x2'), /bad escape/);
  });
});
