// The bridge network of `keel run` on the host (its plan is tested without root in network-plan.test.ts):
// lease liveness from /proc, nft --check of the ruleset and, as root on this host, the real thing
// through the CLI: keel0, veths, NAT and published ports.
// The host keeps its own networking: the test adds only keel0 and the `ip keel` table, and removes
// them afterwards if it made them and no other container is on the bridge.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { addBusybox } from './busybox-fixture.js';
import {
  BRIDGE,
  hostVethOf,
  leaseAlive,
  selfOwner,
  NETNS_DIR,
  NETWORK_DIR,
  nftRuleset,
  type Lease,
  type PortMapping,
} from '../../containers/network.js';
import { locks } from '../../native/locks.js';
import { ImageStore } from '../../containers/store.js';
import { keelAt } from './helpers.js';
import { describeAsRoot, itAsRoot } from '../needs.js';

const lease = (id: string, ip: string, ports: PortMapping[] = [], name = id): Lease => ({
  id,
  name,
  root: '/r',
  ip,
  ports,
  owner: { pid: 1, startTime: '1' },
  created: '2026-01-01T00:00:00.000Z',
});
const tcp = (hostPort: number, containerPort: number, hostIp = '0.0.0.0'): PortMapping => ({
  hostIp,
  hostPort,
  containerPort,
  proto: 'tcp',
});

