// End to end: docker's default bridge network on a booted Keel. A published port of a container
// is reached from this host through QEMU's user network (host 127.0.0.1:<free port> -> guest
// 8080 -> keel0 -> the container's 8888), and on the machine itself at 127.0.0.1:8080; keel rm
// closes it again. (The guest's busybox wget is used without -T: busybox 1.35's wget crashes with it.)
import assert from 'node:assert/strict';
import { createServer } from 'node:net';
import { testImage } from './image.js';
import { Vm } from './vm.js';

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.on('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address() as { port: number };
      s.close(() => resolve(port));
    });
  });
}

/** The body of GET http://127.0.0.1:port/ from this host, or the error. */
async function get(port: number): Promise<string> {
  const ctl = new AbortController();
  const timer = setTimeout(() => ctl.abort(), 10_000);
  try {
    const r = await fetch(`http://127.0.0.1:${port}/`, { signal: ctl.signal });
    return `${r.status} ${await r.text()}`;
  } catch (e) {
    return `error: ${(e as Error).message}`;
  } finally {
    clearTimeout(timer);
  }
}

describe('bridge network on Keel (QEMU)', function () {
  this.timeout(600_000);
  let vm: Vm;
  let port: number;
  before(async () => {
    port = await freePort();
    vm = Vm.start({ image: await testImage(), hostForwards: [{ host: port, guest: 8080 }] });
    await vm.ready();
  });
  after(() => vm?.kill());

  it('publishes a container port to the machine and, through QEMU, to this host; keel rm closes it', async () => {
    const run = await vm.sh(
      `keel run -d -p 8080:8888 --name web busybox sh -c 'mkdir /www; echo hello ` +
        `from keel > /www/index.html; httpd -f -p 8888 -h /www'`,
      120_000,
    );
    assert.equal(run.code, 0, run.out);
    assert.match(run.out, /^[0-9a-f]{64}$/);
    // Inside the guest, at 127.0.0.1 (the output hook's DNAT), once httpd listens.
    const local = await vm.sh(
      'for i in $(seq 50); do wget -qO- http://127.0.0.1:8080/ 2>/dev/null && break; sleep 0.2; done',
      60_000,
    );
    assert.equal(local.out, 'hello from keel');
    // From this host: QEMU forwards to the guest's 10.0.2.15:8080, DNATed in prerouting.
    assert.equal(await get(port), '200 hello from keel\n');
    assert.match((await vm.sh('keel ps')).out, /Up .* 0\.0\.0\.0:8080->8888\/tcp +web$/m);
    assert.match((await vm.sh('keel inspect web')).out, /"ipAddress": "10\.88\.\d+\.\d+"/);
    assert.match((await vm.sh('nft list table ip keel')).out, /dnat to 10\.88\.\d+\.\d+:8888/);

    assert.equal((await vm.sh('keel rm -f web')).code, 0);
    assert.notEqual((await vm.sh('wget -qO- http://127.0.0.1:8080/ >/dev/null 2>&1')).code, 0);
    assert.match(await get(port), /^error: /);
    assert.doesNotMatch(
      (await vm.sh('nft list table ip keel; ip -o link show; ls /run/keel/netns')).out,
      /8888|veth|ctr_/,
    );
  });

  it(
    "lets a container reach the machine's gateway through NAT, with " + "the machine's nameserver in its resolv.conf",
    async () => {
      const r = await vm.sh(
        `keel run --rm busybox sh -c 'cat /etc/resolv.conf; ip route; ping -c 1 ` +
          `-W 5 10.0.2.2 >/dev/null && echo gateway reachable'`,
        60_000,
      );
      assert.equal(r.code, 0, r.out);
      assert.match(r.out, /^nameserver 10\.0\.2\.3$/m);
      assert.match(r.out, /^default via 10\.88\.0\.1 dev eth0/m);
      assert.match(r.out, /^gateway reachable$/m);
    },
  );
});
