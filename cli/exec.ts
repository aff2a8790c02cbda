// keel exec [-i] [-t] [-u USER] [-e K=V] [-w DIR] CONTAINER COMMAND [ARG...]: docker exec, daemonless.
// The command runs in the container's namespaces, cgroup and root, confined as its processes are;
// its exit status is ours (128+N for a signal), and our SIGINT/SIGTERM/SIGHUP are passed to it.
import { closeSync, openSync } from 'node:fs';
import type { Verb } from './main.js';
import { ContainerDb } from '../containers/db.js';
import { exitCode } from '../containers/engine.js';
import { execInContainer, type ExecProcess } from '../containers/exec.js';
import { isNativeError } from '../native/native.js';
import { NOT_A_TTY, relayTerminal, requestConsole, type Terminal } from '../containers/pty.js';
import { ROOT_OPTION, storeAt } from './container-common.js';

export const verb: Verb = {
  summary: 'Run a command in a running container.',
  usage: 'keel exec [-i] [-t] [-u USER] [-e K=V] [-w DIR] [--root DIR] CONTAINER COMMAND [ARG...]',
  optionsUntilPositional: 1,
  options: {
    ...ROOT_OPTION,
    interactive: { type: 'boolean', short: 'i', default: false },
    tty: { type: 'boolean', short: 't', default: false },
    user: { type: 'string', short: 'u' },
    env: { type: 'string', short: 'e', multiple: true, default: [] },
    workdir: { type: 'string', short: 'w' },
  },
  async run(v, [name, ...argv]) {
    if (!name || argv.length === 0)
      throw new TypeError('keel exec: name a running container and a command, e.g. keel exec web sh -c "ls /"');
    if (v.tty && v.interactive && !process.stdin.isTTY) throw new TypeError(`keel exec: ${NOT_A_TTY}`);
    const db = new ContainerDb(String(v.root));
    // -t: a pseudo-terminal as 0-2 (containers/pty.ts). Without it and without -i the command
    // reads /dev/null, as docker exec's does.
    const pending = v.tty ? requestConsole() : undefined;
    const stdin = pending ? undefined : v.interactive ? 0 : openSync('/dev/null', 'r');
    let p: ExecProcess;
    let term: Terminal | undefined;
    try {
      p = execInContainer(db, storeAt(v), name, {
        argv,
        env: v.env as string[],
        ...(v.user !== undefined ? { user: String(v.user) } : {}),
        ...(v.workdir !== undefined ? { cwd: String(v.workdir) } : {}),
        ...(pending ? { console: pending.request } : { stdin: stdin!, stdout: 1, stderr: 2 }),
      });
      term = pending?.receive();
    } catch (e) {
      pending?.close();
      // The shell's statuses for a command that cannot run: not found 127, not executable 126.
      if (isNativeError(e) && e.syscall === 'execve' && (e.code === 'ENOENT' || e.code === 'EACCES')) {
        process.stderr.write(`keel exec: cannot run ${argv[0]} in container ${name}: ${e.message}\n`);
        return e.code === 'ENOENT' ? 127 : 126;
      }
      throw e;
    } finally {
      if (stdin !== undefined && stdin !== 0) closeSync(stdin);
    }
    const forward = (sig: NodeJS.Signals) => p.kill(sig);
    const signals = ['SIGINT', 'SIGTERM', 'SIGHUP'] as const;
    for (const sig of signals) process.on(sig, forward);
    try {
      if (term) return exitCode(await relayTerminal(term, () => p.wait(), { interactive: Boolean(v.interactive) }));
      return exitCode(await p.wait());
    } finally {
      for (const sig of signals) process.off(sig, forward);
    }
  },
};
