// keel ps [-a]: containers, as docker ps lists them (running and restarting ones; -a: all).
import type { Verb } from './main.js';
import { ContainerDb } from '../containers/db.js';
import { humanDuration, ROOT_OPTION, table } from './container-common.js';
import { formatPort, parsePublish } from '../containers/network.js';

export const verb: Verb = {
  summary: 'List containers (running and restarting ones; -a: all).',
  usage: 'keel ps [-a] [-q] [--format json] [--root DIR]',
  options: {
    ...ROOT_OPTION,
    all: { type: 'boolean', short: 'a', default: false },
    quiet: { type: 'boolean', short: 'q', default: false },
    format: { type: 'string' },
  },
  async run(v) {
    const now = Date.now();
    const all = new ContainerDb(String(v.root))
      .list()
      .filter((c) => v.all || c.state.status === 'running' || c.state.status === 'restarting');
    if (v.format === 'json') {
      process.stdout.write(
        JSON.stringify(
          all.map((c) => ({ ...c.config, state: c.state })),
          null,
          2,
        ) + '\n',
      );
      return 0;
    }
    if (v.format) throw new TypeError(`keel ps: unknown --format ${JSON.stringify(v.format)} (use: json)`);
    if (v.quiet) {
      process.stdout.write(all.map((c) => c.config.id.slice(0, 12) + '\n').join(''));
      return 0;
    }
    const status = (c: (typeof all)[number]) => {
      const s = c.state;
      if (s.status === 'running') return `Up ${humanDuration(now - Date.parse(s.startedAt!))}`;
      if (s.status === 'created') return 'Created';
      // As docker: how it last exited and how long ago, for one waiting to restart too.
      const word = s.status === 'restarting' ? 'Restarting' : 'Exited';
      return (
        `${word} (${s.exitCode ?? '?'}) ` +
        `${s.finishedAt ? `${humanDuration(now - Date.parse(s.finishedAt))} ago` : ''}`
      ).trim();
    };
    const cmd = (argv: string[]) => {
      const t = JSON.stringify(argv.join(' '));
      return t.length > 22 ? `${t.slice(0, 20)}…"` : t;
    };
    // As docker: the published ports of running containers.
    const ports = (c: (typeof all)[number]) => {
      if (c.state.status !== 'running') return '';
      try {
        return (c.config.ports ?? []).map((p) => formatPort(parsePublish(p))).join(', ');
      } catch {
        return (c.config.ports ?? []).join(', ');
      }
    };
    process.stdout.write(
      table(
        ['CONTAINER ID', 'IMAGE', 'COMMAND', 'CREATED', 'STATUS', 'PORTS', 'NAMES'],
        all.map((c) => [
          c.config.id.slice(0, 12),
          c.config.image,
          cmd(c.config.argv),
          `${humanDuration(now - Date.parse(c.config.created))} ago`,
          status(c),
          ports(c),
          c.config.name,
        ]),
      ),
    );
    return 0;
  },
};
