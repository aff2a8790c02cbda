// The keel CLI: one small file per verb; this file only dispatches.
import { basename } from 'node:path';
import { parseArgs, type ParseArgsConfig } from 'node:util';
import { fromJournalctl, fromSystemctl } from './compat.js';

/** A verb: its help line, its options, and what it does with them. */
export interface Verb {
  summary: string;
  usage: string;
  options: NonNullable<ParseArgsConfig['options']>;
  run(values: Record<string, unknown>, positionals: string[]): Promise<number>;
  /** Options are read only up to this many positionals; the rest is passed as is (the command
   *  of `keel run IMAGE CMD...` keeps its own options). */
  optionsUntilPositional?: number;
}

/** Splits `args` after the n-th positional (option values and `--` understood). */
export function splitAtPositional(args: string[], options: Verb['options'], n: number): [string[], string[]] {
  const takesValue = (name: string) => options[name]?.type === 'string';
  const shortName = (c: string) => Object.entries(options).find(([, o]) => o.short === c)?.[0];
  let seen = 0;
  for (let i = 0; i < args.length; i++) {
    const a = args[i];
    if (a === '--') return [args.slice(0, i), args.slice(i + 1)];
    if (a.startsWith('--')) {
      if (!a.includes('=') && takesValue(a.slice(2))) i++;
      continue;
    }
    if (a.startsWith('-') && a.length > 1) {
      for (let j = 1; j < a.length; j++) {
        const name = shortName(a[j]);
        if (name && takesValue(name)) {
          if (j === a.length - 1) i++;
          break;
        }
      }
      continue;
    }
    if (++seen === n) return [args.slice(0, i + 1), args.slice(i + 1)];
  }
  return [args, []];
}

const VERBS: Record<string, () => Promise<{ verb: Verb }>> = {
  analyze: () => import('./analyze.js'),
  attach: () => import('./attach.js'),
  build: () => import('./build.js'),
  'daemon-reload': () => import('./daemon-reload.js'),
  disable: () => import('./disable.js'),
  enable: () => import('./enable.js'),
  exec: () => import('./exec.js'),
  halt: () => import('./halt.js'),
  'is-active': () => import('./is-active.js'),
  'is-enabled': () => import('./is-enabled.js'),
  'container-monitor': () => import('./container-monitor.js'),
  images: () => import('./images.js'),
  inspect: () => import('./inspect.js'),
  keys: () => import('./keys.js'),
  load: () => import('./load.js'),
  'list-units': () => import('./list-units.js'),
  logs: () => import('./logs.js'),
  mask: () => import('./mask.js'),
  network: () => import('./network.js'),
  payload: () => import('./payload.js'),
  poweroff: () => import('./poweroff.js'),
  ps: () => import('./ps.js'),
  pull: () => import('./pull.js'),
  qemu: () => import('./qemu.js'),
  reboot: () => import('./reboot.js'),
  reload: () => import('./reload.js'),
  restart: () => import('./restart.js'),
  rm: () => import('./rm.js'),
  rmi: () => import('./rmi.js'),
  run: () => import('./run.js'),
  save: () => import('./save.js'),
  serve: () => import('./serve.js'),
  start: () => import('./start.js'),
  status: () => import('./status.js'),
  stop: () => import('./stop.js'),
  unmask: () => import('./unmask.js'),
  update: () => import('./update.js'),
  validate: () => import('./validate.js'),
};

function help(): string {
  return `usage: keel VERB [options]\n\nverbs:\n${Object.keys(VERBS)
    .map((v) => `  ${v}`)
    .join('\n')}\n\nkeel VERB --help shows a verb's options.\n`;
}

/** Binds each value-taking option to the word after it, as getopt_long does for a required argument, so that
 *  `--since -5min` or `-n -1` reach the verb instead of parseArgs calling the value ambiguous. */
export function bindOptionValues(args: string[], options: ParseArgsConfig['options'] = {}): string[] {
  const long = new Map(
    Object.entries(options).map(([n, o]) => [`--${n}`, { name: n, takesValue: o.type === 'string' }]),
  );
  const short = new Map(
    Object.entries(options)
      .filter(([, o]) => o.short)
      .map(([n, o]) => [`-${o.short}`, { name: n, takesValue: o.type === 'string' }]),
  );
  const out: string[] = [];
  for (let i = 0; i < args.length; i++) {
    const a = args[i];
    if (a === '--') {
      out.push(...args.slice(i));
      break;
    }
    const opt = long.get(a) ?? short.get(a);
    if (opt?.takesValue && i + 1 < args.length) out.push(`--${opt.name}=${args[++i]}`);
    else out.push(a);
  }
  return out;
}

/** Runs the CLI with `argv` (without node and script); returns the exit code. */
export async function main(argv: string[], program: string = basename(process.argv[1] ?? 'keel')): Promise<number> {
  // Called as systemctl or journalctl (symlinks in the image): speak their command lines.
  if (program === 'systemctl') argv = fromSystemctl(argv);
  else if (program === 'journalctl') argv = fromJournalctl(argv);
  const [name, ...rest] = argv;
  if (!name || name === '--help' || name === '-h' || name === 'help') {
    process.stdout.write(help());
    return name ? 0 : 2;
  }
  const load = VERBS[name];
  if (!load) {
    process.stderr.write(`keel: unknown verb "${name}"\n${help()}`);
    return 2;
  }
  const { verb } = await load();
  let parsed;
  const [head, tail] = verb.optionsUntilPositional
    ? splitAtPositional(rest, verb.options, verb.optionsUntilPositional)
    : [rest, []];
  try {
    parsed = parseArgs({
      args: bindOptionValues(head, verb.options),
      options: { ...verb.options, help: { type: 'boolean', short: 'h' } },
      allowPositionals: true,
      strict: true,
    });
    parsed.positionals.push(...tail);
  } catch (e) {
    process.stderr.write(`keel ${name}: ${(e as Error).message}\nusage: ${verb.usage}\n`);
    return 2;
  }
  if (parsed.values.help) {
    process.stdout.write(`${verb.summary}\nusage: ${verb.usage}\n`);
    return 0;
  }
  return verb.run(parsed.values, parsed.positionals);
}
