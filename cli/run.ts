// keel run [OPTIONS] IMAGE [COMMAND [ARG...]]: docker run, daemonless. In the foreground the CLI
// itself waits for the container; with -d a detached monitor (keel container-monitor) does.
import { readInsecureRegistries } from '../containers/insecure-registries.js';
import { spawn, type ChildProcess } from 'node:child_process';
import { closeSync, existsSync, openSync, readdirSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { BAKED_IMAGES } from '../containers/busybox-image.js';
import { loadArchive } from '../containers/archive.js';
import type { Verb } from './main.js';
import { ContainerDb, type ContainerConfig } from '../containers/db.js';
import {
  commandFor,
  environmentFor,
  exitCode,
  finished,
  parseCpus,
  parseHostname,
  parseMemory,
  parsePidsLimit,
  parseRestart,
  released,
  start,
} from '../containers/engine.js';
import { checkPublishable, parsePublish } from '../containers/network.js';
import { parseNetwork } from '../containers/options.js';
import { NOT_A_TTY, relayTerminal, requestConsole, type Terminal } from '../containers/pty.js';
import { parseVolume } from '../containers/runtime.js';
import { parseUserns } from '../containers/userns.js';
import { pullImage } from '../containers/registry.js';
import { blobDirOf, ROOT_OPTION, storeAt } from './container-common.js';
import type { ImageStore } from '../containers/store.js';

const multi = { type: 'string' as const, multiple: true as const, default: [] as string[] };

/** The image, pulled first when the store does not have it (as docker run does). */
async function imageFor(store: ImageStore, ref: string, v: Record<string, unknown>) {
  try {
    return store.resolve(ref);
  } catch (e) {
    if ((e as { code?: string }).code !== 'ENOIMAGE') throw e;
  }
  // The images baked into Keel (busybox) come from USR, not the network.
  const baked = existsSync(BAKED_IMAGES) ? readdirSync(BAKED_IMAGES).filter((f) => f.endsWith('.tar')) : [];
  for (const f of baked) await loadArchive(store, join(BAKED_IMAGES, f));
  try {
    return store.resolve(ref);
  } catch (e) {
    if ((e as { code?: string }).code !== 'ENOIMAGE') throw e;
  }
  process.stderr.write(`Unable to find image '${ref}' locally; pulling it\n`);
  const p = await pullImage(ref, {
    blobDir: blobDirOf(v),
    insecure: Boolean(v.insecure),
    insecureRegistries: readInsecureRegistries(),
  });
  return store.addImage({
    manifest: p.manifest,
    manifestDigest: p.manifestDigest,
    config: p.config,
    layers: p.layers,
    refs: [p.ref],
  });
}

/** Where `keel` runs from, to start the monitor the same way. */
function selfCommand(): string[] {
  return [process.execPath, ...process.execArgv, '--', process.argv[1]];
}

/**
 * Waits (up to 12 s) until the monitor has started the container; throws why it did not: the
 * error it recorded, or its own end (a monitor that died before starting it leaves it created).
 */
export async function waitForStart(db: ContainerDb, config: ContainerConfig, monitor: ChildProcess): Promise<void> {
  let ended: string | null = null;
  const onExit = (code: number | null, signal: NodeJS.Signals | null) => {
    ended = signal ? `killed by ${signal}` : `exit status ${code}`;
  };
  const onError = (e: Error) => {
    ended = e.message;
  };
  monitor.once('exit', onExit).once('error', onError);
  try {
    for (let i = 0; i < 600; i++) {
      const st = db.state(config.id);
      if (st.status !== 'created') {
        if (st.error && st.status === 'exited' && !st.startedAt)
          throw new Error(`keel run: cannot start container ${config.name}: ${st.error}`);
        return;
      }
      if (ended)
        throw new Error(
          `keel run: the monitor of container ${config.name} ended (${ended}) before starting ` +
            `it; the container is left created (keel rm ${config.name})`,
        );
      await new Promise((r) => setTimeout(r, 20));
    }
  } finally {
    monitor.off('exit', onExit).off('error', onError);
  }
}

/**
 * --sigterm-on-stop: a container stopped by `keel stop` ends this keel run by SIGTERM, whatever
 * the container's own status (143, or 137 when it needed SIGKILL). A .container service's main
 * process is this keel run, and its ExecStop= is keel stop: a unit manager counts a main process
 * ending on SIGTERM as a clean stop (systemd's EXIT_CLEAN_DAEMON), and 137 as a failure. Without
 * the option keel run exits with the container's status, as docker run does.
 */
async function endBySigterm(): Promise<never> {
  // Without listeners SIGTERM is back to its default action (libuv restores SIG_DFL): it ends us.
  process.removeAllListeners('SIGTERM');
  process.kill(process.pid, 'SIGTERM');
  return new Promise<never>(() => {
    /* the signal ends the process */
  });
}

export const verb: Verb = {
  summary: 'Run a command in a new container.',
  usage:
    'keel run [-d] [-i] [-t] [--rm] [--name N] [-e K=V] [--env-file F] [-w DIR] [-u USER] ' +
    '[-v HOST:CTR[:ro]] [--hostname H] [--entrypoint E] [--memory M] [--cpus N] ' +
    '[--pids-limit N] [-p [IP:]HOST:CTR[/udp]] [--network bridge|none|host] [--restart ' +
    'no|on-failure[:N]|always] [--read-only] [--cap-add C] [--cap-drop C] [--privileged] ' +
    '[--userns host|remap] [--sigterm-on-stop] IMAGE [COMMAND [ARG...]]',
  optionsUntilPositional: 1,
  options: {
    ...ROOT_OPTION,
    detach: { type: 'boolean', short: 'd', default: false },
    rm: { type: 'boolean', default: false },
    name: { type: 'string' },
    env: { ...multi, short: 'e' },
    'env-file': multi,
    workdir: { type: 'string', short: 'w' },
    user: { type: 'string', short: 'u' },
    volume: { ...multi, short: 'v' },
    publish: { ...multi, short: 'p' },
    hostname: { type: 'string', short: 'h' },
    entrypoint: { type: 'string' },
    memory: { type: 'string', short: 'm' },
    cpus: { type: 'string' },
    'pids-limit': { type: 'string' },
    network: { type: 'string', default: 'bridge' },
    net: { type: 'string' },
    restart: { type: 'string', default: 'no' },
    'read-only': { type: 'boolean', default: false },
    'cap-add': multi,
    'cap-drop': multi,
    privileged: { type: 'boolean', default: false },
    interactive: { type: 'boolean', short: 'i', default: false },
    tty: { type: 'boolean', short: 't', default: false },
    insecure: { type: 'boolean', default: false },
    userns: { type: 'string', default: 'host' },
    'sigterm-on-stop': { type: 'boolean', default: false },
  },
  async run(v, [ref, ...args]) {
    if (!ref) throw new TypeError('keel run: name an image, e.g. keel run busybox echo hello');
    // -dit: the monitor keeps the terminal (keel attach reaches it), so our stdin need not be one.
    if (v.tty && v.interactive && !v.detach && !process.stdin.isTTY) throw new TypeError(`keel run: ${NOT_A_TTY}`);
    const root = String(v.root);
    const store = storeAt(v);
    const db = new ContainerDb(root);
    const userns = parseUserns(String(v.userns));
    if (userns && v.privileged)
      throw new TypeError('keel run: --privileged cannot be used with --userns=remap (as docker: add --userns=host)');
    if (userns && String(v.net ?? v.network) === 'host')
      throw new TypeError(
        'keel run: --network host cannot be used with --userns=remap (the ' +
          "host's network belongs to the host's user namespace)",
      );
    const image = await imageFor(store, ref, v);
    const network = String(v.net ?? v.network);
    parseNetwork(network);
    const publish = v.publish as string[];
    if (publish.length && network !== 'bridge')
      throw new TypeError(
        `keel run: -p publishes ports of a container on the bridge network, not of one with --network ${network}`,
      );
    // Clashing ports are refused before anything is created (connect() checks again, under its lock).
    checkPublishable(publish.map(parsePublish));
    const restart = parseRestart(String(v.restart));
    if (v.rm && restart.policy !== 'no') throw new TypeError('keel run: --rm and --restart cannot be used together');
    // --userns=remap: the layers once more, owned by the namespace's ids (kept for later runs).
    if (userns) await store.prepareUserns(image, userns);
    const cfg = image.config?.config ?? {};
    const config = db.create({
      ...(v.name !== undefined ? { name: String(v.name) } : {}),
      image: ref,
      imageId: image.id,
      argv: commandFor(image, v.entrypoint as string | undefined, args),
      env: environmentFor(image, v['env-file'] as string[], v.env as string[]),
      cwd: String(v.workdir ?? cfg.WorkingDir ?? '') || '/',
      user: String(v.user ?? cfg.User ?? ''),
      hostname: v.hostname === undefined ? '' : parseHostname(String(v.hostname)),
      network: network as ContainerConfig['network'],
      volumes: (v.volume as string[]).map((s) => {
        const p = parseVolume(s);
        return { host: resolve(p.host), container: p.container, ro: Boolean(p.ro) };
      }),
      ports: publish,
      restart,
      readOnly: Boolean(v['read-only']),
      capAdd: v['cap-add'] as string[],
      capDrop: v['cap-drop'] as string[],
      privileged: Boolean(v.privileged),
      memory: v.memory ? parseMemory(String(v.memory)) : null,
      cpus: v.cpus !== undefined ? parseCpus(String(v.cpus)) : null,
      pidsLimit: v['pids-limit'] !== undefined ? parsePidsLimit(String(v['pids-limit'])) : null,
      tty: Boolean(v.tty),
      interactive: Boolean(v.interactive),
      autoRemove: Boolean(v.rm),
      userns,
    });
    if (v.detach) {
      // The monitor outlives us: its own session, no terminal, output to the container's log.
      const [cmd, ...pre] = selfCommand();
      const child = spawn(cmd, [...pre, 'container-monitor', '--root', root, config.id], {
        detached: true,
        stdio: 'ignore',
        env: { ...process.env, KEEL_PROGRAM: 'keel' },
      });
      child.unref();
      await waitForStart(db, config, child);
      process.stdout.write(`${config.id}\n`);
      return 0;
    }
    // Foreground with -t: a pseudo-terminal between us and the container (containers/pty.ts).
    if (v.tty) {
      const pending = requestConsole();
      let c: ReturnType<typeof start>;
      let term: Terminal;
      try {
        c = start(db, store, config, { console: pending.request }, 0, process.pid);
        term = pending.receive();
      } catch (e) {
        pending.close();
        released(db, config.id);
        if (config.autoRemove) db.remove(config.id);
        throw e;
      }
      const forward = (sig: NodeJS.Signals) => c.kill(sig);
      for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) process.on(sig, forward);
      let stopped = false;
      try {
        const exit = await relayTerminal(term, () => c.wait(), { interactive: Boolean(v.interactive) });
        stopped = db.stopRequested(config.id);
        finished(db, config.id, exit);
        return exitCode(exit);
      } finally {
        released(db, config.id);
        if (config.autoRemove) db.remove(config.id);
        if (stopped && v['sigterm-on-stop']) await endBySigterm();
      }
    }
    // Foreground: the container gets our stdin (with -i) and our stdout/stderr.
    const stdin = v.interactive ? 0 : openSync('/dev/null', 'r');
    let stopped = false;
    try {
      const c = start(db, store, config, { stdin, stdout: 1, stderr: 2 }, 0, process.pid);
      if (stdin !== 0) closeSync(stdin);
      const forward = (sig: NodeJS.Signals) => c.kill(sig);
      for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) process.on(sig, forward);
      const exit = await c.wait();
      stopped = db.stopRequested(config.id);
      finished(db, config.id, exit);
      return exitCode(exit);
    } finally {
      // Stopped for good (a foreground container is not restarted): its address and ports go.
      released(db, config.id);
      if (config.autoRemove) db.remove(config.id);
      if (stopped && v['sigterm-on-stop']) await endBySigterm();
    }
  },
};
