// End to end: GRUB's A/B rule on a real boot. A slot with TRIES boots until they run out, each boot
// using one up (save_env), then the machine is back on the good slot; garbage in grubenv still boots.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { closeSync, mkdtempSync, openSync, readFileSync, readSync, rmSync, writeFileSync, writeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { encodeGrubenv } from '../../slots/grubenv.js';
import { slotVars } from '../../slots/rule.js';
import { testImage } from './image.js';
import { Vm } from './vm.js';

/** A copy of the image with USR-A copied into USR-B and the given grubenv contents. */
function preparedImage(dir: string, image: string, env1: Buffer, env2: Buffer, copyB: boolean): string {
  const out = join(dir, `disk-${Math.random().toString(36).slice(2)}.img`);
  execFileSync('cp', ['--sparse=always', image, out]);
  const parts = Object.fromEntries(
    JSON.parse(execFileSync('sfdisk', ['--json', out], { encoding: 'utf8' })).partitiontable.partitions.map(
      (p: any) => [p.name, p],
    ),
  );
  if (copyB) {
    const usrBytes = JSON.parse(readFileSync(image.replace(/keel\.img$/, 'keel.manifest.json'), 'utf8')).usr
      .bytes as number;
    const fd = openSync(out, 'r+');
    const buf = Buffer.alloc(usrBytes);
    readSync(fd, buf, 0, usrBytes, parts['USR-A'].start * 512);
    writeSync(fd, buf, 0, usrBytes, parts['USR-B'].start * 512);
    closeSync(fd);
  }
  const esp = `${out}@@${parts['EFI-SYSTEM'].start * 512}`;
  writeFileSync(join(dir, 'grubenv'), env1);
  writeFileSync(join(dir, 'grubenv2'), env2);
  execFileSync('mcopy', ['-o', '-i', esp, join(dir, 'grubenv'), '::/keel/grubenv'], {
    env: { ...process.env, MTOOLS_SKIP_CHECK: '1' },
  });
  execFileSync('mcopy', ['-o', '-i', esp, join(dir, 'grubenv2'), '::/keel/grubenv2'], {
    env: { ...process.env, MTOOLS_SKIP_CHECK: '1' },
  });
  return out;
}

describe('A/B slots with GRUB boot counting (QEMU)', function () {
  this.timeout(900_000);
  let dir: string;
  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'keel-slots-'));
    // The grubenv the build wrote, read off the ESP.
    const image = await testImage();
    const parts = Object.fromEntries(
      JSON.parse(execFileSync('sfdisk', ['--json', image], { encoding: 'utf8' })).partitiontable.partitions.map(
        (p: any) => [p.name, p],
      ),
    );
    execFileSync(
      'mcopy',
      ['-o', '-i', `${image}@@${parts['EFI-SYSTEM'].start * 512}`, '::/keel/grubenv', join(dir, 'grubenv-built')],
      { env: { ...process.env, MTOOLS_SKIP_CHECK: '1' } },
    );
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  it('boots a slot with TRIES=3 three times, counting down, then falls back to the good slot', async () => {
    const image = await testImage();
    // USR-B gets a copy of USR-A, so both slots carry the same verity root hash.
    const hash = JSON.parse(readFileSync(image.replace(/keel\.img$/, 'keel.manifest.json'), 'utf8')).usr.verity
      .rootHash as string;
    const env = encodeGrubenv(
      slotVars({ order: ['B', 'A'], A: { ok: true, tries: 0, hash }, B: { ok: false, tries: 3, hash } }),
    );
    const vm = Vm.start({ image: preparedImage(dir, image, env, env, true) });
    try {
      const slots: string[] = [];
      const tries: string[] = [];
      let from = 0;
      for (let boot = 0; boot < 4; boot++) {
        await vm.ready(from);
        // The OS mounts the ESP at /run/keel/esp (vfat cannot be mounted twice).
        const r = await vm.sh(
          'grep -o "keel.slot=[AB]" /proc/cmdline; grep -h KEEL_B_TRIES ' +
            '/run/keel/esp/keel/grubenv /run/keel/esp/keel/grubenv2; ls /sys/block/dm-0/slaves',
        );
        const [slot, t1, t2, dev] = r.out.split('\n');
        // / is the slot's own partition, through dm-verity: vda3 is USR-A, vda4 USR-B.
        slots.push(`${slot} ${dev}`);
        assert.equal(t1, t2, 'both copies agree');
        tries.push(t1);
        from = vm.mark();
        if (boot < 3) vm.type('reboot');
      }
      const story = vm.console
        .split('\n')
        .filter((l) => /keel|KEEL/.test(l))
        .join('\n');
      assert.deepEqual(
        slots,
        ['keel.slot=B vda4', 'keel.slot=B vda4', 'keel.slot=B vda4', 'keel.slot=A vda3'],
        `${tries.join(' ')}\n${story}`,
      );
      // Trial boots read all of the new slot through dm-verity first; and the way back is reported.
      assert.equal(vm.console.match(/trial boot of USR-B: reading all of it through dm-verity/g)?.length, 3);
      assert.match(vm.console, /rollback: slot B did not boot; running slot A/);
      assert.deepEqual(tries, ['KEEL_B_TRIES=2', 'KEEL_B_TRIES=1', 'KEEL_B_TRIES=0', 'KEEL_B_TRIES=0']);
      assert.match(
        (await vm.sh('grep -c " / squashfs" /proc/mounts; grep " / " /proc/mounts')).out,
        /^1\n\/dev\/dm-0 /,
      );
    } finally {
      vm.kill();
    }
  });

  it('boots with one grubenv copy corrupted, and the OS repairs it from the other (BIOS)', async () => {
    const image = await testImage();
    const good = readFileSync(join(dir, 'grubenv-built'));
    const torn = Buffer.from(good);
    torn.write('garbage', 0);
    const vm = Vm.start({ image: preparedImage(dir, image, torn, good, false) });
    try {
      await vm.ready();
      assert.equal((await vm.sh('grep -o "keel.slot=[AB]" /proc/cmdline')).out, 'keel.slot=A');
      assert.match(vm.console, /keel: repaired the slot state copy \/run\/keel\/esp\/keel\/grubenv$/m);
      assert.equal(
        (await vm.sh('cmp /run/keel/esp/keel/grubenv /run/keel/esp/keel/grubenv2 && echo same')).out,
        'same',
      );
    } finally {
      vm.kill();
    }
  });

  it('boots slot A when both grubenv copies are garbage, and the OS repairs them', async () => {
    const garbage = Buffer.alloc(1024, 0x41);
    const vm = Vm.start({
      image: preparedImage(dir, await testImage(), garbage, Buffer.alloc(1024), false),
      uefi: true,
    });
    try {
      await vm.ready();
      assert.equal((await vm.sh('grep -o "keel.slot=[AB]" /proc/cmdline')).out, 'keel.slot=A');
      assert.match(vm.console, /keel: repaired the slot state copy \/run\/keel\/esp\/keel\/grubenv2/);
      const env = await vm.sh(
        'head -c 24 /run/keel/esp/keel/grubenv; echo; grep -h KEEL_ORDER ' +
          '/run/keel/esp/keel/grubenv /run/keel/esp/keel/grubenv2',
      );
      assert.equal(env.out, '# GRUB Environment Block\nKEEL_ORDER=A B\nKEEL_ORDER=A B');
    } finally {
      vm.kill();
    }
  });
});
