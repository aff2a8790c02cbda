// Timers, sockets, paths and mounts: units that activate other units, or are a mount.
import { closeSync, mkdirSync, readdirSync, statSync, watch, writeFileSync, type FSWatcher } from 'node:fs';
import { dirname, join } from 'node:path';
import type { Manager, ManagerDeps, UnitRuntime } from './manager.js';
import type { JobResult } from './jobs.js';
import { monotonicMs } from './journal.js';
import { nextTimerElapse } from '../units/timer-math.js';
import type { FdWatcher } from '../native/native.js';
import { instanceName } from './socket-accept.js';
import { resolveCredentials } from './users.js';

const MAX_TIMEOUT = 2 ** 31 - 1;
const MOUNT_FLAGS: Record<string, string> = {
  ro: 'MS_RDONLY',
  nosuid: 'MS_NOSUID',
  nodev: 'MS_NODEV',
  noexec: 'MS_NOEXEC',
  relatime: 'MS_RELATIME',
  bind: 'MS_BIND',
  rbind: 'MS_BIND+MS_REC',
};

/** Splits mount options into MS_* flag names and the data string the filesystem reads. */
export function mountOptions(options: string | null): { flags: string[]; data: string | null } {
  const flags: string[] = [];
  const data: string[] = [];
  for (const o of (options ?? '')
    .split(',')
    .map((x) => x.trim())
    .filter(Boolean)) {
    if (o === 'rw' || o === 'defaults' || o === 'auto' || o === 'nofail' || o === '_netdev' || o.startsWith('x-'))
      continue;
    if (MOUNT_FLAGS[o]) flags.push(...MOUNT_FLAGS[o].split('+'));
    else data.push(o);
  }
  return { flags, data: data.length ? data.join(',') : null };
}

interface TriggerState {
  timer?: NodeJS.Timeout;
  activatedMono?: number;
  lastTrigger?: number | null;
  sockets?: { fd: number; watcher: FdWatcher | null; name: string }[];
  /** Accept=yes: connections accepted so far (systemd's n_accepted, the instance names' first part). */
  accepted?: number;
  watchers?: FSWatcher[];
}

/** The runtime side of timer, socket, path and mount units. */
export class TriggerUnits {
  private state = new Map<string, TriggerState>();
  /** Accept=yes: the connection fd each live service instance was started for. */
  private connections = new Map<string, number>();

  constructor(
    private m: Manager,
    private d: ManagerDeps,
  ) {}

  async start(name: string, rt: UnitRuntime): Promise<JobResult> {
    const c = rt.config;
    const st: TriggerState = {};
    this.state.set(name, st);
    try {
      if (c.timer) {
        st.activatedMono = monotonicMs();
        st.lastTrigger = this.readStamp(name);
        this.m.setState(name, 'active', 'waiting', 'success');
        this.armTimer(name);
        return 'done';
      }
      if (c.socket) {
        this.listen(name, st);
        this.m.setState(name, 'active', 'listening', 'success');
        return 'done';
      }
      if (c.path) {
        this.m.setState(name, 'active', 'waiting', 'success');
        this.watchPaths(name, st);
        return 'done';
      }
      if (c.mount) {
        this.mount(name);
        this.m.setState(name, 'active', 'mounted', 'success');
        return 'done';
      }
    } catch (e) {
      this.d.journal.append(name, `Failed to start: ${(e as Error).message}`, { priority: 3 });
      this.release(name);
      this.m.setState(name, 'failed', 'failed', 'resources');
      return 'failed';
    }
    this.d.log(`${name}: unit type ${c.type} is not supported`);
    return 'failed';
  }

  async stop(name: string, rt: UnitRuntime): Promise<JobResult> {
    if (rt.config.mount) {
      try {
        this.d.native.umount2(rt.config.mount.where, 0);
      } catch (e) {
        this.d.journal.append(name, `Failed to unmount: ${(e as Error).message}`, { priority: 3 });
        this.m.setState(name, 'failed', 'failed', 'exit-code');
        return 'failed';
      }
    }
    this.release(name);
    this.m.setState(name, 'inactive', 'dead', 'success');
    return 'done';
  }

  private release(name: string): void {
    const st = this.state.get(name);
    if (!st) return;
    clearTimeout(st.timer);
    for (const s of st.sockets ?? []) {
      s.watcher?.close();
      try {
        closeSync(s.fd);
      } catch {
        /* closed */
      }
    }
    for (const w of st.watchers ?? []) w.close();
    this.state.delete(name);
  }

