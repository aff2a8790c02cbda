// Kernel modules: names as modprobe reads them, the dependency closure, and the modules.dep subset.
import assert from 'node:assert/strict';
import { moduleClosure, moduleName, modulesDepFor, parseModulesDep } from '../../builder/modules.js';

// Lines as depmod writes them for Debian's 6.1 cloud kernel (uncompressed .ko, deps after ": ").
const MODULES_DEP =
  `kernel/fs/squashfs/squashfs.ko:
kernel/fs/overlayfs/overlay.ko:
kernel/drivers/virtio/virtio_pci.ko: ` +
  'kernel/drivers/virtio/virtio_pci_legacy_dev.ko ' +
  'kernel/drivers/virtio/virtio_pci_modern_dev.ko kernel/drivers/virtio/virtio.ko ' +
  `kernel/drivers/virtio/virtio_ring.ko
kernel/drivers/virtio/virtio.ko: kernel/drivers/virtio/virtio_ring.ko
kernel/drivers/virtio/virtio_ring.ko:
kernel/drivers/virtio/virtio_pci_modern_dev.ko:
kernel/drivers/virtio/virtio_pci_legacy_dev.ko:
kernel/drivers/block/virtio_blk.ko: kernel/drivers/virtio/virtio.ko kernel/drivers/virtio/virtio_ring.ko
kernel/drivers/scsi/virtio_scsi.ko: kernel/drivers/scsi/scsi_mod.ko ` +
  'kernel/drivers/scsi/scsi_common.ko kernel/drivers/virtio/virtio.ko ' +
  `kernel/drivers/virtio/virtio_ring.ko
kernel/drivers/scsi/sd_mod.ko: kernel/drivers/scsi/scsi_mod.ko kernel/drivers/scsi/scsi_common.ko
kernel/drivers/scsi/scsi_mod.ko: kernel/drivers/scsi/scsi_common.ko
kernel/drivers/scsi/scsi_common.ko:
kernel/drivers/firmware/qemu_fw_cfg.ko:
kernel/sound/pci/hda/snd-hda-intel.ko.xz:
`;
const V = 'kernel/drivers/virtio/';

/** Asserts every module's dependencies come before it and nothing is listed twice. */
function assertLoadOrder(deps: Map<string, string[]>, paths: string[]): void {
  assert.equal(new Set(paths).size, paths.length, `duplicates in ${paths.join(' ')}`);
  paths.forEach((p, i) => {
    for (const d of deps.get(p) ?? []) {
      const j = paths.indexOf(d);
      assert.ok(j >= 0 && j < i, `${d} must be loaded before ${p}`);
    }
  });
}

describe('builder/modules', () => {
  const deps = parseModulesDep(MODULES_DEP);

  it('normalises names as modprobe does', () => {
    assert.equal(moduleName('kernel/drivers/virtio/virtio_pci.ko'), 'virtio_pci');
    assert.equal(moduleName('kernel/fs/squashfs/squashfs.ko.xz'), 'squashfs');
    assert.equal(moduleName('kernel/fs/overlayfs/overlay.ko.zst'), 'overlay');
    assert.equal(moduleName('kernel/sound/pci/hda/snd-hda-intel.ko.xz'), 'snd_hda_intel');
    assert.equal(moduleName('virtio-pci'), 'virtio_pci');
    assert.equal(moduleName('sd_mod'), 'sd_mod');
    assert.equal(moduleName('virtio_blk.ko'), 'virtio_blk');
  });

  it('parses modules.dep, with and without dependencies', () => {
    assert.equal(deps.size, 14);
    assert.deepEqual(deps.get(`${V}virtio_pci.ko`), [
      `${V}virtio_pci_legacy_dev.ko`,
      `${V}virtio_pci_modern_dev.ko`,
      `${V}virtio.ko`,
      `${V}virtio_ring.ko`,
    ]);
    assert.deepEqual(deps.get('kernel/fs/squashfs/squashfs.ko'), []);
    assert.deepEqual(parseModulesDep('\n# comment\na.ko:  b.ko\tc.ko \n'), new Map([['a.ko', ['b.ko', 'c.ko']]]));
  });

  it('puts dependencies first and lists each module once', () => {
    const { paths, missing } = moduleClosure(deps, ['virtio_pci', 'virtio_blk', 'virtio_scsi', 'sd_mod']);
    assert.deepEqual(missing, []);
    assert.deepEqual(paths, [
      `${V}virtio_pci_legacy_dev.ko`,
      `${V}virtio_pci_modern_dev.ko`,
      `${V}virtio_ring.ko`,
      `${V}virtio.ko`,
      `${V}virtio_pci.ko`,
      'kernel/drivers/block/virtio_blk.ko',
      'kernel/drivers/scsi/scsi_common.ko',
      'kernel/drivers/scsi/scsi_mod.ko',
      'kernel/drivers/scsi/virtio_scsi.ko',
      'kernel/drivers/scsi/sd_mod.ko',
    ]);
    assertLoadOrder(deps, paths);
  });

  it('takes names in any spelling modprobe accepts, and a name twice only once', () => {
    const { paths, missing } = moduleClosure(deps, ['snd_hda_intel', 'virtio-blk', 'virtio_blk', 'squashfs.ko']);
    assert.deepEqual(missing, []);
    assert.deepEqual(paths, [
      'kernel/sound/pci/hda/snd-hda-intel.ko.xz',
      `${V}virtio_ring.ko`,
      `${V}virtio.ko`,
      'kernel/drivers/block/virtio_blk.ko',
      'kernel/fs/squashfs/squashfs.ko',
    ]);
  });

  it('reports names missing from modules.dep as given (they may be built in)', () => {
    const { paths, missing } = moduleClosure(deps, ['ext4', 'overlay', 'no-such-mod']);
    assert.deepEqual(missing, ['ext4', 'no-such-mod']);
    assert.deepEqual(paths, ['kernel/fs/overlayfs/overlay.ko']);
  });

  it('writes the subset as busybox modprobe reads it ("path: dep dep")', () => {
    const { paths } = moduleClosure(deps, ['virtio_blk', 'squashfs']);
    assert.equal(
      modulesDepFor(deps, paths),
      [
        'kernel/drivers/block/virtio_blk.ko: kernel/drivers/virtio/virtio.ko kernel/drivers/virtio/virtio_ring.ko',
        'kernel/drivers/virtio/virtio.ko: kernel/drivers/virtio/virtio_ring.ko',
        'kernel/drivers/virtio/virtio_ring.ko:',
        'kernel/fs/squashfs/squashfs.ko:',
        '',
      ].join('\n'),
    );
  });

  it('writes a self-contained subset that parses back to the same dependencies', () => {
    const { paths } = moduleClosure(deps, ['virtio_pci', 'virtio_scsi', 'sd_mod', 'qemu_fw_cfg']);
    const text = modulesDepFor(deps, paths);
    const back = parseModulesDep(text);
    assert.deepEqual([...back.keys()].sort(), [...paths].sort());
    for (const [p, ds] of back) {
      assert.deepEqual(ds, deps.get(p), p);
      for (const d of ds) assert.ok(back.has(d), `${d} (needed by ${p}) is missing from the subset`);
    }
    assert.ok(!back.has('kernel/drivers/block/virtio_blk.ko'));
    for (const line of text.trimEnd().split('\n')) assert.match(line, /^\S+\.ko(\.[a-z]+)?:( \S+\.ko(\.[a-z]+)?)*$/);
  });
});
