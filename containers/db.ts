// Containers on disk, daemonless: ROOT/containers/<id>/config.json (what was asked) and
// state.json (what happened), each written atomically; any number of CLIs may read them.
import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { ContainerError } from './errors.js';
import { writeAtomic } from '../lib/atomic.js';
import type { IdMapping } from './store.js';

/** What `keel run` was asked for. */
export interface ContainerConfig {
  id: string;
  name: string;
  image: string;
  imageId: string;
  created: string;
  argv: string[];
  env: string[];
  cwd: string;
  user: string;
  hostname: string;
  /** 'bridge': on keel0 (containers/network.ts), the default of keel run. */
  network: 'none' | 'host' | 'bridge';
  volumes: { host: string; container: string; ro: boolean }[];
  /** -p as given: [IP:]HOST:CONTAINER[/tcp|udp]. */
  ports: string[];
  restart: { policy: 'no' | 'on-failure' | 'always'; max: number };
  readOnly: boolean;
  capAdd: string[];
  capDrop: string[];
  privileged: boolean;
  memory: number | null;
  cpus: number | null;
  pidsLimit: number | null;
  tty: boolean;
  interactive: boolean;
  autoRemove: boolean;
  /** --userns=remap: its own user namespace with these ids (containers/userns.ts); absent or null: the host's. */
  userns?: IdMapping | null;
}

/**
 * What happened to it. `pid` and `startTime` (from /proc/PID/stat) identify the live process.
 * 'restarting': exited (`exitCode`, `finishedAt`), its monitor waiting to start it again.
 */
export interface ContainerState {
  status: 'created' | 'running' | 'restarting' | 'exited';
  pid: number;
  startTime: string;
  startedAt: string | null;
  finishedAt: string | null;
  exitCode: number | null;
  signal: string | null;
  restartCount: number;
  error: string | null;
  /** Killed by the kernel for going over --memory (memory.events oom_kill). */
  oomKilled?: boolean;
  /**
   * On the bridge network while it runs: its address, MAC and gateway, and its published ports
   * (0.0.0.0:8080->80/tcp).
   */
  ipAddress?: string | null;
  macAddress?: string;
  gateway?: string;
  ports?: string[];
  /** While restarting: the monitor that waits to start it again (its pid and start time). */
  monitorPid?: number;
  monitorStartTime?: string;
  /**
   * A foreground `keel run` waits for this container (its pid and /proc start time): `keel stop`
   * returns once that CLI has ended too, not just the container, so whoever waits for the CLI
   * (the unit manager, for a .container service) sees it gone when keel stop returns.
   */
  cliPid?: number;
  cliStartTime?: string;
}

const ADJECTIVES = [
  'brave',
  'calm',
  'eager',
  'fond',
  'keen',
  'lucid',
  'merry',
  'nimble',
  'quiet',
  'sharp',
  'steady',
  'swift',
  'tidy',
  'vivid',
  'wise',
  'zen',
];
const NOUNS = [
  'curie',
  'dijkstra',
  'euler',
  'hopper',
  'knuth',
  'lamport',
  'lovelace',
  'noether',
  'pike',
  'ritchie',
  'shannon',
  'thompson',
  'torvalds',
  'turing',
  'wirth',
  'yonath',
];

/** A docker-like name: adjective_scientist. */
export function randomName(taken: Set<string>): string {
  for (let i = 0; i < 100; i++) {
    const [a, b] = randomBytes(2);
    const name = `${ADJECTIVES[a % ADJECTIVES.length]}_${NOUNS[b % NOUNS.length]}${i >= 50 ? `_${i}` : ''}`;
    if (!taken.has(name)) return name;
  }
  return `keel_${randomBytes(4).toString('hex')}`;
}

/** The start time of a process (field 22 of /proc/PID/stat), or null when it is gone. */
export function processStartTime(pid: number): string | null {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2).split(' ')[19] ?? null;
  } catch {
    return null;
  }
}

/** The containers under ROOT/containers. */
export class ContainerDb {
  readonly dir: string;
  constructor(readonly root: string) {
    this.dir = join(root, 'containers');
  }

  path(id: string, file = ''): string {
    return join(this.dir, id, file);
  }

