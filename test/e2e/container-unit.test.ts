// End to end: how people run their apps on Keel. A Quadlet-style .container unit from cloud-config
// serves HTTP on a published port, reached from this host through QEMU's port forward; when the
// container dies, Restart= brings it back.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { testImage } from './image.js';
import { Vm } from './vm.js';

const USER_DATA = `#cloud-config
coreos:
  units:
    - name: web.container
      enable: true
      command: start
      content: |
        [Unit]
        Description=Web server in a container
        [Container]
        Image=busybox
        Exec=/bin/sh -c "mkdir -p /www; echo hello from a unit > /www/index.html; exec httpd -f -p 8888 -h /www"
        PublishPort=8081:8888
        [Service]
        Restart=always
        RestartSec=1
        [Install]
        WantedBy=multi-user.target
`;

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

/** GET http://127.0.0.1:port/ from this host, retried until `want` or 60 s. */
async function getUntil(port: number, want: string): Promise<string> {
  let last = '';
  for (const until = Date.now() + 60_000; Date.now() < until;) {
    try {
      const r = await fetch(`http://127.0.0.1:${port}/`, { signal: AbortSignal.timeout(5000) });
      last = `${r.status} ${await r.text()}`;
      if (last === want) return last;
    } catch (e) {
      last = `error: ${(e as Error).message}`;
    }
    await new Promise((r) => setTimeout(r, 500));
  }
  return last;
}

describe('a .container unit from cloud-config (QEMU)', function () {
  this.timeout(600_000);
  let vm: Vm;
  let dir: string;
  let port: number;
  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'keel-ctunit-'));
    writeFileSync(join(dir, 'user-data'), USER_DATA);
    port = await freePort();
    vm = Vm.start({
      image: await testImage(),
      userData: join(dir, 'user-data'),
      hostForwards: [{ host: port, guest: 8081 }],
    });
    await vm.ready();
  });
  after(() => {
    vm?.kill();
    rmSync(dir, { recursive: true, force: true });
  });

  it('serves HTTP on its published port, reached from this host', async () => {
    assert.equal(await getUntil(port, '200 hello from a unit\n'), '200 hello from a unit\n');
    assert.match(
      (await vm.sh('systemctl is-active web.service; systemctl is-enabled web.service')).out,
      /^active\nenabled$/,
    );
    assert.match((await vm.sh('keel ps')).out, /Up .*0\.0\.0\.0:8081->8888\/tcp +systemd-web$/m);
  });

  it('is started again by Restart= when the container dies', async () => {
    const pid = (await vm.sh(`keel inspect systemd-web | sed -n 's/.*"pid": \\([0-9]*\\).*/\\1/p'`)).out;
    assert.match(pid, /^\d+$/);
    await vm.sh(`kill -9 ${pid}`);
    assert.equal(await getUntil(port, '200 hello from a unit\n'), '200 hello from a unit\n');
    const newPid = (await vm.sh(`keel inspect systemd-web | sed -n 's/.*"pid": \\([0-9]*\\).*/\\1/p'`)).out;
    assert.match(newPid, /^\d+$/);
    assert.notEqual(newPid, pid);
    assert.match((await vm.sh('keel logs -u web.service -n 50')).out, /restart counter is at 1/);
  });
});
