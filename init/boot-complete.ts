// After the default target: boot-complete.target, and on a trial slot the gate that commits the
// boot (or marks it bad and reboots).
import { readFileSync } from 'node:fs';
import type { Manager } from './manager.js';
import { runBootGate, type GateUnits } from '../update/boot-gate.js';
import { ESP_DIR } from '../slots/store.js';
import { loadUpdateConf } from '../update/config.js';
import { warn } from '../lib/log.js';

const readText = (p: string) => {
  try {
    return readFileSync(p, 'utf8');
  } catch {
    return '';
  }
};

/** Units ordered before (or pulled in by) boot-complete.target: the health checks of a boot. */
function healthUnits(m: Manager): GateUnits {
  const BC = 'boot-complete.target';
  return {
    startBootComplete: () => m.job(BC, 'start'),
    failedHealthUnits: () => {
      const bc = m.lookup(BC);
      const linked = new Set([
        ...(bc?.deps.after ?? []),
        ...(bc?.deps.requires ?? []),
        ...(bc?.deps.wants ?? []),
        ...(bc?.deps.wantedByLinks ?? []),
      ]);
      return [...m.units().values()]
        .filter((u) => u.deps.before.includes(BC) || linked.has(u.name))
        .map((u) => u.name)
        .filter((n) => m.status(n, 0).activeState === 'failed');
    },
  };
}

/** After the default target: commit a trial boot through the gate (or mark it bad and reboot);
 *  on a committed slot, start boot-complete.target all the same and report a failure. */
export function bootComplete(
  m: Manager,
  slot: { booted: 'A' | 'B' | null; trial: boolean },
  stateDir: string,
  targetOk: boolean,
  say: (m: string) => void,
  reboot: () => void,
  stopping: () => boolean,
): void {
  const units = healthUnits(m);
  if (!slot.booted || !slot.trial) {
    units.startBootComplete().then(
      (r) => {
        if (r !== 'done')
          say(`boot-complete.target failed (${r}): ${units.failedHealthUnits().join(', ') || 'see keel status'}`);
      },
      (e) => warn('start boot-complete.target', e),
    );
    return;
  }
  let healthySeconds = 60;
  try {
    healthySeconds = loadUpdateConf().healthySeconds;
  } catch (e) {
    warn('read /etc/keel/update.conf (the healthy time stays 60s)', e);
  }
  const gate = {
    esp: ESP_DIR,
    cmdline: readText('/proc/cmdline'),
    stateDir,
    healthySeconds,
    log: say,
    reboot,
    stopping,
    units: targetOk ? units : { ...units, startBootComplete: async () => 'default target failed' },
  };
  runBootGate(gate, slot.booted).catch((e) => warn('run the boot-complete gate', e));
}
