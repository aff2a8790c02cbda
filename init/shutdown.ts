// Poweroff, reboot and halt: stop every process, sync, unmount, and call reboot(2).
import { readFileSync } from 'node:fs';
import { log, warn } from '../lib/log.js';
import { unescapeMountPath } from './early-mounts.js';

/** What the user asked for; busybox's poweroff/reboot/halt send PID 1 SIGUSR2/SIGTERM/SIGUSR1. */
export type ShutdownKind = 'poweroff' | 'reboot' | 'halt';

/** Signal -> shutdown kind, as busybox's halt/poweroff/reboot and the kernel's Ctrl-Alt-Del send them. */
export const SHUTDOWN_SIGNALS: Record<string, ShutdownKind> = {
  SIGUSR2: 'poweroff',
  SIGPWR: 'poweroff',
  SIGTERM: 'reboot',
  SIGINT: 'reboot',
  SIGUSR1: 'halt',
};

/** Mount points to unmount, deepest first (reverse order of /proc/self/mounts), skipping API filesystems. */
export function unmountOrder(mounts: string): string[] {
  const keep = new Set(['/', '/proc', '/sys', '/dev']);
  return mounts
    .split('\n')
    .filter(Boolean)
    .map((l) => unescapeMountPath(l.split(' ')[1]))
    .filter((t) => !keep.has(t))
    .reverse();
}

/** The syscalls shutdown needs. */
export interface ShutdownSys {
  kill(pid: number, signal: NodeJS.Signals): void;
  reap(): void;
  liveChildren(): number;
  sync(): void;
  umount2(target: string, flags: number): void;
  mount(source: string | null, target: string, type: string | null, flags: number, data: string | null): void;
  reboot(cmd: number): void;
  constants: Record<string, number>;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** How long shutdown waits for children, and the clock it waits by (Date.now and setTimeout when absent). */
export interface ShutdownOptions {
  graceMs?: number;
  contained?: boolean;
  now?: () => number;
  sleep?: (ms: number) => Promise<void>;
}

/** Stops everything and ends the machine. Each step is best effort: a failure is logged, never thrown. */
export async function shutdown(kind: ShutdownKind, sys: ShutdownSys, opts: ShutdownOptions = {}): Promise<void> {
  const now = opts.now ?? Date.now;
  const pause = opts.sleep ?? sleep;
  log(`${kind}: stopping all processes`);
  const step = (what: string, fn: () => void) => {
    try {
      fn();
    } catch (e) {
      warn(what, e);
    }
  };
  step('send SIGTERM to all processes', () => sys.kill(-1, 'SIGTERM'));
  const deadline = now() + (opts.graceMs ?? 3000);
  while (now() < deadline) {
    sys.reap();
    if (sys.liveChildren() === 0) break;
    await pause(50);
  }
  step('send SIGKILL to all processes', () => sys.kill(-1, 'SIGKILL'));
  await pause(50);
  sys.reap();
  step('sync', () => sys.sync());
  let mounts = '';
  // Contained (host tests): the mounts are the host's, seen through a private namespace; leave them.
  try {
    if (!opts.contained) mounts = readFileSync('/proc/self/mounts', 'utf8');
  } catch {
    /* nothing mounted we can see */
  }
  const C = sys.constants;
  for (const target of unmountOrder(mounts)) {
    try {
      sys.umount2(target, 0);
    } catch {
      // Busy (a file still open): make it read-only so the journal is clean, then detach it.
      step(`remount ${target} read-only`, () => sys.mount(null, target, null, C.MS_REMOUNT | C.MS_RDONLY, null));
      step(`unmount ${target}`, () => sys.umount2(target, C.MNT_DETACH));
    }
  }
  step('sync', () => sys.sync());
  log(`${kind}: reboot(2)`);
  const cmd = kind === 'poweroff' ? C.RB_POWER_OFF : kind === 'halt' ? C.RB_HALT_SYSTEM : C.RB_AUTOBOOT;
  sys.reboot(cmd);
}
