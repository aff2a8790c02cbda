// End to end: A/B updates on real boots. The machine's agent fetches a signed payload from an
// update server on the host's loopback, writes the inactive slot, reboots into it; the boot gate
// commits it or the machine falls back. Bad payloads are refused with the slot state untouched.
import assert from 'node:assert/strict';
import { generateKeyPairSync } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { manifestFor, signManifest } from '../../builder/payload.js';
import { testImage } from './image.js';
import { UpdateServer, updateKey, updateUserData } from './update-fixture.js';
import { Vm } from './vm.js';

const BROKEN_INIT = 'process.stderr.write("broken init\\n"); process.exit(1);\n';
const HUNG_INIT = 'for (;;) {}\n';

describe('A/B updates (QEMU)', function () {
  this.timeout(1_500_000);
  let dir: string;
  let image: string;
  let server: UpdateServer;
  const vms: Vm[] = [];
  before(async () => {
    image = await testImage();
    dir = mkdtempSync(join(tmpdir(), 'keel-update-e2e-'));
    server = await UpdateServer.start(join(dir, 'srv'));
  });
  afterEach(() => {
    for (const vm of vms.splice(0)) vm.kill();
  });
  after(() => {
    server.close();
    rmSync(dir, { recursive: true, force: true });
  });

  /** Boots the image on a fresh disk with `userData`; the disk lives in `name` (so it can be booted again). */
  function boot(name: string, userData: string, opts: { uefi?: boolean } = {}): Vm {
    const ud = join(dir, `${name}.yml`);
    writeFileSync(ud, userData);
    const vm = Vm.start({ image, userData: ud, stateDir: join(dir, name), ...opts });
    vms.push(vm);
    return vm;
  }

  /**
   * Publishes 0.2.0 with `init` as the init of its slot, applies it on a fresh machine (disk
   * `name`) and reboots; resolves once the machine is back on slot A, with the console since the
   * reboot.
   */
  async function fallBackFromInit(name: string, init: string): Promise<{ vm: Vm; tail: string }> {
    server.publishDerived(image, '0.2.0', (root) => writeFileSync(join(root, 'usr/lib/keel/init.mjs'), init));
    const vm = boot(name, updateUserData(server, { REBOOT_STRATEGY: 'off', CHECK_INTERVAL: 100000 }));
    await vm.ready();
    assert.equal((await vm.sh('keel update apply --no-reboot 2>&1', 300_000)).code, 0);
    const from = vm.mark();
    vm.type('reboot');
    await vm.waitFor(/keel: booting slot A/, 600_000, from);
    await vm.ready(vm.console.lastIndexOf('keel: booting slot A'));
    return { vm, tail: vm.console.slice(from) };
  }

  const slotOf = async (vm: Vm) => (await vm.sh('grep -o "keel.slot=[AB]" /proc/cmdline')).out;
  const stateFiles =
    'md5sum /run/keel/esp/keel/grubenv /run/keel/esp/keel/grubenv2 | cut -d" " ' +
    '-f1; head -c 4194304 /dev/vda4 | md5sum | cut -d" " -f1';

  it('updates A to B by itself, commits B and stays on it; then B to A the same way (UEFI)', async () => {
    server.publish(image, '0.2.0');
    const vm = boot(
      'happy',
      updateUserData(server, { REBOOT_STRATEGY: 'reboot', CHECK_INTERVAL: 5, HEALTHY_SECONDS: 3 }),
      { uefi: true },
    );
    await vm.ready();
    assert.equal(await slotOf(vm), 'keel.slot=A');
    // The agent finds 0.2.0, writes slot B, and reboots into it (REBOOT_STRATEGY=reboot).
    let from = vm.mark();
    await vm.waitFor(/keel: booting slot B/, 300_000, from);
    await vm.ready(from);
    await vm.waitFor(/boot committed: slot B \(version 0\.2\.0\)/, 60_000, from);
    const st = (await vm.sh('keel update status')).out;
    assert.match(st, /^Booted: slot B, version 0\.2\.0$/m);
    assert.match(st, /^ {2}A: good, version 0\.1\.0$/m);
    assert.match(st, /^ {2}B: good, version 0\.2\.0 \(boots next, booted\)$/m);
    assert.equal((await vm.sh('ls /sys/block/dm-0/slaves')).out, 'vda4');
    // Committed: more reboots stay on B (the server still offers 0.2.0: nothing to do).
    from = vm.mark();
    vm.type('reboot');
    await vm.ready(from);
    assert.equal(await slotOf(vm), 'keel.slot=B');
    assert.doesNotMatch(vm.console.slice(from), /booting slot A/);
    // 0.3.0 goes into slot A the same way.
    server.publish(image, '0.3.0');
    from = vm.mark();
    await vm.waitFor(/keel: booting slot A/, 300_000, from);
    await vm.ready(from);
    await vm.waitFor(/boot committed: slot A \(version 0\.3\.0\)/, 60_000, from);
    assert.match((await vm.sh('keel update status')).out, /^ {2}A: good, version 0\.3\.0 \(boots next, booted\)$/m);
  });

  it(
    'refuses a bad signature, a tampered chunk, an image larger than ' + 'the slot and a downgrade, changing nothing',
    async () => {
      const vm = boot('reject', updateUserData(server, { REBOOT_STRATEGY: 'off', CHECK_INTERVAL: 100000 }));
      await vm.ready();
      const before = (await vm.sh(stateFiles)).out;
      const apply = () => vm.sh('keel update apply --no-reboot 2>&1', 300_000);
      const srv = join(dir, 'srv', 'stable');

      server.publish(image, '0.2.0');
      const other = generateKeyPairSync('ed25519').privateKey.export({ type: 'pkcs8', format: 'pem' }).toString();
      writeFileSync(
        join(srv, 'manifest.json.sig'),
        signManifest(JSON.parse(readFileSync(join(srv, 'manifest.json'), 'utf8')), other).signature + '\n',
      );
      let r = await apply();
      assert.notEqual(r.code, 0);
      assert.match(r.out, /signature does not verify/);

      // A signed manifest for an image bigger than the 256 MiB slot: refused before any download.
      const big = manifestFor(Buffer.alloc(300 * 1048576), '0.2.0', 'usr-big.img', 1 << 20, {
        rootHash: 'ab'.repeat(32),
        hashOffset: 4096,
        salt: '',
      });
      const signed = signManifest(big, readFileSync(updateKey(), 'utf8'));
      writeFileSync(join(srv, 'manifest.json'), signed.bytes);
      writeFileSync(join(srv, 'manifest.json.sig'), signed.signature + '\n');
      r = await apply();
      assert.notEqual(r.code, 0);
      assert.match(r.out, /the image is 314572800 bytes, slot B holds 268435456/);

      server.publish(image, '0.0.9');
      r = await apply();
      assert.notEqual(r.code, 0);
      assert.match(r.out, /older than the running 0\.1\.0/);

      assert.equal((await vm.sh(stateFiles)).out, before, 'the slot state and slot B are unchanged');

      // A tampered chunk is found while downloading: the chunks before it are in slot B, which was
      // never bootable; the slot state is untouched.
      server.publish(image, '0.2.0');
      const img = join(srv, 'usr-0.2.0.img');
      const data = readFileSync(img);
      data[3 * 1048576 + 5] ^= 0xff;
      writeFileSync(img, data);
      r = await apply();
      assert.notEqual(r.code, 0);
      assert.match(r.out, /chunk 3 /);

      assert.equal(
        (await vm.sh(stateFiles)).out.split('\n').slice(0, 2).join('\n'),
        before.split('\n').slice(0, 2).join('\n'),
      );
      const st = (await vm.sh('keel update status')).out;
      assert.match(st, /^ {2}A: good, version 0\.1\.0 \(boots next, booted\)$/m);
      assert.match(st, /^ {2}B: empty$/m);
    },
  );

  it('resumes after a power cut mid-download; the machine boots A meanwhile, then B', async () => {
    const slow = await UpdateServer.start(join(dir, 'slow'), { bytesPerSecond: 6 * 1048576 });
    try {
      slow.publish(image, '0.2.0');
      const vm = boot(
        'power',
        updateUserData(slow, { REBOOT_STRATEGY: 'off', CHECK_INTERVAL: 100000, HEALTHY_SECONDS: 2 }),
      );
      await vm.ready();
      const from = vm.mark();
      vm.type('keel update apply --no-reboot');
      await vm.waitFor(/downloading: [\d.]+ MiB of [\d.]+ MiB \((3|4|5|6)\d%\)/, 300_000, from);
      vm.kill();
      await vm.exited();
      const again = Vm.start({ image, stateDir: join(dir, 'power'), userData: join(dir, 'power.yml') });
      vms.push(again);
      await again.ready();
      assert.equal(await slotOf(again), 'keel.slot=A');
      assert.match((await again.sh('keel update status')).out, /^ {2}B: empty$/m);
      const r = await again.sh('keel update apply --no-reboot 2>&1', 300_000);
      assert.equal(r.code, 0, r.out);
      assert.match(r.out, /MiB resumed/);
      assert.match(r.out, /update 0\.2\.0 written to slot B and verified/);
      const f = again.mark();
      again.type('reboot');
      await again.ready(f);
      assert.equal(await slotOf(again), 'keel.slot=B');
      await again.waitFor(/boot committed: slot B/, 60_000, f);
    } finally {
      slow.close();
    }
  });

  it('marks a slot bad at once when a health unit fails, and is back on A', async () => {
    server.publish(image, '0.2.0');
    const health = `coreos:
  units:
    - name: health-check.service
      enable: true
      content: |
        [Unit]
        Description=Healthy only on slot A
        Before=boot-complete.target
        [Service]
        Type=oneshot
        ExecStart=/bin/sh -c 'grep -q keel.slot=A /proc/cmdline'
        [Install]
        RequiredBy=boot-complete.target
`;
    const vm = boot(
      'health',
      updateUserData(server, { REBOOT_STRATEGY: 'off', CHECK_INTERVAL: 100000, HEALTHY_SECONDS: 2 }, health),
    );
    await vm.ready();
    assert.equal((await vm.sh('keel update apply --no-reboot 2>&1', 300_000)).code, 0);
    const from = vm.mark();
    vm.type('reboot');
    await vm.waitFor(/keel: booting slot B/, 120_000, from);
    await vm.waitFor(/slot B marked bad: boot-complete\.target failed/, 120_000, from);
    await vm.waitFor(/keel: booting slot A/, 120_000, from);
    await vm.ready(vm.console.lastIndexOf('keel: booting slot A'));
    assert.equal(await slotOf(vm), 'keel.slot=A');
    const st = (await vm.sh('keel update status')).out;
    assert.match(st, /^ {2}B: bad, version 0\.2\.0$/m);
    assert.match(st, /^Rollback: .*slot B \(version 0\.2\.0\) did not boot; running slot A/m);
  });

  it('falls back to A after three tries of a slot whose init cannot start, and reports the rollback', async () => {
    const { vm, tail } = await fallBackFromInit('broken', BROKEN_INIT);
    assert.equal(tail.match(/keel: booting slot B/g)?.length, 3, 'three tries of B');
    assert.equal(tail.match(/broken init/g)?.length, 3);
    assert.match(tail, /rollback: slot B \(version 0\.2\.0\) did not boot; running slot A \(version 0\.1\.0\)/);
    assert.match((await vm.sh('keel update status')).out, /^Rollback: .*slot B \(version 0\.2\.0\) did not boot/m);
  });

  it('falls back to A when one byte of the new slot is flipped: dm-verity refuses it', async () => {
    server.publish(image, '0.2.0');
    const vm = boot('flip', updateUserData(server, { REBOOT_STRATEGY: 'off', CHECK_INTERVAL: 100000 }));
    await vm.ready();
    assert.equal((await vm.sh('keel update apply --no-reboot 2>&1', 300_000)).code, 0);
    // One byte in the middle of B's squashfs, after the agent verified it.
    const flip = await vm.sh(
      'o=$((16*1048576+12345)); b=$(dd if=/dev/vda4 bs=1 skip=$o count=1 2>/dev/null | od ' +
        '-An -tu1 | tr -d " "); printf "\\\\$(printf %03o $((255-b)))" | dd of=/dev/vda4 bs=1 ' +
        'seek=$o conv=notrunc 2>/dev/null; sync; echo flipped $b',
    );
    assert.match(flip.out, /^flipped \d+$/);
    const from = vm.mark();
    vm.type('reboot');
    await vm.waitFor(/keel: booting slot A/, 600_000, from);
    await vm.ready(vm.console.lastIndexOf('keel: booting slot A'));
    const tail = vm.console.slice(from);
    assert.equal(tail.match(/USR-B does not match its dm-verity root hash/g)?.length, 3);
    assert.equal(await slotOf(vm), 'keel.slot=A');
  });

  it('counts a hang of the new slot as a try: the watchdog resets it, then the machine is back on A', async () => {
    const { tail } = await fallBackFromInit('hang', HUNG_INIT);
    assert.equal(tail.match(/keel: booting slot B/g)?.length, 3);
    // Reset by the watchdog: no panic, no orderly reboot in between.
    assert.doesNotMatch(tail, /Kernel panic|rebooting in 5s/);
    assert.match(tail, /rollback: slot B \(version 0\.2\.0\) did not boot/);
  });
});
