// The instance name systemd 252 gives the service of an accepted connection (socket.c's
// instance_from_socket): "NR-LOCAL:PORT-REMOTE:PORT" for IP, "NR-PID-UID" for AF_UNIX. Pure.
import type { Accepted } from '../native/native.js';

const V4_MAPPED = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i;

/** The instance for connection number `nr` (from 0); `peer` is SO_PEERCRED of a unix connection, null if unknown. */
export function instanceName(nr: number, c: Accepted, peer: { pid: number; uid: number } | null): string {
  if (c.family === 'unix') return peer ? `${nr}-${peer.pid}-${peer.uid}` : `${nr}-unknown`;
  let [local, remote] = [c.localAddress, c.remoteAddress];
  // Both ends IPv4 on a dual-stack socket: written as IPv4, as systemd does.
  const l = V4_MAPPED.exec(local),
    r = V4_MAPPED.exec(remote);
  if (c.family === 'inet6' && l && r) [local, remote] = [l[1], r[1]];
  return `${nr}-${local}:${c.localPort}-${remote}:${c.remotePort}`;
}
