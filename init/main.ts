// Keel's PID 1, as a story: mount the API filesystems, prepare /var, name the machine, bring up
// lo, start the journal, the control socket and the service manager, reach the default target,
// say "ready", and turn signals into orderly shutdowns.
// Fatal steps throw (and end in sync and reboot); best-effort steps warn and go on.
import { chmodSync, mkdirSync, readFileSync, readSync, writeFileSync } from 'node:fs';
import { enableControllers } from './cgroup.js';
import { findPartition, repairGrubenv } from './esp.js';
import { petWatchdog } from './watchdog.js';
import { reportRollback, runBootGate, type GateUnits } from '../update/boot-gate.js';
import { ESP_DIR } from '../slots/store.js';
import { loadUpdateConf } from '../update/config.js';
import { randomBytes } from 'node:crypto';
import { networkInterfaces } from 'node:os';
import { join } from 'node:path';
import { native } from '../native/native.js';
import { ProcessTable } from '../native/process-table.js';
import { API_MOUNTS, mountAll, realMountSys } from './early-mounts.js';
import { BASE_ENV, consoleDevice, runConsoleShell, userProcesses } from './console-shell.js';
import { SHUTDOWN_SIGNALS, shutdown, type ShutdownKind } from './shutdown.js';
import { hostnameFrom, VAR_DIRS } from './system-setup.js';
import { configFromEnv } from './config.js';
import { Journal } from './journal.js';
import { followKmsg } from './kmsg.js';
import { Manager } from './manager.js';
import { hostCheckFacts } from './check-facts.js';
import { startControlServer } from './control.js';
import { controlVerbs, READ_ONLY_VERBS } from './control-verbs.js';
import { startNotifySocket } from './notify.js';
import { realUnitFs } from '../units/real-fs.js';
import { runCloudConfig, type UserDataOutcome } from '../cloud-config/boot.js';
import { realDatasourceEnv } from '../cloud-config/datasources.js';
import type { UnitOps } from '../cloud-config/apply.js';
import { log, warn } from '../lib/log.js';

const readText = (p: string) => { try { return readFileSync(p, 'utf8'); } catch { return ''; } };
const uptime = () => parseFloat(readText('/proc/uptime').split(' ')[0]);
const startedAt = uptime();

/** The last resort: PID 1 never exits; it syncs and reboots instead. */
function lastResort(err: unknown): never {
  log(`FATAL: ${err instanceof Error ? err.stack ?? err.message : String(err)}`);
  try { native.sync(); } catch { /* nothing left to try */ }
  log('rebooting in 5s');
  const until = Date.now() + 5000;
  while (Date.now() < until) { /* no timers: the event loop may be what broke */ }
  native.reboot(native.constants.RB_AUTOBOOT);
  process.exit(1); // unreachable unless reboot(2) itself failed
}

/** /etc/machine-id: made once, on the first boot (which ConditionFirstBoot= sees). */
function machineId(etc: string): { id: string; firstBoot: boolean } {
  const id = readText(join(etc, 'machine-id')).trim();
  if (/^[0-9a-f]{32}$/.test(id)) return { id, firstBoot: false };
  const fresh = randomBytes(16).toString('hex');
  try { writeFileSync(join(etc, 'machine-id'), fresh + '\n'); } catch (e) { warn('write /etc/machine-id', e); }
  return { id: fresh, firstBoot: true };
}

