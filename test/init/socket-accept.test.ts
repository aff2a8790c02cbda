// Accept=yes sockets (one service instance per connection, named as systemd 252 names them),
// StandardInput=socket, and SocketUser=/SocketGroup=/SocketMode=/DirectoryMode= on the socket file.
import assert from 'node:assert/strict';
import { rmSync, statSync } from 'node:fs';
import { connect, type Socket } from 'node:net';
import { instanceName } from '../../init/socket-accept.js';
import { interpretUnit } from '../../units/interpret.js';
import { parseUnitText } from '../../units/parse.js';
import { ContainedInit, testTarget } from './contained-init.js';
import { describeAsRoot } from '../needs.js';

const base = { fd: 9, localPort: 0, remotePort: 0, localAddress: '', remoteAddress: '' };

describe('init/socket-accept: instance names', () => {
  it('names IP connections NR-LOCAL:PORT-REMOTE:PORT, dual-stack IPv4 as IPv4, unix ones NR-PID-UID', () => {
    assert.equal(
      instanceName(
        0,
        {
          ...base,
          family: 'inet',
          localAddress: '127.0.0.1',
          localPort: 22,
          remoteAddress: '127.0.0.2',
          remotePort: 5000,
        },
        null,
      ),
      '0-127.0.0.1:22-127.0.0.2:5000',
    );
    assert.equal(
      instanceName(
        3,
        {
          ...base,
          family: 'inet6',
          localAddress: '::ffff:10.0.0.1',
          localPort: 80,
          remoteAddress: '::ffff:10.0.0.9',
          remotePort: 6000,
        },
        null,
      ),
      '3-10.0.0.1:80-10.0.0.9:6000',
    );
    assert.equal(
      instanceName(
        1,
        { ...base, family: 'inet6', localAddress: '::1', localPort: 80, remoteAddress: '::1', remotePort: 7 },
        null,
      ),
      '1-::1:80-::1:7',
    );
    assert.equal(instanceName(2, { ...base, family: 'unix' }, { pid: 42, uid: 1000 }), '2-42-1000');
    assert.equal(instanceName(2, { ...base, family: 'unix' }, null), '2-unknown');
  });
});

/** Connects, waits for the connection, and returns a reader of the whole reply. */
function dial(path: string): Promise<{ sock: Socket; reply: Promise<string> }> {
  return new Promise((resolve, reject) => {
    const sock = connect(path);
    let data = '';
    const reply = new Promise<string>((r) => {
      sock.on('data', (d) => {
        data += d;
      });
      sock.on('end', () => r(data));
      sock.on('close', () => r(data));
    });
    sock.once('connect', () => resolve({ sock, reply }));
    sock.once('error', reject);
  });
}

describe('units: StandardInput=socket and the socket file settings', () => {
  const load = (name: string, text: string) =>
    interpretUnit(parseUnitText(text, `/u/${name}`).assignments, {
      hostname: 'h',
      machineId: 'm',
      bootId: 'b',
      runtimeDir: '/run',
      unitName: name,
      fragmentPath: `/u/${name}`,
    });
  it('StandardInput=socket makes StandardOutput= default to inherit; StandardOutput=socket is read', () => {
    const s = load('a@.service', '[Service]\nExecStart=/bin/a\nStandardInput=socket\n');
    assert.deepEqual([s.diagnostics, s.service!.standardInput, s.service!.standardOutput], [[], 'socket', 'inherit']);
    const t = load(
      'b@.service',
      '[Service]\nExecStart=/bin/a\nStandardInput=socket\nStandardOutput=socket\nStandardError=journal\n',
    );
    assert.deepEqual([t.diagnostics, t.service!.standardOutput, t.service!.standardError], [[], 'socket', 'journal']);
  });
  it('reads SocketUser=, SocketGroup= and DirectoryMode=, reporting a bad name with its line', () => {
    const u = load(
      's.socket',
      '[Socket]\nListenStream=/run/s.sock\nSocketUser=www-data\nSocketGroup=%i!\nDirectoryMode=0700\n',
    );
    assert.deepEqual(
      [u.socket!.socketUser, u.socket!.socketGroup, u.socket!.directoryMode],
      ['www-data', undefined, 0o700],
    );
    assert.deepEqual(
      u.diagnostics.map((d) => [d.line, d.message]),
      [[4, 'Invalid user/group name or numeric ID, ignoring: !']],
    );
  });
});

describeAsRoot('init: Accept=yes sockets and StandardInput=socket (real services)', function () {
  this.timeout(60_000);
  let init: ContainedInit | undefined;
  afterEach(async () => {
    await init?.stop();
    init = undefined;
    rmSync(`/tmp/keel-accept-${process.pid}`, { recursive: true, force: true });
  });

  it(
    'serves two connections with two instances, each with its ' + 'connection on stdin and stdout and as fd 3',
    async () => {
      const dir = `/tmp/keel-accept-${process.pid}/sub`;
      const path = `${dir}/echo.sock`;
      init = await ContainedInit.start({
        'test.target': testTarget('echo.socket'),
        'echo.socket':
          `[Socket]\nListenStream=${path}\nAccept=yes\nSocketUser=nobody\n` +
          'SocketGroup=nogroup\nSocketMode=0660\nDirectoryMode=0750\n',
        'echo@.service':
          "[Service]\nStandardInput=socket\nExecStart=/bin/sh -c 'read line; " +
          'echo "got=$line instance=%i fds=$LISTEN_FDS names=$LISTEN_FDNAMES fd3=$(readlink ' +
          '/proc/self/fd/3 | cut -c1-7) in=$(readlink /proc/self/fd/0 | cut -c1-7)"\'\n',
      });
      await init.until('echo.socket', (s) => s.subState === 'listening');
      const st = statSync(path);
      assert.deepEqual(
        [st.isSocket(), st.uid, st.gid, st.mode & 0o777],
        [true, 65534, 65534, 0o660],
        'SocketUser=, SocketGroup=, SocketMode=',
      );
      assert.equal(statSync(dir).mode & 0o777, 0o750, 'DirectoryMode=');
      // Both connections are open at once: two instances run side by side.
      const a = await dial(path);
      const b = await dial(path);
      b.sock.write('second\n');
      a.sock.write('first\n');
      const [ra, rb] = await Promise.all([a.reply, b.reply]);
      const re = /^got=(\w+) instance=(\d+)-\d+-0 fds=1 names=connection fd3=socket: in=socket:\n$/;
      const [ma, mb] = [re.exec(ra), re.exec(rb)];
      assert.ok(ma && mb, JSON.stringify([ra, rb]));
      assert.equal(ma![1], 'first');
      assert.equal(mb![1], 'second');
      assert.deepEqual([ma![2], mb![2]].sort(), ['0', '1'], 'one instance per connection, numbered as accepted');
      // A finished connection's instance is collected.
      for (const n of [ma![2], mb![2]]) {
        const seen = ra.includes(`instance=${n}-`) ? ra : rb;
        const unit = `echo@${seen.split('instance=')[1].split(' ')[0]}.service`;
        await init.until(unit, (s) => s.loadState === 'not-found');
      }
      assert.equal((await init.ctl('status', { unit: 'echo.socket' })).subState, 'listening');
    },
  );
});
