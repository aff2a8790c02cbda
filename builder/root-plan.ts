// What Keel adds to the base tree: skeleton, /etc defaults, os-release, the init and its addon.
import type { FsOp } from './fs-plan.js';
import type { ImageDef } from './image-def.js';

/** /usr/lib/os-release for this image. */
export function osRelease(def: ImageDef, epoch: number): string {
  return [
    'NAME="Keel"',
    'ID=keel',
    'ID_LIKE=coreos',
    `VERSION=${def.version}`,
    `VERSION_ID=${def.version}`,
    `BUILD_ID=${epoch}`,
    `PRETTY_NAME="Keel ${def.version}"`,
    'ANSI_COLOR="38;5;75"',
    '',
  ].join('\n');
}

const PASSWD =
  'root:x:0:0:root:/root:/bin/sh\ncore:x:500:500:Keel Admin:/home/core:/bin/sh\n' +
  'nobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin\n';
const GROUP = 'root:x:0:\ntty:x:5:\ndisk:x:6:\nwheel:x:10:core\ncore:x:500:\nnogroup:x:65534:\n';
// No password logins unless cloud-config sets one: every account is locked.
const SHADOW = 'root:*:1::::::\ncore:*:1::::::\nnobody:*:1::::::\n';
// NODE_COMPILE_CACHE: V8's code cache of the bundle (Node 22), kept on /var, spares each later run
// most of its compile (~10 of ~90 ms for a keel run); a user who cannot write there runs without it.
// `node --`: Node reads --env-file FILE anywhere on its command line, even after the script (keel run --env-file).
const KEEL_WRAPPER =
  '#!/bin/sh\n# The keel command (also systemctl and journalctl, by the name it is called with).\n' +
  'KEEL_PROGRAM=${0##*/} NODE_COMPILE_CACHE=/var/cache/keel/node exec /usr/bin/node -- /usr/lib/keel/keel.mjs "$@"\n';
const PROFILE = "export PATH=/usr/sbin:/usr/bin:/sbin:/bin\nexport PS1='\\u@\\h:\\w\\$ '\n";

/** The layout Keel lays over the base tree. Host files (init bundle, addon, initrd) are copied in. */
export function rootPlan(
  def: ImageDef,
  epoch: number,
  files: { init: string; cli: string; native: string; initrd: string; updateKey: string },
): FsOp[] {
  return [
    ...[
      'dev',
      'proc',
      'sys',
      'run',
      'tmp',
      'var',
      'etc',
      'boot',
      'usr/lib/keel',
      'usr/share/oem',
      'usr/lib/systemd/system',
      'etc/systemd/system',
    ].map((path): FsOp => ({ op: 'mkdir', path })),
    // State lives on /var (ROOT); these top-level names point there, as on Container Linux.
    { op: 'symlink', path: 'home', target: 'var/home' },
    { op: 'symlink', path: 'root', target: 'var/roothome' },
    { op: 'symlink', path: 'opt', target: 'var/opt' },
    { op: 'symlink', path: 'srv', target: 'var/srv' },
    { op: 'symlink', path: 'mnt', target: 'var/mnt' },
    { op: 'write', path: 'usr/lib/os-release', content: osRelease(def, epoch) },
    { op: 'symlink', path: 'etc/os-release', target: '../usr/lib/os-release' },
    { op: 'symlink', path: 'etc/mtab', target: '../proc/self/mounts' },
    { op: 'write', path: 'etc/passwd', content: PASSWD },
    { op: 'write', path: 'etc/group', content: GROUP },
    { op: 'write', path: 'etc/shadow', content: SHADOW, mode: 0o640 },
    { op: 'write', path: 'etc/profile', content: PROFILE },
    { op: 'write', path: 'etc/shells', content: '/bin/sh\n/bin/ash\n' },
    { op: 'write', path: 'etc/fstab', content: '# Keel mounts its filesystems itself; see /proc/self/mounts.\n' },
    { op: 'copy', path: 'usr/lib/keel/init.mjs', from: files.init, mode: 0o644 },
    { op: 'copy', path: 'usr/lib/keel/keel_native.node', from: files.native, mode: 0o755 },
    { op: 'copy', path: 'usr/lib/keel/keel.mjs', from: files.cli, mode: 0o644 },
    { op: 'write', path: 'usr/bin/keel', content: KEEL_WRAPPER, mode: 0o755 },
    // Real unit files and scripts call systemctl and journalctl: the keel command answers both.
    { op: 'symlink', path: 'usr/bin/systemctl', target: 'keel' },
    { op: 'symlink', path: 'usr/bin/journalctl', target: 'keel' },
    { op: 'symlink', path: 'etc/resolv.conf', target: '../run/keel/resolv.conf' },
    { op: 'copy', path: 'boot/initrd', from: files.initrd, mode: 0o644 },
    // The key update payloads are checked against (builder/payload.ts, update/).
    { op: 'copy', path: 'usr/lib/keel/update.pub', from: files.updateKey, mode: 0o644 },
  ];
}
