import assert from 'node:assert/strict';
import {
  bytesToGuid,
  deterministicGuid,
  guidToBytes,
  isGuid,
  GPT_TYPE_BIOS_BOOT,
  GPT_TYPE_COREOS_RESIZE,
  GPT_TYPE_COREOS_USR,
  GPT_TYPE_EFI_SYSTEM,
  GPT_TYPE_LINUX_FILESYSTEM,
} from '../../builder/guid.js';

describe('builder/guid', () => {
  it('stores the first three groups little-endian, as EFI_GUID does', () => {
    // Bytes of the ESP type GUID as every GPT disk carries them (UEFI spec, table 5.7).
    assert.equal(guidToBytes(GPT_TYPE_EFI_SYSTEM).toString('hex'), '28732ac11ff8d211ba4b00a0c93ec93b');
    // "Hah!IdontNeedEFI" is the BIOS boot type GUID read as ASCII bytes.
    assert.equal(guidToBytes(GPT_TYPE_BIOS_BOOT).toString('latin1'), 'Hah!IdontNeedEFI');
  });

  it('round-trips and prints uppercase', () => {
    for (const g of [
      GPT_TYPE_EFI_SYSTEM,
      GPT_TYPE_BIOS_BOOT,
      GPT_TYPE_COREOS_USR,
      GPT_TYPE_COREOS_RESIZE,
      GPT_TYPE_LINUX_FILESYSTEM,
    ]) {
      assert.equal(bytesToGuid(guidToBytes(g)), g);
      assert.equal(bytesToGuid(guidToBytes(g.toLowerCase())), g);
    }
  });

  it('derives the same v4-shaped GUID from the same seed and name', () => {
    const g = deterministicGuid('keel-golden', 'disk');
    // Pinned: test/golden/gpt-16m.sfdisk uses this value as its label-id.
    assert.equal(g, '8269C63F-64D1-4F4F-8E50-B1818A7331D0');
    assert.equal(deterministicGuid('keel-golden', 'disk'), g);
    assert.ok(isGuid(g));
    for (const name of ['EFI-SYSTEM', 'USR-A', 'USR-B', 'ROOT', '']) {
      const x = deterministicGuid('s', name);
      assert.equal(x[14], '4', `version nibble of ${x}`);
      assert.match(x[19]!, /[89AB]/, `variant nibble of ${x}`);
    }
  });

  it('separates seed from name', () => {
    assert.notEqual(deterministicGuid('ab', 'c'), deterministicGuid('a', 'bc'));
    assert.notEqual(deterministicGuid('s', 'USR-A'), deterministicGuid('s', 'USR-B'));
  });

  it('rejects malformed input with a TypeError naming it', () => {
    assert.throws(() => guidToBytes('C12A7328F81F11D2BA4B00A0C93EC93B'), {
      name: 'TypeError',
      message: /C12A7328F81F11D2BA4B00A0C93EC93B/,
    });
    assert.throws(() => guidToBytes('G12A7328-F81F-11D2-BA4B-00A0C93EC93B'), TypeError);
    assert.throws(() => bytesToGuid(Buffer.alloc(15)), { name: 'TypeError', message: /15 bytes/ });
    assert.throws(() => deterministicGuid(1 as unknown as string, 'x'), { name: 'TypeError', message: /number/ });
  });
});
