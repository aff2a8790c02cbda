// The bridge network's plan without root: -p, addresses and leases, the nftables ruleset, resolv.conf and hosts.
import assert from 'node:assert/strict';
import {
  allocateAddress,
  checkPorts,
  containerHosts,
  containerResolvConf,
  dropLease,
  formatPort,
  macFor,
  nftRuleset,
  parsePublish,
  takeLease,
  type Lease,
  type LeaseFile,
  type PortMapping,
} from '../../containers/network-plan.js';

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

describe('containers/network: -p', () => {
  it('parses HOST:CTR, IP:HOST:CTR and /udp', () => {
    assert.deepEqual(parsePublish('8080:80'), tcp(8080, 80));
    assert.deepEqual(parsePublish('127.0.0.1:8080:80/tcp'), tcp(8080, 80, '127.0.0.1'));
    assert.deepEqual(parsePublish('53:5353/udp'), {
      hostIp: '0.0.0.0',
      hostPort: 53,
      containerPort: 5353,
      proto: 'udp',
    });
    assert.equal(formatPort(parsePublish('8080:8888')), '0.0.0.0:8080->8888/tcp');
  });

  it('refuses what it does not do, saying why', () => {
    const bad: [string, RegExp][] = [
      ['80', /name the host port too/],
      ['8080:80/sctp', /not tcp or udp/],
      ['8000-8010:80', /port ranges are not supported/],
      ['1.2.3:80:80', /not an IPv4 address/],
      ['0:80', /not in 1-65535/],
      ['80:70000', /not in 1-65535/],
      ['127.0.0.1::80', /no host port/],
      ['::1:80:80', /IPv6/],
    ];
    for (const [spec, re] of bad)
      assert.throws(
        () => parsePublish(spec),
        (e: any) => e.code === 'EPUBLISH' && re.test(e.message) && e.message.includes(JSON.stringify(spec)),
        spec,
      );
  });

  it('finds clashes: the same port and protocol on overlapping addresses', () => {
    const others = [
      { id: 'a'.repeat(64), name: 'web', ports: [tcp(8080, 80)] },
      { id: 'b'.repeat(64), name: 'lo', ports: [tcp(9000, 90, '127.0.0.1')] },
    ];
    assert.throws(
      () => checkPorts([tcp(8080, 81)], others),
      /cannot publish 0\.0\.0\.0:8080->81\/tcp: host port 8080\/tcp is already published by container web \(aaaaaaaaaaaa\) as 0\.0\.0\.0:8080->80\/tcp/,
    );
    assert.throws(() => checkPorts([tcp(8080, 81, '10.0.0.1')], others), /already published by container web/);
    assert.throws(() => checkPorts([tcp(9000, 1)], others), /already published by container lo/);
    checkPorts([tcp(9000, 1, '10.0.0.1'), { ...tcp(8080, 80), proto: 'udp' }, tcp(8081, 80)], others);
    assert.throws(
      () => checkPorts([tcp(7000, 1), tcp(7000, 2)], []),
      (e: any) => e.code === 'EPORTINUSE' && /asks for the same host port/.test(e.message),
    );
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
    assert.throws(
      () => allocateAddress(['192.168.7.2', '192.168.7.3', '192.168.7.4', '192.168.7.5', '192.168.7.6'], null, small),
      (e: any) => e.code === 'ENOADDRESS',
    );
    assert.equal(macFor('10.88.0.2'), '02:42:0a:58:00:02');
  });

  it(
    'leases per container id: the same id keeps its address, dead ' + 'leases are reclaimed, clashes change nothing',
    () => {
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
      assert.throws(
        () => takeLease(file, req('c', [tcp(8080, 1)]), () => true),
        (e: any) => e.code === 'EPORTINUSE',
      );
      // a's holder is gone: reclaimed, its port is free again.
      const c = takeLease(file, req('c', [tcp(8080, 1)]), (l) => l.id !== 'a');
      assert.deepEqual(
        c.reclaimed.map((l) => l.id),
        ['a'],
      );
      assert.equal(c.lease.ip, '10.88.0.4');
      assert.deepEqual(c.file.leases.map((l) => l.id).sort(), ['b', 'c']);
      const d = dropLease(c.file, 'c', () => true);
      assert.deepEqual(
        d.released.map((l) => l.id),
        ['c'],
      );
      assert.deepEqual(
        d.file.leases.map((l) => l.id),
        ['b'],
      );
      assert.equal(d.file.last, '10.88.0.4');
      assert.deepEqual(
        dropLease(c.file, 'x', (l) => l.id !== 'b').released.map((l) => l.id),
        ['b'],
      );
    },
  );
});

