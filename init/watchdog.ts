// The watchdog: the initramfs arms /dev/watchdog (a hardware one, or softdog); from then on PID 1
// pets it. A hung init (or a machine too broken to run its event loop) is reset, and on a trial
// boot that reset counts as one of the slot's tries, because GRUB counted it before booting.
import { closeSync, openSync, writeSync } from 'node:fs';

/** Pets `device` every `intervalMs`; returns null when there is no watchdog. Never closes it:
 *  a close without the magic 'V' keeps it running anyway, and a hang while shutting down must
 *  still be caught; reboot(2) resets the machine before the timeout. */
export function petWatchdog(
  device = '/dev/watchdog',
  intervalMs = 10_000,
  onError: (e: unknown) => void = () => {},
): { fd: number; stop(): void } | null {
  let fd: number;
  try {
    fd = openSync(device, 'w');
  } catch {
    return null;
  }
  const pet = () => {
    try {
      writeSync(fd, '1');
    } catch (e) {
      onError(e);
    }
  };
  pet();
  const timer = setInterval(pet, intervalMs);
  return {
    fd,
    // Tests only: the running OS never stops petting.
    stop() {
      clearInterval(timer);
      try {
        writeSync(fd, 'V');
        closeSync(fd);
      } catch {
        /* gone */
      }
    },
  };
}
