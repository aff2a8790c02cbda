// The bridge network of `keel run`: the pure parts (addresses, -p, the nftables ruleset, resolv.conf)
// and, as root on this host, the real thing through the CLI: keel0, veths, NAT and published ports.
// The host keeps its own networking: the test adds only keel0 and the `ip keel` table, and removes
// them afterwards if it made them and no other container is on the bridge.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { addBusybox } from '../../containers/busybox-image.js';
import {
  allocateAddress, BRIDGE, checkPorts, containerHosts, containerResolvConf, dropLease, formatPort, hostVethOf, leaseAlive, macFor, selfOwner,
  NETNS_DIR, NETWORK_DIR, nftRuleset, parsePublish, takeLease, type Lease, type LeaseFile, type PortMapping,
} from '../../containers/network.js';
import { withLockSync } from '../../containers/lock.js';
import { ImageStore } from '../../containers/store.js';
import { KEEL, keelAt } from './helpers.js';
import { describeAsRoot, itAsRoot } from '../needs.js';


const lease = (id: string, ip: string, ports: PortMapping[] = [], name = id): Lease =>
  ({ id, name, root: '/r', ip, ports, owner: { pid: 1, startTime: '1' }, created: '2026-01-01T00:00:00.000Z' });
const tcp = (hostPort: number, containerPort: number, hostIp = '0.0.0.0'): PortMapping => ({ hostIp, hostPort, containerPort, proto: 'tcp' });

describe('containers/network: -p', () => {
  it('parses HOST:CTR, IP:HOST:CTR and /udp', () => {
    assert.deepEqual(parsePublish('8080:80'), tcp(8080, 80));
    assert.deepEqual(parsePublish('127.0.0.1:8080:80/tcp'), tcp(8080, 80, '127.0.0.1'));
    assert.deepEqual(parsePublish('53:5353/udp'), { hostIp: '0.0.0.0', hostPort: 53, containerPort: 5353, proto: 'udp' });
    assert.equal(formatPort(parsePublish('8080:8888')), '0.0.0.0:8080->8888/tcp');
  });

  it('refuses what it does not do, saying why', () => {
    const bad: [string, RegExp][] = [
      ['80', /name the host port too/], ['8080:80/sctp', /not tcp or udp/], ['8000-8010:80', /port ranges are not supported/],
      ['1.2.3:80:80', /not an IPv4 address/], ['0:80', /not in 1-65535/], ['80:70000', /not in 1-65535/],
      ['127.0.0.1::80', /no host port/], ['::1:80:80', /IPv6/],
    ];
    for (const [spec, re] of bad) assert.throws(() => parsePublish(spec), (e: any) => e.code === 'EPUBLISH' && re.test(e.message) && e.message.includes(JSON.stringify(spec)), spec);
  });

  it('finds clashes: the same port and protocol on overlapping addresses', () => {
    const others = [{ id: 'a'.repeat(64), name: 'web', ports: [tcp(8080, 80)] }, { id: 'b'.repeat(64), name: 'lo', ports: [tcp(9000, 90, '127.0.0.1')] }];
    assert.throws(() => checkPorts([tcp(8080, 81)], others), /cannot publish 0\.0\.0\.0:8080->81\/tcp: host port 8080\/tcp is already published by container web \(aaaaaaaaaaaa\) as 0\.0\.0\.0:8080->80\/tcp/);
    assert.throws(() => checkPorts([tcp(8080, 81, '10.0.0.1')], others), /already published by container web/);
    assert.throws(() => checkPorts([tcp(9000, 1)], others), /already published by container lo/);
    checkPorts([tcp(9000, 1, '10.0.0.1'), { ...tcp(8080, 80), proto: 'udp' }, tcp(8081, 80)], others);
    assert.throws(() => checkPorts([tcp(7000, 1), tcp(7000, 2)], []), (e: any) => e.code === 'EPORTINUSE' && /asks for the same host port/.test(e.message));
  });
});