  /** Creates the record of a new container; the name must be free. */
  create(c: Omit<ContainerConfig, 'id' | 'name' | 'created'> & { name?: string }): ContainerConfig {
    const all = this.list();
    const names = new Set(all.map((x) => x.config.name));
    if (c.name !== undefined) {
      if (!/^[a-zA-Z0-9][a-zA-Z0-9_.-]*$/.test(c.name))
        throw new ContainerError(
          'ENAME',
          `invalid container name ${JSON.stringify(c.name)}: use letters, digits, '_', '.' and '-'`,
        );
      if (names.has(c.name)) throw new ContainerError('ECONFLICT', `the container name "${c.name}" is already in use`);
    }
    const config: ContainerConfig = {
      ...c,
      id: randomBytes(32).toString('hex'),
      name: c.name ?? randomName(names),
      created: new Date().toISOString(),
    };
    mkdirSync(this.path(config.id), { recursive: true });
    writeAtomic(this.path(config.id, 'config.json'), JSON.stringify(config, null, 2) + '\n');
    this.setState(config.id, {
      status: 'created',
      pid: 0,
      startTime: '',
      startedAt: null,
      finishedAt: null,
      exitCode: null,
      signal: null,
      restartCount: 0,
      error: null,
    });
    return config;
  }

  setState(id: string, s: ContainerState): void {
    writeAtomic(this.path(id, 'state.json'), JSON.stringify(s) + '\n');
  }

  /** Every container; a state that says running whose process is gone reads as exited. */
  list(): { config: ContainerConfig; state: ContainerState }[] {
    let ids: string[] = [];
    try {
      ids = readdirSync(this.dir);
    } catch {
      return [];
    }
    const out: { config: ContainerConfig; state: ContainerState }[] = [];
    for (const id of ids) {
      try {
        const config = JSON.parse(readFileSync(this.path(id, 'config.json'), 'utf8')) as ContainerConfig;
        out.push({ config, state: this.state(id) });
      } catch {
        /* half-created or half-removed: not a container */
      }
    }
    return out.sort((a, b) => b.config.created.localeCompare(a.config.created));
  }

  /** The state as last written, without the liveness checks of state(). */
  recorded(id: string): ContainerState {
    return JSON.parse(readFileSync(this.path(id, 'state.json'), 'utf8')) as ContainerState;
  }

  state(id: string): ContainerState {
    const s = this.recorded(id);
    if (s.status === 'running' && processStartTime(s.pid) !== s.startTime) {
      return {
        ...s,
        status: 'exited',
        error: s.error ?? 'its process is gone (killed with its monitor, or the machine restarted)',
      };
    }
    if (s.status === 'restarting' && processStartTime(s.monitorPid ?? 0) !== s.monitorStartTime) {
      return {
        ...s,
        status: 'exited',
        error: s.error ?? 'its monitor is gone (killed while it waited to restart it, or the machine restarted)',
      };
    }
    return s;
  }

  /** By full id, unique id prefix, or name. */
  resolve(ref: string): { config: ContainerConfig; state: ContainerState } {
    const all = this.list();
    const byName = all.find((c) => c.config.name === ref);
    if (byName) return byName;
    const matches = ref.length >= 1 ? all.filter((c) => c.config.id.startsWith(ref)) : [];
    if (matches.length === 1) return matches[0];
    if (matches.length > 1)
      throw new ContainerError('EAMBIGUOUS', `"${ref}" matches ${matches.length} containers: use more of the id`);
    throw new ContainerError('ENOCONTAINER', `no such container: ${ref}`);
  }

  /** `keel stop` says so before signalling: the monitor then does not restart it. */
  requestStop(id: string): void {
    writeAtomic(this.path(id, 'stop-requested'), new Date().toISOString() + '\n');
  }
  stopRequested(id: string): boolean {
    return existsSync(this.path(id, 'stop-requested'));
  }
  clearStop(id: string): void {
    rmSync(this.path(id, 'stop-requested'), { force: true });
  }

  remove(id: string): void {
    if (existsSync(this.path(id))) rmSync(this.path(id), { recursive: true, force: true });
  }
}
