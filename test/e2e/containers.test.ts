// End to end: containers on a booted Keel, where cgroup v2 has its controllers (the host of the
// test suite has none): the baked busybox image offline on first boot, the -d demo, the
// memory, pids and cpu limits enforced by the kernel, and an image with a zstd layer, which
// Keel's Node can decompress and the host's Node 20 cannot.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import { serveDirectory } from '../../builder/serve.js';
import { makeZstdArchive, ZSTD_MARKER, ZSTD_WHITEOUT } from '../fixtures/zstd-archive.js';
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
    // The wrapper runs node with `--`: --env-file after the script is keel's, not node's.
    assert.equal(
      (await vm.sh('keel run --rm --env-file /nonexist busybox true 2>&1')).out.trim(),
      'keel: cannot read --env-file /nonexist: no such file',
    );
    // The keel command's bundle left its V8 code cache for the next run.
    assert.match((await vm.sh('ls /var/cache/keel/node/*/ | wc -l')).out.trim(), /^[1-9]\d*$/);
  });

  it('keeps a detached container running and its output logged', async () => {
    const id = (await vm.sh(`keel run -d --name pinger busybox /bin/sh -c 'while true; do echo ping; sleep 1; done'`))
      .out;
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
    const r = await vm.sh(
      `keel run --rm --pids-limit 20 busybox sh -c 'for i in $(seq 50); do sleep 5 & done; wait' 2>&1`,
      120_000,
    );
    assert.match(r.out, /can't fork: Resource temporarily unavailable/);
  });

  it('runs a container in a user namespace of its own (--userns remap): root inside, 100000 outside', async () => {
    const r = await vm.sh(
      `keel run -d --name remapped --userns remap busybox sh -c 'cat ` +
        `/proc/self/uid_map; touch /etc/mine && stat -c %u /etc/mine; sleep 60'`,
      120_000,
    );
    assert.equal(r.code, 0, r.out);
    await vm.sh('sleep 1');
    assert.match((await vm.sh('keel logs remapped')).out, /^ +0 +100000 +65536\n0$/);
    const pid = JSON.parse((await vm.sh('keel inspect remapped')).out)[0].state.pid;
    assert.match((await vm.sh(`grep ^Uid: /proc/${pid}/status`)).out, /^Uid:\t100000\t100000\t100000\t100000$/);
    await vm.sh('keel rm -f remapped');
  });

  it("writes --cpus and --pids-limit into the container's cgroup before it starts", async () => {
    const id = (await vm.sh('keel run -d --cpus 0.5 --pids-limit 7 busybox sleep 30')).out;
    const cg = `/sys/fs/cgroup/keel.containers/${id}`;
    assert.equal((await vm.sh(`cat ${cg}/cpu.max ${cg}/pids.max`)).out, '50000 100000\n7');
    assert.match(
      (await vm.sh(`cat /proc/$(cat ${cg}/cgroup.procs | head -1)/cgroup`)).out,
      new RegExp(`^0::/keel.containers/${id}$`),
    );
    await vm.sh(`keel rm -f ${id.slice(0, 8)}`);
  });

  it('loads an OCI archive with a zstd layer, runs it, and saves and loads it back', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'keel-zstd-e2e-'));
    const server = await serveDirectory(dir, 0, '127.0.0.1');
    try {
      const archive = await makeZstdArchive(dir);
      const url = `http://10.0.2.2:${(server.address() as AddressInfo).port}/${basename(archive.file)}`;
      // QEMU user networking: the host's loopback is 10.0.2.2 (retried while DHCP may still be settling).
      const got = await vm.sh(
        `for i in 1 2 3 4 5 6 7 8 9 10; do wget -q -O /tmp/zstd.tar ${url} && break; sleep 1; done`,
        60_000,
      );
      assert.equal(got.code, 0, got.out);

      const loaded = await vm.sh('keel load -i /tmp/zstd.tar 2>&1', 120_000);
      assert.equal(loaded.code, 0, loaded.out);
      assert.equal(loaded.out, `Loaded image: ${archive.ref}`);
      const probe = (path: string) => `if [ -e ${path} ]; then echo has ${path}; else echo no ${path}; fi`;
      const seen = await vm.sh(
        `keel run --rm ${archive.ref} sh -c 'cat ${ZSTD_MARKER.path}; ` +
          `${probe(ZSTD_WHITEOUT)}; ${probe('/bin/busybox')}' 2>&1`,
        120_000,
      );
      assert.equal(seen.code, 0, seen.out);
      // The zstd layer's file, its whiteout of the gzip layer's /etc/group, and the gzip layer under it.
      assert.equal(seen.out, `${ZSTD_MARKER.content}\nno ${ZSTD_WHITEOUT}\nhas /bin/busybox`);

      // keel save keeps the zstd blob as it is; a docker archive has no media types, so loading it
      // back finds the compression from the blob's magic bytes.
      const saved = await vm.sh(
        `keel save -o /tmp/zstd-saved.tar ${archive.ref} && keel rmi ${archive.ref} ` +
          '>/dev/null && tar -tf /tmp/zstd-saved.tar && keel load -i ' +
          `/tmp/zstd-saved.tar && keel run --rm ${archive.ref} 2>&1`,
        120_000,
      );
      assert.equal(saved.code, 0, saved.out);
      assert.ok(saved.out.split('\n').includes(`blobs/sha256/${archive.zstdDigest.slice(7)}`), saved.out);
      assert.match(saved.out, new RegExp(`^Loaded image: ${archive.ref}\n${ZSTD_MARKER.content}$`, 'm'));
      assert.match(
        (await vm.sh(`keel images`)).out,
        new RegExp(`^localhost/zstd-test +1 +${archive.id.slice(7, 19)} `, 'm'),
      );
    } finally {
      server.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
