import assert from 'node:assert/strict';
import { globMatch, parseNetworkFile, planNetwork } from '../../init/network-plan.js';

describe('init/network-plan (.network files as networkd reads them)', () => {
  const staticNet = parseNetworkFile(
    '10-static.network',
    '[Match]\nName=eth*\n\n[Network]\nAddress=10.0.2.20/24\n' +
      'Gateway=10.0.2.2\nDNS=10.0.2.3 1.1.1.1\nDomains=example.com\n\n' +
      '[Route]\nDestination=192.168.9.0/24\nGateway=10.0.2.254\n',
  );
  const dhcpMac = parseNetworkFile('20-dhcp.network', '[Match]\nMACAddress=52:54:00:AA:BB:CC\n[Network]\nDHCP=yes\n');

  it('reads Match, Network and Route', () => {
    assert.deepEqual(staticNet.match.names, ['eth*']);
    assert.deepEqual(staticNet.addresses, ['10.0.2.20/24']);
    assert.deepEqual(staticNet.dns, ['10.0.2.3', '1.1.1.1']);
    assert.deepEqual(staticNet.routes, [{ destination: '192.168.9.0/24', gateway: '10.0.2.254' }]);
    assert.equal(dhcpMac.dhcp, true);
    assert.deepEqual(dhcpMac.match.macs, ['52:54:00:aa:bb:cc']);
  });

  it('plans ip commands for the first matching file, DHCP where asked, and resolv.conf', () => {
    const plan = planNetwork(
      [dhcpMac, staticNet],
      [
        { name: 'eth0', mac: '52:54:00:12:34:56' },
        { name: 'ens4', mac: '52:54:00:aa:bb:cc' },
        { name: 'wlan0', mac: '00:00:00:00:00:01' },
      ],
    );
    assert.deepEqual(plan.commands, [
      ['link', 'set', 'eth0', 'up'],
      ['addr', 'replace', '10.0.2.20/24', 'dev', 'eth0'],
      ['route', 'replace', 'default', 'via', '10.0.2.2', 'dev', 'eth0'],
      ['route', 'replace', '192.168.9.0/24', 'via', '10.0.2.254', 'dev', 'eth0'],
      ['link', 'set', 'ens4', 'up'],
    ]);
    assert.deepEqual(plan.dhcp, ['ens4']);
    assert.deepEqual(plan.unmatched, ['wlan0']);
    assert.equal(plan.resolv, 'search example.com\nnameserver 10.0.2.3\nnameserver 1.1.1.1\n');
  });

  it('matches names with shell globs', () => {
    assert.ok(globMatch('en*', 'ens3'));
    assert.ok(globMatch('eth?', 'eth1'));
    assert.ok(!globMatch('eth?', 'eth10'));
    assert.ok(!globMatch('e.h0', 'eth0'));
  });
});
