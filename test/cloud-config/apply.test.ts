// Applying cloud-config into a temporary root (as root: owners are real), checking every file,
// mode and owner written, and that a failing entry does not stop the rest.
import assert from 'node:assert/strict';
import { loadUpdateConf } from '../../update/config.js';
import { lstatSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { applyCloudConfig, mergeAuthorizedKeys, type ApplyConfig, type ApplyEnv } from '../../cloud-config/apply.js';
import { itAsRoot } from '../needs.js';

function tempRoot(): string {
  const root = mkdtempSync(join(tmpdir(), 'keel-apply-'));
  mkdirSync(join(root, 'etc'), { recursive: true });
  writeFileSync(
    join(root, 'etc/passwd'),
    'root:x:0:0:root:/root:/bin/sh\ncore:x:500:500:Keel Admin:/home/core:/bin/sh\n',
  );
  writeFileSync(join(root, 'etc/group'), 'root:x:0:\nwheel:x:10:core\ncore:x:500:\ndocker:x:233:\n');
  writeFileSync(join(root, 'etc/shadow'), 'root:*:1::::::\ncore:*:1::::::\n');
  return root;
}

function env(root: string, calls: string[]): ApplyEnv {
  return {
    root,
    setHostname: (n) => calls.push(`hostname ${n}`),
    addresses: { private_ipv4: '10.0.2.15' },
    log: () => {},
    units: {
      daemonReload: () => {
        calls.push('daemon-reload');
      },
      enable: (n) => {
        calls.push(`enable ${n}`);
      },
      mask: (n) => {
        calls.push(`mask ${n}`);
      },
      unmask: (n) => {
        calls.push(`unmask ${n}`);
      },
      command: async (n, c) => {
        calls.push(`${c} ${n}`);
        return 'done';
      },
    },
  };
}

describe('cloud-config apply (temporary root)', () => {
  let root: string;
  beforeEach(() => {
    root = tempRoot();
  });
  afterEach(() => rmSync(root, { recursive: true, force: true }));

  itAsRoot('applies every key in coreos-cloudinit order with the right files, modes and owners', async () => {
    const calls: string[] = [];
    const cfg: ApplyConfig = {
      hostname: 'node1',
      ssh_authorized_keys: ['ssh-ed25519 AAAAC3Nza core@example'],
      users: [
        {
          name: 'alice',
          gecos: 'Alice',
          groups: ['wheel', 'docker'],
          ssh_authorized_keys: ['ssh-ed25519 AAAAalice alice@x'],
        },
      ],
      write_files: [
        { path: '/etc/plain.conf', content: 'x=1\n', permissions: '0600', owner: 'alice:docker' },
        { path: '/etc/b64', content: Buffer.from('hello').toString('base64'), encoding: 'b64' },
        {
          path: '/etc/gzb64',
          content: gzipSync('zipped').toString('base64'),
          encoding: 'gzip+base64',
          permissions: '0755',
        },
        { path: '/usr/bin/nope', content: 'x' },
        { path: '/etc/bad', content: '!!!', encoding: 'base64' },
        { path: '/etc/after-bad', content: 'still written' },
      ],
      coreos: {
        etcd2: { name: 'node1', advertise_client_urls: 'http://$private_ipv4:2379' },
        locksmith: { window_start: 'Sun 1:00', window_length: '2h' },
        update: { reboot_strategy: 'off', group: 'stable' },
        oem: { id: 'rackspace', name: 'Rackspace Cloud Servers', version_id: '168.0.0' },
        units: [
          {
            name: 'hello.service',
            content: '[Service]\nExecStart=/bin/true\n',
            enable: true,
            command: 'start',
            drop_ins: [{ name: 'env.conf', content: '[Service]\nEnvironment=A=1\n' }],
          },
          { name: 'rt.service', content: '[Service]\nExecStart=/bin/true\n', runtime: true },
          { name: 'old.service', mask: true },
          { name: 'static.network', content: '[Match]\nName=eth0\n[Network]\nAddress=10.0.0.2/24\n' },
        ],
      },
    };
    const r = await applyCloudConfig(cfg, env(root, calls));
    assert.equal(readFileSync(join(root, 'etc/hostname'), 'utf8'), 'node1\n');
    assert.match(readFileSync(join(root, 'etc/passwd'), 'utf8'), /^alice:x:1000:1000:Alice:\/home\/alice:\/bin\/sh$/m);
    assert.match(readFileSync(join(root, 'etc/group'), 'utf8'), /^wheel:x:10:core,alice$/m);
    assert.match(readFileSync(join(root, 'etc/group'), 'utf8'), /^docker:x:233:alice$/m);
    assert.match(readFileSync(join(root, 'etc/shadow'), 'utf8'), /^alice:\*:/m);
    const keys = join(root, 'home/alice/.ssh/authorized_keys');
    assert.match(readFileSync(keys, 'utf8'), /AAAAalice/);
    assert.equal(statSync(keys).mode & 0o777, 0o600);
    assert.equal(statSync(keys).uid, 1000);
    assert.equal(statSync(join(root, 'home/alice/.ssh')).mode & 0o777, 0o700);
    assert.match(readFileSync(join(root, 'home/core/.ssh/authorized_keys'), 'utf8'), /AAAAC3Nza core@example/);
    assert.equal(statSync(join(root, 'home/core/.ssh/authorized_keys')).uid, 500);
    const plain = statSync(join(root, 'etc/plain.conf'));
    assert.equal(plain.mode & 0o777, 0o600);
    assert.equal(plain.uid, 1000);
    assert.equal(plain.gid, 233);
    assert.equal(readFileSync(join(root, 'etc/b64'), 'utf8'), 'hello');
    assert.equal(readFileSync(join(root, 'etc/gzb64'), 'utf8'), 'zipped');
    assert.equal(statSync(join(root, 'etc/gzb64')).mode & 0o777, 0o755);
    assert.equal(readFileSync(join(root, 'etc/after-bad'), 'utf8'), 'still written');
    assert.ok(
      r.errors.some((e) => /write \/usr\/bin\/nope: write_files cannot be used with \/usr/.test(e)),
      r.errors.join('\n'),
    );
    assert.ok(
      r.errors.some((e) => /write \/etc\/bad: cannot decode content as base64/.test(e)),
      r.errors.join('\n'),
    );
    assert.throws(() => lstatSync(join(root, 'usr/bin/nope')));
    assert.equal(readFileSync(join(root, 'etc/environment'), 'utf8'), 'COREOS_PRIVATE_IPV4=10.0.2.15\n');
    assert.match(
      readFileSync(join(root, 'run/systemd/system/etcd2.service.d/20-cloudinit.conf'), 'utf8'),
      /Environment="ETCD_ADVERTISE_CLIENT_URLS=http:\/\/\$private_ipv4:2379"/,
    );
    assert.match(
      readFileSync(join(root, 'run/systemd/system/locksmithd.service.d/20-cloudinit.conf'), 'utf8'),
      /Environment="LOCKSMITHD_REBOOT_WINDOW_START=Sun 1:00"/,
    );
    // The update agent reads one file: coreos.update's keys and coreos.locksmith's window.
    assert.match(
      readFileSync(join(root, 'etc/keel/update.conf'), 'utf8'),
      /^GROUP=stable\nREBOOT_STRATEGY=off\nLOCKSMITHD_REBOOT_WINDOW_START="Sun 1:00"\n/,
    );
    assert.equal(loadUpdateConf(join(root, 'etc/keel/update.conf')).window?.start, 'Sun 1:00');
    assert.equal(
      readFileSync(join(root, 'etc/oem-release'), 'utf8'),
      'ID="rackspace"\nVERSION_ID="168.0.0"\nNAME="Rackspace Cloud Servers"\n',
    );
    assert.ok(statSync(join(root, 'etc/systemd/system/hello.service')).isFile());
    assert.match(readFileSync(join(root, 'etc/systemd/system/hello.service.d/env.conf'), 'utf8'), /A=1/);
    assert.ok(statSync(join(root, 'run/systemd/system/rt.service')).isFile());
    assert.ok(statSync(join(root, 'etc/systemd/network/static.network')).isFile());
    // Order: hostname first, one reload before enabling, another after, then commands.
    assert.deepEqual(calls, [
      'hostname node1',
      'mask old.service',
      'daemon-reload',
      'enable hello.service',
      'daemon-reload',
      'start hello.service',
    ]);
  });

  itAsRoot('is idempotent: applying twice gives the same files and one key block', async () => {
    const cfg: ApplyConfig = { ssh_authorized_keys: ['ssh-ed25519 AAAA1 a'], users: [{ name: 'bob' }] };
    await applyCloudConfig(cfg, env(root, []));
    const passwd = readFileSync(join(root, 'etc/passwd'), 'utf8');
    await applyCloudConfig(cfg, env(root, []));
    assert.equal(readFileSync(join(root, 'etc/passwd'), 'utf8'), passwd);
    assert.equal(readFileSync(join(root, 'home/core/.ssh/authorized_keys'), 'utf8').match(/AAAA1/g)?.length, 1);
  });

  it('writes a .container unit as is, and enables and starts it as its service', async () => {
    const root = tempRoot();
    const calls: string[] = [];
    const r = await applyCloudConfig(
      {
        coreos: {
          units: [{ name: 'web.container', content: '[Container]\nImage=busybox\n', enable: true, command: 'start' }],
        },
      },
      env(root, calls),
    );
    assert.deepEqual(r.errors, []);
    assert.equal(readFileSync(join(root, 'etc/systemd/system/web.container'), 'utf8'), '[Container]\nImage=busybox\n');
    assert.deepEqual(calls, ['daemon-reload', 'enable web.service', 'daemon-reload', 'start web.service']);
  });

  it("keeps a user's own authorized keys outside its block", () => {
    const merged = mergeAuthorizedKeys(
      'ssh-rsa MINE me\n# BEGIN keel cloud-config\nssh-rsa OLD x\n# END keel cloud-config\n',
      ['ssh-rsa NEW y'],
    );
    assert.equal(merged, 'ssh-rsa MINE me\n# BEGIN keel cloud-config\nssh-rsa NEW y\n# END keel cloud-config\n');
  });
});
