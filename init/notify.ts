// The sd_notify socket: services of Type=notify send READY=1, STATUS=..., MAINPID=... here.
import type { Native } from '../native/native.js';
import { warn } from '../lib/log.js';

/** Parses a notify datagram ("READY=1\nSTATUS=up\n") into fields. */
export function parseNotify(data: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const line of data.split('\n')) {
    const i = line.indexOf('=');
    if (i > 0) out[line.slice(0, i)] = line.slice(i + 1);
  }
  return out;
}

/** Binds the socket and calls `onMessage` with the sender's pid (from SCM_CREDENTIALS); returns the path or null. */
export function startNotifySocket(
  native: Native,
  path: string,
  onMessage: (pid: number, fields: Record<string, string>) => void,
): string | null {
  let fd: number;
  try {
    fd = native.unixDgramSocket(path, 0o777);
  } catch (e) {
    warn(`open the notify socket ${path}`, e);
    return null;
  }
  native
    .watchFd(fd, () => {
      for (let msg = native.recvCred(fd); msg; msg = native.recvCred(fd)) {
        try {
          onMessage(msg.pid, parseNotify(msg.data.toString('utf8')));
        } catch (e) {
          warn('handle a notify message', e);
        }
      }
    })
    .unref();
  return path;
}
