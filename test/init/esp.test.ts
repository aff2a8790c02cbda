import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { decodeGrubenv, encodeGrubenv } from '../../slots/grubenv.js';
import { findPartition, repairGrubenv } from '../../init/esp.js';

describe('init/esp (grubenv copies repaired at boot)', () => {
  let dir: string;
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'keel-esp-'));
    mkdirSync(join(dir, 'keel'));
  });
  afterEach(() => rmSync(dir, { recursive: true, force: true }));
  const good = encodeGrubenv([
    ['KEEL_ORDER', 'B A'],
    ['KEEL_A_OK', '1'],
    ['KEEL_A_TRIES', '0'],
    ['KEEL_B_OK', '0'],
    ['KEEL_B_TRIES', '2'],
  ]);

  it('leaves two good copies alone', () => {
    writeFileSync(join(dir, 'keel/grubenv'), good);
    writeFileSync(join(dir, 'keel/grubenv2'), good);
    assert.deepEqual(repairGrubenv(dir), []);
  });

  it('repairs a garbled first copy from the second, and the other way round', () => {
    writeFileSync(join(dir, 'keel/grubenv'), Buffer.alloc(1024, 0x41));
    writeFileSync(join(dir, 'keel/grubenv2'), good);
    assert.deepEqual(repairGrubenv(dir), [join(dir, 'keel/grubenv')]);
    assert.deepEqual(readFileSync(join(dir, 'keel/grubenv')), good);
    writeFileSync(join(dir, 'keel/grubenv2'), Buffer.alloc(1024));
    assert.deepEqual(repairGrubenv(dir), [join(dir, 'keel/grubenv2')]);
    assert.deepEqual(readFileSync(join(dir, 'keel/grubenv2')), good);
  });

  it("writes GRUB's defaults (slot A good) into both when both are bad", () => {
    writeFileSync(join(dir, 'keel/grubenv'), Buffer.alloc(1024, 0x23));
    writeFileSync(join(dir, 'keel/grubenv2'), Buffer.alloc(1024));
    assert.equal(repairGrubenv(dir).length, 2);
    const vars = decodeGrubenv(readFileSync(join(dir, 'keel/grubenv2')));
    assert.equal(vars.get('KEEL_ORDER'), 'A B');
    assert.equal(vars.get('KEEL_A_OK'), '1');
  });

  it('finds a partition by its GPT name in sysfs', () => {
    for (const [n, label] of [
      ['vda1', 'EFI-SYSTEM'],
      ['vda3', 'USR-A'],
    ]) {
      mkdirSync(join(dir, 'sys', n), { recursive: true });
      writeFileSync(join(dir, 'sys', n, 'uevent'), `MAJOR=254\nDEVNAME=${n}\nDEVTYPE=partition\nPARTNAME=${label}\n`);
    }
    assert.equal(findPartition('EFI-SYSTEM', join(dir, 'sys')), '/dev/vda1');
    assert.equal(findPartition('ROOT', join(dir, 'sys')), null);
  });
});
