import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { installBootCode, patchCoreImg } from '../../builder/bios-boot.js';
import { parseGpt } from '../../builder/gpt.js';

const golden = (name: string) => readFileSync(new URL(`../../../test/golden/${name}`, import.meta.url));
const GRUB_PC = '/usr/lib/grub/i386-pc';

// A core.img as grub-mkimage lays it out: diskboot's sector ends in the default blocklist entry
// (start 2, length 0, segment 0x820, from diskboot.S), then the rest of GRUB.
function syntheticCore(totalBytes: number): Buffer {
  const core = Buffer.alloc(totalBytes, 0xcc);
  core.fill(0, 488, 512); // the terminator entry below the first one
  Buffer.from('020000000000000000002008', 'hex').copy(core, 500);
  return core;
}

// A boot.img stand-in: recognisable code bytes, GRUB's default kernel sector (1) at 0x5c, 0x55AA.
function syntheticBootImg(): Buffer {
  const img = Buffer.alloc(512);
  for (let i = 0; i < 510; i++) img[i] = (i * 7) & 0xff;
  img.writeBigUInt64LE(1n, 0x5c);
  img[510] = 0x55;
  img[511] = 0xaa;
  return img;
}

describe('builder/bios-boot', () => {
  it('patches the first blocklist entry at offsets 500 and 508 (golden)', () => {
    const core = syntheticCore(2012); // 4 sectors, the last one partial
    const out = patchCoreImg(core, 2048n);
    // start = 2049 (u64 LE), length = 3 (u16 LE), segment 0x0820 untouched.
    assert.equal(out.subarray(500, 512).toString('hex'), '010800000000000003002008');
    assert.equal(out.readBigUInt64LE(500), 2049n);
    assert.equal(out.readUInt16LE(508), 3);
    assert.ok(
      out.subarray(0, 500).equals(core.subarray(0, 500)) && out.subarray(512).equals(core.subarray(512)),
      'only the entry changes',
    );
    assert.equal(core.readBigUInt64LE(500), 2n, 'input left untouched');
    assert.equal(patchCoreImg(syntheticCore(1024), 34n).readUInt16LE(508), 1);
  });

  it('refuses what is not a diskboot core.img', () => {
    assert.throws(() => patchCoreImg(syntheticCore(512), 2048n), {
      code: 'EBIOSBOOT',
      message: /512 bytes is too small/,
    });
    assert.throws(() => patchCoreImg(Buffer.alloc(4096), 2048n), {
      code: 'EBIOSBOOT',
      message: /load segment 0x0, expected 0x820/,
    });
    const noTerminator = syntheticCore(4096);
    noTerminator.writeUInt16LE(5, 496);
    assert.throws(() => patchCoreImg(noTerminator, 2048n), { code: 'EBIOSBOOT', message: /terminator/ });
    assert.throws(() => patchCoreImg(syntheticCore(1024), 2048 as unknown as bigint), {
      name: 'TypeError',
      message: /received 2048/,
    });
    assert.throws(() => patchCoreImg(syntheticCore(512 * 0x10002), 1n), {
      code: 'EBIOSBOOT',
      message: /65537 sectors/,
    });
  });

  it('installs boot code into the protective MBR, keeping the partition table', () => {
    const primary = golden('gpt-16m.primary.bin');
    const mbr = primary.subarray(0, 512);
    const boot = syntheticBootImg();
    const out = installBootCode(mbr, boot, 6144n);
    assert.equal(out.readBigUInt64LE(0x5c), 6144n);
    assert.ok(out.subarray(0, 0x5c).equals(boot.subarray(0, 0x5c)));
    assert.ok(out.subarray(0x64, 440).equals(boot.subarray(0x64, 440)));
    assert.ok(out.subarray(440).equals(mbr.subarray(440)), 'disk signature, 0xEE entry and 0x55AA kept');
    assert.equal(out[450], 0xee);
    // The MBR is outside every GPT CRC: the table still parses.
    assert.equal(parseGpt(Buffer.concat([out, primary.subarray(512)])).partitions.length, 6);
  });

  it("patches out boot.img's boot-drive check (0x66) as grub-install does for hard disks", () => {
    const real = readFileSync('/usr/lib/grub/i386-pc/boot.img');
    assert.equal(real[0x66], 0xeb, 'boot.img has the jmp there');
    const out = installBootCode(Buffer.alloc(512), real, 2048n);
    assert.deepEqual([...out.subarray(0x66, 0x68)], [0x90, 0x90]);
    assert.ok(out.subarray(0x68, 440).equals(real.subarray(0x68, 440)));
  });

  it('refuses bad boot code arguments', () => {
    const mbr = Buffer.alloc(512);
    assert.throws(() => installBootCode(mbr, Buffer.alloc(446), 1n), { name: 'TypeError', message: /446 bytes/ });
    assert.throws(() => installBootCode(Buffer.alloc(4096), syntheticBootImg(), 1n), {
      name: 'TypeError',
      message: /4096 bytes/,
    });
    assert.throws(() => installBootCode(mbr, Buffer.alloc(512), 1n), { code: 'EBIOSBOOT', message: /0x55AA/ });
    assert.throws(() => installBootCode(mbr, syntheticBootImg(), 0n), { name: 'TypeError', message: /received 0/ });
  });

  describe("with GRUB's own images", function () {
    before(function () {
      assert.ok(
        existsSync(join(GRUB_PC, 'boot.img')) && existsSync(join(GRUB_PC, 'diskboot.img')),
        'GRUB i386-pc images missing: run make deps (grub-pc-bin)',
      );
    });

    it('finds the kernel sector field where boot.img keeps its default (1)', () => {
      const boot = readFileSync(join(GRUB_PC, 'boot.img'));
      assert.equal(boot.readBigUInt64LE(0x5c), 1n);
      const out = installBootCode(golden('gpt-16m.primary.bin').subarray(0, 512), boot, 6144n);
      assert.equal(out.readBigUInt64LE(0x5c), 6144n);
      assert.ok(out.subarray(0, 0x5c).equals(boot.subarray(0, 0x5c)));
    });

    it("accepts diskboot.img and matches grub-mkimage's own length", function () {
      const diskboot = readFileSync(join(GRUB_PC, 'diskboot.img'));
      assert.equal(patchCoreImg(Buffer.concat([diskboot, Buffer.alloc(3000)]), 100n).readUInt16LE(508), 6);
      assert.ok(
        !spawnSync('grub-mkimage', ['--version'], { stdio: 'ignore' }).error,
        'grub-mkimage missing: run make deps (grub-common)',
      );
      const dir = mkdtempSync(join(tmpdir(), 'keel-core-'));
      try {
        const file = join(dir, 'core.img');
        execFileSync('grub-mkimage', [
          '-O',
          'i386-pc',
          '-d',
          GRUB_PC,
          '-o',
          file,
          '-p',
          '/keel',
          'biosdisk',
          'part_gpt',
        ]);
        const core = readFileSync(file);
        const out = patchCoreImg(core, 6144n);
        assert.equal(out.readUInt16LE(508), core.readUInt16LE(508), 'grub-mkimage fills in the same length');
        assert.equal(out.readBigUInt64LE(500), 6145n);
      } finally {
        rmSync(dir, { recursive: true, force: true });
      }
    });
  });
});