function boot(): void {
  const cfg = configFromEnv(process.env);
  // An exception never kills PID 1: log it and carry on.
  process.on('uncaughtException', (e) => warn('handle an event (uncaught exception)', e));
  process.on('unhandledRejection', (e) => warn('handle an event (unhandled rejection)', e));
  // Fatal: without /proc, /sys and /dev nothing else works.
  if (!cfg.contained) for (const w of mountAll(API_MOUNTS, realMountSys(native)).warnings) log(`warning: ${w}`);
  let manager: Manager | undefined;
  // The main process of a forking service is not our child until its parent exits: we get its
  // exit as an orphan's, and hand it to the service whose main pid it is.
  const table = new ProcessTable(native, { safetyIntervalMs: 60_000, onOrphan: (st) => manager?.onOrphanExit(st) });
  table.start();
  // The initramfs armed the watchdog; from here PID 1 keeps the machine alive.
  if (!cfg.contained && petWatchdog('/dev/watchdog', 10_000, (e) => warn('pet the watchdog', e))) log('petting the watchdog');
  if (!cfg.contained) {
    for (const d of VAR_DIRS) {
      try { mkdirSync(d.path, { recursive: true }); chmodSync(d.path, d.mode); } catch (e) { warn(`create ${d.path}`, e); }
    }
  }
  const hostname = hostnameFrom(readText(join(cfg.etc, 'hostname')));
  if (!cfg.contained) {
    try { native.sethostname(hostname); } catch (e) { warn(`set hostname ${hostname}`, e); }
    try { native.ifUp('lo'); } catch (e) { warn('bring up lo', e); }
    // Ctrl-Alt-Del becomes SIGINT to PID 1 instead of an immediate reboot.
    try { native.reboot(native.constants.RB_DISABLE_CAD); } catch (e) { warn('take over Ctrl-Alt-Del', e); }
  }
  const mid = cfg.contained ? { id: '0'.repeat(32), firstBoot: false } : machineId(cfg.etc);
  const ids = { hostname, machineId: mid.id, bootId: readText('/proc/sys/kernel/random/boot_id').trim().replace(/-/g, '') };
  const journal = new Journal({ bootId: ids.bootId, dir: cfg.logDir, ...(cfg.journalMaxBytes ? { maxFileBytes: cfg.journalMaxBytes } : {}) });
  if (!cfg.contained) { try { followKmsg(native, journal); } catch (e) { warn('read kernel messages', e); } }
  mkdirSync(cfg.runtimeDir, { recursive: true });
  // The slot state: mount the ESP and repair a bad grubenv copy from the good one (best effort).
  if (!cfg.contained) {
    try {
      const dev = findPartition('EFI-SYSTEM');
      if (dev) {
        mkdirSync(ESP_DIR, { recursive: true });
        const C = native.constants;
        native.mount(dev, ESP_DIR, 'vfat', C.MS_NOSUID | C.MS_NODEV | C.MS_NOEXEC, 'umask=0077');
        for (const f of repairGrubenv(ESP_DIR, readText('/proc/cmdline'))) log(`repaired the slot state copy ${f}`);
      }
    } catch (e) { warn('check the slot state on the ESP', e); }
  }
  // Which slot this is, whether it is on trial, and whether an update was rolled back.
  let slot: ReturnType<typeof reportRollback> = { booted: null, trial: false };
  const updateDir = join(cfg.stateDir, 'update');
  if (!cfg.contained) {
    try { slot = reportRollback({ esp: ESP_DIR, cmdline: readText('/proc/cmdline'), stateDir: updateDir, log: (m) => { journal.append('keel-update', m); log(m); } }); } catch (e) { warn('read the slot state', e); }
    if (slot.trial) log(`slot ${slot.booted} is on trial: it is committed once boot-complete.target is reached and stays healthy`);
  }
  // memory, pids and cpu for every service's cgroup (MemoryMax=, TasksMax=, CPUQuota=, status).
  if (!cfg.contained && cfg.cgroupRoot) { try { enableControllers(cfg.cgroupRoot); } catch (e) { warn('enable cgroup controllers', e); } }
  const notifySocket = startNotifySocket(native, join(cfg.runtimeDir, 'notify'), (pid, fields) => manager?.unitOfPid(pid)?.dispatch({ type: 'notify', pid, fields }));
  manager = new Manager({
    cfg, native, table, journal, fs: realUnitFs(), ids, notifySocket,
    facts: () => hostCheckFacts({ hostname, machineId: ids.machineId, firstBoot: mid.firstBoot, cgroupRoot: cfg.cgroupRoot, etc: cfg.etc }),
    log: (m) => { journal.append('keel', m); log(m); },
  });
  for (const d of manager.load()) log(`warning: ${d}`);
  let stopping = false;
  const stop = (kind: ShutdownKind) => {
    if (stopping) return;
    stopping = true;
    log(`${kind}: stopping units`);
    manager!.stopAll().catch((e) => warn('stop units', e)).then(() => shutdown(kind, {
      kill: (pid, sig) => process.kill(pid, sig), reap: () => table.reap(), liveChildren: () => userProcesses().length,
      sync: native.sync, umount2: native.umount2, mount: native.mount, reboot: native.reboot, constants: native.constants,
    }, { contained: cfg.contained })).catch(lastResort);
  };
  for (const [sig, kind] of Object.entries(SHUTDOWN_SIGNALS)) process.on(sig as NodeJS.Signals, () => stop(kind));
  // systemd's SIGRTMIN+3/+4/+5 (halt, poweroff, reboot): Node has no names for them.
  try {
    const R = native.constants.SIGRTMIN;
    const kinds: Record<number, ShutdownKind> = { [R + 3]: 'halt', [R + 4]: 'poweroff', [R + 5]: 'reboot' };
    const fd = native.signalPipe(Object.keys(kinds).map(Number));
    native.watchFd(fd, () => {
      const b = Buffer.alloc(16);
      let n = 0;
      try { n = readSync(fd, b, 0, b.length, null); } catch { return; }
      for (let i = 0; i < n; i++) if (kinds[b[i]]) stop(kinds[b[i]]);
    }).unref();
  } catch (e) { warn('handle SIGRTMIN+3..5', e); }
  const systemState: { cloudConfig: () => UserDataOutcome[] } = { cloudConfig: () => [] };
  startControlServer(join(cfg.runtimeDir, 'control.sock'), controlVerbs(manager, journal, ids.bootId, stop, () => systemState.cloudConfig()), {
    peerUid: (sock) => native.peerCred((sock as unknown as { _handle: { fd: number } })._handle.fd).uid,
    readOnly: READ_ONLY_VERBS,
    onError: (e) => warn('answer on the control socket', e),
  });
  const target = cfg.defaultTarget;
  let userData: UserDataOutcome[] = [];
  const cloudConfig = cfg.contained ? Promise.resolve([]) : runCloudConfig(
    realDatasourceEnv((dev, where, type) => native.mount(dev, where, type, native.constants.MS_RDONLY, null), (m) => journal.append('cloud-config', m)),
    { root: '/', setHostname: (n) => native.sethostname(n), addresses: machineAddresses(), units: cloudConfigUnitOps(manager) },
    (m) => { journal.append('cloud-config', m.replace(/^cloud-config: /, '')); log(m); },
    async (path) => {
      mkdirSync('/run/systemd/system', { recursive: true });
      writeFileSync('/run/systemd/system/user-data-script.service', `[Unit]\nDescription=User-data script\n[Service]\nType=oneshot\nExecStart=${path}\n`);
      manager!.load();
      void manager!.backgroundJob('user-data-script.service', 'start', { unit: 'cloud-config', why: 'the user-data script' });
    },
  );
  systemState.cloudConfig = () => userData;
  cloudConfig.then((o) => { userData = o; }, (e) => warn('apply cloud-config', e)).then(() => manager!.job(target, 'start')).then((result) => {
    manager!.endStartup();
    // The one machine-readable line: seconds since the kernel started, and since the init did.
    const now = uptime();
    if (result !== 'done') {
      log(`${target} failed (${result}); failed units: ${manager!.failed().join(', ') || 'none'}`);
      if (!cfg.contained && !slot.trial) emergencyShell(table, hostname);
    }
    log(`ready in ${now.toFixed(2)}s (init ${(now - startedAt).toFixed(2)}s)`);
    if (!cfg.contained) bootComplete(manager!, slot, updateDir, result === 'done', (m) => { journal.append('keel-update', m); log(m); }, () => stop('reboot'), () => stopping);
  }, (e) => warn(`start ${target}`, e));
  // Keep the event loop alive forever: PID 1 must never run out of work and exit.
  setInterval(() => {}, 2 ** 31 - 1);
}

