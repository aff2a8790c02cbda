import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { closeSync, ftruncateSync, mkdtempSync, openSync, readFileSync, rmSync, writeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { crc32 } from 'node:zlib';
import { buildGpt, layoutPartitions, parseGpt, relocateBackup, type GptImage } from '../../builder/gpt.js';
import {
  deterministicGuid,
  GPT_TYPE_BIOS_BOOT,
  GPT_TYPE_COREOS_RESIZE,
  GPT_TYPE_COREOS_USR,
  GPT_TYPE_EFI_SYSTEM,
  GPT_TYPE_LINUX_FILESYSTEM,
} from '../../builder/guid.js';

// The golden tables were written by sfdisk itself from test/golden/gpt-16m.sfdisk (see its header),
// then checked with `sfdisk --verify` and `sgdisk -v`.
const golden = (name: string) => readFileSync(new URL(`../../../test/golden/${name}`, import.meta.url));
const MiB = 1024 * 1024;
const SEED = 'keel-golden';

// Container Linux numbering: slots 5, 7 and 8 stay empty.
const specs = [
  { index: 1, name: 'EFI-SYSTEM', typeGuid: GPT_TYPE_EFI_SYSTEM, sizeBytes: 2 * MiB },
  { index: 2, name: 'BIOS-BOOT', typeGuid: GPT_TYPE_BIOS_BOOT, sizeBytes: 1 * MiB },
  { index: 3, name: 'USR-A', typeGuid: GPT_TYPE_COREOS_USR, sizeBytes: 4 * MiB, attributes: (1n << 48n) | (1n << 56n) },
  { index: 4, name: 'USR-B', typeGuid: GPT_TYPE_COREOS_USR, sizeBytes: 4 * MiB },
  { index: 6, name: 'OEM', typeGuid: GPT_TYPE_LINUX_FILESYSTEM, sizeBytes: 1 * MiB },
  { index: 9, name: 'ROOT', typeGuid: GPT_TYPE_COREOS_RESIZE, sizeBytes: 2 * MiB },
].map((s) => ({ ...s, guid: deterministicGuid(SEED, s.name) }));

function goldenLayout(): { image: GptImage; diskSizeBytes: number } {
  const { partitions, diskSizeBytes } = layoutPartitions(specs);
  return { image: buildGpt({ diskSizeBytes, diskGuid: deterministicGuid(SEED, 'disk'), partitions }), diskSizeBytes };
}

function hasTool(name: string): boolean {
  return !spawnSync(name, ['--version'], { stdio: 'ignore' }).error;
}

function writeDisk(path: string, size: number, image: GptImage): void {
  const fd = openSync(path, 'w');
  try {
    ftruncateSync(fd, size); // sparse
    writeSync(fd, image.primary, 0, image.primary.length, 0);
    writeSync(fd, image.backup, 0, image.backup.length, image.backupOffsetBytes);
  } finally {
    closeSync(fd);
  }
}

describe('builder/gpt', () => {
  it('lays partitions out in list order from 1 MiB, aligned, with room for the backup table', () => {
    const { partitions, diskSizeBytes } = layoutPartitions(specs);
    assert.deepEqual(
      partitions.map((p) => [p.index, p.offsetBytes / MiB, p.firstLba, p.lastLba]),
      [
        [1, 1, 2048n, 6143n],
        [2, 3, 6144n, 8191n],
        [3, 4, 8192n, 16383n],
        [4, 8, 16384n, 24575n],
        [6, 12, 24576n, 26623n],
        [9, 13, 26624n, 30719n],
      ],
    );
    assert.equal(diskSizeBytes, 16 * MiB); // 15 MiB of partitions + 33 sectors, rounded up
  });

  it('aligns odd sizes and honours alignBytes', () => {
    const { partitions, diskSizeBytes } = layoutPartitions(
      [
        { name: 'a', typeGuid: GPT_TYPE_LINUX_FILESYSTEM, guid: deterministicGuid('s', 'a'), sizeBytes: 512 },
        { name: 'b', typeGuid: GPT_TYPE_LINUX_FILESYSTEM, guid: deterministicGuid('s', 'b'), sizeBytes: 4 * MiB },
      ],
      { alignBytes: 4 * MiB },
    );
    assert.deepEqual(
      partitions.map((p) => p.offsetBytes / MiB),
      [4, 8],
    );
    assert.equal(diskSizeBytes, 16 * MiB);
    assert.throws(() => layoutPartitions([{ ...specs[0]!, sizeBytes: 1000 }]), { name: 'TypeError', message: /1000/ });
    assert.throws(() => layoutPartitions(specs, { alignBytes: 1000 }), { name: 'TypeError', message: /1000/ });
  });

  it('builds the same bytes sfdisk writes (golden)', () => {
    const { image } = goldenLayout();
    const primary = golden('gpt-16m.primary.bin');
    const backup = golden('gpt-16m.backup.bin');
    // Header fields first, for a readable failure before the byte comparison.
    const h = image.primary.subarray(512, 1024);
    assert.equal(h.toString('latin1', 0, 8), 'EFI PART');
    assert.equal(h.readUInt32LE(16), primary.readUInt32LE(512 + 16), 'primary header CRC32');
    assert.equal(h.readUInt32LE(88), primary.readUInt32LE(512 + 88), 'entry array CRC32');
    assert.equal(h.readUInt32LE(88), crc32(image.primary.subarray(1024, 1024 + 128 * 128)));
    assert.equal(image.backup.readUInt32LE(32 * 512 + 16), backup.readUInt32LE(32 * 512 + 16), 'backup header CRC32');
    assert.ok(image.primary.equals(primary), 'primary GPT differs from sfdisk');
    assert.ok(image.backup.equals(backup), 'backup GPT differs from sfdisk');
    assert.equal(image.backupOffsetBytes, 16 * MiB - 33 * 512);
  });

  it('parses the golden table with its slot gaps', () => {
    const gpt = parseGpt(golden('gpt-16m.primary.bin'));
    assert.equal(gpt.diskGuid, deterministicGuid(SEED, 'disk'));
    assert.equal(gpt.backupLba, 32767n);
    assert.equal(gpt.firstUsableLba, 34n);
    assert.equal(gpt.lastUsableLba, 32734n);
    const { partitions } = layoutPartitions(specs);
    assert.deepEqual(
      gpt.partitions,
      partitions.map((p) => ({
        index: p.index,
        name: p.name,
        typeGuid: p.typeGuid,
        guid: p.guid,
        firstLba: p.firstLba,
        lastLba: p.lastLba,
        attributes: p.attributes ?? 0n,
      })),
    );
  });

  it('rejects a damaged table with the reason', () => {
    const disk = Buffer.from(golden('gpt-16m.primary.bin'));
    assert.throws(() => parseGpt(disk.subarray(0, 900)), {
      code: 'EGPT',
      message: /cannot parse GPT: need at least 1024 bytes/,
    });
    assert.throws(() => parseGpt(disk.subarray(0, 4096)), { code: 'EGPT', message: /entry array/ });
    const entry = Buffer.from(disk);
    entry[1024 + 56] ^= 1; // a name byte of entry 1
    assert.throws(() => parseGpt(entry), { code: 'EGPT', message: /entry array CRC32 mismatch/ });
    const header = Buffer.from(disk);
    header[512 + 40] ^= 1; // FirstUsableLBA
    assert.throws(() => parseGpt(header), { code: 'EGPT', message: /header CRC32 mismatch/ });
    assert.throws(() => parseGpt(Buffer.alloc(34 * 512)), { code: 'EGPT', message: /no "EFI PART" signature/ });
  });

  it('refuses overlapping, duplicate or out-of-range partitions', () => {
    const { partitions, diskSizeBytes } = layoutPartitions(specs);
    const diskGuid = deterministicGuid(SEED, 'disk');
    const build = (ps: typeof partitions) => () => buildGpt({ diskSizeBytes, diskGuid, partitions: ps });
    assert.throws(build([...partitions, { ...partitions[0]!, index: 7 }]), { name: 'TypeError', message: /overlaps/ });
    assert.throws(build([partitions[0]!, { ...partitions[1]!, index: 1 }]), {
      name: 'TypeError',
      message: /index 1 is used twice/,
    });
    assert.throws(build([{ ...partitions[5]!, lastLba: 32735n }]), {
      name: 'TypeError',
      message: /outside the usable 34\.\.32734/,
    });
    assert.throws(build([{ ...partitions[0]!, index: 129 }]), { name: 'TypeError', message: /received 129/ });
    assert.throws(build([{ ...partitions[0]!, name: 'x'.repeat(37) }]), { name: 'TypeError', message: /36 UTF-16/ });
    assert.throws(() => buildGpt({ diskSizeBytes: 1000, diskGuid, partitions: [] }), {
      name: 'TypeError',
      message: /1000/,
    });
  });

  it('moves the backup to the end of a grown disk as sfdisk --relocate does (golden)', () => {
    const grown = relocateBackup(golden('gpt-16m.primary.bin'), 32 * MiB);
    assert.ok(grown.primary.equals(golden('gpt-16m-grown-32m.primary.bin')), 'primary differs from sfdisk --relocate');
    assert.ok(grown.backup.equals(golden('gpt-16m-grown-32m.backup.bin')), 'backup differs from sfdisk --relocate');
    assert.equal(grown.backupOffsetBytes, 32 * MiB - 33 * 512);
    const gpt = parseGpt(grown.primary);
    assert.equal(gpt.backupLba, 65535n);
    assert.equal(gpt.lastUsableLba, 65502n);
    assert.equal(grown.primary.readUInt32LE(458), 65535, 'protective MBR covers the new size');
    assert.throws(() => relocateBackup(golden('gpt-16m.primary.bin'), 15 * MiB), {
      code: 'EGPT',
      message: /partition 9 ends at LBA 30719/,
    });
  });

  it('works with 4 KiB sectors', () => {
    const { partitions, diskSizeBytes } = layoutPartitions(specs, { sectorSize: 4096 });
    const image = buildGpt({ diskSizeBytes, diskGuid: deterministicGuid(SEED, 'disk'), partitions, sectorSize: 4096 });
    assert.equal(image.primary.length, 6 * 4096); // MBR, header, 4 sectors of entries
    assert.equal(image.backup.length, 5 * 4096);
    const gpt = parseGpt(image.primary, 4096);
    assert.equal(gpt.firstUsableLba, 6n);
    assert.deepEqual(
      gpt.partitions.map((p) => [p.index, p.firstLba]),
      [
        [1, 256n],
        [2, 768n],
        [3, 1024n],
        [4, 2048n],
        [6, 3072n],
        [9, 3328n],
      ],
    );
  });

  describe('read by the real tools', function () {
    let dir = '';
    before(function () {
      assert.ok(hasTool('sfdisk') && hasTool('sgdisk'), 'sfdisk or sgdisk missing: run make deps (fdisk, gdisk)');
      dir = mkdtempSync(join(tmpdir(), 'keel-gpt-'));
    });
    after(() => dir && rmSync(dir, { recursive: true, force: true }));

    it('passes sfdisk --verify and sgdisk -v, and sfdisk --json reads back every field', () => {
      const { image, diskSizeBytes } = goldenLayout();
      const disk = join(dir, 'disk.img');
      writeDisk(disk, diskSizeBytes, image);
      assert.match(execFileSync('sfdisk', ['--verify', disk], { encoding: 'utf8' }), /No errors detected/);
      assert.match(execFileSync('sgdisk', ['-v', disk], { encoding: 'utf8' }), /No problems found/);
      const table = JSON.parse(execFileSync('sfdisk', ['--json', disk], { encoding: 'utf8' })).partitiontable;
      assert.equal(table.label, 'gpt');
      assert.equal(table.id, deterministicGuid(SEED, 'disk'));
      const { partitions } = layoutPartitions(specs);
      assert.deepEqual(
        table.partitions.map((p: Record<string, unknown>) => [p.node, p.name, p.type, p.uuid, p.start, p.size]),
        partitions.map((p) => [`${disk}${p.index}`, p.name, p.typeGuid, p.guid, Number(p.firstLba), p.sizeBytes / 512]),
      );
      assert.equal(table.partitions[2].attrs, 'GUID:48,56');
    });

    it('leaves a grown disk that sfdisk --verify accepts without warnings', () => {
      const { image, diskSizeBytes } = goldenLayout();
      const disk = join(dir, 'grown.img');
      writeDisk(disk, diskSizeBytes, image);
      const grown = relocateBackup(image.primary, 64 * MiB);
      writeDisk(disk, 64 * MiB, grown);
      const r = spawnSync('sfdisk', ['--verify', disk], { encoding: 'utf8' });
      assert.equal(r.status, 0, r.stderr);
      assert.doesNotMatch(r.stdout + r.stderr, /mismatch|not on the end/);
      assert.match(execFileSync('sgdisk', ['-v', disk], { encoding: 'utf8' }), /No problems found/);
    });
  });
});
