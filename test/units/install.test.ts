// enable/disable links and is-enabled states, as systemctl computes them, against listed symlinks.
import assert from 'node:assert/strict';
import { disableLinks, enableLinks, InstallError, isEnabled, type UnitLink } from '../../units/install.js';
import type { InstallConfig, UnitConfig, UnitType } from '../../units/types.js';

const ETC = '/etc/systemd/system';
const LIB = '/usr/lib/systemd/system';

/** A unit file in /usr/lib/systemd/system with the given [Install] section. */
function unit(name: string, install: Partial<InstallConfig> = {}, extra: Partial<UnitConfig> = {}): UnitConfig {
  return {
    name,
    type: name.slice(name.lastIndexOf('.') + 1) as UnitType,
    fragmentPath: `${LIB}/${name}`,
    dropInPaths: [],
    masked: false,
    aliases: [],
    description: name,
    documentation: [],
    deps: {
      requires: [],
      requisite: [],
      wants: [],
      bindsTo: [],
      partOf: [],
      conflicts: [],
      after: [],
      before: [],
      onFailure: [],
    },
    defaultDependencies: true,
    requiresMountsFor: [],
    startLimitIntervalMs: 10_000,
    startLimitBurst: 5,
    conditions: [],
    install: { wantedBy: [], requiredBy: [], alias: [], also: [], defaultInstance: null, ...install },
    diagnostics: [],
    ...extra,
  };
}
/** Finds units by name; an instance loads from its template's file, as the loader does. */
function lookupOf(...us: UnitConfig[]) {
  const m = new Map(us.map((u) => [u.name, u]));
  return (name: string): UnitConfig | undefined => {
    const template = m.get(name.replace(/@[^.]+\./, '@.'));
    return m.get(name) ?? (template && { ...template, name });
  };
}
const link = (path: string, target: string): UnitLink => ({ path, target });

