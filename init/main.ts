// Keel's PID 1, as a story: mount the API filesystems, prepare /var, name the machine, bring up
// lo, reap orphans, give the console a shell, say "ready", and turn signals into shutdowns.
// Fatal steps throw (and end in sync and reboot); best-effort steps warn and go on.
import { chmodSync, mkdirSync, readFileSync } from 'node:fs';
import { native } from './native.js';
import { ProcessTable } from './process-table.js';
import { API_MOUNTS, mountAll, realMountSys } from './early-mounts.js';
import { BASE_ENV, consoleDevice, runConsoleShell, userProcesses } from './console-shell.js';
import { SHUTDOWN_SIGNALS, shutdown, type ShutdownKind } from './shutdown.js';
import { hostnameFrom, VAR_DIRS } from './system-setup.js';
import { log, warn } from './log.js';

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

function boot(): void {
  // An exception never kills PID 1: log it and carry on.
  process.on('uncaughtException', (e) => warn('handle an event (uncaught exception)', e));
  process.on('unhandledRejection', (e) => warn('handle an event (unhandled rejection)', e));
  // Fatal: without /proc, /sys and /dev nothing else works.
  for (const w of mountAll(API_MOUNTS, realMountSys(native)).warnings) log(`warning: ${w}`);
  const table = new ProcessTable(native);
  table.start();
  for (const d of VAR_DIRS) {
    try { mkdirSync(d.path, { recursive: true }); chmodSync(d.path, d.mode); } catch (e) { warn(`create ${d.path}`, e); }
  }
  const hostname = hostnameFrom(readText('/etc/hostname'));
  try { native.sethostname(hostname); } catch (e) { warn(`set hostname ${hostname}`, e); }
  try { native.ifUp('lo'); } catch (e) { warn('bring up lo', e); }
  // Ctrl-Alt-Del becomes SIGINT to PID 1 instead of an immediate reboot.
  try { native.reboot(native.constants.RB_DISABLE_CAD); } catch (e) { warn('take over Ctrl-Alt-Del', e); }
  let stopping = false;
  const stop = (kind: ShutdownKind) => {
    if (stopping) return;
    stopping = true;
    shutdown(kind, {
      kill: (pid, sig) => process.kill(pid, sig), reap: () => table.reap(), liveChildren: () => userProcesses().length,
      sync: native.sync, umount2: native.umount2, mount: native.mount, reboot: native.reboot, constants: native.constants,
    }).catch(lastResort);
  };
  for (const [sig, kind] of Object.entries(SHUTDOWN_SIGNALS)) process.on(sig as NodeJS.Signals, () => stop(kind));
  const tty = consoleDevice(readText('/proc/cmdline'));
  runConsoleShell((t) => table.spawn({ file: '/bin/sh', argv: ['-sh'], env: [...BASE_ENV, `HOSTNAME=${hostname}`], cwd: '/root', tty: t }), tty);
  // The one machine-readable line: seconds since the kernel started, and since the init did.
  const now = uptime();
  log(`ready in ${now.toFixed(2)}s (init ${(now - startedAt).toFixed(2)}s)`);
  // Keep the event loop alive forever: PID 1 must never run out of work and exit.
  setInterval(() => {}, 1 << 30);
}

if (process.pid !== 1) {
  process.stderr.write('keel init: must run as PID 1 (it is started by the initramfs)\n');
  process.exitCode = 1;
} else {
  try { boot(); } catch (e) { lastResort(e); }
}