  /** Called by the manager when any unit changes state: timers re-arm, sockets listen again, paths re-check. */
  onUnitStateChange(unit: string): void {
    for (const [name, st] of this.state) {
      const c = this.m.runtimes.get(name)?.config;
      if (!c) continue;
      if (c.timer?.unit === unit) this.armTimer(name);
      if (c.socket?.service === unit) this.rearmSockets(name, st);
    }
    this.releaseConnection(unit);
  }

  // --- timers ---

  private stampPath(name: string): string {
    return join(this.d.cfg.stateDir, 'timers', `stamp-${name}`);
  }

  private readStamp(name: string): number | null {
    const c = this.m.runtimes.get(name)?.config.timer;
    if (!c?.persistent) return null;
    try {
      return statSync(this.stampPath(name)).mtimeMs;
    } catch {
      return null;
    }
  }

  private armTimer(name: string): void {
    const st = this.state.get(name);
    const c = this.m.runtimes.get(name)?.config.timer;
    if (!st || !c) return;
    clearTimeout(st.timer);
    const target = this.m.runtimes.get(this.m.resolve(c.unit));
    const nowMono = monotonicMs();
    const nowReal = Date.now();
    const e = nextTimerElapse(c, {
      bootMs: 0,
      startupMs: this.m.startedAt,
      activatedMs: st.activatedMono ?? nowMono,
      lastTriggerMs: st.lastTrigger ?? null,
      unitLastActiveMs: target?.times.active ?? null,
      unitLastInactiveMs: target?.times.inactive ?? null,
      nowMonotonic: nowMono,
      nowRealtime: nowReal,
    });
    const waits = [
      e.dueNow ? 0 : null,
      e.monotonic !== null ? e.monotonic - nowMono : null,
      e.realtime !== null ? e.realtime - nowReal : null,
    ].filter((x): x is number => x !== null);
    if (!waits.length) {
      this.m.setState(name, 'active', 'elapsed', 'success');
      return;
    }
    const wait = Math.max(0, Math.min(...waits));
    st.timer = setTimeout(
      () => (wait > MAX_TIMEOUT ? this.armTimer(name) : this.fire(name)),
      Math.min(wait, MAX_TIMEOUT),
    );
  }

  private fire(name: string): void {
    const st = this.state.get(name);
    const c = this.m.runtimes.get(name)?.config.timer;
    if (!st || !c) return;
    st.lastTrigger = Date.now();
    if (c.persistent) {
      try {
        mkdirSync(dirname(this.stampPath(name)), { recursive: true });
        writeFileSync(this.stampPath(name), '');
      } catch {
        /* best effort */
      }
    }
    this.d.journal.append(name, `Triggering ${c.unit}.`);
    void this.m.backgroundJob(c.unit, 'start', { unit: name, why: 'the timer' }).then(() => this.armTimer(name));
  }

  // --- sockets ---

  private listen(name: string, st: TriggerState): void {
    const c = this.m.runtimes.get(name)!.config.socket!;
    st.sockets = [];
    for (const [kind, list] of [
      ['stream', c.listenStream],
      ['dgram', c.listenDatagram],
    ] as const) {
      for (const addr of list) {
        if (addr.startsWith('/')) mkdirSync(dirname(addr), { recursive: true, mode: c.directoryMode ?? 0o755 });
        const owner = this.socketOwner(c.socketUser, c.socketGroup);
        const fd = this.d.native.listenSocket(kind, addr, { mode: c.socketMode, ...owner });
        st.sockets.push({ fd, watcher: null, name });
      }
    }
    this.rearmSockets(name, st);
  }

  private rearmSockets(name: string, st: TriggerState): void {
    const c = this.m.runtimes.get(name)?.config.socket;
    if (!c || !st.sockets) return;
    if (c.accept) {
      this.watchAccepting(name, st);
      return;
    }
    const svc = this.m.runtimes.get(this.m.resolve(c.service));
    const serviceUp = svc && (svc.active === 'active' || svc.active === 'activating' || svc.active === 'reloading');
    for (const s of st.sockets) {
      if (serviceUp) {
        s.watcher?.close();
        s.watcher = null;
        continue;
      }
      // Watch only while the service is down: once it runs, it owns the socket (Accept=no).
      s.watcher ??= this.d.native.watchFd(s.fd, () => {
        for (const x of st.sockets ?? []) {
          x.watcher?.close();
          x.watcher = null;
        }
        this.d.journal.append(name, `Incoming traffic: starting ${c.service}.`);
        void this.m.backgroundJob(c.service, 'start', { unit: name, why: 'incoming traffic' });
      });
    }
  }

  /** SocketUser=/SocketGroup= as ids (a user's own group when only the user is given, as systemd). */
  private socketOwner(user: string | null = null, group: string | null = null): { uid?: number; gid?: number } {
    if (!user && !group) return {};
    const creds = resolveCredentials(user, group, this.d.cfg.etc)!;
    return { uid: user ? creds.uid : 0, gid: creds.gid };
  }