describe('containers/network: lease liveness (/proc)', () => {
  it('judges a lease dead when its container or owner is gone, but leaves leases of other namespaces alone', () => {
    const self = selfOwner();
    const dir = mkdtempSync(join(tmpdir(), 'keel-lease-'));
    try {
      mkdirSync(join(dir, 'containers', 'c1'), { recursive: true });
      writeFileSync(join(dir, 'containers', 'c1', 'config.json'), '{}');
      const l = (id: string, owner = self): Lease => ({ ...lease(id, '10.88.0.2'), root: dir, owner });
      assert.equal(leaseAlive(l('c1')), true);
      assert.equal(leaseAlive(l('gone')), false);
      assert.equal(leaseAlive(l('c1', { ...self, startTime: '1' })), false);
      assert.equal(leaseAlive(l('c1', { ...self, pid: 2 ** 22 + 1 })), false);
      assert.equal(leaseAlive(l('c1', { ...self, pid: 2 ** 22 + 1, pidns: 'pid:[1]' })), true);
      assert.equal(leaseAlive(l('gone', { ...self, mntns: 'mnt:[1]' })), true);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('containers/network: the nftables ruleset', () => {
  const web = lease(
    'f'.repeat(64),
    '10.88.0.2',
    [tcp(8080, 80), { hostIp: '127.0.0.1', hostPort: 5353, containerPort: 53, proto: 'udp' }],
    'web',
  );
  const text = nftRuleset([lease('a'.repeat(64), '10.88.0.3'), web]);

  itAsRoot('is accepted by nft (nft --check, nothing applied)', () => {
    assert.ok(existsSync('/usr/sbin/nft'), 'needs /usr/sbin/nft (make deps installs nftables)');
    const r = spawnSync('/usr/sbin/nft', ['-c', '-f', '-'], { input: text, encoding: 'utf8' });
    assert.equal(r.status, 0, r.stderr);
  });
});

describeAsRoot('keel run on the bridge network (the CLI, as root)', function () {
  this.timeout(60_000);
  let dir: string;
  let root: string;
  let madeBridge = false;
  let forwardBefore = '';
  const keel = (...args: string[]) => keelAt(root, args);
  const sh = (cmd: string) => spawnSync('sh', ['-c', cmd], { encoding: 'utf8', timeout: 20_000 });
  const leases = (): Lease[] => {
    try {
      return JSON.parse(readFileSync(join(NETWORK_DIR, 'leases.json'), 'utf8')).leases;
    } catch {
      return [];
    }
  };
  const ours = () => leases().filter((l) => l.root === root);
  const inspect = (name: string) => JSON.parse(keel('inspect', name).out)[0];
  // (busybox 1.35 wget segfaults with -T: timeout(1) bounds it instead.)
  const hostGet = (url: string) => sh(`timeout 5 busybox wget -qO- ${url}`);
  const until = async (what: string, f: () => boolean, ms = 10_000) => {
    for (const end = Date.now() + ms; Date.now() < end; await new Promise((r) => setTimeout(r, 100))) if (f()) return;
    assert.fail(`timed out waiting for ${what}`);
  };

  before(async function () {
    assert.ok(existsSync('/usr/sbin/nft'), 'needs /usr/sbin/nft (make deps installs nftables)');
    madeBridge = sh(`ip link show ${BRIDGE}`).status !== 0;
    forwardBefore = readFileSync('/proc/sys/net/ipv4/ip_forward', 'utf8').trim();
    dir = mkdtempSync(join(tmpdir(), 'keel-net-'));
    root = join(dir, 'root');
    await addBusybox(new ImageStore(root), '/bin/busybox', 1700000000);
  });

  after(function () {
    if (!root) return;
    const ids = keel('ps', '-aq').out.split('\n').filter(Boolean);
    if (ids.length) keel('rm', '-f', ...ids);
    rmSync(dir, { recursive: true, force: true });
    // Only what this test made, and only when nobody else (another root) is on the bridge.
    if (madeBridge) {
      locks.withLockSync(join(NETWORK_DIR, 'lock'), () => {
        if (leases().length) return;
        sh(`nft delete table ip keel; ip link del ${BRIDGE}`);
        writeFileSync('/proc/sys/net/ipv4/ip_forward', forwardBefore);
      });
    }
  });

  it('gives a container only lo and eth0, with a 10.88 address, a default route via keel0 and its names', () => {
    const r = keel(
      'run',
      '--rm',
      '--name',
      'probe',
      'busybox',
      'sh',
      '-c',
      'ls /sys/class/net; ip -o -4 addr show dev eth0; ip route; cat /etc/hosts ' +
        '/etc/hostname; hostname; touch /etc/resolv.conf 2>&1',
    );
    assert.equal(r.code, 1, r.err);
    const [if1, if2, addr, ...rest] = r.out.split('\n');
    assert.deepEqual([if1, if2], ['eth0', 'lo']);
    const ip = /inet (10\.88\.\d+\.\d+)\/16/.exec(addr)?.[1];
    assert.ok(ip, addr);
    const text = rest.join('\n');
    assert.match(text, /^default via 10\.88\.0\.1 dev eth0/m);
    const hostname = /^([0-9a-f]{12})$/m.exec(text)?.[1];
    assert.ok(hostname, text);
    assert.match(text, new RegExp(`^${ip.replace(/\./g, '\\.')}\t${hostname} probe$`, 'm'));
    assert.match(text, /resolv\.conf: Read-only file system/);
    // Its lease went with it (foreground and --rm: stopped for good).
    assert.deepEqual(ours(), []);
  });

  it('lets two containers ping each other by address', async () => {
    const shared = join(dir, 'shared');
    mkdirSync(shared);
    const pinger = (me: string, peer: string) =>
      keel(
        'run',
        '-d',
        '--name',
        me,
        '-v',
        `${shared}:/shared`,
        'busybox',
        'sh',
        '-c',
        `while [ ! -s /shared/${peer} ]; do sleep 0.1; done; ping -c 1 -W 3 $(cat ` +
          `/shared/${peer}) && echo ${me} reached ${peer}; sleep 60`,
      );
    assert.equal(pinger('a', 'b').code, 0);
    assert.equal(pinger('b', 'a').code, 0);
    const ipA = inspect('a').state.ipAddress,
      ipB = inspect('b').state.ipAddress;
    assert.match(ipA, /^10\.88\.\d+\.\d+$/);
    assert.notEqual(ipA, ipB);
    writeFileSync(join(shared, 'a'), ipA);
    writeFileSync(join(shared, 'b'), ipB);
    await until(
      'the pings',
      () => /a reached b/.test(keel('logs', 'a').out) && /b reached a/.test(keel('logs', 'b').out),
    );
    assert.equal(keel('rm', '-f', 'a', 'b').code, 0);
  });

  it(
    'publishes a port: reachable from the host at 127.0.0.1 and ' + 'its own address; shown by ps and inspect',
    async () => {
      const r = keel(
        'run',
        '-d',
        '-p',
        '18080:8080',
        '--name',
        'web',
        'busybox',
        'sh',
        '-c',
        'mkdir /www; echo hi > /www/index.html; httpd -f -p 8080 -h /www',
      );
      assert.equal(r.code, 0, r.err);
      const id = r.out.trim();
      await until('httpd', () => hostGet('http://127.0.0.1:18080/').stdout === 'hi\n');
      const hostIp = /inet (\d+\.\d+\.\d+\.\d+)\//.exec(
        sh(`ip -o -4 addr show scope global | grep -v ${BRIDGE} | head -1`).stdout,
      )?.[1];
      // The title promises the host's own address too: a host without one is a broken setup, not a pass.
      assert.ok(hostIp, 'needs a global IPv4 address on the host besides keel0 (ip -o -4 addr show scope global)');
      assert.equal(hostGet(`http://${hostIp}:18080/`).stdout, 'hi\n');
      assert.match(keel('ps').out, /^CONTAINER ID +IMAGE +COMMAND +CREATED +STATUS +PORTS +NAMES\n/);
      assert.match(keel('ps').out, / Up .* 0\.0\.0\.0:18080->8080\/tcp +web$/m);
      const info = inspect('web');
      assert.match(info.state.ipAddress, /^10\.88\./);
      assert.deepEqual(info.state.ports, ['0.0.0.0:18080->8080/tcp']);
      assert.match(
        sh('nft list table ip keel').stdout,
        new RegExp(
          `chain ctr_${id.slice(0, 12)} \\{\\n\\s+tcp dport 18080 dnat to ` +
            `${info.state.ipAddress.replace(/\./g, '\\.')}:8080`,
        ),
      );

      // The same host port again: refused before anything is created.
      const before = keel('ps', '-aq').out;
      const clash = keel('run', '--rm', '-p', '18080:80', 'busybox', 'true');
      assert.equal(clash.code, 1);
      assert.match(
        clash.err,
        /cannot publish 0\.0\.0\.0:18080->80\/tcp: host port 18080\/tcp is already published by container web/,
      );
      assert.equal(keel('ps', '-aq').out, before);
      const none = keel('run', '--rm', '--network', 'none', '-p', '18081:80', 'busybox', 'true');
      assert.equal(none.code, 1);
      assert.match(none.err, /-p publishes ports of a container on the bridge network, not of one with --network none/);

      // rm -f: its rules, veth, netns and lease go; the port is closed.
      assert.equal(keel('rm', '-f', 'web').code, 0);
      assert.doesNotMatch(sh('nft list table ip keel').stdout, new RegExp(`ctr_${id.slice(0, 12)}|18080`));
      assert.notEqual(sh(`ip link show ${hostVethOf(id)}`).status, 0);
      assert.equal(existsSync(join(NETNS_DIR, id)), false);
      assert.deepEqual(ours(), []);
      assert.notEqual(hostGet('http://127.0.0.1:18080/').status, 0);
    },
  );

  it('reclaims the lease of a container whose monitor died, and keeps none and host as they were', async () => {
    const id = keel('run', '-d', '-p', '18082:80', '--name', 'orphan', 'busybox', 'sleep', '60').out.trim();
    const pid = inspect('orphan').state.pid;
    const monitor = sh(`cat /proc/${pid}/stat`).stdout.split(') ')[1].split(' ')[1];
    process.kill(Number(monitor), 'SIGKILL');
    process.kill(pid, 'SIGKILL');
    // Orphaned, it may stay a zombie of whatever adopts it.
    await until(
      'the container to end',
      () => !existsSync(`/proc/${pid}`) || / Z /.test(sh(`cat /proc/${pid}/stat`).stdout),
    );
    sh(`rmdir /sys/fs/cgroup/keel.containers/${id} 2>/dev/null`);
    assert.equal(ours().length, 1);
    // The next container on the bridge reclaims it, and may publish its port.
    const r = keel('run', '--rm', '-p', '18082:80', 'busybox', 'true');
    assert.equal(r.code, 0, r.err);
    assert.notEqual(sh(`ip link show ${hostVethOf(id)}`).status, 0);
    assert.equal(existsSync(join(NETNS_DIR, id)), false);
    assert.deepEqual(ours(), []);
    assert.equal(keel('run', '--rm', '--network', 'none', 'busybox', 'ls', '/sys/class/net').out, 'lo\n');
    assert.match(
      keel('run', '--rm', '--network', 'host', 'busybox', 'ls', '/sys/class/net').out,
      new RegExp(`^${BRIDGE}$`, 'm'),
    );
  });
});
