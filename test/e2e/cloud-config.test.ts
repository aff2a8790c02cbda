// End to end: user-data by QEMU fw_cfg and by a config-drive ISO; an invalid one still boots.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createServer } from 'node:net';
import { testImage } from './image.js';
import { Vm } from './vm.js';

function freePort(): Promise<number> {
  return new Promise((resolve) => {
    const s = createServer().listen(0, '127.0.0.1', () => {
      const p = (s.address() as { port: number }).port;
      s.close(() => resolve(p));
    });
  });
}

describe('cloud-config in QEMU', function () {
  this.timeout(600_000);
  let dir: string;
  let key: string;
  before(() => {
    dir = mkdtempSync(join(tmpdir(), 'keel-cc-'));
    key = join(dir, 'id_ed25519');
    execFileSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-f', key]);
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  it(
    'applies user-data from fw_cfg: hostname, ssh key for core, ' + 'write_files, a unit started, a static address',
    async () => {
      const pub = readFileSync(`${key}.pub`, 'utf8').trim();
      const ud = join(dir, 'user-data.yml');
      writeFileSync(
        ud,
        `#cloud-config
hostname: cc-node
ssh_authorized_keys:
  - ${pub}
write_files:
  - path: /etc/keel-test/hello.txt
    permissions: "0640"
    owner: core:core
    content: |
      hello from cloud-config
coreos:
  units:
    - name: greeter.service
      command: start
      content: |
        [Service]
        ExecStart=/bin/sh -c 'echo greeter up; exec sleep 100000'
    - name: 10-static.network
      content: |
        [Match]
        Name=eth0
        [Network]
        # QEMU's user network forwards ssh to 10.0.2.15: keep it, and add a second address.
        Address=10.0.2.15/24
        Address=10.0.2.77/24
        Gateway=10.0.2.2
        DNS=10.0.2.3
`,
      );
      const port = await freePort();
      const vm = Vm.start({ image: await testImage(), sshPort: port, userData: ud });
      try {
        await vm.ready();
        assert.equal((await vm.sh('hostname')).out, 'cc-node');
        const f = await vm.sh('stat -c "%a %U:%G" /etc/keel-test/hello.txt; cat /etc/keel-test/hello.txt');
        assert.equal(f.out, '640 core:core\nhello from cloud-config');
        const s = await vm.sh('keel is-active greeter.service; keel logs -u greeter.service -n 5');
        assert.match(s.out, /^active$/m);
        assert.match(s.out, /greeter up/);
        let addr = '';
        for (let i = 0; i < 20 && !/10\.0\.2\.77/.test(addr); i++) {
          addr = (await vm.sh('ip -4 addr show eth0')).out;
          if (!/10\.0\.2\.77/.test(addr)) await new Promise((r) => setTimeout(r, 500));
        }
        assert.match(addr, /inet 10\.0\.2\.77\/24/);
        const out = execFileSync(
          'ssh',
          [
            '-q',
            '-i',
            key,
            '-p',
            String(port),
            '-o',
            'StrictHostKeyChecking=no',
            '-o',
            'UserKnownHostsFile=/dev/null',
            '-o',
            'BatchMode=yes',
            '-o',
            'ConnectTimeout=30',
            'core@127.0.0.1',
            'id -un; hostname',
          ],
          { encoding: 'utf8', timeout: 90_000 },
        );
        assert.equal(out, 'core\ncc-node\n');
        assert.match(
          (await vm.sh('keel status')).out,
          /User-data: fw_cfg opt\/keel\/user-data \(cloud-config\): applied/,
        );
      } finally {
        vm.kill();
      }
    },
  );

  it('reads a config-drive ISO (label config-2)', async () => {
    const tree = join(dir, 'drive');
    mkdirSync(join(tree, 'openstack/latest'), { recursive: true });
    writeFileSync(join(tree, 'openstack/latest/user_data'), '#cloud-config\nhostname: from-drive\n');
    const iso = join(dir, 'config.iso');
    execFileSync('genisoimage', ['-quiet', '-V', 'config-2', '-r', '-J', '-o', iso, tree]);
    const vm = Vm.start({ image: await testImage(), extraDrives: [iso] });
    try {
      await vm.ready();
      assert.equal((await vm.sh('hostname')).out, 'from-drive');
    } finally {
      vm.kill();
    }
  });

  it('runs a #! user-data script once per boot as a transient unit', async () => {
    const ud = join(dir, 'script.sh');
    writeFileSync(ud, '#!/bin/sh\necho "script ran as $(id -un)" >> /var/lib/script-runs\n');
    const vm = Vm.start({ image: await testImage(), userData: ud });
    try {
      await vm.ready();
      let out = '';
      for (let i = 0; i < 20 && !out.includes('script ran'); i++) {
        out = (await vm.sh('cat /var/lib/script-runs 2>/dev/null')).out;
        if (!out) await new Promise((r) => setTimeout(r, 300));
      }
      assert.equal(out, 'script ran as root');
      const st = await vm.sh('keel status user-data-script.service');
      assert.match(st.out, /Loaded: loaded \(\/run\/systemd\/system\/user-data-script\.service/);
    } finally {
      vm.kill();
    }
  });

  it('boots an invalid user-data to multi-user, shows the report, and applies none of it', async () => {
    const ud = join(dir, 'bad.yml');
    writeFileSync(
      ud,
      '#cloud-config\nhostname: never-set\nwrite_files:\n  - path: /etc/never\n    content: x\n  bad: [unclosed\n',
    );
    const vm = Vm.start({ image: await testImage(), userData: ud });
    try {
      await vm.ready();
      assert.match(vm.console, /cloud-config: fw_cfg opt\/keel\/user-data: line \d+: error: /);
      assert.equal((await vm.sh('hostname')).out, 'keel');
      assert.notEqual((await vm.sh('test -e /etc/never')).code, 0);
      assert.equal(
        (await vm.sh('keel is-active multi-user.target dropbear.service serial-getty@ttyS0.service')).code,
        0,
      );
      const st = await vm.sh('keel status');
      assert.match(st.out, /not applied/);
      assert.match((await vm.sh('keel logs -u cloud-config')).out, /line \d+: error/);
    } finally {
      vm.kill();
    }
  });
});
