// The boot steps only a real machine takes (contained mode, the init under test in namespaces,
// skips the whole list): API filesystems, the watchdog, /var, the machine's names, lo,
// Ctrl-Alt-Del, kernel messages, the slot state on the ESP, cgroup controllers. Each says which
// kind it is: 'fatal' throws (and ends in sync and reboot), 'best-effort' warns and goes on.
import { chmodSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import type { Native } from '../native/native.js';
import type { InitConfig } from './config.js';
import type { Journal } from './journal.js';
import { API_MOUNTS, mountAll, realMountSys } from './early-mounts.js';
import { enableControllers } from './cgroup.js';
import { findPartition, repairGrubenv } from './esp.js';
import { followKmsg } from './kmsg.js';
import { petWatchdog } from './watchdog.js';
import { VAR_DIRS } from './system-setup.js';
import { reportRollback } from '../update/boot-gate.js';
import { ESP_DIR } from '../slots/store.js';
import { log, warn } from '../lib/log.js';

const readText = (p: string) => {
  try {
    return readFileSync(p, 'utf8');
  } catch {
    return '';
  }
};

/** What the steps share: their inputs, and what they find out for the rest of the boot. */
export interface HostBoot {
  cfg: InitConfig;
  native: Native;
  hostname: string;
  /** The journal, made on first use (after /proc is mounted: it needs the boot id). */
  journal(): Journal;
  machineId: string;
  /** /etc/machine-id was made by this boot (ConditionFirstBoot=). */
  firstBoot: boolean;
  slot: { booted: 'A' | 'B' | null; trial: boolean };
}

/** One step of the host boot. */
export interface HostStep {
  name: string;
  kind: 'fatal' | 'best-effort';
  run(b: HostBoot): void;
}

/** /etc/machine-id: made once, on the first boot. */
function machineId(b: HostBoot): void {
  const file = join(b.cfg.etc, 'machine-id');
  const id = readText(file).trim();
  if (/^[0-9a-f]{32}$/.test(id)) {
    b.machineId = id;
    return;
  }
  b.machineId = randomBytes(16).toString('hex');
  b.firstBoot = true;
  try {
    writeFileSync(file, b.machineId + '\n');
  } catch (e) {
    warn('write /etc/machine-id', e);
  }
}

/** The host boot, in order. */
export const HOST_STEPS: HostStep[] = [
  // Without /proc, /sys and /dev nothing else works; a failing optional mount only warns.
  {
    name: 'mount the API filesystems',
    kind: 'fatal',
    run: (b) => {
      for (const w of mountAll(API_MOUNTS, realMountSys(b.native)).warnings) log(`warning: ${w}`);
    },
  },
  // The initramfs armed the watchdog; from here PID 1 keeps the machine alive.
  {
    name: 'pet the watchdog',
    kind: 'best-effort',
    run: () => {
      if (petWatchdog('/dev/watchdog', 10_000, (e) => warn('pet the watchdog', e))) log('petting the watchdog');
    },
  },
  {
    name: 'create the /var directories',
    kind: 'best-effort',
    run: () => {
      for (const d of VAR_DIRS) {
        try {
          mkdirSync(d.path, { recursive: true });
          chmodSync(d.path, d.mode);
        } catch (e) {
          warn(`create ${d.path}`, e);
        }
      }
    },
  },
  { name: 'set the hostname', kind: 'best-effort', run: (b) => b.native.sethostname(b.hostname) },
  { name: 'bring up lo', kind: 'best-effort', run: (b) => b.native.ifUp('lo') },
  // Ctrl-Alt-Del becomes SIGINT to PID 1 instead of an immediate reboot.
  {
    name: 'take over Ctrl-Alt-Del',
    kind: 'best-effort',
    run: (b) => b.native.reboot(b.native.constants.RB_DISABLE_CAD),
  },
  { name: 'read or make /etc/machine-id', kind: 'best-effort', run: machineId },
  { name: 'read kernel messages', kind: 'best-effort', run: (b) => followKmsg(b.native, b.journal()) },
  // The slot state: mount the ESP and repair a bad grubenv copy from the good one.
  {
    name: 'check the slot state on the ESP',
    kind: 'best-effort',
    run: (b) => {
      const dev = findPartition('EFI-SYSTEM');
      if (!dev) return;
      mkdirSync(ESP_DIR, { recursive: true });
      const C = b.native.constants;
      b.native.mount(dev, ESP_DIR, 'vfat', C.MS_NOSUID | C.MS_NODEV | C.MS_NOEXEC, 'umask=0077');
      for (const f of repairGrubenv(ESP_DIR, readText('/proc/cmdline'))) log(`repaired the slot state copy ${f}`);
    },
  },
  // Which slot this is, whether it is on trial, and whether an update was rolled back.
  {
    name: 'read the slot state',
    kind: 'best-effort',
    run: (b) => {
      const say = (m: string) => {
        b.journal().append('keel-update', m);
        log(m);
      };
      b.slot = reportRollback({
        esp: ESP_DIR,
        cmdline: readText('/proc/cmdline'),
        stateDir: join(b.cfg.stateDir, 'update'),
        log: say,
      });
      if (b.slot.trial)
        log(
          `slot ${b.slot.booted} is on trial: it is committed once boot-complete.target is reached and stays healthy`,
        );
    },
  },
  // memory, pids, cpu and io for every service's cgroup (MemoryMax=, TasksMax=, CPUQuota=, CPUShares=, status).
  {
    name: 'enable cgroup controllers',
    kind: 'best-effort',
    run: (b) => {
      if (b.cfg.cgroupRoot) enableControllers(b.cfg.cgroupRoot);
    },
  },
];

/** Runs the steps in order: a fatal one's error propagates, a best-effort one's is logged. */
export function runHostSteps(
  steps: HostStep[],
  b: HostBoot,
  onWarn: (what: string, e: unknown) => void = warn,
): HostBoot {
  for (const s of steps) {
    if (s.kind === 'fatal') {
      s.run(b);
      continue;
    }
    try {
      s.run(b);
    } catch (e) {
      onWarn(s.name, e);
    }
  }
  return b;
}
