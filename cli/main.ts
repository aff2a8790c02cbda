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
}

const VERBS: Record<string, () => Promise<{ verb: Verb }>> = {
  analyze: () => import('./analyze.js'),
  build: () => import('./build.js'),
  'daemon-reload': () => import('./daemon-reload.js'),
  disable: () => import('./disable.js'),
  enable: () => import('./enable.js'),
  halt: () => import('./halt.js'),
  'is-active': () => import('./is-active.js'),
  'is-enabled': () => import('./is-enabled.js'),
  keys: () => import('./keys.js'),
  'list-units': () => import('./list-units.js'),
  logs: () => import('./logs.js'),
  mask: () => import('./mask.js'),
  network: () => import('./network.js'),
  payload: () => import('./payload.js'),
  poweroff: () => import('./poweroff.js'),
  qemu: () => import('./qemu.js'),
  reboot: () => import('./reboot.js'),
  reload: () => import('./reload.js'),
  restart: () => import('./restart.js'),
  serve: () => import('./serve.js'),
  start: () => import('./start.js'),
  status: () => import('./status.js'),
  stop: () => import('./stop.js'),
  unmask: () => import('./unmask.js'),
  update: () => import('./update.js'),
  validate: () => import('./validate.js'),
};

function help(): string {
  return `usage: keel VERB [options]\n\nverbs:\n${Object.keys(VERBS).map((v) => `  ${v}`).join('\n')}\n\nkeel VERB --help shows a verb's options.\n`;
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
  try {
    parsed = parseArgs({ args: rest, options: { ...verb.options, help: { type: 'boolean', short: 'h' } }, allowPositionals: true, strict: true });
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
