// End to end: the built image boots in QEMU (BIOS and UEFI) to a Node PID 1 with the promised mounts.
import assert from 'node:assert/strict';
import { testImage } from './image.js';
import { Vm } from './vm.js';

for (const firmware of ['bios', 'uefi'] as const) {
  describe(`boot in QEMU (${firmware.toUpperCase()})`, function () {
    this.timeout(600_000);
    let vm: Vm;

    before(async () => {
      vm = Vm.start({ image: await testImage(), uefi: firmware === 'uefi', memoryMiB: 1024 });
      await vm.ready();
    });
    after(() => vm?.kill());

    it('runs node as PID 1', async () => {
      const r = await vm.sh('cat /proc/1/comm; tr "\\0" " " < /proc/1/cmdline');
      assert.equal(r.code, 0);
      assert.match(r.out, /^node\n\/usr\/bin\/node --disable-sigusr1 \/usr\/lib\/keel\/init\.mjs/);
    });

    it('mounts USR read-only as /, ROOT on /var, an overlay on /etc, tmpfs on /run and /tmp', async () => {
      const m = (await vm.sh('cat /proc/self/mounts')).out;
      // USR-A (vda3) through dm-verity: the read-only verity device sits on the partition.
      assert.match(m, /^\/dev\/dm-0 \/ squashfs ro[,\s]/m);
      const dm = await vm.sh('ls /sys/block/dm-0/slaves; cat /sys/block/dm-0/dm/name /sys/block/dm-0/ro');
      assert.equal(dm.out, 'vda3\nusr\n1');
      assert.match(m, /^\/dev\/vda9 \/var ext4 rw[,\s]/m);
      assert.match(m, /^overlay \/etc overlay rw,.*upperdir=\/var\/lib\/keel\/overlay\/etc\/upper/m);
      assert.match(m, /^tmpfs \/run tmpfs rw/m);
      assert.match(m, /^tmpfs \/tmp tmpfs rw/m);
      assert.match(m, /^cgroup2 \/sys\/fs\/cgroup cgroup2 /m);
      assert.match(m, /^devpts \/dev\/pts devpts /m);
      const w = await vm.sh('touch /usr/keel-test 2>&1');
      assert.notEqual(w.code, 0);
      assert.match(w.out, /Read-only file system/);
    });

    it('has its hostname and lo up', async () => {
      assert.equal((await vm.sh('hostname')).out, 'keel');
      assert.match((await vm.sh('ip link show lo')).out, /<LOOPBACK,UP,LOWER_UP>/);
    });

    it('reaps orphaned processes', async () => {
      // Each background sleep is orphaned when its shell exits and re-parented to PID 1.
      const r = await vm.sh(
        'for i in 1 2 3 4 5 6 7 8 9 10; do sh -c "sleep 0.3 &"; done; sleep 2; ' +
          'grep -l "^State:.*Z" /proc/[0-9]*/status | wc -l',
      );
      assert.equal(r.out.trim(), '0');
    });

    it('keeps what is written to /var and /etc across a reboot', async () => {
      await vm.sh('echo kept-var > /var/lib/keel-test && echo kept-etc > /etc/keel-test && sync');
      const from = vm.mark();
      vm.type('reboot');
      await vm.ready(from);
      assert.equal((await vm.sh('cat /var/lib/keel-test')).out, 'kept-var');
      assert.equal((await vm.sh('cat /etc/keel-test')).out, 'kept-etc');
      // ROOT was made on the first boot only.
      assert.doesNotMatch(vm.console.slice(from), /first boot: making ext4/);
    });

    it('powers off and QEMU exits on its own', async () => {
      vm.type('poweroff');
      assert.equal(await vm.exited(), 0);
      assert.match(vm.console, /keel: poweroff: reboot\(2\)/);
    });
  });
}
