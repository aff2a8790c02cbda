// A root shell on the console the kernel was told to use, respawned whenever it exits.
import { readdirSync, readFileSync } from 'node:fs';
import { log, warn } from '../lib/log.js';
import type { ProcessTable } from '../native/process-table.js';

/** The terminal of the last console= argument (the kernel's /dev/console), e.g. /dev/ttyS0. */
export function consoleDevice(cmdline: string): string {
  let dev = 'console';
  for (const arg of cmdline.trim().split(/\s+/)) {
    if (arg.startsWith('console=') && arg.length > 8) dev = arg.slice(8).split(',')[0] || dev;
  }
  return `/dev/${dev}`;
}

/** The environment every process PID 1 starts gets. */
export const BASE_ENV = [
  'PATH=/usr/sbin:/usr/bin:/sbin:/bin',
  'HOME=/root',
  'TERM=linux',
  'SHELL=/bin/sh',
  'USER=root',
  'LOGNAME=root',
];

/** Starts the shell; what spawns and waits is passed in (PID 1's process table). */
export function runConsoleShell(spawn: (tty: string) => { pid: number; exited: Promise<unknown> }, tty: string): void {
  let restarts = 0;
  const start = () => {
    try {
      const child = spawn(tty);
      child.exited.then(() => {
        restarts++;
        // Back off if the shell dies at once, so a broken shell cannot spin PID 1.
        setTimeout(start, restarts > 5 ? 2000 : 200);
      });
    } catch (e) {
      warn(`start a shell on ${tty}`, e);
      setTimeout(start, 5000);
    }
  };
  log(`shell on ${tty}`);
  start();
}

/** Pids of user-space processes other than PID 1 (kernel threads have an empty cmdline). */
export function userProcesses(proc = '/proc'): number[] {
  const out: number[] = [];
  for (const name of readdirSync(proc)) {
    if (!/^\d+$/.test(name) || name === '1') continue;
    try {
      if (readFileSync(`${proc}/${name}/cmdline`).length > 0) out.push(Number(name));
    } catch {
      /* gone */
    }
  }
  return out;
}

/** When the default target cannot be reached, a root shell on the console (like emergency.target). */
export function emergencyShell(table: Pick<ProcessTable, 'spawn'>, hostname: string): void {
  let cmdline = '';
  try {
    cmdline = readFileSync('/proc/cmdline', 'utf8');
  } catch {
    /* the default console */
  }
  runConsoleShell(
    (t) =>
      table.spawn({ file: '/bin/sh', argv: ['-sh'], env: [...BASE_ENV, `HOSTNAME=${hostname}`], cwd: '/', tty: t }),
    consoleDevice(cmdline),
  );
}