describe('units/install', () => {
  const web = unit('web.service', {
    wantedBy: ['multi-user.target'],
    requiredBy: ['app.target'],
    alias: ['httpd.service'],
    also: ['web.socket'],
  });
  const sock = unit('web.socket', { wantedBy: ['sockets.target'] });
  const getty = unit('getty@.service', {
    wantedBy: ['getty.target'],
    defaultInstance: 'tty1',
    alias: ['console@.service'],
  });
  const lookup = lookupOf(web, sock, getty, unit('plain.service'), unit('also-only.service', { also: ['web.socket'] }));

  describe('enableLinks', () => {
    it('links WantedBy=, RequiredBy=, Alias= and the units named by Also=', () => {
      assert.deepEqual(enableLinks(web, { configDir: ETC }, lookup).links, [
        link(`${ETC}/multi-user.target.wants/web.service`, `${LIB}/web.service`),
        link(`${ETC}/app.target.requires/web.service`, `${LIB}/web.service`),
        link(`${ETC}/httpd.service`, `${LIB}/web.service`),
        link(`${ETC}/sockets.target.wants/web.socket`, `${LIB}/web.socket`),
      ]);
    });

    it('enables a template as its DefaultInstance= (or the instance given), linking to the template file', () => {
      assert.deepEqual(enableLinks(getty, { configDir: ETC }, lookup).links, [
        link(`${ETC}/getty.target.wants/getty@tty1.service`, `${LIB}/getty@.service`),
        link(`${ETC}/console@tty1.service`, `${LIB}/getty@.service`),
      ]);
      assert.deepEqual(
        enableLinks(getty, { configDir: ETC, instance: 'ttyS0' }, lookup).links[0],
        link(`${ETC}/getty.target.wants/getty@ttyS0.service`, `${LIB}/getty@.service`),
      );
    });

    it('refuses a template without an instance, a masked unit and a missing Also= unit', () => {
      const t = unit('t@.service', { wantedBy: ['multi-user.target'] });
      assert.throws(
        () => enableLinks(t, { configDir: ETC }, lookup),
        (e) => e instanceof InstallError && e.code === 'no-instance',
      );
      assert.throws(
        () => enableLinks(unit('m.service', {}, { masked: true }), { configDir: ETC }, lookup),
        (e) => e instanceof InstallError && e.code === 'masked',
      );
      assert.throws(
        () => enableLinks(unit('x.service', { also: ['gone.service'] }), { configDir: ETC }, lookup),
        (e) => e instanceof InstallError && e.code === 'not-found' && e.unit === 'gone.service',
      );
    });

    it('expands %i and %p in [Install] values', () => {
      const u = unit('vpn@.service', { wantedBy: ['vpn-%i.target'], defaultInstance: 'home' });
      assert.equal(
        enableLinks(u, { configDir: ETC }, lookup).links[0].path,
        `${ETC}/vpn-home.target.wants/vpn@home.service`,
      );
    });
  });

  describe('disableLinks', () => {
    const existing = [
      link(`${ETC}/multi-user.target.wants/web.service`, `${LIB}/web.service`),
      link(`${ETC}/custom.target.wants/web.service`, `${LIB}/web.service`),
      link(`${ETC}/httpd.service`, `${LIB}/web.service`),
      link(`${ETC}/www.service`, `${LIB}/web.service`),
      link(`${ETC}/sockets.target.wants/web.socket`, `${LIB}/web.socket`),
      link(`${ETC}/multi-user.target.wants/other.service`, `${LIB}/other.service`),
      link(`${ETC}/web-extra.service`, '/dev/null'),
      link(`/usr/lib/systemd/system/multi-user.target.wants/web.service`, `${LIB}/web.service`),
      link(`${ETC}/getty.target.wants/getty@tty1.service`, `${LIB}/getty@.service`),
      link(`${ETC}/getty.target.wants/getty@tty2.service`, `${LIB}/getty@.service`),
    ];

    it(
      'removes every link in the config dir naming the unit, its ' + 'aliases or its file, and those of Also= units',
      () => {
        assert.deepEqual(
          disableLinks(web, { configDir: ETC }, existing, lookup),
          existing.slice(0, 5).map((l) => l.path),
        );
      },
    );

    it('removes all instances for a template, one instance for an instance', () => {
      assert.deepEqual(
        disableLinks(getty, { configDir: ETC }, existing, lookup),
        existing.slice(8).map((l) => l.path),
      );
      assert.deepEqual(disableLinks(lookup('getty@tty2.service')!, { configDir: ETC }, existing, lookup), [
        existing[9].path,
      ]);
    });
  });

  describe('isEnabled', () => {
    it('reports enabled, disabled and static', () => {
      const links = [link(`${ETC}/multi-user.target.wants/web.service`, `${LIB}/web.service`)];
      assert.equal(isEnabled('web.service', links, lookup), 'enabled');
      assert.equal(isEnabled('web.service', [], lookup), 'disabled');
      assert.equal(isEnabled('plain.service', [], lookup), 'static');
      assert.equal(
        isEnabled('plain.service', [link(`${ETC}/x.target.wants/plain.service`, `${LIB}/plain.service`)], lookup),
        'enabled',
      );
    });

    it('reports masked and alias', () => {
      assert.equal(isEnabled('web.service', [link(`${ETC}/web.service`, '/dev/null')], lookup), 'masked');
      assert.equal(isEnabled('httpd.service', [link(`${ETC}/httpd.service`, `${LIB}/web.service`)], lookup), 'alias');
      assert.equal(isEnabled('web.service', [link(`${ETC}/httpd.service`, `${LIB}/web.service`)], lookup), 'enabled');
    });

    it('reports indirect for Also=-only units, other template instances and stray aliases', () => {
      assert.equal(isEnabled('also-only.service', [], lookup), 'indirect');
      assert.equal(
        isEnabled(
          'getty@.service',
          [link(`${ETC}/getty.target.wants/getty@tty2.service`, `${LIB}/getty@.service`)],
          lookup,
        ),
        'indirect',
      );
      assert.equal(
        isEnabled(
          'getty@.service',
          [link(`${ETC}/getty.target.wants/getty@tty1.service`, `${LIB}/getty@.service`)],
          lookup,
        ),
        'enabled',
      );
      assert.equal(isEnabled('web.service', [link(`${ETC}/www.service`, `${LIB}/web.service`)], lookup), 'indirect');
    });

    it('throws for a unit that does not exist', () => {
      assert.throws(
        () => isEnabled('gone.service', [], lookup),
        (e) => e instanceof InstallError && e.code === 'not-found',
      );
    });
  });
});
