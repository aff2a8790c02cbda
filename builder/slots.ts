// A/B slot state as it lives in grubenv, and the rule GRUB's grub.cfg applies to it, mirrored in
// TypeScript so the OS (and tests) can say what the next boot will do. Pure.

/** A USR slot. */
export type Slot = 'A' | 'B';

/** Per slot: booted successfully (OK), boots left to prove itself (TRIES); and the order to try. */
export interface SlotState { order: Slot[]; A: { ok: boolean; tries: number }; B: { ok: boolean; tries: number } }

/** Tries a new slot gets before it counts as bad. */
export const NEW_SLOT_TRIES = 3;

/** The grubenv variables of a state, in a fixed order. */
export function slotVars(s: SlotState): [string, string][] {
  return [
    ['KEEL_ORDER', s.order.join(' ')],
    ['KEEL_A_OK', s.A.ok ? '1' : '0'], ['KEEL_A_TRIES', String(s.A.tries)],
    ['KEEL_B_OK', s.B.ok ? '1' : '0'], ['KEEL_B_TRIES', String(s.B.tries)],
  ];
}

/** Reads a state from grubenv variables; anything missing or garbled reads as GRUB's defaults. */
export function slotState(vars: Map<string, string>): SlotState {
  const order = (vars.get('KEEL_ORDER') ?? 'A B').split(/\s+/).filter((x): x is Slot => x === 'A' || x === 'B');
  const tries = (v: string | undefined) => (v === '1' || v === '2' || v === '3' ? Number(v) : 0);
  return {
    order: order.length ? order : ['A', 'B'],
    A: { ok: (vars.get('KEEL_A_OK') ?? '1') === '1', tries: tries(vars.get('KEEL_A_TRIES')) },
    B: { ok: vars.get('KEEL_B_OK') === '1', tries: tries(vars.get('KEEL_B_TRIES')) },
  };
}

/**
 * What GRUB does at boot: the first slot in ORDER that is OK, or else has TRIES left (and then
 * one try is used up); with none, the OK slot, else A. Returns the slot and the new state.
 */
export function chooseSlot(s: SlotState): { slot: Slot; fallback: Slot; next: SlotState } {
  const next: SlotState = { order: [...s.order], A: { ...s.A }, B: { ...s.B } };
  let slot: Slot | null = null;
  for (const x of s.order) {
    if (s[x].ok) { slot = x; break; }
    if (s[x].tries > 0) { slot = x; next[x].tries = s[x].tries - 1; break; }
  }
  slot ??= s.B.ok && !s.A.ok ? 'B' : 'A';
  return { slot, fallback: slot === 'A' ? 'B' : 'A', next };
}

/** GRUB script implementing chooseSlot (stock GRUB 2.06: no arithmetic, so TRIES counts down by cases). */
export function slotSelectionScript(envFiles: string[]): string {
  const vars = 'KEEL_ORDER KEEL_A_OK KEEL_A_TRIES KEEL_B_OK KEEL_B_TRIES';
  // Saving writes the second copy first: a torn write leaves the first one whole.
  const saves = [...envFiles].reverse().map((f) => `  save_env -f ${f} ${vars}`).join('\n');
  return `# A/B slot selection (builder/slots.ts mirrors this rule). Defaults hold when grubenv is missing
# or garbled: slot A, which the image ships as good.
set KEEL_ORDER="A B"
set KEEL_A_OK=1
set KEEL_A_TRIES=0
set KEEL_B_OK=0
set KEEL_B_TRIES=0
${envFiles.map((f, i) => `${i === 0 ? 'if' : 'elif'} load_env -f ${f} ${vars}; then set keel_env=${f}`).join('\n')}
fi
function keel_use_try {
  if [ "$1" = A ]; then set t="$KEEL_A_TRIES"; else set t="$KEEL_B_TRIES"; fi
  if [ "$t" = 3 ]; then set t=2; elif [ "$t" = 2 ]; then set t=1; else set t=0; fi
  if [ "$1" = A ]; then set KEEL_A_TRIES="$t"; else set KEEL_B_TRIES="$t"; fi
${saves}
}
set keel_slot=""
for s in $KEEL_ORDER; do
  if [ -z "$keel_slot" ]; then
    if [ "$s" = A ]; then set ok="$KEEL_A_OK"; set tries="$KEEL_A_TRIES"; elif [ "$s" = B ]; then set ok="$KEEL_B_OK"; set tries="$KEEL_B_TRIES"; else set ok=0; set tries=0; fi
    if [ "$ok" = 1 ]; then
      set keel_slot="$s"
    elif [ "$tries" = 3 ]; then
      set keel_slot="$s"; keel_use_try "$s"
    elif [ "$tries" = 2 ]; then
      set keel_slot="$s"; keel_use_try "$s"
    elif [ "$tries" = 1 ]; then
      set keel_slot="$s"; keel_use_try "$s"
    fi
  fi
done
if [ -z "$keel_slot" ]; then
  if [ "$KEEL_B_OK" = 1 -a "$KEEL_A_OK" != 1 ]; then set keel_slot=B; else set keel_slot=A; fi
fi
if [ "$keel_slot" = B ]; then set default=keel-b; set fallback=keel-a; else set default=keel-a; set fallback=keel-b; fi
`;
}
