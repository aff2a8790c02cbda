// Keel's PID 1, as a story: the host boot (API filesystems, watchdog, /var, names, lo, kernel
// messages, slot state, cgroups; contained mode skips it whole), the journal, the service
// manager and the control socket, cloud-config, the default target, "ready", boot-complete, and
// signals turned into orderly shutdowns. Fatal steps throw (and end in sync and reboot);
// best-effort steps warn and go on.
import { mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { native } from '../native/native.js';
import { ProcessTable } from '../native/process-table.js';
import { emergencyShell, userProcesses } from './console-shell.js';
import { shutdown, type ShutdownKind } from './shutdown.js';
import { hostnameFrom } from './system-setup.js';
import { configFromEnv } from './config.js';
import { Journal } from './journal.js';
import { Manager } from './manager.js';
import { hostCheckFacts } from './check-facts.js';
import { HOST_STEPS, runHostSteps, type HostBoot } from './host-steps.js';
import { onShutdownSignals } from './signals.js';
import { bootComplete } from './boot-complete.js';
import { awaitAddresses, cloudConfigUnitOps, machineAddresses, runUserDataScript } from './cloud-config-units.js';
import { startControlServer } from './control.js';
import { controlVerbs, READ_ONLY_VERBS } from './control-verbs.js';
import { startNotifySocket } from './notify.js';
import { realUnitFs } from '../units/real-fs.js';
import { runCloudConfig, type UserDataOutcome } from '../cloud-config/boot.js';
import { realDatasourceEnv } from '../cloud-config/datasources.js';
import { log, warn } from '../lib/log.js';

const readText = (p: string) => {
  try {
    return readFileSync(p, 'utf8');
  } catch {
    return '';
  }
};
const uptime = () => parseFloat(readText('/proc/uptime').split(' ')[0]);
const startedAt = uptime();

/** The last resort: PID 1 never exits; it syncs and reboots instead. */
function lastResort(err: unknown): never {
  log(`FATAL: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}`);
  try {
    native.sync();
  } catch {
    /* nothing left to try */
  }
  log('rebooting in 5s');
  const until = Date.now() + 5000;
  while (Date.now() < until) {
    /* no timers: the event loop may be what broke */
  }
  native.reboot(native.constants.RB_AUTOBOOT);
  process.exit(1); // unreachable unless reboot(2) itself failed
}

function boot(): void {
  const cfg = configFromEnv(process.env);
  // An exception never kills PID 1: log it and carry on.
  process.on('uncaughtException', (e) => warn('handle an event (uncaught exception)', e));
  process.on('unhandledRejection', (e) => warn('handle an event (unhandled rejection)', e));
  let manager: Manager | undefined;
  // The main process of a forking service is not our child until its parent exits: we get its
  // exit as an orphan's, and hand it to the service whose main pid it is.
  const table = new ProcessTable(native, { safetyIntervalMs: 60_000, onOrphan: (st) => manager?.onOrphanExit(st) });
  let journal: Journal | undefined;
  const host: HostBoot = {
    cfg,
    native,
    hostname: hostnameFrom(readText(join(cfg.etc, 'hostname'))),
    machineId: '0'.repeat(32),
    firstBoot: false,
    slot: { booted: null, trial: false },
    journal: () =>
      (journal ??= new Journal({
        bootId: readText('/proc/sys/kernel/random/boot_id').trim().replace(/-/g, ''),
        dir: cfg.logDir,
        ...(cfg.journalMaxBytes ? { maxFileBytes: cfg.journalMaxBytes } : {}),
      })),
  };
  if (!cfg.contained) runHostSteps(HOST_STEPS, host);
  table.start();
  const { hostname, slot } = host;
  const ids = { hostname, machineId: host.machineId, bootId: host.journal().opts.bootId };
  const say = (unit: string) => (m: string) => {
    host.journal().append(unit, m);
    log(m);
  };
  mkdirSync(cfg.runtimeDir, { recursive: true });
  const notifySocket = startNotifySocket(native, join(cfg.runtimeDir, 'notify'), (pid, fields) =>
    manager?.unitOfPid(pid)?.dispatch({ type: 'notify', pid, fields }),
  );
  const m = (manager = new Manager({
    cfg,
    native,
    table,
    journal: host.journal(),
    fs: realUnitFs(),
    ids,
    notifySocket,
    log: say('keel'),
    facts: () =>
      hostCheckFacts({
        hostname,
        machineId: ids.machineId,
        firstBoot: host.firstBoot,
        cgroupRoot: cfg.cgroupRoot,
        etc: cfg.etc,
      }),
  }));
  for (const d of m.load()) log(`warning: ${d}`);
  let stopping = false;
  const stop = (kind: ShutdownKind) => {
    if (stopping) return;
    stopping = true;
    log(`${kind}: stopping units`);
    m.stopAll()
      .catch((e) => warn('stop units', e))
      .then(() =>
        shutdown(
          kind,
          {
            kill: (pid, sig) => process.kill(pid, sig),
            reap: () => table.reap(),
            liveChildren: () => userProcesses().length,
            sync: native.sync,
            umount2: native.umount2,
            mount: native.mount,
            reboot: native.reboot,
            constants: native.constants,
          },
          { contained: cfg.contained },
        ),
      )
      .catch(lastResort);
  };
  onShutdownSignals(native, stop);
  let userData: UserDataOutcome[] = [];
  startControlServer(
    join(cfg.runtimeDir, 'control.sock'),
    controlVerbs(m, host.journal(), ids.bootId, stop, () => userData),
    {
      peerUid: (sock) => native.peerCred((sock as unknown as { _handle: { fd: number } })._handle.fd).uid,
      readOnly: READ_ONLY_VERBS,
      onError: (e) => warn('answer on the control socket', e),
    },
  );
  const cloudConfig = cfg.contained
    ? Promise.resolve([])
    : runCloudConfig(
        realDatasourceEnv(
          (dev, where, type) => native.mount(dev, where, type, native.constants.MS_RDONLY, null),
          (x) => host.journal().append('cloud-config', x),
        ),
        {
          root: '/',
          setHostname: (n) => native.sethostname(n),
          addresses: machineAddresses(),
          units: cloudConfigUnitOps(m),
        },
        (x) => {
          host.journal().append('cloud-config', x.replace(/^cloud-config: /, ''));
          log(x);
        },
        async (path) => runUserDataScript(m, path),
        () => awaitAddresses(m, log),
      );
  const target = cfg.defaultTarget;
  cloudConfig
    .then(
      (o) => {
        userData = o;
      },
      (e) => warn('apply cloud-config', e),
    )
    .then(() => m.job(target, 'start'))
    .then(
      (result) => {
        m.endStartup();
        // The one machine-readable line: seconds since the kernel started, and since the init did.
        const now = uptime();
        if (result !== 'done') {
          log(`${target} failed (${result}); failed units: ${m.failed().join(', ') || 'none'}`);
          if (!cfg.contained && !slot.trial) emergencyShell(table, hostname);
        }
        log(`ready in ${now.toFixed(2)}s (init ${(now - startedAt).toFixed(2)}s)`);
        if (!cfg.contained)
          bootComplete(
            m,
            slot,
            join(cfg.stateDir, 'update'),
            result === 'done',
            say('keel-update'),
            () => stop('reboot'),
            () => stopping,
          );
      },
      (e) => warn(`start ${target}`, e),
    );
  // Keep the event loop alive forever: PID 1 must never run out of work and exit.
  setInterval(() => {}, 2 ** 31 - 1);
}

if (process.pid !== 1) {
  process.stderr.write('keel init: must run as PID 1 (it is started by the initramfs)\n');
  process.exitCode = 1;
} else {
  try {
    boot();
  } catch (e) {
    lastResort(e);
  }
}