  /** Accept=yes: every connection starts an instance of the template with the connection as fd 3. */
  private watchAccepting(name: string, st: TriggerState): void {
    const c = this.m.runtimes.get(name)!.config.socket!;
    const prefix = c.service.slice(0, c.service.indexOf('@'));
    for (const s of st.sockets ?? []) {
      s.watcher ??= this.d.native.watchFd(s.fd, () => {
        for (let conn = this.d.native.accept(s.fd); conn; conn = this.d.native.accept(s.fd)) {
          const nr = st.accepted ?? 0;
          st.accepted = nr + 1;
          let peer = null;
          if (conn.family === 'unix') {
            try {
              peer = this.d.native.peerCred(conn.fd);
            } catch {
              /* gone already */
            }
          }
          const unit = `${prefix}@${instanceName(nr, conn, peer)}.service`;
          if (!this.m.addInstance(unit)) {
            closeSync(conn.fd);
            continue;
          }
          this.connections.set(unit, conn.fd);
          this.d.journal.append(name, `Incoming connection: starting ${unit}.`);
          this.m
            .job(unit, 'start')
            .catch(() => {})
            .finally(() => this.releaseConnection(unit));
        }
      });
    }
  }

  /** Closes an instance's connection and forgets the instance once it is down. */
  private releaseConnection(unit: string): void {
    const fd = this.connections.get(unit);
    const rt = this.m.runtimes.get(unit);
    if (fd === undefined || (rt && rt.active !== 'inactive' && rt.active !== 'failed')) return;
    this.connections.delete(unit);
    try {
      closeSync(fd);
    } catch {
      /* closed */
    }
    setImmediate(() => this.m.forgetInstance(unit));
  }

  /** Listening fds for a service, from its active socket units (LISTEN_FDS); an Accept=yes instance's connection. */
  socketFdsFor(service: string): { fds: number[]; names: string[] } {
    const conn = this.connections.get(service);
    if (conn !== undefined) return { fds: [conn], names: ['connection'] };
    const fds: number[] = [];
    const names: string[] = [];
    for (const [name, st] of this.state) {
      if (this.m.runtimes.get(name)?.config.socket?.service !== service) continue;
      for (const s of st.sockets ?? []) {
        fds.push(s.fd);
        names.push(s.name);
      }
    }
    return { fds, names };
  }

  // --- paths ---

  private watchPaths(name: string, st: TriggerState): void {
    const c = this.m.runtimes.get(name)!.config.path!;
    const check = (changed?: string) => {
      const exists = c.pathExists.some((p) => {
        try {
          statSync(p);
          return true;
        } catch {
          return false;
        }
      });
      const notEmpty = c.directoryNotEmpty.some((p) => {
        try {
          return readdirSync(p).length > 0;
        } catch {
          return false;
        }
      });
      const didChange = changed !== undefined && c.pathChanged.includes(changed);
      if (exists || notEmpty || didChange) {
        const target = this.m.runtimes.get(this.m.resolve(c.unit));
        if (target && (target.active === 'active' || target.active === 'activating')) return;
        this.d.journal.append(name, `Triggering ${c.unit}.`);
        void this.m.backgroundJob(c.unit, 'start', { unit: name, why: 'the path' });
      }
    };
    st.watchers = [];
    const dirs = new Map<string, string[]>();
    for (const p of [...c.pathExists, ...c.pathChanged]) dirs.set(dirname(p), [...(dirs.get(dirname(p)) ?? []), p]);
    for (const p of c.directoryNotEmpty) dirs.set(p, [...(dirs.get(p) ?? []), p]);
    for (const [dir, paths] of dirs) {
      try {
        mkdirSync(dir, { recursive: true });
        const w = watch(dir, (_ev, file) => {
          const full = file ? join(dir, String(file)) : undefined;
          check(full && paths.includes(full) ? full : paths.find((p) => p === dir) ? dir : undefined);
        });
        w.on('error', () => {});
        st.watchers.push(w);
      } catch (e) {
        this.d.journal.append(name, `Cannot watch ${dir}: ${(e as Error).message}`, { priority: 4 });
      }
    }
    check();
  }

  // --- mounts ---

  private mount(name: string): void {
    const c = this.m.runtimes.get(name)!.config.mount!;
    const { flags, data } = mountOptions(c.options);
    const k = this.d.native.constants as unknown as Record<string, number>;
    mkdirSync(c.where, { recursive: true });
    this.d.native.mount(
      c.what,
      c.where,
      c.type,
      flags.reduce((a, f) => a | (k[f] ?? 0), 0),
      data,
    );
  }
}
