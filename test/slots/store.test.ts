// The slot state on the ESP: two grubenv copies, read as GRUB reads them (first good copy),
// written second copy first so that a torn write always leaves one whole copy.
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { decodeGrubenv, encodeGrubenv } from '../../slots/grubenv.js';
import { slotState, slotVars, type SlotState } from '../../slots/rule.js';
import { bootedSlot, describeSlots, grubenvFiles, readSlotState, withSlot, writeSlotState } from '../../slots/store.js';

const H1 = 'a'.repeat(64);
const H2 = 'b'.repeat(64);
const S1: SlotState = {
  order: ['A', 'B'],
  A: { ok: true, tries: 0, hash: H1, version: '1.0.0' },
  B: { ok: false, tries: 0 },
};
const S2: SlotState = {
  order: ['B', 'A'],
  A: { ok: true, tries: 0, hash: H1, version: '1.0.0' },
  B: { ok: false, tries: 3, hash: H2, version: '1.1.0' },
};

describe('update/slot-store', () => {
  let dir: string;
  let esp: string;
  let first: string, second: string;
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'keel-slots-'));
    esp = join(dir, 'esp');
    mkdirSync(join(esp, 'keel'), { recursive: true });
    [first, second] = grubenvFiles(esp);
  });
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  const put = (file: string, s: SlotState | Buffer, extra: [string, string][] = []) =>
    writeFileSync(file, Buffer.isBuffer(s) ? s : encodeGrubenv([...extra, ...slotVars(s)]));
  const garbage = Buffer.alloc(1024, 'x');

  it('grubenvFiles names keel/grubenv then keel/grubenv2', () => {
    assert.deepEqual(grubenvFiles('/e'), ['/e/keel/grubenv', '/e/keel/grubenv2']);
  });

  it('reads the first good copy, as GRUB does', () => {
    put(first, S1);
    put(second, S2);
    const r = readSlotState(esp);
    assert.deepEqual(r.state, S1);
    assert.equal(r.copy, first);
  });

  it('falls back to the second copy when the first is garbage, short or missing', () => {
    put(second, S2);
    for (const bad of [garbage, Buffer.from('# GRUB Environment Block\n'), null]) {
      if (bad) put(first, bad);
      else rmSync(first, { force: true });
      const r = readSlotState(esp);
      assert.deepEqual(r.state, S2);
      assert.equal(r.copy, second);
    }
  });

  it("both copies garbage: GRUB's defaults (A good and first, B empty), no copy", () => {
    put(first, garbage);
    put(second, garbage);
    const r = readSlotState(esp);
    assert.deepEqual(r.state, { order: ['A', 'B'], A: { ok: true, tries: 0 }, B: { ok: false, tries: 0 } });
    assert.equal(r.copy, null);
    assert.equal(r.vars.size, 0);
  });

  it('writes both copies with the state, keeping variables it does not own', () => {
    put(first, S1, [
      ['FOO', 'bar'],
      ['KEEL_B_HASH', H1],
    ]);
    put(second, S1);
    writeSlotState(esp, S2);
    for (const f of [first, second]) {
      const buf = readFileSync(f);
      assert.equal(buf.length, 1024);
      const vars = decodeGrubenv(buf);
      assert.deepEqual(slotState(vars), S2, f);
      assert.equal(vars.get('FOO'), 'bar', `${f} keeps foreign variables`);
    }
    assert.ok(readFileSync(first).equals(readFileSync(second)));
  });

  it('drops the HASH and VERSION of a slot whose new state has none', () => {
    put(first, S2);
    put(second, S2);
    writeSlotState(esp, withSlot(S2, 'B', null, ['A', 'B']));
    const vars = readSlotState(esp).vars;
    assert.equal(vars.has('KEEL_B_HASH'), false);
    assert.equal(vars.has('KEEL_B_VERSION'), false);
    assert.deepEqual(readSlotState(esp).state, S1);
  });

  it('writes the second copy first: a failure writing the first leaves the second whole and new', () => {
    // keel/grubenv is a directory: unreadable as a copy (GRUB would read grubenv2) and unwritable.
    put(second, S1, [['FOO', 'bar']]);
    mkdirSync(first);
    assert.deepEqual(readSlotState(esp).state, S1);
    assert.throws(() => writeSlotState(esp, S2), /EISDIR/);
    const vars = decodeGrubenv(readFileSync(second));
    assert.deepEqual(slotState(vars), S2, 'the second copy was written before the first failed');
    assert.equal(vars.get('FOO'), 'bar');
  });

  it('writes in place: a missing copy is an error, not created', () => {
    put(first, S1);
    assert.throws(() => writeSlotState(esp, S2), /ENOENT/);
  });

  it('withSlot changes one slot; null empties it', () => {
    assert.deepEqual(withSlot(S2, 'B', { ok: true, tries: 0 }), {
      ...S2,
      B: { ok: true, tries: 0, hash: H2, version: '1.1.0' },
    });
    assert.deepEqual(withSlot(S2, 'B', null, ['A', 'B']), S1);
    assert.deepEqual(S2.B, { ok: false, tries: 3, hash: H2, version: '1.1.0' }, 'the input is not changed');
  });

  it('bootedSlot reads keel.slot= from the kernel command line', () => {
    assert.equal(bootedSlot('keel.slot=A'), 'A');
    assert.equal(bootedSlot('console=ttyS0 keel.slot=B keel.verity=abc'), 'B');
    assert.equal(bootedSlot('BOOT_IMAGE=/vmlinuz keel.slot=B\n'), 'B');
    assert.equal(bootedSlot('console=ttyS0'), null);
    assert.equal(bootedSlot('keel.slot=C'), null);
    assert.equal(bootedSlot('keel.slot=AB'), null);
    assert.equal(bootedSlot('xkeel.slot=A'), null);
    assert.equal(bootedSlot(''), null);
  });

  it('describeSlots: one line per slot for people', () => {
    assert.deepEqual(describeSlots(S1, 'A'), ['A: good, version 1.0.0 (boots next, booted)', 'B: empty']);
    assert.deepEqual(describeSlots(S2, 'A'), [
      'A: good, version 1.0.0 (booted)',
      'B: new, 3 tries left, version 1.1.0 (boots next)',
    ]);
    assert.deepEqual(describeSlots(withSlot(S2, 'B', { tries: 1 }), null), [
      'A: good, version 1.0.0',
      'B: new, 1 try left, version 1.1.0 (boots next)',
    ]);
    assert.deepEqual(describeSlots(withSlot(S2, 'B', { tries: 0 }, ['A', 'B']), 'A'), [
      'A: good, version 1.0.0 (boots next, booted)',
      'B: bad, version 1.1.0',
    ]);
  });
});
