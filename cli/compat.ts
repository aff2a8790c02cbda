// systemctl and journalctl as names of the keel command: real unit files and scripts call them.
// Their arguments are mapped onto keel verbs; options keel has no use for are accepted and ignored.

const SYSTEMCTL_VERBS = new Set([
  'start',
  'stop',
  'restart',
  'reload',
  'try-restart',
  'reload-or-restart',
  'status',
  'is-active',
  'is-enabled',
  'is-failed',
  'enable',
  'disable',
  'mask',
  'unmask',
  'daemon-reload',
  'list-units',
  'reboot',
  'poweroff',
  'halt',
]);
const IGNORED = new Set([
  '--no-pager',
  '--no-legend',
  '--no-ask-password',
  '--system',
  '--full',
  '-l',
  '--plain',
  '--no-reload',
]);

/** Translates a systemctl command line into keel argv; throws a TypeError for verbs keel lacks. */
export function fromSystemctl(args: string[]): string[] {
  const rest = args.filter((a) => !IGNORED.has(a));
  const verbIndex = rest.findIndex((a) => !a.startsWith('-'));
  if (verbIndex < 0) return ['list-units'];
  let verb = rest[verbIndex];
  const others = rest.filter((_, i) => i !== verbIndex).map((a) => (a === '--quiet' ? '-q' : a));
  if (!SYSTEMCTL_VERBS.has(verb)) throw new TypeError(`systemctl: unknown or unsupported verb "${verb}"`);
  if (verb === 'try-restart' || verb === 'reload-or-restart') verb = 'restart';
  if (verb === 'is-failed') verb = 'is-active';
  return [verb, ...others];
}

/** Translates a journalctl command line into `keel logs` argv. */
export function fromJournalctl(args: string[]): string[] {
  const out = ['logs'];
  for (let i = 0; i < args.length; i++) {
    const a = args[i];
    if (IGNORED.has(a) || a === '-e' || a === '--pager-end' || a === '-x' || a === '--catalog') continue;
    if (a.startsWith('--unit=')) out.push('-u', a.slice(7));
    else if (a.startsWith('--lines=')) out.push('-n', a.slice(8));
    else if (a === '--unit') out.push('-u', args[++i]);
    else if (a === '--follow') out.push('-f');
    else if (a === '--boot') out.push('-b');
    else if (a.startsWith('--since=')) out.push('--since', a.slice(8));
    else out.push(a);
  }
  return out;
}
