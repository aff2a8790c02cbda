// The loader over an in-memory tree: search-path priority, drop-in order and overrides, masks,
// aliases, templates and .wants/.requires links, as systemd 252 resolves them.
import assert from 'node:assert/strict';
import { UnitLoadError, loadAll, loadUnit } from '../../units/load.js';
import { fakeFs, type Tree } from './fake-fs.js';

const ETC = '/etc/systemd/system';
const RUN = '/run/systemd/system';
const USR = '/usr/lib/systemd/system';
const svc = (exec: string, extra = '') => `[Unit]\nDescription=${exec}\n[Service]\nExecStart=${exec}\n${extra}`;
const env = (u: { service?: { environment: [string, string][] } }) => Object.fromEntries(u.service!.environment);

describe('units/load', () => {
  it('takes the main file from the highest-priority directory', () => {
    const fs = fakeFs({ [`${USR}/foo.service`]: svc('/bin/usr'), [`${ETC}/foo.service`]: svc('/bin/etc') });
    const u = loadUnit('foo.service', fs);
    assert.equal(u.fragmentPath, `${ETC}/foo.service`);
    assert.equal(u.service!.execStart[0].path, '/bin/etc');
  });

  it('merges drop-ins by file name across directories: etc overrides usr, lexical order, /dev/null masks', () => {
    const fs = fakeFs({
      [`${USR}/foo.service`]: svc('/bin/foo'),
      [`${USR}/foo.service.d/10-a.conf`]: '[Service]\nEnvironment=A=usr ORDER=usr10\n',
      [`${ETC}/foo.service.d/10-a.conf`]: '[Service]\nEnvironment=A=etc ORDER=etc10\n',
      [`${USR}/foo.service.d/20-b.conf`]: '[Service]\nEnvironment=B=usr ORDER=usr20\n',
      [`${RUN}/foo.service.d/05-c.conf`]: '[Service]\nEnvironment=C=run ORDER=run05\n',
      [`${USR}/foo.service.d/30-masked.conf`]: '[Service]\nEnvironment=M=usr\n',
      [`${ETC}/foo.service.d/30-masked.conf`]: { link: '/dev/null' },
      [`${USR}/foo.service.d/README`]: 'not a .conf file',
      [`${USR}/service.d/01-all.conf`]: '[Service]\nEnvironment=ALL=1\n',
      [`${USR}/service.d/10-a.conf`]: '[Service]\nEnvironment=SHADOWED=1\n',
    });
    const u = loadUnit('foo.service', fs);
    assert.deepEqual(u.dropInPaths, [
      `${USR}/service.d/01-all.conf`,
      `${RUN}/foo.service.d/05-c.conf`,
      `${ETC}/foo.service.d/10-a.conf`,
      `${USR}/foo.service.d/20-b.conf`,
    ]);
    assert.deepEqual(env(u), { ALL: '1', C: 'run', ORDER: 'usr20', A: 'etc', B: 'usr' });
  });

  it('applies an empty assignment in a drop-in as a reset', () => {
    const fs = fakeFs({
      [`${USR}/foo.service`]: svc('/bin/old', 'Environment=X=1\n'),
      [`${ETC}/foo.service.d/override.conf`]: '[Service]\nExecStart=\nExecStart=/bin/new\nEnvironment=\n',
    });
    const u = loadUnit('foo.service', fs);
    assert.deepEqual(
      u.service!.execStart.map((c) => c.path),
      ['/bin/new'],
    );
    assert.deepEqual(u.service!.environment, []);
  });

  it('masks through /dev/null in a higher directory, or an empty file, but not from a lower one', () => {
    const fs = fakeFs({
      [`${USR}/a.service`]: svc('/bin/a'),
      [`${ETC}/a.service`]: { link: '/dev/null' },
      [`${USR}/b.service`]: { link: '/dev/null' },
      [`${ETC}/b.service`]: svc('/bin/b'),
      [`${USR}/c.service`]: '',
    });
    assert.equal(loadUnit('a.service', fs).masked, true);
    assert.equal(loadUnit('b.service', fs).masked, false);
    assert.equal(loadUnit('c.service', fs).masked, true);
    assert.deepEqual(loadUnit('a.service', fs).diagnostics, []);
  });

  it('resolves an alias symlink to the real unit, with the alias drop-ins', () => {
    const fs = fakeFs({
      [`${USR}/foo.service`]: svc('/bin/foo'),
      [`${ETC}/bar.service`]: { link: `${USR}/foo.service` },
      [`${ETC}/bar.service.d/x.conf`]: '[Service]\nEnvironment=VIA=alias\n',
      [`${ETC}/bad.socket`]: { link: `${USR}/foo.service` }, // a different type is no alias
    });
    const u = loadUnit('bar.service', fs);
    assert.equal(u.name, 'foo.service');
    assert.deepEqual(u.aliases, ['bar.service']);
    assert.deepEqual(env(u), { VIA: 'alias' });
    assert.deepEqual(loadUnit('foo.service', fs).aliases, ['bar.service']);
    assert.throws(
      () => loadUnit('bad.socket', fs),
      (e: UnitLoadError) => e.code === 'not-found',
    );
  });

  it('falls back from an instance to its template, with both drop-in directories and dash prefixes', () => {
    const fs = fakeFs({
      [`${USR}/getty@.service`]:
        '[Unit]\nDescription=Getty on %I\n[Service]\nExecStart=/sbin/agetty %I\nTTYPath=/dev/%I\n',
      [`${USR}/getty@.service.d/a.conf`]: '[Service]\nEnvironment=T=template\n',
      [`${ETC}/getty@tty1.service.d/b.conf`]: '[Service]\nEnvironment=I=%i\n',
      [`${USR}/user-.slice.d/10-defaults.conf`]: '[Unit]\nDescription=User Slice of UID %j\n',
    });
    const u = loadUnit('getty@tty1.service', fs);
    assert.equal(u.name, 'getty@tty1.service');
    assert.equal(u.fragmentPath, `${USR}/getty@.service`);
    assert.equal(u.description, 'Getty on tty1');
    assert.equal(u.service!.ttyPath, '/dev/tty1');
    assert.deepEqual(env(u), { I: 'tty1', T: 'template' });
    const slice = loadUnit('user-1000.slice', fs);
    assert.equal(slice.fragmentPath, null);
    assert.equal(slice.description, 'User Slice of UID 1000');
  });

  it('adds Wants=/Requires= from .wants/ and .requires/ symlinks', () => {
    const tree: Tree = {
      [`${USR}/multi-user.target`]: '[Unit]\nDescription=Multi-User\n',
      [`${USR}/foo.service`]: svc('/bin/foo'),
      [`${USR}/getty@.service`]: svc('/sbin/agetty %I'),
      [`${ETC}/multi-user.target.wants/foo.service`]: { link: `${USR}/foo.service` },
      [`${ETC}/multi-user.target.wants/getty@tty1.service`]: { link: `${USR}/getty@.service` },
      [`${ETC}/multi-user.target.wants/plain.service`]: 'not a link',
      [`${USR}/multi-user.target.requires/bar.service`]: { link: '../bar.service' },
      [`${ETC}/multi-user.target.wants/masked.service`]: { link: '/dev/null' },
    };
    const u = loadUnit('multi-user.target', fakeFs(tree));
    assert.deepEqual(u.deps.wants, ['foo.service', 'getty@tty1.service']);
    assert.deepEqual(u.deps.requires, ['bar.service']);
    assert.deepEqual(u.deps.wantedByLinks, ['foo.service', 'getty@tty1.service', 'bar.service']);
    assert.match(u.diagnostics[0].message, /plain.service is not a symlink, ignoring/);

    const all = loadAll(fakeFs(tree));
    assert.deepEqual(
      [...all.keys()],
      ['foo.service', 'getty@tty1.service', 'multi-user.target'],
      'templates and missing units left out',
    );
  });

  it('throws UnitLoadError for names nothing provides and invalid names', () => {
    const fs = fakeFs({ [`${USR}/foo.service`]: svc('/bin/foo') });
    assert.throws(
      () => loadUnit('nope.service', fs),
      (e: UnitLoadError) => e.code === 'not-found' && /cannot load unit nope.service/.test(e.message),
    );
    assert.throws(
      () => loadUnit('nope', fs),
      (e: UnitLoadError) => e.code === 'bad-name',
    );
  });

  it('honours a configured search path', () => {
    const fs = fakeFs({ '/a/x.service': svc('/bin/a'), '/b/x.service': svc('/bin/b') });
    assert.equal(loadUnit('x.service', fs, { searchPaths: ['/b', '/a'] }).fragmentPath, '/b/x.service');
  });
});
