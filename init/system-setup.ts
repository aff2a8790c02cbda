// Small facts of system setup: the hostname rule and the directories /var must hold.

/** Directories made on /var at every boot (ROOT starts empty on first boot). */
export const VAR_DIRS: { path: string; mode: number }[] = [
  { path: '/var/home', mode: 0o755 },
  { path: '/var/roothome', mode: 0o700 },
  { path: '/var/opt', mode: 0o755 },
  { path: '/var/srv', mode: 0o755 },
  { path: '/var/mnt', mode: 0o755 },
  { path: '/var/tmp', mode: 0o1777 },
  { path: '/var/lib/keel', mode: 0o755 },
  { path: '/var/log/keel', mode: 0o755 },
];

/** The hostname: first word of /etc/hostname when it is a valid name, else "keel". */
export function hostnameFrom(etcHostname: string): string {
  const line =
    etcHostname
      .split('\n')
      .map((l) => l.trim())
      .find((l) => l && !l.startsWith('#')) ?? '';
  const name = line.split(/\s+/)[0];
  return /^[A-Za-z0-9]([A-Za-z0-9-]{0,62})(\.[A-Za-z0-9][A-Za-z0-9-]{0,62})*$/.test(name) && name.length <= 64
    ? name
    : 'keel';
}