describe('containers/network: the nftables ruleset', () => {
  const web = lease(
    'f'.repeat(64),
    '10.88.0.2',
    [tcp(8080, 80), { hostIp: '127.0.0.1', hostPort: 5353, containerPort: 53, proto: 'udp' }],
    'web',
  );
  const text = nftRuleset([lease('a'.repeat(64), '10.88.0.3'), web]);

  it('replaces table ip keel in one transaction: NAT out, DNAT in from outside and from the host', () => {
    assert.match(text, /^table ip keel \{\}\ndelete table ip keel\ntable ip keel \{\n/);
    assert.match(
      text,
      /chain prerouting \{\n\t\ttype nat hook prerouting priority -100; policy accept;\n\t\tfib daddr type local jump published\n/,
    );
    assert.match(
      text,
      /chain output \{\n\t\ttype nat hook output priority -100; policy accept;\n\t\tfib daddr type local jump published\n/,
    );
    assert.match(text, /\t\tip saddr 10\.88\.0\.0\/16 oifname != "keel0" masquerade\n/);
    assert.match(text, /\t\tip saddr 127\.0\.0\.0\/8 oifname "keel0" masquerade\n/);
  });

  it("keeps each container's rules in a chain of its own (none without ports)", () => {
    assert.match(text, /chain published \{\n\t\tjump ctr_ffffffffffff\n\t\}/);
    assert.match(
      text,
      /chain ctr_ffffffffffff \{\n\t\ttcp dport 8080 dnat to 10\.88\.0\.2:80 comment "web 0\.0\.0\.0:8080->80\/tcp"\n\t\tip daddr 127\.0\.0\.1 udp dport 5353 dnat to 10\.88\.0\.2:53 comment "web 127\.0\.0\.1:5353->53\/udp"\n\t\}/,
    );
    assert.doesNotMatch(text, /ctr_aaaa/);
    assert.doesNotMatch(nftRuleset([]), /ctr_/);
  });
});

describe('containers/network: resolv.conf and hosts', () => {
  it("keeps the host's nameservers but loopback ones, with search and options", () => {
    assert.equal(
      containerResolvConf(
        'search example.org\nnameserver 127.0.0.53\nnameserver 10.0.2.3\nnameserver fd00::1\noptions edns0\n',
      ),
      "# Written by keel for a container on keel0, from the host's /etc/resolv.conf.\n" +
        'search example.org\noptions edns0\nnameserver 10.0.2.3\n',
    );
  });

  it("uses the resolver's upstream servers when the host has only loopback ones, else none, saying why", () => {
    const stub = 'nameserver 127.0.0.53\noptions edns0 trust-ad\n';
    assert.match(
      containerResolvConf(stub, 'nameserver 192.168.1.1\nnameserver 192.168.1.2\n'),
      /upstream servers\.\noptions edns0 trust-ad\nnameserver 192\.168\.1\.1\nnameserver 192\.168\.1\.2\n$/,
    );
    const none = containerResolvConf(stub);
    assert.doesNotMatch(none, /^nameserver/m);
    assert.match(
      none,
      /# No nameserver: the host's \(127\.0\.0\.53\) are loopback addresses, which a container cannot reach\./,
    );
    assert.match(containerResolvConf(''), /# No nameserver: the host has none\./);
  });

  it('names the container in /etc/hosts', () => {
    assert.equal(
      containerHosts('10.88.0.9', 'abc', 'web'),
      '127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n10.88.0.9\tabc web\n',
    );
    assert.match(containerHosts('10.88.0.9', 'web', 'web'), /\n10\.88\.0\.9\tweb\n$/);
  });
});
