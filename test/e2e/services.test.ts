// End to end: the image boots to multi-user with its units supervised; ssh as core with a key;
// keel status and systemctl status over ssh; a clean poweroff stops the units.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { testImage } from './image.js';
import { Vm } from './vm.js';

/** A loopback port nobody listens on right now. */
function freePort(): Promise<number> {
  return new Promise((resolve) => {
    const s = createServer().listen(0, '127.0.0.1', () => {
      const p = (s.address() as { port: number }).port;
      s.close(() => resolve(p));
    });
  });
}

describe('services in QEMU (multi-user, ssh, keel status)', function () {
  this.timeout(600_000);
  let vm: Vm;
  let port: number;
  let dir: string;
  let key: string;

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'keel-ssh-'));
    key = join(dir, 'id_ed25519');
    execFileSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-f', key]);
    port = await freePort();
    vm = Vm.start({ image: await testImage(), sshPort: port, memoryMiB: 1024 });
    await vm.ready();
  });
  after(() => {
    vm?.kill();
    rmSync(dir, { recursive: true, force: true });
  });

  const ssh = (cmd: string) =>
    execFileSync(
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
        'ConnectTimeout=20',
        'core@127.0.0.1',
        cmd,
      ],
      { encoding: 'utf8', timeout: 60_000 },
    );

  it('reaches multi-user.target with the image units active', async () => {
    const r = await vm.sh('keel is-active multi-user.target dropbear.service dhcp.service serial-getty@ttyS0.service');
    assert.equal(r.out, 'active\nactive\nactive\nactive', r.out);
    assert.equal(r.code, 0);
    const sys = await vm.sh('keel status');
    assert.match(sys.out, /^State: running$/m, sys.out);
  });

  it('got an address by DHCP and answers ssh for core with a key', async () => {
    const pub = readFileSync(`${key}.pub`, 'utf8').trim();
    const setup = await vm.sh(
      `mkdir -p /home/core/.ssh && echo '${pub}' > /home/core/.ssh/authorized_keys && ` +
        'chown -R core:core /home/core && chmod 700 /home/core/.ssh && chmod 600 ' +
        '/home/core/.ssh/authorized_keys && ip -4 addr show',
    );
    assert.match(setup.out, /inet 10\.0\.2\.15\//);
    let out = '';
    for (let i = 0; i < 10 && !out; i++) {
      try {
        out = ssh(
          'id -un; keel status dropbear.service; systemctl status ' +
            'dropbear.service; systemctl is-active multi-user.target',
        );
      } catch {
        await new Promise((r) => setTimeout(r, 2000));
      }
    }
    assert.match(out, /^core$/m);
    assert.equal(out.match(/Active: active \(running\)/g)?.length, 2, out);
    assert.match(out, /Main PID: \d+/);
    assert.match(out, /^active$/m);
  });

  it('refuses to let core change units, and lets root', async () => {
    let err = '';
    try {
      ssh('keel stop dropbear.service');
    } catch (e) {
      err = String((e as { stderr?: string }).stderr ?? e);
    }
    assert.match(err, /access denied/);
    const r = await vm.sh('keel restart dhcp.service && keel is-active dhcp.service');
    assert.equal(r.out, 'active');
  });

  it('shows the journal and the boot timeline', async () => {
    const logs = await vm.sh('journalctl -u dhcp.service -n 50 --no-pager');
    assert.match(logs.out, /dhcp: eth0 10\.0\.2\.15/);
    const kernel = await vm.sh('keel logs -u kernel -n 500 | grep -c "Linux version"');
    assert.equal(kernel.out, '1');
  });

  it('puts each service in its own cgroup with MemoryMax= and TasksMax= enforced', async () => {
    const unit =
      "[Service]\\nMemoryMax=16M\\nTasksMax=4\\nExecStart=/bin/sh -c 'sleep 1000 & sleep 1000 & exec sleep 1000'\\n";
    const hog =
      "[Service]\\nType=oneshot\\nMemoryMax=16M\\nExecStart=/bin/sh -c 'dd " +
      "if=/dev/zero of=/dev/null bs=64M count=1 && echo survived'\\n";
    const r = await vm.sh(
      `printf "${unit}" > /etc/systemd/system/lim.service && printf "${hog}" > ` +
        '/etc/systemd/system/hog.service && keel daemon-reload && keel start lim.service && ' +
        'cat /sys/fs/cgroup/system.slice/lim.service/memory.max ' +
        '/sys/fs/cgroup/system.slice/lim.service/pids.max && keel status lim.service',
    );
    assert.equal(r.code, 0, r.out);
    assert.match(r.out, /^16777216\n4\n/);
    assert.match(r.out, /Tasks: 3/);
    assert.match(r.out, /Memory: [\d.]+[KM]/);
    const h = await vm.sh('keel start hog.service; keel status hog.service -n 20');
    assert.match(h.out, /Active: failed/);
    assert.doesNotMatch(h.out, /survived/);
  });

  it('powers off cleanly on SIGRTMIN+4, stopping units first', async () => {
    const from = vm.mark();
    // systemd's "poweroff" signal: SIGRTMIN (34) + 4.
    vm.type('kill -38 1');
    assert.equal(await vm.exited(), 0);
    assert.match(vm.console.slice(from), /keel: poweroff: stopping units/);
  });
});