/** Units ordered before (or pulled in by) boot-complete.target: the health checks of a boot. */
function healthUnits(m: Manager): GateUnits {
  const BC = 'boot-complete.target';
  return {
    startBootComplete: () => m.job(BC, 'start'),
    failedHealthUnits: () => {
      const bc = m.lookup(BC);
      const linked = new Set([...(bc?.deps.after ?? []), ...(bc?.deps.requires ?? []), ...(bc?.deps.wants ?? []), ...(bc?.deps.wantedByLinks ?? [])]);
      return [...m.units().values()].filter((u) => u.deps.before.includes(BC) || linked.has(u.name)).map((u) => u.name)
        .filter((n) => m.status(n, 0).activeState === 'failed');
    },
  };
}

/** After the default target: commit a trial boot through the gate (or mark it bad and reboot);
 *  on a committed slot, start boot-complete.target all the same and report a failure. */
function bootComplete(m: Manager, slot: { booted: 'A' | 'B' | null; trial: boolean }, stateDir: string, targetOk: boolean, say: (m: string) => void, reboot: () => void, stopping: () => boolean): void {
  const units = healthUnits(m);
  if (!slot.booted || !slot.trial) {
    units.startBootComplete().then((r) => { if (r !== 'done') say(`boot-complete.target failed (${r}): ${units.failedHealthUnits().join(', ') || 'see keel status'}`); }, (e) => warn('start boot-complete.target', e));
    return;
  }
  let healthySeconds = 60;
  try { healthySeconds = loadUpdateConf().healthySeconds; } catch (e) { warn('read /etc/keel/update.conf (the healthy time stays 60s)', e); }
  const gate = { esp: ESP_DIR, cmdline: readText('/proc/cmdline'), stateDir, healthySeconds, log: say, reboot, stopping, units: targetOk ? units : { ...units, startBootComplete: async () => 'default target failed' } };
  runBootGate(gate, slot.booted).catch((e) => warn('run the boot-complete gate', e));
}

