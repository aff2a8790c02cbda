// Regression: $private_ipv4 was empty in first-boot user-data (cloud-config ran before DHCP had
// given the machine an address); now the network is brought up first and its address awaited.
import assert from 'node:assert/strict';
import { usesIpv4Variables } from '../../cloud-config/boot.js';
import { awaitAddresses } from '../../init/cloud-config-units.js';

describe('cloud-config: $private_ipv4 on a first boot', () => {
  it('knows when user-data needs an IPv4 address (an escaped \\$private_ipv4 does not)', () => {
    assert.equal(usesIpv4Variables('content: "ip=$private_ipv4"'), true);
    assert.equal(usesIpv4Variables('url: http://$public_ipv4:2379'), true);
    assert.equal(usesIpv4Variables('content: "\\$private_ipv4 is literal"'), false);
    assert.equal(usesIpv4Variables('ip: $private_ipv6'), false);
  });

  it('starts the drivers and DHCP, then waits until an address appears', async () => {
    const jobs: string[] = [];
    let reads = 0;
    const m = {
      lookup: (u: string) => ({ name: u }) as never,
      job: async (u: string, j: string) => {
        jobs.push(`${j} ${u}`);
        return 'done' as const;
      },
    };
    const logs: string[] = [];
    const a = await awaitAddresses(m, (l) => logs.push(l), {
      pollMs: 1,
      addresses: () => (++reads >= 4 ? { private_ipv4: '10.0.2.15' } : {}),
    });
    assert.deepEqual(a, { private_ipv4: '10.0.2.15' });
    assert.deepEqual(jobs, ['start keel-coldplug.service', 'start dhcp.service']);
    assert.deepEqual(logs, [
      'cloud-config: the user-data uses $private_ipv4: bringing the network up first',
      'cloud-config: $private_ipv4 is 10.0.2.15',
    ]);
  });

  it('does nothing when the machine already has an address, and gives up after its bound', async () => {
    const jobs: string[] = [];
    const m = {
      lookup: () => ({}) as never,
      job: async (u: string) => {
        jobs.push(u);
        return 'done' as const;
      },
    };
    assert.deepEqual(await awaitAddresses(m, () => {}, { addresses: () => ({ private_ipv4: '192.0.2.7' }) }), {
      private_ipv4: '192.0.2.7',
    });
    assert.deepEqual(jobs, []);
    const logs: string[] = [];
    assert.deepEqual(await awaitAddresses(m, (l) => logs.push(l), { timeoutMs: 0, addresses: () => ({}) }), {});
    assert.equal(logs.at(-1), 'cloud-config: no address came up: $private_ipv4 stays empty');
  });
});
