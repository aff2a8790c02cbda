// End to end: containers on a booted Keel, where cgroup v2 has its controllers (the host of the
// test suite has none): the baked busybox image offline on first boot, the -d demo, and the
// memory, pids and cpu limits enforced by the kernel.
import assert from 'node:assert/strict';
import { testImage } from './image.js';
import { Vm } from './vm.js';

describe('containers on Keel (QEMU)', function () {
  this.timeout(600_000);
  let vm: Vm;
  before(async () => {
    vm = Vm.start({ image: await testImage() });
    await vm.ready();
  });
  after(() => vm?.kill());

  it('runs the baked busybox image offline on first boot', async () => {
    const r = await vm.sh('keel run busybox /bin/echo hello world', 120_000);
    assert.equal(r.code, 0, r.out);
    assert.equal(r.out, 'hello world');
    assert.match((await vm.sh('keel images')).out, /^busybox +latest +[0-9a-f]{12} /m);
  });

  it('keeps a detached container running and its output logged', async () => {
    const id = (await vm.sh(`keel run -d --name pinger busybox /bin/sh -c 'while true; do echo ping; sleep 1; done'`)).out;
    assert.match(id, /^[0-9a-f]{64}$/);
    await vm.sh('sleep 2');
    assert.match((await vm.sh('keel ps')).out, /Up .* pinger$/m);
    assert.match((await vm.sh('keel logs pinger')).out, /^ping\nping/);
    await vm.sh('keel stop -t 1 pinger && keel rm pinger');
    assert.doesNotMatch((await vm.sh('keel ps -a')).out, /pinger/);
  });

  it('kills a container over its --memory with 137, counted in memory.events', async () => {
    const r = await vm.sh(`keel run --name hog --memory 16m busybox sh -c 'x=a; while true; do x=$x$x; done'`, 120_000);
    assert.equal(r.code, 137, r.out);
    const state = JSON.parse((await vm.sh('keel inspect hog')).out)[0].state;
    assert.equal(state.oomKilled, true);
    assert.equal(state.exitCode, 137);
  });

  it('stops a fork bomb at --pids-limit', async () => {
    const r = await vm.sh(`keel run --rm --pids-limit 20 busybox sh -c 'for i in $(seq 50); do sleep 5 & done; wait' 2>&1`, 120_000);
    assert.match(r.out, /can't fork: Resource temporarily unavailable/);
  });

  it('writes --cpus and --pids-limit into the container\'s cgroup before it starts', async () => {
    const id = (await vm.sh('keel run -d --cpus 0.5 --pids-limit 7 busybox sleep 30')).out;
    const cg = `/sys/fs/cgroup/keel.containers/${id}`;
    assert.equal((await vm.sh(`cat ${cg}/cpu.max ${cg}/pids.max`)).out, '50000 100000\n7');
    assert.match((await vm.sh(`cat /proc/$(cat ${cg}/cgroup.procs | head -1)/cgroup`)).out, new RegExp(`^0::/keel.containers/${id}$`));
    await vm.sh(`keel rm -f ${id.slice(0, 8)}`);
  });
});
