// A/B slot state as it lives in grubenv, and the rule GRUB's grub.cfg applies to it, mirrored in
// TypeScript so the OS (and tests) can say what the next boot will do. Pure.

/** A USR slot. */
export type Slot = 'A' | 'B';

/** One slot: booted successfully (OK), boots left to prove itself (TRIES), and what it holds: the
 *  dm-verity root hash of its USR (GRUB passes it to the kernel) and the version written there. */
export interface SlotInfo {
  ok: boolean;
  tries: number;
  hash?: string;
  version?: string;
}

/** Per slot state, and the order to try them in. */
export interface SlotState {
  order: Slot[];
  A: SlotInfo;
  B: SlotInfo;
}

/** The variables GRUB reads (load_env); it writes back only ORDER/OK/TRIES (save_env). */
export const GRUB_LOADED_VARS = [
  'KEEL_ORDER',
  'KEEL_A_OK',
  'KEEL_A_TRIES',
  'KEEL_A_HASH',
  'KEEL_B_OK',
  'KEEL_B_TRIES',
  'KEEL_B_HASH',
];

/** Tries a new slot gets before it counts as bad. */
export const NEW_SLOT_TRIES = 3;

/** The grubenv variables of a state, in a fixed order. */
export function slotVars(s: SlotState): [string, string][] {
  const slot = (x: Slot, i: SlotInfo): [string, string][] => [
    [`KEEL_${x}_OK`, i.ok ? '1' : '0'],
    [`KEEL_${x}_TRIES`, String(i.tries)],
    ...(i.hash ? [[`KEEL_${x}_HASH`, i.hash] as [string, string]] : []),
    ...(i.version ? [[`KEEL_${x}_VERSION`, i.version] as [string, string]] : []),
  ];
  return [['KEEL_ORDER', s.order.join(' ')], ...slot('A', s.A), ...slot('B', s.B)];
}

/** Reads a state from grubenv variables; anything missing or garbled reads as GRUB's defaults. */
export function slotState(vars: Map<string, string>): SlotState {
  const order = (vars.get('KEEL_ORDER') ?? 'A B').split(/\s+/).filter((x): x is Slot => x === 'A' || x === 'B');
  const tries = (v: string | undefined) => (v === '1' || v === '2' || v === '3' ? Number(v) : 0);
  const extra = (x: Slot) => {
    const hash = vars.get(`KEEL_${x}_HASH`),
      version = vars.get(`KEEL_${x}_VERSION`);
    return { ...(hash && /^[0-9a-f]{64}$/.test(hash) ? { hash } : {}), ...(version ? { version } : {}) };
  };
  return {
    order: order.length ? order : ['A', 'B'],
    A: { ok: (vars.get('KEEL_A_OK') ?? '1') === '1', tries: tries(vars.get('KEEL_A_TRIES')), ...extra('A') },
    B: { ok: vars.get('KEEL_B_OK') === '1', tries: tries(vars.get('KEEL_B_TRIES')), ...extra('B') },
  };
}

/**
 * What GRUB does at boot: the first slot in ORDER that is OK, or else has TRIES left (and then
 * one try is used up: a trial boot); with none, the OK slot, else A. Returns the slot and the new state.
 */
export function chooseSlot(s: SlotState): { slot: Slot; fallback: Slot; next: SlotState; trial: boolean } {
  const next: SlotState = { order: [...s.order], A: { ...s.A }, B: { ...s.B } };
  let slot: Slot | null = null;
  let trial = false;
  for (const x of s.order) {
    if (s[x].ok) {
      slot = x;
      break;
    }
    if (s[x].tries > 0) {
      slot = x;
      trial = true;
      next[x].tries = s[x].tries - 1;
      break;
    }
  }
  slot ??= s.B.ok && !s.A.ok ? 'B' : 'A';
  return { slot, fallback: slot === 'A' ? 'B' : 'A', next, trial };
}

/** GRUB script implementing chooseSlot (stock GRUB 2.06: no arithmetic, so TRIES counts down by cases). */
export function slotSelectionScript(envFiles: string[], defaults: { aHash?: string } = {}): string {
  const vars = 'KEEL_ORDER KEEL_A_OK KEEL_A_TRIES KEEL_B_OK KEEL_B_TRIES';
  const loaded = GRUB_LOADED_VARS.join(' ');
  // Saving writes the second copy first: a torn write leaves the first one whole.
  const saves = [...envFiles]
    .reverse()
    .map((f) => `  save_env -f ${f} ${vars}`)
    .join('\n');
  return (
    `# A/B slot selection (builder/slots.ts mirrors this rule). Defaults hold when grubenv is missing
# or garbled: slot A, which the image ships as good.
set KEEL_ORDER="A B"
set KEEL_A_OK=1
set KEEL_A_TRIES=0
set KEEL_B_OK=0
set KEEL_B_TRIES=0
set KEEL_A_HASH="${defaults.aHash ?? ''}"
set KEEL_B_HASH=""
${envFiles.map((f, i) => `${i === 0 ? 'if' : 'elif'} load_env -f ${f} ${loaded}; then set keel_env=${f}`).join('\n')}
fi
function keel_use_try {
  if [ "$1" = A ]; then set t="$KEEL_A_TRIES"; else set t="$KEEL_B_TRIES"; fi
  if [ "$t" = 3 ]; then set t=2; elif [ "$t" = 2 ]; then set t=1; else set t=0; fi
  if [ "$1" = A ]; then set KEEL_A_TRIES="$t"; else set KEEL_B_TRIES="$t"; fi
${saves}
}
set keel_slot=""
# A slot on a trial boot (not yet OK) has its whole USR read through dm-verity by the initramfs.
set keel_trial=""
for s in $KEEL_ORDER; do
  if [ -z "$keel_slot" ]; then
    if [ "$s" = A ]; then set ok="$KEEL_A_OK"; set ` +
    `tries="$KEEL_A_TRIES"; elif [ "$s" = B ]; then set ok="$KEEL_B_OK"; ` +
    `set tries="$KEEL_B_TRIES"; else set ok=0; set tries=0; fi
    if [ "$ok" = 1 ]; then
      set keel_slot="$s"
    elif [ "$tries" = 3 ]; then
      set keel_slot="$s"; set keel_trial="keel.verify=full"; keel_use_try "$s"
    elif [ "$tries" = 2 ]; then
      set keel_slot="$s"; set keel_trial="keel.verify=full"; keel_use_try "$s"
    elif [ "$tries" = 1 ]; then
      set keel_slot="$s"; set keel_trial="keel.verify=full"; keel_use_try "$s"
    fi
  fi
done
if [ -z "$keel_slot" ]; then
  if [ "$KEEL_B_OK" = 1 -a "$KEEL_A_OK" != 1 ]; then set keel_slot=B; else set keel_slot=A; fi
fi
if [ "$keel_slot" = B ]; then set default=keel-b; set fallback=keel-a; else set default=keel-a; set fallback=keel-b; fi
`
  );
}
