// From `keel run`'s options to a running container and back: the container record, its root
// (the image's layers under an overlay of its own), the spec for the runtime, and the
// bookkeeping of its life (running, exited, restarted, removed).
import { existsSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { ContainerDb, processStartTime, type ContainerConfig, type ContainerState } from './db.js';
import { ContainerError } from './errors.js';
import { parseEnvAssignment } from './options.js';
import { connect, disconnect, formatPort, parsePublish, type Attachment } from './network.js';
import {
  runContainer,
  type ConsoleSocket,
  type ContainerExit,
  type ContainerSpec,
  type RunningContainer,
} from './runtime.js';
import type { ImageRecord, ImageStore } from './store.js';

/** A container's 0-2 (parent fds), or a console it opens inside for those not given. */
export interface Stdio {
  stdin?: number;
  stdout?: number;
  stderr?: number;
  console?: ConsoleSocket;
}

/**
 * The command a container runs: --entrypoint / CMD arguments over the image's Entrypoint and Cmd, as docker combines
 * them.
 */
export function commandFor(image: ImageRecord, entrypoint: string | undefined, args: string[]): string[] {
  const cfg = image.config?.config ?? {};
  const ep: string[] = entrypoint !== undefined ? (entrypoint ? [entrypoint] : []) : (cfg.Entrypoint ?? []);
  const cmd: string[] = args.length ? args : entrypoint !== undefined ? [] : (cfg.Cmd ?? []);
  const argv = [...ep, ...cmd];
  if (!argv.length)
    throw new ContainerError('ENOCMD', `no command given and the image ${image.refs[0] ?? image.id} sets none`);
  return argv;
}

/** Environment: the image's, then --env-file lines, then -e (KEY=VALUE, or KEY taken from our own environment). */
export function environmentFor(
  image: ImageRecord,
  envFiles: string[],
  envs: string[],
  own: NodeJS.ProcessEnv = process.env,
): string[] {
  const out = new Map<string, string>();
  const put = (kv: string, where: string) => {
    const { key, value } = parseEnvAssignment(kv, where);
    if (value !== null) out.set(key, value);
    else if (own[key] !== undefined) out.set(key, own[key]!);
  };
  for (const kv of (image.config?.config?.Env ?? []) as string[]) put(kv, 'image');
  for (const f of envFiles) {
    let text: string;
    try {
      text = readFileSync(f, 'utf8');
    } catch (e) {
      throw new ContainerError(
        'EENV',
        `cannot read --env-file ${f}: ` +
          `${(e as NodeJS.ErrnoException).code === 'ENOENT' ? 'no such file' : (e as Error).message}`,
        { cause: e },
      );
    }
    text.split('\n').forEach((line, i) => {
      const t = line.trim();
      if (t && !t.startsWith('#')) put(t, `${f}:${i + 1}`);
    });
  }
  for (const e of envs) put(e, '-e');
  return [...out].map(([k, v]) => `${k}=${v}`);
}

/** uid:gid for -u NAME|UID[:GROUP|GID], names looked up in the image's /etc/passwd and /etc/group. */
export function userFor(user: string, layerDirs: string[]): { uid: number; gid: number } {
  if (!user) return { uid: 0, gid: 0 };
  const [u, g] = user.split(':', 2);
  const table = (file: string) => {
    for (const dir of [...layerDirs].reverse()) {
      const p = join(dir, file);
      if (existsSync(p))
        return readFileSync(p, 'utf8')
          .split('\n')
          .map((l) => l.split(':'));
    }
    return [];
  };
  const passwd = /^\d+$/.test(u) ? null : table('etc/passwd').find((f) => f[0] === u);
  if (passwd === undefined)
    throw new ContainerError('EUSER', `unable to find user ${u}: no matching entries in the image's /etc/passwd`);
  const uid = passwd ? Number(passwd[2]) : Number(u);
  let gid = passwd ? Number(passwd[3]) : uid === 0 ? 0 : uid;
  if (g !== undefined) {
    if (/^\d+$/.test(g)) gid = Number(g);
    else {
      const grp = table('etc/group').find((f) => f[0] === g);
      if (!grp)
        throw new ContainerError('EUSER', `unable to find group ${g}: no matching entries in the image's /etc/group`);
      gid = Number(grp[2]);
    }
  }
  return { uid, gid };
}

// The option parsers live in options.ts (pure: a .container unit's values go through them too).
export { parseCpus, parseHostname, parseMemory, parsePidsLimit, parseRestart } from './options.js';

/**
 * The runtime spec of a container record; a bridge-network container needs its attachment
 * (connect()'s): its namespace is joined, its /etc/resolv.conf, hosts and hostname bound in
 * (unless a volume of its own goes there).
 */
export function specFor(
  db: ContainerDb,
  store: ImageStore,
  c: ContainerConfig,
  stdio: Stdio,
  net?: Attachment,
): ContainerSpec {
  const image = store.resolve(c.imageId);
  const layers = store.layerDirs(image, c.userns ?? undefined);
  const dir = db.path(c.id);
  if (c.network === 'bridge' && !net)
    throw new ContainerError(
      'EINVAL',
      `cannot run container ${c.name} on the bridge network: it is not connected to it`,
    );
  const own = new Set(c.volumes.map((v) => v.container.replace(/\/+$/, '')));
  const netFiles = c.network === 'bridge' && net ? net.files.filter((f) => !own.has(f.container)) : [];
  return {
    id: c.id,
    rootfs: {
      lower: [...layers].reverse(),
      upper: join(dir, 'upper'),
      work: join(dir, 'work'),
      mountpoint: join(dir, 'rootfs'),
    },
    readOnly: c.readOnly,
    argv: c.argv,
    env: c.env,
    cwd: c.cwd || '/',
    user: userFor(c.user, layers),
    hostname: c.hostname || c.id.slice(0, 12),
    network: c.network === 'bridge' ? { netnsPath: net!.netnsPath } : c.network,
    volumes: [...netFiles, ...c.volumes],
    privileged: c.privileged,
    capAdd: c.capAdd,
    capDrop: c.capDrop,
    limits: {
      ...(c.memory ? { memoryMax: c.memory } : {}),
      ...(c.cpus ? { cpuMax: { quota: Math.round(c.cpus * 100000), period: 100000 } } : {}),
      ...(c.pidsLimit ? { pidsMax: c.pidsLimit } : {}),
    },
    ...(c.userns ? { userns: c.userns } : {}),
    ...stdio,
  };
}

/** Starts a created (or exited) container; records it running (and `cliPid`, the foreground CLI waiting for it). */
export function start(
  db: ContainerDb,
  store: ImageStore,
  c: ContainerConfig,
  stdio: Stdio,
  restartCount = 0,
  cliPid?: number,
): RunningContainer {
  // The old upper layer stays (as docker keeps a container's changes); the work dir must be empty.
  rmSync(join(db.path(c.id), 'work'), { recursive: true, force: true });
  if (restartCount === 0) db.clearStop(c.id);
  const prev = db.state(c.id);
  let running: RunningContainer;
  let net: Attachment | undefined;
  try {
    if (c.network === 'bridge') {
      net = connect({
        id: c.id,
        name: c.name,
        hostname: c.hostname || c.id.slice(0, 12),
        root: db.root,
        dir: db.path(c.id),
        ports: c.ports.map(parsePublish),
      });
    }
    running = runContainer(specFor(db, store, c, stdio, net));
  } catch (e) {
    if (net)
      try {
        disconnect(c.id);
      } catch {
        /* reported by the next CLI that takes the network lock */
      }
    db.setState(c.id, {
      ...prev,
      status: 'exited',
      exitCode: 127,
      signal: null,
      finishedAt: new Date().toISOString(),
      error: (e as Error).message,
      ipAddress: null,
    });
    throw e;
  }
  db.setState(c.id, {
    ...prev,
    status: 'running',
    pid: running.pid,
    startTime: processStartTime(running.pid) ?? '',
    startedAt: new Date().toISOString(),
    finishedAt: null,
    exitCode: null,
    signal: null,
    restartCount,
    error: null,
    ipAddress: net?.ip ?? null,
    ...(net ? { macAddress: net.mac, gateway: net.gateway, ports: net.ports.map(formatPort) } : {}),
    cliPid: undefined,
    cliStartTime: undefined,
    ...(cliPid ? { cliPid, cliStartTime: processStartTime(cliPid) ?? '' } : {}),
  });
  return running;
}

/**
 * A container has stopped for good (no restart comes, or it is being removed): its place on the
 * bridge goes (address, published ports, network namespace). Safe to call more than once, and for
 * containers of any network.
 */
export function released(db: ContainerDb, id: string): void {
  disconnect(id);
  try {
    const s = db.state(id);
    if (s.ipAddress || s.ports?.length) db.setState(id, { ...s, ipAddress: null, ports: [] });
  } catch {
    /* removed already */
  }
}

/** Records an exit; docker's exit code for a signal is 128 + its number. */
export function finished(db: ContainerDb, id: string, exit: ContainerExit): ContainerState {
  // The recorded state, not state(): the process is reaped by now, which state() would call "gone".
  const s = {
    ...db.recorded(id),
    status: 'exited' as const,
    exitCode: exitCode(exit),
    signal: exit.signal,
    finishedAt: new Date().toISOString(),
    oomKilled: Boolean(exit.oomKilled),
  };
  db.setState(id, s);
  return s;
}

/** The shell-style status of an exit. */
export function exitCode(exit: ContainerExit): number {
  if (exit.signal) return 128 + (SIGNALS[exit.signal] ?? 0);
  return exit.code ?? 0;
}

const SIGNALS: Record<string, number> = {
  SIGHUP: 1,
  SIGINT: 2,
  SIGQUIT: 3,
  SIGILL: 4,
  SIGTRAP: 5,
  SIGABRT: 6,
  SIGBUS: 7,
  SIGFPE: 8,
  SIGKILL: 9,
  SIGUSR1: 10,
  SIGSEGV: 11,
  SIGUSR2: 12,
  SIGPIPE: 13,
  SIGALRM: 14,
  SIGTERM: 15,
};

/** Whether the restart policy restarts after this exit. */
export function shouldRestart(
  c: ContainerConfig,
  exit: ContainerExit,
  restarts: number,
  stoppedByUser: boolean,
): boolean {
  if (stoppedByUser) return false;
  if (c.restart.policy === 'always') return true;
  if (c.restart.policy === 'on-failure')
    return exitCode(exit) !== 0 && (c.restart.max === 0 || restarts < c.restart.max);
  return false;
}
