import assert from 'node:assert/strict';
import { chooseSlot, slotState, slotVars, type SlotState } from '../../slots/rule.js';

const st = (order: string, a: [boolean, number], b: [boolean, number]): SlotState => ({
  order: order.split(' ') as SlotState['order'],
  A: { ok: a[0], tries: a[1] },
  B: { ok: b[0], tries: b[1] },
});

describe('builder/slots (the rule grub.cfg applies)', () => {
  it('boots the first OK slot in ORDER without touching TRIES', () => {
    const r = chooseSlot(st('A B', [true, 0], [false, 0]));
    assert.equal(r.slot, 'A');
    assert.equal(r.fallback, 'B');
    assert.deepEqual(r.next, st('A B', [true, 0], [false, 0]));
  });

  it('tries a new slot first in ORDER, using up one try each boot, then falls back to the OK slot', () => {
    let s = st('B A', [true, 0], [false, 3]);
    const seen: string[] = [];
    for (let boot = 0; boot < 5; boot++) {
      const r = chooseSlot(s);
      seen.push(`${r.slot}${r.next.B.tries}`);
      s = r.next;
    }
    assert.deepEqual(seen, ['B2', 'B1', 'B0', 'A0', 'A0']);
  });

  it('still boots something when the state is garbage or empty', () => {
    assert.equal(chooseSlot(slotState(new Map())).slot, 'A');
    assert.equal(
      chooseSlot(
        slotState(
          new Map([
            ['KEEL_ORDER', 'Z Q'],
            ['KEEL_A_OK', 'x'],
            ['KEEL_B_TRIES', '99'],
          ]),
        ),
      ).slot,
      'A',
    );
    assert.equal(chooseSlot(st('A B', [false, 0], [true, 0])).slot, 'B');
  });

  it("round-trips through grubenv variables, with each slot's root hash and version", () => {
    const s = st('B A', [true, 0], [false, 2]);
    assert.deepEqual(slotState(new Map(slotVars(s))), s);
    const full: SlotState = {
      order: ['B', 'A'],
      A: { ok: true, tries: 0, hash: 'a'.repeat(64), version: '1.0.0' },
      B: { ok: false, tries: 3, hash: 'b'.repeat(64), version: '1.1.0' },
    };
    assert.deepEqual(slotState(new Map(slotVars(full))), full);
    // A hash that is not 64 hex digits is not passed on to the kernel.
    assert.equal(slotState(new Map([['KEEL_A_HASH', 'zz']])).A.hash, undefined);
  });

  it('says when a boot is a trial (a try used up) so the initramfs verifies all of USR', () => {
    assert.equal(chooseSlot(st('B A', [true, 0], [false, 3])).trial, true);
    assert.equal(chooseSlot(st('A B', [true, 0], [false, 3])).trial, false);
    assert.equal(chooseSlot(st('B A', [true, 0], [false, 0])).trial, false);
  });
});
