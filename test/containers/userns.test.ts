// --userns=remap: a container with a user namespace of its own (docker's userns-remap). The range
// rules are pure; the rest runs for real as root: bin/keel, the native helper, overlay mounts.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import {
  chownSync,
  existsSync,
  lstatSync,
  mkdirSync,
  readdirSync,
  readFileSync,
  readlinkSync,
  writeFileSync,
} from 'node:fs';
import { join } from 'node:path';
import { addBusybox } from './busybox-fixture.js';
import { ContainerDb } from '../../containers/db.js';
import { containerSpawnOptions } from '../../containers/runtime.js';
import { ImageStore } from '../../containers/store.js';
import { unpackLayer } from '../../containers/extract.js';
import { writeTar } from '../../containers/tar.js';
import { DEFAULT_RANGE, parseUserns, subordinateRange } from '../../containers/userns.js';
import { isNativeError, native } from '../../native/native.js';
import { KEEL, keelAt, removeDir, tempDir } from './helpers.js';
import { itAsRoot } from '../needs.js';

const MAP = { uid: 100000, gid: 100000, size: 65536 };

describe('containers/userns: the range', () => {
  let dir: string;
  before(() => {
    dir = tempDir('subuid');
  });
  after(() => removeDir(dir));

  it('takes the "keel" entry of /etc/subuid and /etc/subgid, else 100000:65536', () => {
    const files = { subuid: join(dir, 'subuid'), subgid: join(dir, 'subgid') };
    assert.equal(parseUserns('host', files), null);
    assert.deepEqual(parseUserns('remap', files), {
      uid: DEFAULT_RANGE.start,
      gid: DEFAULT_RANGE.start,
      size: DEFAULT_RANGE.count,
    });
    writeFileSync(files.subuid, 'alice:100000:65536\nkeel:200000:65536\n');
    writeFileSync(files.subgid, 'keel:300000:70000\n');
    assert.deepEqual(parseUserns('remap', files), { uid: 200000, gid: 300000, size: 65536 });
  });

  it('names the file, line and value of a bad entry, and refuses unknown modes', () => {
    const f = join(dir, 'bad');
    writeFileSync(f, '# ranges\nkeel:0:65536\n');
    assert.throws(
      () => subordinateRange(f),
      (e: Error) => e.message === `${f}:2: "keel:0:65536" is not NAME:START:COUNT with START >= 1 and COUNT >= 1`,
    );
    assert.throws(() => parseUserns('auto'), /unknown --userns "auto" \(use: host, remap\)/);
  });

  it('refuses privileged, the host network, and ids outside the range', () => {
    const spec = { id: 'u', rootfs: { bind: '/' }, argv: ['true'], userns: MAP, cgroup: null };
    const host = { capabilities: (1n << 41n) - 1n, devices: {}, hostname: 'h' };
    assert.throws(
      () => containerSpawnOptions({ ...spec, privileged: true }, host),
      /userns cannot be used with privileged/,
    );
    assert.throws(() => containerSpawnOptions({ ...spec, network: 'host' }, host), /host's network namespace/);
    assert.throws(
      () => containerSpawnOptions({ ...spec, user: { uid: 70000, gid: 0 } }, host),
      /user id 70000 is outside the user namespace's 0-65535/,
    );
    const opts = containerSpawnOptions(spec, host);
    assert.deepEqual(opts.container?.userns, { uidMap: '0 100000 65536\n', gidMap: '0 100000 65536\n' });
    // /dev and /dev/shm belong to the namespace's root, devpts' tty group is its group 5.
    const data = (t: string) => opts.container?.mounts?.find((m) => m.target === t)?.data;
    assert.equal(data('/dev'), 'mode=755,size=65536k,uid=100000,gid=100000');
    assert.equal(data('/dev/pts'), 'newinstance,ptmxmode=0666,mode=0620,gid=100005');
  });

  itAsRoot('unpacks a layer with its ids shifted, refusing one outside the range by name', async () => {
    const entries = (uid: number) =>
      writeTar([
        { header: { name: 'etc/', type: 'dir', mode: 0o755 } },
        { header: { name: 'etc/owned', type: 'file', mode: 0o4755, uid, gid: 7 }, data: Buffer.from('x') },
      ]);
    const ok = join(dir, 'shifted');
    await unpackLayer(entries(1000), ok, { maxBytes: 1 << 20, allowDevices: false, ownership: true, idShift: MAP });
    const st = lstatSync(join(ok, 'etc/owned'));
    assert.deepEqual([st.uid, st.gid, st.mode & 0o7777], [101000, 100007, 0o4755]);
    assert.equal(lstatSync(join(ok, 'etc')).uid, 100000);
    await assert.rejects(
      unpackLayer(entries(70000), join(dir, 'far'), {
        maxBytes: 1 << 20,
        allowDevices: false,
        ownership: true,
        idShift: MAP,
      }),
      (e: Error) =>
        /cannot unpack entry etc\/owned for a user namespace: its uid 70000 is outside the mapped range 0-65535/.test(
          e.message,
        ),
    );
  });

  itAsRoot('spawn() reports a map the kernel refuses, naming the file, and leaves no child', () => {
    const root = tempDir('userns-root');
    // Other tests of this process may have children of their own: compare ours before and after.
    const children = () =>
      readdirSync('/proc/self/task')
        .flatMap((t) => readFileSync(`/proc/self/task/${t}/children`, 'utf8').split(' ').filter(Boolean))
        .sort();
    const before = children();
    try {
      assert.throws(
        () =>
          native.spawn({
            file: '/bin/true',
            argv: ['true'],
            env: [],
            container: {
              root,
              rootMount: { source: '/', fstype: null, flags: 0x1000 | 0x4000, data: null },
              newNetwork: true,
              userns: { uidMap: '0 100000 nonsense\n', gidMap: '0 100000 1\n' },
            },
          }),
        (e) => isNativeError(e, 'EINVAL') && /\/proc\/\d+\/uid_map/.test(e.message) && e.syscall === 'write',
      );
      assert.deepEqual(children(), before, 'no child is left, not even a zombie');
    } finally {
      removeDir(root);
    }
  });
});

describe('keel run --userns=remap (as root)', function () {
  this.timeout(60_000);
  let dir: string;
  let root: string;
  const keel = (...args: string[]) => keelAt(root, args);

  before(async () => {
    dir = tempDir('userns');
    root = join(dir, 'root');
    await addBusybox(new ImageStore(root), '/bin/busybox', 1700000000);
  });
  after(() => {
    spawnSync(KEEL, ['rm', '-f', '--root', root, ...keel('ps', '-aq').out.split('\n').filter(Boolean)]);
    removeDir(dir);
  });

  itAsRoot("is root inside, owns the image's files there, and is 100000 on the host", () => {
    const r = keel(
      'run',
      '--rm',
      '--network',
      'none',
      '--userns',
      'remap',
      'busybox',
      'sh',
      '-c',
      'id -u; cat /proc/self/uid_map /proc/self/gid_map; stat -c "%u %U" / /etc/passwd; ' +
        'touch /etc/new && echo wrote; grep ^CapEff /proc/self/status',
    );
    assert.equal(r.code, 0, r.err);
    assert.match(
      r.out,
      /^0\n +0 +100000 +65536\n +0 +100000 +65536\n0 root\n0 root\nwrote\nCapEff:\t00000000a80425fb\n$/,
    );
    const started = keel(
      'run',
      '-d',
      '--name',
      'sleeper',
      '--network',
      'none',
      '--userns',
      'remap',
      'busybox',
      'sleep',
      '300',
    );
    assert.equal(started.code, 0, started.err);
    const { state } = new ContainerDb(root).resolve('sleeper');
    const status = readFileSync(`/proc/${state.pid}/status`, 'utf8');
    assert.match(status, /^Uid:\t100000\t100000\t100000\t100000$/m);
    assert.match(status, /^Gid:\t100000\t100000\t100000\t100000$/m);
    assert.notEqual(readlinkSync(`/proc/${state.pid}/ns/user`), readlinkSync('/proc/self/ns/user'));
  });

  itAsRoot('keel exec enters its user namespace too', () => {
    const r = keel('exec', 'sleeper', 'sh', '-c', 'id -u; cat /proc/self/uid_map; ps -o user,args | grep "sleep 300"');
    assert.equal(r.code, 0, r.err);
    assert.match(r.out, /^0\n +0 +100000 +65536\nroot +sleep 300\n/);
  });

  itAsRoot("its root cannot use the host root's files in a volume; what it writes is 100000's", () => {
    const vol = join(dir, 'vol'),
      mine = join(dir, 'mine');
    mkdirSync(vol);
    mkdirSync(mine);
    writeFileSync(join(vol, 'secret'), 'host only\n', { mode: 0o600 });
    chownSync(mine, 100000, 100000);
    const r = keel(
      'run',
      '--rm',
      '--network',
      'none',
      '--userns',
      'remap',
      '-v',
      `${vol}:/vol`,
      '-v',
      `${mine}:/mine`,
      'busybox',
      'sh',
      '-c',
      'cat /vol/secret; echo "read=$?"; echo no > /vol/x; echo "write=$?"; echo yes > /mine/made; echo "mine=$?"',
    );
    assert.match(r.out, /read=1\n.*write=1\nmine=0\n$/s, r.out + r.err);
    assert.match(r.err, /can't open '\/vol\/secret': Permission denied/);
    assert.ok(!existsSync(join(vol, 'x')));
    const made = lstatSync(join(mine, 'made'));
    assert.deepEqual([made.uid, made.gid], [100000, 100000]);
  });

  itAsRoot('keeps a copy of the layers owned by the range, removed with the image', () => {
    const layers = join(root, 'layers');
    const shifted = readdirSync(layers).filter((n) => /^[0-9a-f]{64}-u100000-g100000-n65536$/.test(n));
    assert.equal(shifted.length, 1);
    assert.equal(lstatSync(join(layers, shifted[0], 'bin/busybox')).uid, 100000);
    assert.equal(lstatSync(join(layers, shifted[0].split('-')[0], 'bin/busybox')).uid, 0);
    assert.equal(keel('rm', '-f', 'sleeper').code, 0);
    const rmi = keel('rmi', 'busybox');
    assert.equal(rmi.code, 0, rmi.err);
    assert.deepEqual(
      readdirSync(layers).filter((n) => !n.endsWith('.lock')),
      [],
    );
  });

  it('refuses --privileged and --network host with it, as docker does', () => {
    const p = keel('run', '--rm', '--privileged', '--userns', 'remap', 'busybox', 'true');
    assert.notEqual(p.code, 0);
    assert.match(p.err, /--privileged cannot be used with --userns=remap/);
    const h = keel('run', '--rm', '--network', 'host', '--userns', 'remap', 'busybox', 'true');
    assert.match(h.err, /--network host cannot be used with --userns=remap/);
  });
});