/** The machine's addresses for $private_ipv4 and friends: what the interfaces have now (a static
 *  address from an earlier boot, say); empty on a first boot before DHCP. */
function machineAddresses(): { private_ipv4?: string; private_ipv6?: string } {
  const all = Object.values(networkInterfaces()).flat().filter((a): a is NonNullable<typeof a> => !!a && !a.internal);
  const v4 = all.find((a) => a.family === 'IPv4')?.address;
  const v6 = all.find((a) => a.family === 'IPv6' && !a.address.startsWith('fe80'))?.address;
  return { ...(v4 ? { private_ipv4: v4 } : {}), ...(v6 ? { private_ipv6: v6 } : {}) };
}

/** cloud-config's coreos.units operations, done by the manager in this process. */
function cloudConfigUnitOps(m: Manager): UnitOps {
  const active = (n: string) => ['active', 'reloading', 'activating'].includes(m.status(n, 0).activeState);
  return {
    daemonReload: () => { m.load(); },
    enable: (n) => { m.files.enable(n); },
    mask: (n) => { m.files.mask(n); },
    unmask: (n) => { m.files.unmask(n); },
    command: async (n, c) => {
      switch (c) {
        case 'start': case 'stop': case 'restart': case 'reload': return m.job(n, c);
        case 'try-restart': return active(n) ? m.job(n, 'restart') : 'done';
        case 'reload-or-restart': return m.job(n, m.lookup(n)?.service?.execReload.length ? 'reload' : 'restart');
        case 'reload-or-try-restart': return active(n) ? m.job(n, m.lookup(n)?.service?.execReload.length ? 'reload' : 'restart') : 'done';
        default: throw new Error(`unknown command "${c}"`);
      }
    },
  };
}

/** When the default target cannot be reached, a root shell on the console (like emergency.target). */
function emergencyShell(table: ProcessTable, hostname: string): void {
  const tty = consoleDevice(readText('/proc/cmdline'));
  runConsoleShell((t) => table.spawn({ file: '/bin/sh', argv: ['-sh'], env: [...BASE_ENV, `HOSTNAME=${hostname}`], cwd: '/', tty: t }), tty);
}

if (process.pid !== 1) {
  process.stderr.write('keel init: must run as PID 1 (it is started by the initramfs)\n');
  process.exitCode = 1;
} else {
  try { boot(); } catch (e) { lastResort(e); }
}