describe('containers/network: addresses', () => {
  it('hands out 10.88.0.2 first, then round robin after the last, never the gateway or a taken one', () => {
    assert.equal(allocateAddress([], null), '10.88.0.2');
    assert.equal(allocateAddress(['10.88.0.2'], '10.88.0.2'), '10.88.0.3');
    // Not at once again what was just freed (stale ARP entries elsewhere), but after the last one.
    assert.equal(allocateAddress([], '10.88.0.3'), '10.88.0.4');
    assert.equal(allocateAddress(['10.88.0.5'], '10.88.0.4'), '10.88.0.6');
    assert.equal(allocateAddress([], '10.88.0.255'), '10.88.1.0');
    assert.equal(allocateAddress(['10.88.0.2'], '10.88.255.254'), '10.88.0.3');
    const small = { network: '192.168.7.0', prefix: 29, gateway: '192.168.7.1' };
    const all: string[] = [];
    for (let i = 0; i < 5; i++) all.push(allocateAddress(all, all.at(-1) ?? null, small));
    assert.deepEqual(all, ['192.168.7.2', '192.168.7.3', '192.168.7.4', '192.168.7.5', '192.168.7.6']);
    assert.throws(() => allocateAddress(['192.168.7.2', '192.168.7.3', '192.168.7.4', '192.168.7.5', '192.168.7.6'], null, small), (e: any) => e.code === 'ENOADDRESS');
    assert.equal(macFor('10.88.0.2'), '02:42:0a:58:00:02');
  });

  it('leases per container id: the same id keeps its address, dead leases are reclaimed, clashes change nothing', () => {
    const owner = { pid: 2, startTime: '2' };
    let file: LeaseFile = { last: null, leases: [] };
    const req = (id: string, ports: PortMapping[] = []) => ({ id, name: id, root: '/r', ports, owner });
    const a = takeLease(file, req('a', [tcp(8080, 80)]), () => true);
    assert.equal(a.lease.ip, '10.88.0.2');
    file = a.file;
    const b = takeLease(file, req('b'), () => true);
    assert.equal(b.lease.ip, '10.88.0.3');
    file = b.file;
    assert.equal(takeLease(file, req('a', [tcp(8080, 80)]), () => true).lease.ip, '10.88.0.2');
    assert.throws(() => takeLease(file, req('c', [tcp(8080, 1)]), () => true), (e: any) => e.code === 'EPORTINUSE');
    // a's holder is gone: reclaimed, its port is free again.
    const c = takeLease(file, req('c', [tcp(8080, 1)]), (l) => l.id !== 'a');
    assert.deepEqual(c.reclaimed.map((l) => l.id), ['a']);
    assert.equal(c.lease.ip, '10.88.0.4');
    assert.deepEqual(c.file.leases.map((l) => l.id).sort(), ['b', 'c']);
    const d = dropLease(c.file, 'c', () => true);
    assert.deepEqual(d.released.map((l) => l.id), ['c']);
    assert.deepEqual(d.file.leases.map((l) => l.id), ['b']);
    assert.equal(d.file.last, '10.88.0.4');
    assert.deepEqual(dropLease(c.file, 'x', (l) => l.id !== 'b').released.map((l) => l.id), ['b']);
  });

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
  const web = lease('f'.repeat(64), '10.88.0.2', [tcp(8080, 80), { hostIp: '127.0.0.1', hostPort: 5353, containerPort: 53, proto: 'udp' }], 'web');
  const text = nftRuleset([lease('a'.repeat(64), '10.88.0.3'), web]);

  it('replaces table ip keel in one transaction: NAT out, DNAT in from outside and from the host', () => {
    assert.match(text, /^table ip keel \{\}\ndelete table ip keel\ntable ip keel \{\n/);
    assert.match(text, /chain prerouting \{\n\t\ttype nat hook prerouting priority -100; policy accept;\n\t\tfib daddr type local jump published\n/);
    assert.match(text, /chain output \{\n\t\ttype nat hook output priority -100; policy accept;\n\t\tfib daddr type local jump published\n/);
    assert.match(text, /\t\tip saddr 10\.88\.0\.0\/16 oifname != "keel0" masquerade\n/);
    assert.match(text, /\t\tip saddr 127\.0\.0\.0\/8 oifname "keel0" masquerade\n/);
  });

  it('keeps each container\'s rules in a chain of its own (none without ports)', () => {
    assert.match(text, /chain published \{\n\t\tjump ctr_ffffffffffff\n\t\}/);
    assert.match(text, /chain ctr_ffffffffffff \{\n\t\ttcp dport 8080 dnat to 10\.88\.0\.2:80 comment "web 0\.0\.0\.0:8080->80\/tcp"\n\t\tip daddr 127\.0\.0\.1 udp dport 5353 dnat to 10\.88\.0\.2:53 comment "web 127\.0\.0\.1:5353->53\/udp"\n\t\}/);
    assert.doesNotMatch(text, /ctr_aaaa/);
    assert.doesNotMatch(nftRuleset([]), /ctr_/);
  });

  itAsRoot('is accepted by nft (nft --check, nothing applied)', () => {
    assert.ok(existsSync('/usr/sbin/nft'), 'needs /usr/sbin/nft (make deps installs nftables)');
    const r = spawnSync('/usr/sbin/nft', ['-c', '-f', '-'], { input: text, encoding: 'utf8' });
    assert.equal(r.status, 0, r.stderr);
  });
});

describe('containers/network: resolv.conf and hosts', () => {
  it('keeps the host\'s nameservers but loopback ones, with search and options', () => {
    assert.equal(containerResolvConf('search example.org\nnameserver 127.0.0.53\nnameserver 10.0.2.3\nnameserver fd00::1\noptions edns0\n'),
      '# Written by keel for a container on keel0, from the host\'s /etc/resolv.conf.\nsearch example.org\noptions edns0\nnameserver 10.0.2.3\n');
  });

  it('uses the resolver\'s upstream servers when the host has only loopback ones, else none, saying why', () => {
    const stub = 'nameserver 127.0.0.53\noptions edns0 trust-ad\n';
    assert.match(containerResolvConf(stub, 'nameserver 192.168.1.1\nnameserver 192.168.1.2\n'), /upstream servers\.\noptions edns0 trust-ad\nnameserver 192\.168\.1\.1\nnameserver 192\.168\.1\.2\n$/);
    const none = containerResolvConf(stub);
    assert.doesNotMatch(none, /^nameserver/m);
    assert.match(none, /# No nameserver: the host's \(127\.0\.0\.53\) are loopback addresses, which a container cannot reach\./);
    assert.match(containerResolvConf(''), /# No nameserver: the host has none\./);
  });

  it('names the container in /etc/hosts', () => {
    assert.equal(containerHosts('10.88.0.9', 'abc', 'web'), '127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n10.88.0.9\tabc web\n');
    assert.match(containerHosts('10.88.0.9', 'web', 'web'), /\n10\.88\.0\.9\tweb\n$/);
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
  const leases = (): Lease[] => { try { return JSON.parse(readFileSync(join(NETWORK_DIR, 'leases.json'), 'utf8')).leases; } catch { return []; } };
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
      withLockSync(join(NETWORK_DIR, 'lock'), () => {
        if (leases().length) return;
        sh(`nft delete table ip keel; ip link del ${BRIDGE}`);
        writeFileSync('/proc/sys/net/ipv4/ip_forward', forwardBefore);
      });
    }
  });

  it('gives a container only lo and eth0, with a 10.88 address, a default route via keel0 and its names', () => {
    const r = keel('run', '--rm', '--name', 'probe', 'busybox', 'sh', '-c', 'ls /sys/class/net; ip -o -4 addr show dev eth0; ip route; cat /etc/hosts /etc/hostname; hostname; touch /etc/resolv.conf 2>&1');
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
    const pinger = (me: string, peer: string) => keel('run', '-d', '--name', me, '-v', `${shared}:/shared`, 'busybox', 'sh', '-c',
      `while [ ! -s /shared/${peer} ]; do sleep 0.1; done; ping -c 1 -W 3 $(cat /shared/${peer}) && echo ${me} reached ${peer}; sleep 60`);
    assert.equal(pinger('a', 'b').code, 0);
    assert.equal(pinger('b', 'a').code, 0);
    const ipA = inspect('a').state.ipAddress, ipB = inspect('b').state.ipAddress;
    assert.match(ipA, /^10\.88\.\d+\.\d+$/);
    assert.notEqual(ipA, ipB);
    writeFileSync(join(shared, 'a'), ipA);
    writeFileSync(join(shared, 'b'), ipB);
    await until('the pings', () => /a reached b/.test(keel('logs', 'a').out) && /b reached a/.test(keel('logs', 'b').out));
    assert.equal(keel('rm', '-f', 'a', 'b').code, 0);
  });

  it('publishes a port: reachable from the host at 127.0.0.1 and its own address; shown by ps and inspect', async () => {
    const r = keel('run', '-d', '-p', '18080:8080', '--name', 'web', 'busybox', 'sh', '-c', 'mkdir /www; echo hi > /www/index.html; httpd -f -p 8080 -h /www');
    assert.equal(r.code, 0, r.err);
    const id = r.out.trim();
    await until('httpd', () => hostGet('http://127.0.0.1:18080/').stdout === 'hi\n');
    const hostIp = /inet (\d+\.\d+\.\d+\.\d+)\//.exec(sh(`ip -o -4 addr show scope global | grep -v ${BRIDGE} | head -1`).stdout)?.[1];
    // The title promises the host's own address too: a host without one is a broken setup, not a pass.
    assert.ok(hostIp, 'needs a global IPv4 address on the host besides keel0 (ip -o -4 addr show scope global)');
    assert.equal(hostGet(`http://${hostIp}:18080/`).stdout, 'hi\n');
    assert.match(keel('ps').out, /^CONTAINER ID +IMAGE +COMMAND +CREATED +STATUS +PORTS +NAMES\n/);
    assert.match(keel('ps').out, / Up .* 0\.0\.0\.0:18080->8080\/tcp +web$/m);
    const info = inspect('web');
    assert.match(info.state.ipAddress, /^10\.88\./);
    assert.deepEqual(info.state.ports, ['0.0.0.0:18080->8080/tcp']);
    assert.match(sh('nft list table ip keel').stdout, new RegExp(`chain ctr_${id.slice(0, 12)} \\{\\n\\s+tcp dport 18080 dnat to ${info.state.ipAddress.replace(/\./g, '\\.')}:8080`));

    // The same host port again: refused before anything is created.
    const before = keel('ps', '-aq').out;
    const clash = keel('run', '--rm', '-p', '18080:80', 'busybox', 'true');
    assert.equal(clash.code, 1);
    assert.match(clash.err, /cannot publish 0\.0\.0\.0:18080->80\/tcp: host port 18080\/tcp is already published by container web/);
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
  });

  it('reclaims the lease of a container whose monitor died, and keeps none and host as they were', async () => {
    const id = keel('run', '-d', '-p', '18082:80', '--name', 'orphan', 'busybox', 'sleep', '60').out.trim();
    const pid = inspect('orphan').state.pid;
    const monitor = sh(`cat /proc/${pid}/stat`).stdout.split(') ')[1].split(' ')[1];
    process.kill(Number(monitor), 'SIGKILL');
    process.kill(pid, 'SIGKILL');
    // Orphaned, it may stay a zombie of whatever adopts it.
    await until('the container to end', () => !existsSync(`/proc/${pid}`) || / Z /.test(sh(`cat /proc/${pid}/stat`).stdout));
    sh(`rmdir /sys/fs/cgroup/keel.containers/${id} 2>/dev/null`);
    assert.equal(ours().length, 1);
    // The next container on the bridge reclaims it, and may publish its port.
    const r = keel('run', '--rm', '-p', '18082:80', 'busybox', 'true');
    assert.equal(r.code, 0, r.err);
    assert.notEqual(sh(`ip link show ${hostVethOf(id)}`).status, 0);
    assert.equal(existsSync(join(NETNS_DIR, id)), false);
    assert.deepEqual(ours(), []);
    assert.equal(keel('run', '--rm', '--network', 'none', 'busybox', 'ls', '/sys/class/net').out, 'lo\n');
    assert.match(keel('run', '--rm', '--network', 'host', 'busybox', 'ls', '/sys/class/net').out, new RegExp(`^${BRIDGE}$`, 'm'));
  });
});
